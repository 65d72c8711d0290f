"""Fault-test fixtures: several room-service replicas on one Redis behind two edges."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import FAST_EDGE_ARGS
from tests.support.processes import EdgeProcess, start_edge, start_together
from tests.support.replicas import Replicas, replicas_on_redis

EDGE_ARGS = (*FAST_EDGE_ARGS, "--max-connections-per-address", "2000")


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Replicas, EdgeProcess, EdgeProcess]]:
    """Two replicas on one Redis, two edges each given both replicas as its target."""
    async with replicas_on_redis(2) as replicas:
        edges = await start_together(
            *(start_edge(replicas.target, *EDGE_ARGS, name=name) for name in ("edge-a", "edge-b"))
        )
        try:
            yield replicas, edges[0], edges[1]
        finally:
            for edge in edges:
                await edge.terminate()

"""The edge's /healthz and /readyz follow the room service; a join during an outage is
refused as UNAVAILABLE rather than left hanging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.support.edge_stack import GOOD_JOIN, Client, start_stack
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)


async def test_healthz_and_readyz_follow_the_room_service(clients: Callable[[str], Client]) -> None:
    running = await start_stack()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
            async with http.get(f"{running.url}/readyz") as response:
                assert response.status == 200
                assert await response.json() == {"ready": True, "roomService": "up"}
            await running.room.stop()
            answers: list[tuple[int, Any]] = []

            async def not_ready() -> bool:
                async with http.get(f"{running.url}/readyz") as response:
                    answers.append((response.status, await response.json()))
                return answers[-1][0] == 503

            # Heartbeats every 0.2 s: the outage shows within seconds.
            await wait_until(not_ready, within=5, what="/readyz 503")
            assert answers[-1] == (503, {"ready": False, "roomService": "down"})
            # Liveness never depends on the room service.
            async with http.get(f"{running.url}/healthz") as response:
                assert response.status == 200
            # And a join during the outage is refused as UNAVAILABLE, not left hanging.
            client = clients("client")
            await client.connect(running.url)
            ack = await client.emit_with_ack("join-meeting", GOOD_JOIN)
            assert ack["success"] is False and ack["error"]["code"] == "UNAVAILABLE"
    finally:
        await running.edge.stop()

"""Shared fixtures: real processes started the way `make run` starts them, the official
JavaScript client, and a gRPC stub on the running room service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClientPool
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    RoomServiceProcess,
    start_edge,
    start_room_service,
    start_together,
)
from tests.support.redis_server import SessionRedis

# Short heartbeats so that tests of silent loss and leases finish in seconds.
FAST_EDGE_ARGS = (
    "--ping-interval-seconds",
    "1",
    "--ping-timeout-seconds",
    "2",
    "--heartbeat-interval-seconds",
    "0.5",
)


@pytest.fixture
async def room_service(request: pytest.FixtureRequest) -> AsyncIterator[RoomServiceProcess]:
    """A room service process with the demo meetings; a module's or test's
    `room_service_args` marker adds flags (e.g. a short recovery window)."""
    extra = [arg for marker in request.node.iter_markers("room_service_args") for arg in marker.args]
    async with await start_room_service(
        "--edge-lease-seconds", "3", "--restore-grace-seconds", "1", *QUICK_STOP, *extra
    ) as proc:
        yield proc


EDGE_NAMES = {"edge": "edge-a", "edge2": "edge-b"}
"""The edge fixtures and the names of their processes."""
Edges = dict[str, EdgeProcess]

SHORT_RECOVERY_WINDOW = pytest.mark.room_service_args("--recovery-window-seconds", "1")
"""For tests that wait for a dropped socket to be reported left, not for it to recover:
the others are told once its recovery window ends, 5 s at the shipped setting."""


@pytest.fixture
async def edges(room_service: RoomServiceProcess, request: pytest.FixtureRequest) -> AsyncIterator[Edges]:
    """The edge gateways in front of `room_service` that the test asks for (`edge`,
    `edge2`), started together."""
    wanted = [fixture for fixture in EDGE_NAMES if fixture in request.fixturenames]
    started = await start_together(
        *(start_edge(room_service.grpc_address, *FAST_EDGE_ARGS, name=EDGE_NAMES[f]) for f in wanted)
    )
    async with contextlib.AsyncExitStack() as stack:
        for proc in started:
            await stack.enter_async_context(proc)  # stopped (output shown on failure) on exit
        yield dict(zip(wanted, started, strict=True))


@pytest.fixture
def edge(edges: Edges) -> EdgeProcess:
    """One edge gateway in front of `room_service`."""
    return edges["edge"]


@pytest.fixture
def edge2(edges: Edges) -> EdgeProcess:
    """A second edge gateway in front of the same room service."""
    return edges["edge2"]


@pytest.fixture
async def js() -> AsyncIterator[JsClientPool]:
    """A node process driving official socket.io-client sockets."""
    async with JsClientPool() as pool:
        yield pool


@pytest.fixture
async def stub(room_service: RoomServiceProcess) -> AsyncIterator[pb_grpc.RoomServiceAsyncStub]:
    """A RoomService stub on the running room service."""
    async with grpc.aio.insecure_channel(room_service.grpc_address) as channel:
        yield pb_grpc.RoomServiceStub(channel)


@pytest.fixture(scope="session")
def session_redis() -> Iterator[SessionRedis]:
    """A redis-server on a free loopback port for the whole session (tests flush it)."""
    with SessionRedis() as server:
        yield server

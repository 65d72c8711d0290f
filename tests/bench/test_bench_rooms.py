"""Timing benchmarks (`make bench`): join latency and broadcast fan-out through real
processes and the official client. They print figures; they never decide pass/fail
on time."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess, start_edge, start_room_service
from tests.support.redis_server import start_redis

pytestmark = pytest.mark.bench

MEETING = "test-meeting-123"


@pytest.fixture(params=["memory", "redis"])
async def room_service(request: pytest.FixtureRequest) -> AsyncIterator[RoomServiceProcess]:
    """The room service on each store (Redis: a redis-server of its own on loopback)."""
    if request.param == "memory":
        async with await start_room_service() as proc:
            yield proc
        return
    redis = await start_redis()
    try:
        env = {"ROOM_SERVICE_REDIS_URL": redis.url}
        async with await start_room_service("--store", "redis", env=env) as proc:
            yield proc
    finally:
        await redis.terminate()


@pytest.fixture
async def edge(room_service: RoomServiceProcess) -> AsyncIterator[EdgeProcess]:
    """One edge; its per-address connection limit raised (every client is on loopback)."""
    async with await start_edge(room_service.grpc_address, "--max-connections-per-address", "1000") as proc:
        yield proc


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_join_latency_and_fanout(
    room_service: RoomServiceProcess, edge: EdgeProcess, js: JsClientPool
) -> None:
    clients = await js.connect_many(edge.url, 100, prefix="bench", transports=["websocket"])
    latencies: list[float] = []
    for index, client in enumerate(clients):
        started = time.perf_counter()
        reply = await client.emit_with_ack(
            "join-meeting",
            {"meetingId": MEETING, "userId": f"u{index}", "userName": f"User {index}"},
            timeout=10,
        )
        latencies.append(time.perf_counter() - started)
        assert reply["success"], reply
    store = "redis" if "--store" in room_service.argv else "memory"
    print(
        f"\n[{store} store] join round trip over {len(latencies)} sequential joins (room grows 0→99): "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {_pct(latencies, 0.99) * 1000:.1f} ms"
    )

    rounds = 20
    marks = [c.mark() for c in clients]
    started = time.perf_counter()
    for n in range(rounds):
        await clients[0].emit_with_ack("chat-message", {"text": f"message {n}"}, timeout=10)
    for client, mark in zip(clients, marks, strict=True):
        await client.wait_for_events("chat-message", rounds, start=mark, timeout=60)
    elapsed = time.perf_counter() - started
    delivered = rounds * len(clients)
    print(
        f"chat fan-out: {rounds} messages x {len(clients)} sockets = {delivered} deliveries "
        f"in {elapsed:.2f} s ({delivered / elapsed:.0f} deliveries/s, end to end incl. the JS client)"
    )

"""Timing benchmarks (`make bench`): join latency and broadcast fan-out through real
processes and the official client. They print figures; they never decide pass/fail
on time."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess

pytestmark = pytest.mark.bench

MEETING = "test-meeting-123"


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
    print(
        f"\njoin round trip over {len(latencies)} sequential joins (room grows 0→99): "
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

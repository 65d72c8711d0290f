"""Graceful shutdown on SIGTERM. The edge stops taking joins, lets its sockets go (the
others, on other edges, get `participant-left` at once, not after a lease) and exits
within its grace. The room service ends its streams instead of waiting out its grace."""

from __future__ import annotations

import signal
import time

from tests.support.jsclient import JsClientPool
from tests.support.processes import msg_is, start_edge, start_room_service
from tests.support.room import join, join_seen, left_payload, room_stub, truth
from tests.support.timing import report

LEASE = 30.0  # so long that only the graceful path can explain a prompt participant-left


async def test_edge_sigterm_releases_its_participants_promptly(js: JsClientPool) -> None:
    rs = await start_room_service("--edge-lease-seconds", str(LEASE))
    edge_a = await start_edge(rs.grpc_address, name="edge-a")
    edge_b = await start_edge(rs.grpc_address, name="edge-b")
    try:
        a = js.client("a")
        pa = (await join(a, "ua", url=edge_a.url))["participantId"]
        leaving = [js.client(f"b{i}") for i in range(3)]
        pids = [(await join(c, f"ub{i}", url=edge_b.url))["participantId"] for i, c in enumerate(leaving)]
        await a.wait_for_events("participant-joined", 3)
        mark = a.mark()

        started = time.monotonic()
        edge_b.send_signal(signal.SIGTERM)
        for pid in pids:
            await a.wait_for_event(
                "participant-left", left_payload(pid, "disconnected"), timeout=5, start=mark
            )
        told = time.monotonic() - started
        code = await edge_b.wait(10)
        exited = time.monotonic() - started
        report("edge SIGTERM: others told participant-left", told)
        report("edge SIGTERM: process exited", exited)
        assert code == 0
        assert told < 3.0
        assert exited < 5.0  # the default shutdown grace
        for client in leaving:
            gone = await client.wait_for_event("disconnect", timeout=5)
            # Closed at the transport level: a real client reconnects (to another edge).
            assert gone.data["reason"] == "transport close", gone.data
        async with room_stub(rs.grpc_address) as stub:
            assert await truth(stub) == {pa}
        assert len(a.events_named("participant-left", start=mark)) == 3
    finally:
        await edge_b.terminate()
        await edge_a.terminate()
        await rs.terminate()


async def test_room_service_sigterm_drains_streams_and_exits_fast(js: JsClientPool) -> None:
    rs = await start_room_service()
    edge = await start_edge(rs.grpc_address, name="edge")
    try:
        a, b = js.client("a"), js.client("b")
        await join(a, "ua", url=edge.url)
        await join_seen(b, "ub", a, url=edge.url)  # a room stream is open

        started = time.monotonic()
        rs.send_signal(signal.SIGTERM)
        code = await rs.wait(10)
        took = time.monotonic() - started
        report("room service SIGTERM: process exited", took)
        assert code == 0
        assert took < 2.5, "streams were not ended: the shutdown waited out its grace"
        assert rs.logs_matching(msg_is("room service stopped"))
    finally:
        await edge.terminate()
        await rs.terminate()

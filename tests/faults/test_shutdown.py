"""Graceful shutdown on SIGTERM. The edge stops taking joins and hands its sockets' sessions
to the room service, which holds them for the recovery window: a rolling edge restart is a
blip, not a leave. Clients reconnect by themselves (to another edge behind the balancer) and
resume their sessions; one that does not come back is reported left when its window ends,
long before the edge's lease would. The edge exits within its grace. The room service ends
its streams instead of waiting out its grace."""

from __future__ import annotations

import signal
import time

from tests.support.jsclient import JsClientPool
from tests.support.processes import QUICK_STOP, msg_is, start_edge, start_room_service, start_together
from tests.support.recovery import reconnected
from tests.support.room import join, join_seen, left_payload, room_stub, truth
from tests.support.tcp_proxy import TcpProxy
from tests.support.timing import report

LEASE = 30.0  # so long that only the hold's window can explain a participant-left


async def test_edge_sigterm_is_a_blip_clients_resume_through_another_edge(js: JsClientPool) -> None:
    rs = await start_room_service("--edge-lease-seconds", str(LEASE), *QUICK_STOP)
    edge_a, edge_b = await start_together(
        start_edge(rs.grpc_address, name="edge-a"), start_edge(rs.grpc_address, name="edge-b")
    )
    try:
        async with TcpProxy(edge_b.http_address) as balancer:
            a = js.client("a")
            pa = (await join(a, "ua", url=edge_a.url))["participantId"]
            movers = [js.client(f"b{i}") for i in range(3)]
            resumed: set[str] = set()
            for i, client in enumerate(movers):
                await client.connect(
                    f"http://{balancer.address}", transports=["websocket"], reconnection=True
                )
                resumed.add((await join(client, f"ub{i}"))["participantId"])
            stayer = js.client("gone")  # does not reconnect: its window runs out
            ps = (await join(stayer, "ug", url=edge_b.url))["participantId"]
            await a.wait_for_events("participant-joined", 4)
            before = [await client.status() for client in movers]
            marks = [client.mark() for client in movers]
            mark = a.mark()

            balancer.retarget(edge_a.http_address)  # edge B's pod left the endpoints
            started = time.monotonic()
            edge_b.send_signal(signal.SIGTERM)
            code = await edge_b.wait(10)
            report("edge SIGTERM: process exited", time.monotonic() - started)
            assert code == 0
            assert edge_b.logs_matching(msg_is("released every session", sessions=4, held=4))
            for client, first, start in zip(movers, before, marks, strict=True):
                gone = await client.wait_for_event("disconnect", start=start, timeout=5)
                # Closed at the transport level: a real client reconnects (to another edge).
                assert gone.data["reason"] == "transport close", gone.data
                back = await reconnected(client, start)
                assert back["recovered"] is True and back["id"] == first["id"], client.events[start:]

            left = await a.wait_for_event(
                "participant-left", left_payload(ps, "disconnected"), start=mark, timeout=15
            )
            report("edge SIGTERM: a client that never came back reported left", left.received - started)
            assert [e.data["participantId"] for e in a.events_named("participant-left", start=mark)] == [ps]
            async with room_stub(rs.grpc_address) as stub:
                assert await truth(stub) == {pa, *resumed}
            reply = await a.emit_with_ack("chat-message", {"text": "still with us?"}, timeout=10)
            assert reply["success"], reply
            for client, start in zip(movers, marks, strict=True):
                await client.wait_for_event("chat-message", start=start, timeout=10)
    finally:
        await edge_b.terminate()
        await edge_a.terminate()
        await rs.terminate()


async def test_room_service_sigterm_drains_streams_and_exits_fast(js: JsClientPool) -> None:
    # A grace far longer than the wait below: exiting within the wait means the streams
    # were ended, not waited out.
    rs = await start_room_service("--shutdown-grace-seconds", "60")
    edge = await start_edge(rs.grpc_address, name="edge")
    try:
        a, b = js.client("a"), js.client("b")
        await join(a, "ua", url=edge.url)
        await join_seen(b, "ub", a, url=edge.url)  # a room stream is open

        started = time.monotonic()
        rs.send_signal(signal.SIGTERM)
        code = await rs.wait(20)
        took = time.monotonic() - started
        report("room service SIGTERM: process exited", took)
        assert code == 0
        assert rs.logs_matching(msg_is("room service stopped"))
    finally:
        await edge.terminate()
        await rs.terminate()

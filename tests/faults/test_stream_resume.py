"""A broken WatchRoom stream resumes from the last sequence seen: no event lost, none
repeated, same order. When the replay buffer no longer reaches back, the edge
resynchronises from a snapshot and brings its sockets' views back to the truth."""

from __future__ import annotations

import pytest

from tests.support.jsclient import JsClientPool
from tests.support.processes import QUICK_STOP, msg_is, start_edge, start_room_service, start_together
from tests.support.room import about, join, join_seen, room_stub, truth
from tests.support.roster import replay
from tests.support.tcp_proxy import TcpProxy
from tests.support.timing import report, wait_until

ROOM_EVENTS = ("participant-joined", "participant-left", "participant-updated")


@pytest.mark.parametrize("replay_buffer", [1024, 4])
async def test_cut_stream_resumes_or_resynchronises(js: JsClientPool, replay_buffer: int) -> None:
    rs = await start_room_service(
        "--edge-lease-seconds", "15", "--replay-buffer", str(replay_buffer), *QUICK_STOP
    )
    proxy = TcpProxy(rs.grpc_address)
    await proxy.start()
    edge_a, edge_b = await start_together(
        start_edge(proxy.address, name="edge-a"), start_edge(rs.grpc_address, name="edge-b")
    )  # its stream goes through the proxy
    try:
        a1, b0, b1, b2, b3, b4 = (js.client(n) for n in ("a1", "b0", "b1", "b2", "b3", "b4"))
        pa1 = (await join(a1, "ua1", url=edge_a.url))["participantId"]
        pb0 = (await join(b0, "ub0", url=edge_b.url))["participantId"]
        pb1 = (await join(b1, "ub1", url=edge_b.url))["participantId"]
        pb2 = await join_seen(b2, "ub2", a1, b0, url=edge_b.url)
        mark_a, mark_b = a1.mark(), b0.mark()
        log_mark = edge_a.mark()

        proxy.block()  # edge A's stream (and everything else it has) is cut
        await edge_a.wait_for_log(msg_is("room stream broken; resuming"), start=log_mark, timeout=10)
        # What happens in the room meanwhile, more than a tiny replay buffer holds:
        assert (await b2.emit_with_ack("leave-meeting", {}))["success"]
        pb3 = (await join(b3, "ub3", url=edge_b.url))["participantId"]
        for audio in (False, True, False):
            assert (await b1.emit_with_ack("update-media", {"audio": audio}))["success"]
        pb4 = (await join(b4, "ub4", url=edge_b.url))["participantId"]
        assert (await b4.emit_with_ack("leave-meeting", {}))["success"]
        await b0.wait_for_event("participant-left", about(pb4), start=mark_b)
        proxy.unblock()

        async with room_stub(rs.grpc_address) as stub:
            present = await truth(stub)
            assert present == {pa1, pb0, pb1, pb3}

            async def caught_up() -> bool:
                view = replay(a1.events)
                return view.ids == present - {pa1} and view.roster[pb1].get("audio") is False

            took = await wait_until(caught_up, within=15, what="edge A's client back in step")
        view = replay(a1.events)
        assert view.violations == [], [str(v) for v in view.violations]
        seen = [(e.event, e.data.get("participantId")) for e in a1.events[mark_a:] if e.event in ROOM_EVENTS]

        if replay_buffer > 100:
            report("stream cut, replay reaches: client caught up after the link healed", took)
            # Exactly what a client on the healthy edge saw, in the same order, once each.
            live = [
                (e.event, e.data.get("participantId")) for e in b0.events[mark_b:] if e.event in ROOM_EVENTS
            ]
            assert seen == live
            assert not edge_a.logs_matching(msg_is("room resynchronised from a snapshot"), start=log_mark)
        else:
            report("stream cut, replay too short: client resynchronised after the link healed", took)
            await edge_a.wait_for_log(msg_is("room resynchronised from a snapshot"), start=log_mark)
            # Only the net changes: b2 left, b3 joined, b1 changed; b4 came and went unseen.
            assert sorted(seen) == sorted(
                [("participant-left", pb2), ("participant-joined", pb3), ("participant-updated", pb1)]
            )
            assert all(pid != pb4 for _, pid in seen)
    finally:
        await edge_b.terminate()
        await edge_a.terminate()
        await proxy.close()
        await rs.terminate()

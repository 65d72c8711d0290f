"""A socket that stops reading does not slow the room for the others; its outgoing
bytes stay bounded (--max-buffered-bytes) and it is dropped once over the limit, long
before any ping timeout would notice it."""

from __future__ import annotations

import asyncio
import base64
import os
import time

from tests.support.jsclient import JsClientPool
from tests.support.processes import QUICK_STOP, msg_is, start_edge, start_room_service
from tests.support.room import join, join_seen, left_payload, room_stub, truth
from tests.support.timing import report

BUFFER_LIMIT = 256 * 1024
TEXT_LENGTH = 4000
MAX_MESSAGES = 4000
BATCH = 25


async def test_stuck_reader_is_dropped_and_others_keep_receiving(js: JsClientPool) -> None:
    room_service = await start_room_service("--max-chat-length", "4000", *QUICK_STOP)
    edge = await start_edge(
        room_service.grpc_address,
        "--max-text-length",
        "4000",
        "--max-buffered-bytes",
        str(BUFFER_LIMIT),
        # Pings far away: only the queue bound can catch the stuck socket in this test.
        "--ping-interval-seconds",
        "30",
        "--ping-timeout-seconds",
        "30",
        "--events-per-second",
        "10000",
        "--event-burst",
        "10000",
        name="edge",
    )
    try:
        talker, watcher, stuck = js.client("talker"), js.client("watcher"), js.client("stuck")
        await join(talker, "ut", url=edge.url)
        await join(watcher, "uw", url=edge.url)
        ps = await join_seen(stuck, "us", watcher, talker, url=edge.url)
        await stuck.drop("blackhole")  # keeps the TCP connection open, stops reading it
        mark = watcher.mark()

        started = time.monotonic()
        sent = 0
        slowest = 0.0
        while sent < MAX_MESSAGES and not watcher.events_named("participant-left", start=mark):
            asked = time.monotonic()
            replies = await asyncio.gather(
                *(talker.emit_with_ack("chat-message", {"text": _noise()}) for _ in range(BATCH))
            )
            assert all(r["success"] for r in replies), replies
            sent += BATCH
            # The healthy watcher gets every message promptly, stuck socket or not.
            await watcher.wait_for_events("chat-message", sent, start=mark, timeout=5)
            slowest = max(slowest, time.monotonic() - asked)
        left = await watcher.wait_for_event(
            "participant-left", left_payload(ps, "disconnected"), start=mark, timeout=10
        )
        report(f"stuck reader dropped after {sent} broadcasts", left.received - started)
        report("slowest chat round trip to a healthy socket meanwhile", slowest)
        assert sent < MAX_MESSAGES
        await edge.wait_for_log(msg_is("socket is not reading; dropping it"))
        async with room_stub(room_service.grpc_address) as stub:
            assert ps not in await truth(stub)
        # The room carries on for the others.
        reply = await talker.emit_with_ack("chat-message", {"text": "still here"})
        assert reply["success"]
        await watcher.wait_for_event("chat-message", lambda d: d.get("text") == "still here")
    finally:
        await edge.terminate()
        await room_service.terminate()


def _noise() -> str:
    """Incompressible text (should frames ever be deflated, repeated text would shrink to
    nothing and never fill a buffer)."""
    return base64.b64encode(os.urandom(TEXT_LENGTH * 3 // 4)).decode("ascii")

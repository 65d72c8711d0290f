"""Room events that reach the edge as one WatchRoom batch (a real room service and edge in
this process): each socket gets each event once, in log order, after its direct replies,
and a socket still waiting for its own join in the batch enters the room on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from meeting.v1 import room_service_pb2 as pb
from tests.support.edge_stack import Connect, Stack
from tests.support.room import about, join

pytestmark = pytest.mark.timeout(60)


class GatedWatch:
    """The relay's WatchRoom call, opened only once `gate` is set, so that everything the
    room did meanwhile is in the log and comes as one batch; records each item's kind."""

    def __init__(self, stack: Stack, gate: asyncio.Event, kinds: list[tuple[str, int]]) -> None:
        self._open = stack.edge.hub.client.watch_room
        self._gate, self._kinds = gate, kinds
        self._call: Any = None
        self._args: tuple[str, pb.StreamPosition] = ("", pb.StreamPosition())

    def __call__(self, meeting_id: str, position: pb.StreamPosition) -> GatedWatch:
        self._args = (meeting_id, position)
        return self

    async def __aiter__(self) -> AsyncIterator[pb.WatchRoomResponse]:
        await self._gate.wait()
        self._call = self._open(*self._args)
        async for item in self._call:
            kind = item.WhichOneof("item")
            self._kinds.append((kind, len(item.events.events) if kind == "events" else 1))
            yield item

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()


async def test_a_batch_reaches_each_socket_once_in_order_after_its_direct_replies(
    connected: Connect, stack: Stack
) -> None:
    gate, kinds = asyncio.Event(), list[tuple[str, int]]()
    stack.edge.hub.watch_room = GatedWatch(stack, gate, kinds)  # type: ignore[method-assign]
    a, b = await connected("a", "b")
    pa = (await join(a, "user-a"))["participantId"]
    mark_a = a.mark()
    joined_b = await join(b, "user-b")  # its own join is still ahead of the relay
    pb_ = joined_b["participantId"]
    assert pa in {p["participantId"] for p in joined_b["participants"]}
    mark_b = b.mark()
    for audio in (False, True, False):
        assert (await b.emit_with_ack("update-media", {"audio": audio}))["success"]
    assert (await a.emit_with_ack("chat-message", {"text": "one"}))["success"]
    assert (await b.emit_with_ack("chat-message", {"text": "two"}))["success"]
    assert a.mark() == mark_a and b.mark() == mark_b  # nothing relayed yet: the stream waits

    gate.set()
    await a.wait_for_event("chat-message", lambda d: d["text"] == "two", start=mark_a)
    await b.wait_for_event("chat-message", lambda d: d["text"] == "two", start=mark_b)
    assert kinds[0] == ("events", 6), kinds  # b joined, three updates, two chats: one item

    seen_a = [(e.event, e.data.get("participantId"), e.data.get("audio")) for e in a.events[mark_a:]]
    assert seen_a[:4] == [
        ("participant-joined", pb_, True),
        ("participant-updated", pb_, False),
        ("participant-updated", pb_, True),
        ("participant-updated", pb_, False),
    ], seen_a
    assert [d["text"] for d in a.payloads("chat-message", start=mark_a)] == ["one", "two"]
    assert len(seen_a) == 6
    # b: not its own join nor its own updates again, both chats once, in order.
    assert [e.event for e in b.events[mark_b:]] == ["chat-message", "chat-message"]
    assert [d["text"] for d in b.payloads("chat-message", start=mark_b)] == ["one", "two"]
    # After the batch the stream goes on: a's next update reaches b once.
    assert (await a.emit_with_ack("update-media", {"video": False}))["success"]
    await b.wait_for_event("participant-updated", about(pa), start=mark_b)
    assert len(b.payloads("participant-updated", start=mark_b)) == 1

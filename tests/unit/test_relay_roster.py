"""A relay's view serves a joiner's roster only where it stands at the join: at the join's
own position, or one event before a fresh join's; never in another epoch or once closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from edge_gateway import wire
from edge_gateway.metrics import EdgeMetrics
from edge_gateway.relay import RoomRelay
from edge_gateway.relay_host import Broadcast, Payload
from edge_gateway.relay_view import views_from
from edge_gateway.sessions import SessionRegistry
from meeting.v1 import room_service_pb2 as pb


class _QuietStream:
    """A room stream with nothing to say until cancelled."""

    def __init__(self) -> None:
        self._cancelled = asyncio.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def __aiter__(self) -> AsyncIterator[pb.WatchRoomResponse]:
        return self

    async def __anext__(self) -> pb.WatchRoomResponse:
        await self._cancelled.wait()
        raise StopAsyncIteration


class _Host:
    """Just enough of the edge for a relay whose stream stays quiet."""

    def __init__(self) -> None:
        self.sessions = SessionRegistry()
        self.metrics = EdgeMetrics(CollectorRegistry())

    def watch_room(self, meeting_id: str, position: pb.StreamPosition) -> Any:
        return _QuietStream()

    # A quiet stream delivers nothing: none of these is ever called.
    async def emit(self, event: str, data: Payload, *, to: str | Broadcast) -> None:
        raise AssertionError("nothing to emit")

    async def enter_room(self, sid: str, room: str) -> None:
        raise AssertionError("no socket registers")

    async def joiner_told(self, participant: pb.Participant) -> None:
        raise AssertionError("nobody joins")

    async def local_participant_left(self, participant_id: str, reason: pb.LeaveReason.ValueType) -> None:
        raise AssertionError("nobody leaves")

    async def drop_session(self, sid: str) -> None:
        raise AssertionError("the meeting stays")


def _participant(name: str) -> pb.Participant:
    return pb.Participant(participant_id=f"p-{name}", user_id=name, user_name=name.title())


@pytest.fixture
async def relay() -> AsyncIterator[RoomRelay]:
    """A relay standing at sequence 5 of epoch "e1" with ann, bob and cat in its view."""
    ann, bob, cat = (_participant(n) for n in ("ann", "bob", "cat"))
    relay = RoomRelay(_Host(), "m-1", (5, "e1"), views_from([ann, bob], cat))
    relay.start()
    yield relay
    await relay.close()


def _ids(roster: bytes | None) -> list[str]:
    assert roster is not None
    return [p["participantId"] for p in json.loads(roster)]


async def test_at_the_joins_position_the_view_without_the_joiner_is_the_roster(relay: RoomRelay) -> None:
    assert _ids(relay.roster_json((5, "e1"), "p-cat", own_join=True)) == ["p-ann", "p-bob"]
    # An idempotent re-join reports the log head: the same holds there.
    assert _ids(relay.roster_json((5, "e1"), "p-bob", own_join=False)) == ["p-ann", "p-cat"]


async def test_one_event_before_a_fresh_join_the_view_is_the_roster(relay: RoomRelay) -> None:
    assert _ids(relay.roster_json((6, "e1"), "p-dan", own_join=True)) == ["p-ann", "p-bob", "p-cat"]
    # Not for a re-join (its position is the head, the view one event short of it), nor
    # when the joiner is already in the view (it cannot be: its join is that next event).
    assert relay.roster_json((6, "e1"), "p-dan", own_join=False) is None
    assert relay.roster_json((6, "e1"), "p-cat", own_join=True) is None


async def test_anywhere_else_the_reply_has_to_serve(relay: RoomRelay) -> None:
    for position in ((4, "e1"), (7, "e1"), (5, "e2"), (6, "e2")):
        assert relay.roster_json(position, "p-dan", own_join=True) is None
    await relay.close()
    assert relay.roster_json((5, "e1"), "p-cat", own_join=True) is None


async def test_an_entry_follows_its_participants_changes(relay: RoomRelay) -> None:
    first = json.loads(relay.roster_json((5, "e1"), "p-cat", own_join=True) or b"")
    assert first == [wire.participant(relay.view[pid]) for pid in ("p-ann", "p-bob")]
    changed = pb.Participant()
    changed.CopyFrom(relay.view["p-ann"])
    changed.media.audio = True
    relay.view["p-ann"] = changed  # as the stream replaces a participant that changed
    again = json.loads(relay.roster_json((5, "e1"), "p-cat", own_join=True) or b"")
    assert again[0]["audio"] is True and again[1] == first[1]


def _truth(relay: RoomRelay, me: str) -> list[dict[str, object]]:
    return [wire.participant(p) for pid, p in relay.view.items() if pid != me]


async def test_a_roster_kept_from_the_last_join_grows_and_never_goes_stale(relay: RoomRelay) -> None:
    """Each joiner's roster reuses the previous one's bytes; whatever else the view does
    (a leave, a change, a snapshot's new view) is what the next roster says."""
    for n, name in enumerate(("dan", "eve", "fay"), start=6):
        # The joiner's reply may come one event before its join is relayed, or at it.
        before = relay.roster_json((n, "e1"), f"p-{name}", own_join=True)
        assert json.loads(before or b"") == _truth(relay, "")
        relay.view[f"p-{name}"] = _participant(name)  # its join, as the stream applies it
        relay.position = (n, "e1")
        got = json.loads(relay.roster_json((n, "e1"), f"p-{name}", own_join=True) or b"")
        assert got == _truth(relay, f"p-{name}")
    del relay.view["p-bob"]  # a leave in the middle
    relay.position = (9, "e1")
    assert json.loads(relay.roster_json((9, "e1"), "p-fay", own_join=False) or b"") == _truth(relay, "p-fay")
    changed = pb.Participant()
    changed.CopyFrom(relay.view["p-ann"])
    changed.media.video = True
    relay.view["p-ann"] = changed  # a change early in the roster
    got = json.loads(relay.roster_json((9, "e1"), "p-gus", own_join=True) or b"")
    assert got == _truth(relay, "") and got[0]["video"] is True
    relay.view = {"p-hal": _participant("hal")}  # a snapshot's view
    assert _ids(relay.roster_json((9, "e1"), "p-gus", own_join=True)) == ["p-hal"]
    relay.view = {}
    assert relay.roster_json((9, "e1"), "p-gus", own_join=True) == b"[]"

"""The rosters a Redis-store replica keeps (`redis_rosters`): entries right after the known
head change the roster in order, repeats change nothing, and a gap or another epoch leaves
nothing known (a join then reads the roster from Redis)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from room_service.domain import events
from room_service.domain.events import RoomEvent
from room_service.domain.models import LeaveReason, MediaState, Participant, Permissions, Position
from room_service.store.redis_rosters import RoomRosters

ROOM = "room-1"


def person(name: str) -> Participant:
    return Participant(
        participant_id=f"p-{name}",
        user_id=name,
        user_name=name.title(),
        media=MediaState(),
        permissions=Permissions(can_share=True, can_chat=True, can_record=False, is_host=False),
        joined_at=datetime(2026, 1, 1, tzinfo=UTC),
        edge_id="edge-a",
        socket_id=f"s-{name}",
    )


def entry(sequence: int, payload: events.EventPayload, epoch: str = "e1") -> RoomEvent:
    return RoomEvent(ROOM, Position(sequence, epoch), datetime(2026, 1, 1, tzinfo=UTC), payload)


def names(rosters: RoomRosters) -> list[str] | None:
    known = rosters.known(ROOM)
    return None if known is None else [p.user_id for p in known.participants]


def test_entries_after_the_head_change_the_roster_in_order_and_repeats_change_nothing() -> None:
    rosters = RoomRosters()
    rosters.reset(ROOM, Position(2, "e1"), "0", [person("ann"), person("bob")])
    quiet = dataclasses.replace(person("ann"), media=MediaState(audio=False))
    changes = [
        entry(3, events.ParticipantJoined(person("cy"))),
        entry(4, events.ParticipantUpdated(quiet, "p-ann")),
        entry(5, events.ParticipantLeft(person("bob"), LeaveReason.LEFT)),
    ]
    rosters.apply(ROOM, changes)
    rosters.apply(ROOM, changes[1:])  # read again (another path brought them): no change
    known = rosters.known(ROOM)
    assert known is not None
    assert known.position == Position(5, "e1") and known.version == "0"
    assert known.participants == (quiet, person("cy"))  # an update keeps its place
    rosters.apply(ROOM, [entry(6, events.MeetingEnded("p-ann"))])
    assert names(rosters) == []


def test_a_gap_or_another_epoch_leaves_nothing_known() -> None:
    rosters = RoomRosters()
    rosters.reset(ROOM, Position(2, "e1"), "0", [person("ann")])
    rosters.apply(ROOM, [entry(4, events.ParticipantJoined(person("bob")))])
    assert names(rosters) is None
    rosters.reset(ROOM, Position(2, "e1"), "0", [person("ann")])
    rosters.apply(ROOM, [entry(1, events.ParticipantJoined(person("bob")), epoch="e2")])
    assert names(rosters) is None


def test_a_roster_read_from_redis_replaces_one_of_another_version_but_not_a_newer_one() -> None:
    rosters = RoomRosters()
    rosters.reset(ROOM, Position(5, "e1"), "0", [person("ann"), person("bob")])
    rosters.reset(ROOM, Position(3, "e1"), "0", [person("ann")])  # older: what is known stays
    assert names(rosters) == ["ann", "bob"]
    rosters.reset(ROOM, Position(5, "e1"), "1", [person("bob")])  # a recovery came between
    known = rosters.known(ROOM)
    assert known is not None and known.version == "1"
    assert [p.user_id for p in known.participants] == ["bob"]


def test_the_least_recently_used_room_is_forgotten_first() -> None:
    rosters = RoomRosters(rooms=2)
    for room in ("a", "b"):
        rosters.reset(room, Position(1, "e1"), "0", [person(room)])
    assert rosters.known("a") is not None  # used: "b" is now the oldest
    rosters.reset("c", Position(1, "e1"), "0", [person("c")])
    assert rosters.known("b") is None
    assert rosters.known("a") is not None and rosters.known("c") is not None

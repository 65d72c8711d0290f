"""The Join and RecoverSession rosters built from cached encodings read back exactly as the
messages built field by field, for a fresh, a changed and an equal-but-new participant."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from meeting.v1 import room_service_pb2 as pb
from room_service.api.convert import participant_to_pb
from room_service.api.roster import RosterEncoder
from room_service.domain import rules
from room_service.domain.models import MediaState, Participant


def participant(i: int) -> Participant:
    return Participant(
        participant_id=f"p-{i}",
        user_id=f"user-{i}",
        user_name=f"User {i}",
        media=MediaState(),
        permissions=rules.NO_PERMISSIONS,
        joined_at=datetime(2026, 1, 1, 12, 0, i % 60, tzinfo=UTC),
        edge_id="edge-a",
        socket_id=f"sid-{i}",
    )


def test_a_filled_reply_equals_one_built_field_by_field() -> None:
    roster = RosterEncoder(pb.JoinResponse)
    others = [participant(i) for i in range(5)]
    me = participant_to_pb(participant(99))
    reply = roster.fill(pb.JoinResponse(participant=me, instance_id="i-1"), others)
    listed = [participant_to_pb(p) for p in others]
    assert reply == pb.JoinResponse(participant=me, participants=listed, instance_id="i-1")
    # Through the wire as well: the order of the roster is kept.
    again = pb.JoinResponse.FromString(reply.SerializeToString())
    assert [p.participant_id for p in again.participants] == [p.participant_id for p in others]


def test_a_recovery_reply_gets_its_own_field() -> None:
    roster = RosterEncoder(pb.RecoverSessionResponse)
    others = [participant(i) for i in range(3)]
    reply = roster.fill(pb.RecoverSessionResponse(socket_id="sid-9"), others)
    assert list(reply.participants) == [participant_to_pb(p) for p in others]
    assert reply.socket_id == "sid-9"


def test_a_changed_participant_is_encoded_anew_and_an_equal_copy_is_not() -> None:
    roster = RosterEncoder(pb.JoinResponse)
    first = participant(1)
    roster.encode([first])
    muted = dataclasses.replace(first, media=MediaState(audio=False))
    reply = roster.fill(pb.JoinResponse(), [muted])
    assert reply.participants[0].media.audio is False
    # A store that decodes anew hands out equal copies: they read the same.
    copy = dataclasses.replace(muted)
    assert copy is not muted
    assert roster.fill(pb.JoinResponse(), [copy]).participants[0] == participant_to_pb(muted)
    assert len(roster) == 1


def test_the_cache_is_bounded_and_past_it_replies_stay_right() -> None:
    roster = RosterEncoder(pb.JoinResponse, capacity=4)
    others = [participant(i) for i in range(10)]
    for _ in range(2):
        reply = roster.fill(pb.JoinResponse(), others)
        assert list(reply.participants) == [participant_to_pb(p) for p in others]
    assert len(roster) == 4


def test_a_growing_room_reuses_its_last_roster_and_a_change_in_it_is_seen() -> None:
    roster = RosterEncoder(pb.JoinResponse)
    room = [participant(i) for i in range(4)]
    for n in range(1, 5):  # each joiner lists everyone before it
        reply = roster.fill(pb.JoinResponse(), room[:n], "m-1")
        assert list(reply.participants) == [participant_to_pb(p) for p in room[:n]]
    # Someone early in the roster changes, and someone leaves: never the kept bytes.
    room[1] = dataclasses.replace(room[1], media=MediaState(audio=False))
    reply = roster.fill(pb.JoinResponse(), room, "m-1")
    assert reply.participants[1].media.audio is False
    del room[2]
    reply = roster.fill(pb.JoinResponse(), room, "m-1")
    assert [p.participant_id for p in reply.participants] == [p.participant_id for p in room]
    # Another room never gets this one's roster, nor an empty one a stale tail.
    assert list(roster.fill(pb.JoinResponse(), room[:1], "m-2").participants) == [participant_to_pb(room[0])]
    assert list(roster.fill(pb.JoinResponse(), [], "m-1").participants) == []


def test_equal_copies_of_a_kept_roster_read_the_same() -> None:
    roster = RosterEncoder(pb.JoinResponse)
    room = [participant(i) for i in range(3)]
    roster.encode(room, "m-1")
    copies = [dataclasses.replace(p) for p in room] + [participant(7)]  # a store decoding anew
    reply = roster.fill(pb.JoinResponse(), copies, "m-1")
    assert list(reply.participants) == [participant_to_pb(p) for p in copies]

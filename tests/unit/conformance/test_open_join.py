"""Store contract for the open join (`join_open`): the store reads the meeting with the
change, refuses the way `join` does, and leaves a meeting with a password untouched."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import MeetingStatus, Permissions, Position
from room_service.domain.requests import JoinOutcome, JoinSpec
from room_service.store.base import RoomStore
from tests.support.stores import MEETING, StoreFactory, claim, meeting, spec

Joining = Callable[[RoomStore, JoinSpec], Awaitable[JoinOutcome | None]]


async def _join(store: RoomStore, s: JoinSpec) -> JoinOutcome | None:
    return await store.join(s)


async def _join_open(store: RoomStore, s: JoinSpec) -> JoinOutcome | None:
    return await store.join_open(s, lease_until=None)


async def _refusal(store: RoomStore, how: Joining, s: JoinSpec) -> tuple[ErrorCode, str]:
    with pytest.raises(DomainError) as refused:
        await how(store, s)
    return refused.value.code, refused.value.message


async def test_an_open_join_is_refused_as_a_join_is(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.upsert_meeting(meeting("ended", status=MeetingStatus.ENDED))
    await store.upsert_meeting(meeting("one-seat", max_participants=1))
    await store.join(spec("u0", meeting_id="one-seat"))
    codes = []
    for s in (spec("u1", meeting_id=m) for m in ("nope", "ended", "one-seat")):
        refused = await _refusal(store, _join_open, s)
        assert refused == await _refusal(store, _join, s)
        codes.append(refused[0])
    assert codes == [ErrorCode.MEETING_NOT_FOUND, ErrorCode.MEETING_NOT_ACTIVE, ErrorCode.ROOM_FULL]
    assert len((await store.snapshot("one-seat")).participants) == 1


async def test_an_open_join_seats_with_the_meetings_permissions_and_answers_it(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    stored = await store.upsert_meeting(meeting(guests_can_chat=False, meeting_name="Tëam / ✓"))
    guest = await store.join_open(dataclasses.replace(spec("u1"), user_name='Zoë / "✓"'))
    host = await store.join_open(spec("creator"))
    assert guest is not None and host is not None
    assert guest.meeting == host.meeting == stored
    assert guest.participant.permissions == Permissions(True, False, False, False)
    assert host.participant.permissions == Permissions(True, True, True, True)
    assert host.others == (guest.participant,)
    # As stored: what the room hands back is what the join answered.
    assert (await store.snapshot(MEETING)).participants == (guest.participant, host.participant)
    again = await store.join_open(spec("u1"))
    assert again is not None and again.already_joined and again.participant == guest.participant
    assert again.meeting == stored and again.position == host.position


async def test_an_open_join_into_a_meeting_with_a_password_changes_nothing(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.upsert_meeting(meeting(password_hash="hash"))
    first = await store.join(spec("u0"))
    joiner = dataclasses.replace(spec("u1"), recovery_id="rid-1")
    assert await store.join_open(joiner) is None
    assert await store.join_open(spec("u0")) is None  # even for a socket already in the room
    snapshot = await store.snapshot(MEETING)
    assert snapshot.participants == (first.participant,) and snapshot.position == first.position
    with pytest.raises(DomainError) as refused:
        await store.recover(claim("rid-1", Position(0, "")))
    assert refused.value.code is ErrorCode.NOT_IN_MEETING
    joined = await store.join(joiner)  # the password checked, the caller joins
    assert joined.others == (first.participant,)

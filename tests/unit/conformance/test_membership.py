"""Store contract for membership: joins (idempotent, replacing, capacity, refusals),
rejoins, leaves, counts, and ending a meeting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import MeetingEnded, ParticipantJoined, ParticipantLeft
from room_service.domain.models import LeaveReason, MediaState, Meeting, MeetingStatus, Position, Snapshot
from room_service.domain.requests import JoinSpec
from tests.support.stores import MEETING, StoreFactory, events_after, meeting, spec


async def test_a_second_join_from_the_same_edge_and_socket_is_idempotent(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await store.join(spec("u0"))
    first = await store.join(spec("u1", socket="s1"))
    again = await store.join(spec("u1", socket="s1"))
    assert again.already_joined
    assert again.participant == first.participant
    assert [p.participant_id for p in again.others] == [other.participant.participant_id]
    assert again.position == first.position  # the head: nothing was appended
    snapshot = await store.snapshot(MEETING)
    assert len(snapshot.participants) == 2


async def test_the_same_socket_id_on_another_edge_is_a_different_session(new_store: StoreFactory) -> None:
    store = await new_store(multiple_sessions=True)
    a = await store.join(spec("u1", socket="s1", edge="edge-a"))
    b = await store.join(spec("u2", socket="s1", edge="edge-b"))
    assert not b.already_joined
    assert a.participant.participant_id != b.participant.participant_id


async def test_the_same_user_from_another_socket_replaces_the_older_session(new_store: StoreFactory) -> None:
    store = await new_store()
    bystander = await store.join(spec("u0"))
    old = await store.join(spec("u1", socket="s-old"))
    new = await store.join(spec("u1", socket="s-new"))
    assert new.replaced == (old.participant,)
    assert new.participant.participant_id != old.participant.participant_id
    # The roster the new session sees no longer has its older self.
    assert [p.participant_id for p in new.others] == [bystander.participant.participant_id]
    events = await events_after(store, Position(old.position.sequence, old.position.epoch))
    assert len(events) == 2
    left, joined = events[0].payload, events[1].payload
    assert isinstance(left, ParticipantLeft)
    assert left.participant == old.participant
    assert left.reason is LeaveReason.REPLACED
    assert isinstance(joined, ParticipantJoined)
    assert new.position == events[1].position
    ids = {p.participant_id for p in (await store.snapshot(MEETING)).participants}
    assert ids == {bystander.participant.participant_id, new.participant.participant_id}


async def test_multiple_sessions_setting_keeps_every_session_of_a_user(new_store: StoreFactory) -> None:
    store = await new_store(multiple_sessions=True)
    first = await store.join(spec("u1", socket="s1"))
    second = await store.join(spec("u1", socket="s2"))
    assert second.replaced == ()
    assert [p.participant_id for p in second.others] == [first.participant.participant_id]
    assert len((await store.snapshot(MEETING)).participants) == 2


async def test_capacity_refuses_the_joiner_beyond_it_but_a_replacement_still_fits(
    new_store: StoreFactory,
) -> None:
    store = await new_store(default_capacity=2)
    await store.join(spec("u1"))
    await store.join(spec("u2"))
    before = await store.snapshot(MEETING)
    with pytest.raises(DomainError) as refused:
        await store.join(spec("u3"))
    assert refused.value.code is ErrorCode.ROOM_FULL
    assert await store.snapshot(MEETING) == before  # nothing changed, no event appended
    replaced = await store.join(spec("u2", socket="another"))
    assert len(replaced.replaced) == 1
    assert len((await store.snapshot(MEETING)).participants) == 2


async def test_a_meetings_own_capacity_overrides_the_default(new_store: StoreFactory) -> None:
    store = await new_store(default_capacity=100)
    await store.upsert_meeting(meeting(max_participants=1))
    await store.join(spec("u1"))
    with pytest.raises(DomainError) as refused:
        await store.join(spec("u2"))
    assert refused.value.code is ErrorCode.ROOM_FULL


async def test_join_refuses_unknown_and_ended_meetings(new_store: StoreFactory) -> None:
    store = await new_store()
    with pytest.raises(DomainError) as unknown:
        await store.join(spec("u1", meeting_id="nope"))
    assert unknown.value.code is ErrorCode.MEETING_NOT_FOUND
    await store.upsert_meeting(meeting("ended", status=MeetingStatus.ENDED))
    with pytest.raises(DomainError) as ended:
        await store.join(spec("u1", meeting_id="ended"))
    assert ended.value.code is ErrorCode.MEETING_NOT_ACTIVE


async def test_rejoin_returns_the_idempotent_outcome_and_changes_nothing(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.rejoin(spec("u1")) is None
    joined = await store.join(spec("u1"))
    again = await store.rejoin(spec("u1"))
    assert again is not None and again.already_joined and again.participant == joined.participant
    assert await store.rejoin(spec("u1", socket="other")) is None
    assert (await store.snapshot(MEETING)).position == joined.position


async def test_leave_of_an_unknown_participant_is_not_in_meeting(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    with pytest.raises(DomainError) as refused:
        await store.leave(MEETING, "participant-ghost", LeaveReason.LEFT)
    assert refused.value.code is ErrorCode.NOT_IN_MEETING
    assert (await store.snapshot(MEETING)).position == joined.position


async def test_participant_count_follows_joins_and_leaves(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.upsert_meeting(_count_meeting())
    assert await store.participant_count("count-room") == 0
    first = await store.join(_count_spec("u1", "s1"))
    await store.join(_count_spec("u2", "s2"))
    assert await store.participant_count("count-room") == 2
    await store.leave("count-room", first.participant.participant_id, LeaveReason.LEFT)
    assert await store.participant_count("count-room") == 1
    assert await store.participant_count("no-such-room") == 0


def _count_meeting() -> Meeting:
    return Meeting(
        id="count-room", meeting_name="Count", status=MeetingStatus.LIVE, creator_id="u1",
        created_at=datetime.now(UTC),
    )  # fmt: skip


def _count_spec(user: str, socket: str) -> JoinSpec:
    return JoinSpec("count-room", user, user.upper(), MediaState(), "edge-a", socket)


async def test_end_meeting_empties_the_room_and_appends_meeting_ended(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    ended, event = await store.end_meeting(MEETING, "", drop_at=1e9)
    assert ended.status is MeetingStatus.ENDED
    assert event is not None and isinstance(event.payload, MeetingEnded)
    assert event.position == Position(2, joined.position.epoch)
    snapshot = await store.snapshot(MEETING)
    assert snapshot.ended and snapshot.participants == ()


async def test_an_ended_room_and_its_log_are_dropped_at_their_deadline(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.join(spec("u1"))
    _, ended = await store.end_meeting(MEETING, "", drop_at=50.0)
    assert ended is not None
    assert await store.drop_ended_rooms(49.0) == 0
    assert await store.read_after(MEETING, Position(0, ended.position.epoch), 10) != []
    assert await store.drop_ended_rooms(50.0) == 1
    after = await store.read_after(MEETING, ended.position, 10)
    assert isinstance(after, Snapshot) and after.ended and after.participants == ()
    assert (await store.snapshot(MEETING)).position == Position(0, "")  # the room is gone
    assert (await store.get_meeting(MEETING)).status is MeetingStatus.ENDED
    assert await store.list_rooms() == []

"""Store contract for sequencing: one gapless sequence per room, an epoch per opening,
snapshots that match the log."""

from __future__ import annotations

import asyncio

from room_service.domain.events import ParticipantJoined, ParticipantLeft
from room_service.domain.models import LeaveReason, Position
from room_service.domain.requests import MediaChange
from tests.support.stores import MEETING, StoreFactory, events_after, meeting, spec


async def test_sequences_are_strictly_increasing_without_gaps(new_store: StoreFactory) -> None:
    store = await new_store()
    first = await store.join(spec("u1"))
    epoch = first.position.epoch
    assert first.position == Position(1, epoch)
    second = await store.join(spec("u2"))
    _, updated = await store.update_media(
        MediaChange(MEETING, second.participant.participant_id, "", audio=False)
    )
    chat = await store.append_chat(MEETING, first.participant.participant_id, "hi")
    left = await store.leave(MEETING, second.participant.participant_id, LeaveReason.LEFT)
    assert updated is not None
    sequences = [second.position.sequence, updated.position.sequence, chat.position.sequence]
    sequences.append(left.position.sequence)
    assert sequences == [2, 3, 4, 5]
    events = await events_after(store, Position(0, epoch))
    assert [e.position.sequence for e in events] == [1, 2, 3, 4, 5]
    assert {e.position.epoch for e in events} == {epoch}
    assert (await store.snapshot(MEETING)).position == Position(5, epoch)


async def test_a_change_that_changes_nothing_appends_nothing(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    participant, event = await store.update_media(
        MediaChange(MEETING, joined.participant.participant_id, "", audio=True)
    )
    assert event is None
    assert participant == joined.participant
    assert (await store.snapshot(MEETING)).position == joined.position


async def test_rooms_have_independent_sequences(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.upsert_meeting(meeting("m-2"))
    a1 = await store.join(spec("u1"))
    b1 = await store.join(spec("u2", meeting_id="m-2"))
    a2 = await store.join(spec("u3"))
    assert (a1.position.sequence, a2.position.sequence, b1.position.sequence) == (1, 2, 1)
    assert a1.position.epoch != b1.position.epoch


async def test_snapshot_reflects_exactly_the_events_up_to_its_position(new_store: StoreFactory) -> None:
    store = await new_store()
    j1 = await store.join(spec("u1"))
    j2 = await store.join(spec("u2"))
    await store.leave(MEETING, j1.participant.participant_id, LeaveReason.LEFT)
    snapshot = await store.snapshot(MEETING)
    # Replaying the log from the start yields exactly the snapshot's membership.
    members: dict[str, object] = {}
    for event in await events_after(store, Position(0, snapshot.position.epoch)):
        if isinstance(event.payload, ParticipantJoined):
            members[event.payload.participant.participant_id] = event.payload.participant
        elif isinstance(event.payload, ParticipantLeft):
            del members[event.payload.participant.participant_id]
    assert list(members) == [p.participant_id for p in snapshot.participants]
    assert list(members) == [j2.participant.participant_id]


async def test_a_room_reopened_after_emptying_starts_a_new_epoch(new_store: StoreFactory) -> None:
    store = await new_store()
    first = await store.join(spec("u1"))
    await store.leave(MEETING, first.participant.participant_id, LeaveReason.LEFT)
    closed = await store.snapshot(MEETING)
    assert closed.participants == ()
    assert closed.position == Position(0, "")
    again = await store.join(spec("u1"))
    assert again.position.sequence == 1
    assert again.position.epoch not in ("", first.position.epoch)


async def test_concurrent_joins_each_get_their_own_sequence(new_store: StoreFactory) -> None:
    store = await new_store()
    outcomes = await asyncio.gather(*(store.join(spec(f"u{i}")) for i in range(20)))
    assert sorted(o.position.sequence for o in outcomes) == list(range(1, 21))
    # Each joiner's roster is exactly the participants whose join came before its own.
    by_sequence = sorted(outcomes, key=lambda o: o.position.sequence)
    for index, outcome in enumerate(by_sequence):
        expected = [o.participant.participant_id for o in by_sequence[:index]]
        assert [p.participant_id for p in outcome.others] == expected

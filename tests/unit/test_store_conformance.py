"""The store contract, one suite for every store: the same tests run against the memory
store and the Redis store (a real redis-server this session starts on a free port)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import (
    JoinSpec,
    LeaveReason,
    MediaState,
    Meeting,
    MeetingEnded,
    MeetingStatus,
    ParticipantJoined,
    ParticipantLeft,
    Position,
    RoomEvent,
    Signal,
    SignalType,
    Snapshot,
)
from room_service.store.base import RestoreRecord, RoomStore
from room_service.store.memory import MemoryStore
from tests.support.stores import MEETING, StoreFactory, meeting, spec
from tests.support.timing import wait_until


async def all_events(store: RoomStore, after: Position) -> list[RoomEvent]:
    batch = await store.read_after(MEETING, after, 10_000)
    assert isinstance(batch, list)
    return batch


# -- sequencing ---------------------------------------------------------------------------


async def test_sequences_are_strictly_increasing_without_gaps(new_store: StoreFactory) -> None:
    store = await new_store()
    first = await store.join(spec("u1"))
    epoch = first.position.epoch
    assert first.position == Position(1, epoch)
    second = await store.join(spec("u2"))
    _, updated = await store.update_media(MEETING, second.participant.participant_id, {"audio": False}, "")
    chat = await store.append_chat(MEETING, first.participant.participant_id, "hi")
    left = await store.leave(MEETING, second.participant.participant_id, LeaveReason.LEFT)
    assert updated is not None
    sequences = [second.position.sequence, updated.position.sequence, chat.position.sequence]
    sequences.append(left.position.sequence)
    assert sequences == [2, 3, 4, 5]
    events = await all_events(store, Position(0, epoch))
    assert [e.position.sequence for e in events] == [1, 2, 3, 4, 5]
    assert {e.position.epoch for e in events} == {epoch}
    assert (await store.snapshot(MEETING)).position == Position(5, epoch)


async def test_a_change_that_changes_nothing_appends_nothing(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    participant, event = await store.update_media(
        MEETING, joined.participant.participant_id, {"audio": True}, ""
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
    for event in await all_events(store, Position(0, snapshot.position.epoch)):
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


# -- replay -------------------------------------------------------------------------------


async def test_read_after_replays_from_the_buffer_in_order_and_honours_the_limit(
    new_store: StoreFactory,
) -> None:
    store = await new_store(replay_buffer=8)
    joined = await store.join(spec("u1"))
    for i in range(4):
        await store.append_chat(MEETING, joined.participant.participant_id, f"m{i}")
    epoch = joined.position.epoch
    batch = await store.read_after(MEETING, Position(2, epoch), 2)
    assert isinstance(batch, list)
    assert [e.position.sequence for e in batch] == [3, 4]
    assert await store.read_after(MEETING, Position(5, epoch), 10) == []


async def test_read_after_falls_back_to_a_snapshot_when_the_buffer_no_longer_reaches(
    new_store: StoreFactory,
) -> None:
    store = await new_store(replay_buffer=4)
    joined = await store.join(spec("u1"))
    for i in range(9):
        await store.append_chat(MEETING, joined.participant.participant_id, f"m{i}")
    epoch = joined.position.epoch
    # Head is 10; the buffer holds 7..10, so replay from after 6 still works ...
    reachable = await store.read_after(MEETING, Position(6, epoch), 100)
    assert isinstance(reachable, list)
    assert [e.position.sequence for e in reachable] == [7, 8, 9, 10]
    # ... but from after 5 it cannot: the caller gets the truth instead.
    too_old = await store.read_after(MEETING, Position(5, epoch), 100)
    assert isinstance(too_old, Snapshot)
    assert too_old.position == Position(10, epoch)
    assert [p.participant_id for p in too_old.participants] == [joined.participant.participant_id]


async def test_read_after_with_an_unknown_epoch_returns_a_snapshot(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    snapshot = await store.read_after(MEETING, Position(1, "not-this-epoch"), 100)
    assert isinstance(snapshot, Snapshot)
    assert snapshot.position == joined.position
    # Empty epoch: the caller never saw this room, so it also gets a snapshot first.
    fresh = await store.read_after(MEETING, Position(0, ""), 100)
    assert isinstance(fresh, Snapshot)


async def test_read_after_on_a_closed_room_returns_an_empty_snapshot_for_a_stale_position(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    await store.leave(MEETING, joined.participant.participant_id, LeaveReason.LEFT)
    stale = await store.read_after(MEETING, joined.position, 100)
    assert isinstance(stale, Snapshot)
    assert stale.participants == ()
    assert await store.read_after(MEETING, Position(0, ""), 100) == []


async def test_wait_beyond_wakes_on_the_next_append(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    waiter = asyncio.create_task(store.wait_beyond(MEETING, joined.position))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.join(spec("u2"))
    await asyncio.wait_for(waiter, 1.0)


async def test_wait_beyond_on_a_never_opened_room_wakes_when_it_opens(new_store: StoreFactory) -> None:
    store = await new_store()
    waiter = asyncio.create_task(store.wait_beyond(MEETING, Position(0, "")))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.join(spec("u1"))
    await asyncio.wait_for(waiter, 1.0)


# -- membership ---------------------------------------------------------------------------


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
    events = await all_events(store, Position(old.position.sequence, old.position.epoch))
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


async def test_leave_of_an_unknown_participant_is_not_in_meeting(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    with pytest.raises(DomainError) as refused:
        await store.leave(MEETING, "participant-ghost", LeaveReason.LEFT)
    assert refused.value.code is ErrorCode.NOT_IN_MEETING
    assert (await store.snapshot(MEETING)).position == joined.position


async def test_end_meeting_empties_the_room_and_appends_meeting_ended(new_store: StoreFactory) -> None:
    store = await new_store()
    joined = await store.join(spec("u1"))
    ended, event = await store.end_meeting(MEETING, "", drop_at=1e9)
    assert ended.status is MeetingStatus.ENDED
    assert event is not None and isinstance(event.payload, MeetingEnded)
    assert event.position == Position(2, joined.position.epoch)
    snapshot = await store.snapshot(MEETING)
    assert snapshot.ended and snapshot.participants == ()


# -- edges --------------------------------------------------------------------------------


async def test_edge_lease_touch_expire_and_drop(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.touch_edge("edge-a", 10.0) is False
    assert await store.touch_edge("edge-a", 20.0) is True
    await store.touch_edge("edge-b", 30.0)
    assert await store.edge_count() == 2
    a1 = await store.join(spec("u1", edge="edge-a"))
    b1 = await store.join(spec("u2", edge="edge-b"))
    a2 = await store.join(spec("u3", edge="edge-a"))
    assert await store.expired_edges(19.0) == []
    assert await store.expired_edges(25.0) == ["edge-a"]
    assert await store.drop_edge("edge-a", 19.0) is None  # not expired yet: nothing happens
    events = await store.drop_edge("edge-a", 25.0)
    assert events is not None
    gone = set()
    for event in events:
        assert isinstance(event.payload, ParticipantLeft)
        assert event.payload.reason is LeaveReason.DISCONNECTED
        gone.add(event.payload.participant.participant_id)
    assert gone == {a1.participant.participant_id, a2.participant.participant_id}
    assert [e.position.sequence for e in events] == [4, 5]
    remaining = await store.snapshot(MEETING)
    assert [p.participant_id for p in remaining.participants] == [b1.participant.participant_id]
    assert await store.edge_count() == 1
    assert await store.touch_edge("edge-a", 40.0) is False  # forgotten: it must re-announce


async def test_dropping_an_edge_does_not_touch_participants_that_already_left(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 10.0)
    keep = await store.join(spec("u0", edge="edge-b"))
    joined = await store.join(spec("u1", edge="edge-a"))
    await store.leave(MEETING, joined.participant.participant_id, LeaveReason.LEFT)
    assert await store.drop_edge("edge-a", 10.0) == []
    assert [p.participant_id for p in (await store.snapshot(MEETING)).participants] == [
        keep.participant.participant_id
    ]


async def test_restore_re_adds_participants_once_and_rejects_ended_meetings(new_store: StoreFactory) -> None:
    store = await new_store()
    original = await store.join(spec("u1", edge="edge-z"))
    await store.upsert_meeting(meeting("ended", status=MeetingStatus.ENDED))
    fresh = await new_store(separate=True)
    await fresh.upsert_meeting(meeting())
    await fresh.upsert_meeting(meeting("ended", status=MeetingStatus.ENDED))
    records = [
        RestoreRecord(MEETING, original.participant),
        RestoreRecord("ended", original.participant),
        RestoreRecord("unknown", original.participant),
    ]
    rejected = await fresh.restore("edge-z", records)
    assert rejected == [original.participant.participant_id] * 2
    snapshot = await fresh.snapshot(MEETING)
    assert [p.participant_id for p in snapshot.participants] == [original.participant.participant_id]
    assert snapshot.participants[0].edge_id == "edge-z"
    assert snapshot.position.sequence == 1
    # Re-announcing again is harmless: no duplicate, no event.
    assert await fresh.restore("edge-z", records[:1]) == []
    assert await fresh.snapshot(MEETING) == snapshot
    # And the restored participant belongs to the edge's lease.
    await fresh.touch_edge("edge-z", 50.0)
    assert len(await fresh.drop_edge("edge-z", 50.0) or []) == 1


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


# -- the contract points a second store must port ------------------------------------------


async def test_rejoin_returns_the_idempotent_outcome_and_changes_nothing(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.rejoin(spec("u1")) is None
    joined = await store.join(spec("u1"))
    again = await store.rejoin(spec("u1"))
    assert again is not None and again.already_joined and again.participant == joined.participant
    assert await store.rejoin(spec("u1", socket="other")) is None
    assert (await store.snapshot(MEETING)).position == joined.position


async def test_touch_edge_without_create_never_invents_an_edge(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.touch_edge("made-up", 10.0, create=False) is False
    assert await store.edge_count() == 0 and await store.expired_edges(100.0) == []
    await store.touch_edge("edge-a", 10.0)
    assert await store.touch_edge("edge-a", 2.0, create=False) is True  # shortened
    assert await store.expired_edges(3.0) == ["edge-a"]


async def test_instance_id_lives_as_long_as_the_state(new_store: StoreFactory) -> None:
    store = await new_store()
    first = await store.instance_id()
    await store.join(spec("u1"))
    assert await store.instance_id() == first and first
    empty = await new_store(separate=True)
    assert await empty.instance_id() != first  # a store that starts empty is another


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


async def test_restore_takes_only_the_callers_sessions_and_permissions_from_the_meeting(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    held = await store.join(spec("creator", edge="edge-h"))
    fresh = await store.join(spec("guest", edge="edge-g"))
    forged = dataclasses.replace(
        fresh.participant,
        participant_id="participant-new",
        socket_id="s-new",
        permissions=dataclasses.replace(fresh.participant.permissions, is_host=True, can_record=True),
    )
    records = [
        RestoreRecord(MEETING, held.participant),  # held on edge-h: not edge-g's to restore
        RestoreRecord(MEETING, forged),  # edge-g's own, claiming host
    ]
    assert await store.restore("edge-g", records) == [held.participant.participant_id]
    restored = await store.get_participant(MEETING, "participant-new")
    assert not restored.permissions.is_host and not restored.permissions.can_record
    assert (await store.get_participant(MEETING, held.participant.participant_id)).edge_id == "edge-h"


async def test_a_waiting_signal_reader_keeps_its_mailbox_across_a_reap(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 10.0)
    reader = asyncio.create_task(store.next_signal("edge-a"))
    await asyncio.sleep(0)
    assert await store.drop_edge("edge-a", 10.0) is not None  # reaped while its stream still reads
    joined = await store.join(spec("u1"))  # its socket joins again
    await store.touch_edge("edge-a", 20.0)
    signal = Signal(SignalType.OFFER, MEETING, "someone", joined.participant.participant_id, "{}")
    await store.publish_signal("edge-a", signal)
    assert await asyncio.wait_for(reader, 1.0) == signal
    # A reader of an edge nobody knows leaves nothing once it stops.
    ghost = asyncio.create_task(store.next_signal("made-up"))
    await asyncio.sleep(0)
    ghost.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ghost
    await store.publish_signal("made-up", signal)  # nobody could read it: not kept
    late = asyncio.create_task(store.next_signal("made-up"))
    done, _ = await asyncio.wait({late}, timeout=0.3)
    assert not done, "a signal for an edge nobody could read was kept"
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    if isinstance(store, MemoryStore):
        assert store.footprint().mailboxes == 1  # edge-a's, which holds a lease


# -- several replicas on one store ----------------------------------------------------------


async def test_an_expired_edge_is_reaped_exactly_once_whichever_replica_notices(
    new_store: StoreFactory,
) -> None:
    first = await new_store()
    second = await new_store.replica()
    await first.touch_edge("edge-a", 10.0)
    joined = [await first.join(spec(f"u{i}", edge="edge-a")) for i in range(3)]
    assert await second.expired_edges(11.0) == ["edge-a"]
    results = await asyncio.gather(first.drop_edge("edge-a", 11.0), second.drop_edge("edge-a", 11.0))
    reaped = [r for r in results if r]
    assert len(reaped) == 1, results  # one replica reaped it, the other found nothing to do
    gone = [e.payload.participant.participant_id for e in reaped[0] if isinstance(e.payload, ParticipantLeft)]
    assert sorted(gone) == sorted(j.participant.participant_id for j in joined)
    assert await first.expired_edges(12.0) == []
    assert (await second.snapshot(MEETING)).participants == ()


async def test_a_lease_renewed_before_the_reaper_acts_is_not_reaped(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 10.0)
    joined = await store.join(spec("u1", edge="edge-a"))
    assert await store.expired_edges(11.0) == ["edge-a"]
    assert await store.touch_edge("edge-a", 20.0) is True  # a heartbeat got in first
    assert await store.drop_edge("edge-a", 11.0) is None
    assert [p.participant_id for p in (await store.snapshot(MEETING)).participants] == [
        joined.participant.participant_id
    ]


async def test_a_reaped_edge_cannot_restore_what_everyone_was_told_had_left(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await new_store.replica()
    await store.touch_edge("edge-a", 10.0)
    joined = await store.join(spec("u1", edge="edge-a"))
    assert await store.drop_edge("edge-a", 10.0)
    # The edge comes back (through another replica) and re-announces its socket.
    assert await other.touch_edge("edge-a", 30.0) is False
    rejected = await other.restore("edge-a", [RestoreRecord(MEETING, joined.participant)])
    assert rejected == [joined.participant.participant_id]
    assert (await store.snapshot(MEETING)).participants == ()
    # Its new joins are welcome.
    assert not (await other.join(spec("u1", edge="edge-a", socket="new"))).already_joined


async def test_a_change_through_one_replica_wakes_a_watcher_on_another(new_store: StoreFactory) -> None:
    writer = await new_store()
    reader = await new_store.replica()
    first = await writer.join(spec("u1"))
    waiter = asyncio.create_task(reader.wait_beyond(MEETING, first.position))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    second = await writer.join(spec("u2"))
    await asyncio.wait_for(waiter, 5.0)
    batch = await reader.read_after(MEETING, first.position, 10)
    assert isinstance(batch, list)
    assert [e.position for e in batch] == [second.position]


async def test_concurrent_joins_through_two_replicas_get_one_sequence_each(new_store: StoreFactory) -> None:
    a = await new_store()
    b = await new_store.replica()
    outcomes = await asyncio.gather(*(((a, b)[i % 2]).join(spec(f"u{i}")) for i in range(30)))
    assert sorted(o.position.sequence for o in outcomes) == list(range(1, 31))
    assert len({o.position.epoch for o in outcomes}) == 1
    events = await all_events(b, Position(0, outcomes[0].position.epoch))
    assert [e.position.sequence for e in events] == list(range(1, 31))


async def test_signals_sent_through_one_replica_reach_the_edge_listening_on_another(
    new_store: StoreFactory,
) -> None:
    sender = await new_store(signal_queue=3)
    listener = await new_store.replica(signal_queue=3)
    await sender.touch_edge("edge-b", 1e12)  # a signal is kept only for an edge someone could read
    for i in range(5):
        await sender.publish_signal("edge-b", _signal(f"offer-{i}"))
    # The queue keeps the newest three: a stale offer is worth less than a fresh one.
    received = [await asyncio.wait_for(listener.next_signal("edge-b"), 5.0) for _ in range(3)]
    assert [s.payload_json for s in received] == ['"offer-2"', '"offer-3"', '"offer-4"']
    assert received[0] == _signal("offer-2")
    waiting = asyncio.create_task(listener.next_signal("edge-b"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await sender.publish_signal("edge-b", _signal("late"))
    assert (await asyncio.wait_for(waiting, 5.0)).payload_json == '"late"'


async def test_every_replica_names_the_same_instance(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await new_store.replica()
    first = await store.instance_id()
    await store.join(spec("u1"))
    assert await other.instance_id() == first
    assert await store.ready()


def _signal(payload: str) -> Signal:
    return Signal(
        type=SignalType.OFFER,
        meeting_id=MEETING,
        from_participant_id="participant-a",
        target_participant_id="participant-b",
        payload_json=f'"{payload}"',
        target_socket_id="sock-b",
    )


async def test_password_attempts_are_counted_per_socket_and_meeting_up_to_the_limit(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    taken = [await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) for _ in range(4)]
    assert taken == [True, True, True, False]
    # Another socket, or the same socket at another meeting, has its own count.
    assert await store.take_password_attempt(MEETING, "edge-a\x00s2", 3, 60.0) is True
    assert await store.take_password_attempt("other-meeting", "edge-a\x00s1", 3, 60.0) is True
    # A right password gives its attempt back.
    await store.return_password_attempt(MEETING, "edge-a\x00s1")
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) is True
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) is False


async def test_password_attempts_are_forgotten_after_the_window(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2)
    assert not await store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2)
    await wait_until(
        lambda: store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2),
        within=10,
        what="the attempt window passed",
    )


async def test_a_ban_keeps_one_user_out_of_one_meeting_until_cleared(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.is_banned(MEETING, "u1") is False
    await store.ban_user(MEETING, "u1")
    assert await store.is_banned(MEETING, "u1") is True
    assert await store.is_banned(MEETING, "u2") is False
    assert await store.is_banned("other-meeting", "u1") is False
    await store.clear_bans(MEETING)
    assert await store.is_banned(MEETING, "u1") is False


async def test_a_ban_is_seen_by_another_replica(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await new_store.replica()
    await store.ban_user(MEETING, "u1")
    assert await other.is_banned(MEETING, "u1") is True

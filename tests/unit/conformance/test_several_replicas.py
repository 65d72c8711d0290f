"""Store contract for several room-service replicas on one store: one reap, one sequence,
one instance id, wake-ups across replicas (signals: test_signals.py)."""

from __future__ import annotations

import asyncio
import dataclasses

from room_service.domain.events import ParticipantLeft, ParticipantUpdated
from room_service.domain.models import LeaveReason, Position
from room_service.domain.requests import MediaChange
from room_service.store.base_edges import RestoreRecord
from tests.support.stores import MEETING, StoreFactory, claim, events_after, spec


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
    events = await events_after(b, Position(0, outcomes[0].position.epoch))
    assert [e.position.sequence for e in events] == list(range(1, 31))


async def test_instance_id_lives_as_long_as_the_state(new_store: StoreFactory) -> None:
    store = await new_store()
    first = await store.instance_id()
    await store.join(spec("u1"))
    assert await store.instance_id() == first and first
    empty = await new_store(separate=True)
    assert await empty.instance_id() != first  # a store that starts empty is another


async def test_every_replica_names_the_same_instance(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await new_store.replica()
    first = await store.instance_id()
    await store.join(spec("u1"))
    assert await other.instance_id() == first
    assert await store.ready()


async def test_media_changes_through_two_replicas_each_apply_to_the_current_state(
    new_store: StoreFactory,
) -> None:
    # The replica that seated a participant remembers its stored state; a change made
    # through another replica makes that memory stale, which must never decide an answer.
    seater = await new_store()
    other = await new_store.replica()
    pid = (await seater.join(spec("u1"))).participant.participant_id
    changed, event = await other.update_media(MediaChange(MEETING, pid, pid, audio=False))
    assert changed.media.audio is False and event is not None
    # Already so (the seater last saw it on): no change, nothing logged.
    same, nothing = await seater.update_media(MediaChange(MEETING, pid, pid, audio=False))
    assert same.media.audio is False and nothing is None
    # Back on through the seater, then the other sees it on, and off again through it.
    on, turned_on = await seater.update_media(MediaChange(MEETING, pid, pid, audio=True))
    assert on.media.audio is True and turned_on is not None
    again, repeat = await other.update_media(MediaChange(MEETING, pid, pid, audio=True))
    assert again.media.audio is True and repeat is None
    off, turned_off = await other.update_media(MediaChange(MEETING, pid, pid, audio=False, video=False))
    assert (off.media.audio, off.media.video) == (False, False) and turned_off is not None
    stored = {p.participant_id: p for p in (await seater.snapshot(MEETING)).participants}[pid]
    assert (stored.media.audio, stored.media.video) == (False, False)
    events = await events_after(seater, Position(0, (await seater.snapshot(MEETING)).position.epoch))
    updates = [e.payload.participant.media for e in events if isinstance(e.payload, ParticipantUpdated)]
    assert [(media.audio, media.video) for media in updates] == [
        (False, True),
        (True, True),
        (False, False),
    ]


async def test_a_join_lists_the_room_as_it_is_whatever_another_replica_changed_meanwhile(
    new_store: StoreFactory,
) -> None:
    # A replica may remember the rosters of rooms it changed, so that its joins need not
    # read them back: changes through another replica must show, a recovery (which logs
    # nothing) too.
    here = await new_store()
    there = await new_store.replica()
    alice = (await here.join(dataclasses.replace(spec("alice"), recovery_id="pid-a"))).participant
    bob = (await here.join(spec("bob"))).participant
    carol = await here.join(spec("carol"))
    assert [p.user_id for p in carol.others] == ["alice", "bob"]
    await there.leave(MEETING, bob.participant_id, LeaveReason.LEFT)
    await there.update_media(MediaChange(MEETING, alice.participant_id, alice.participant_id, audio=False))
    dave = await here.join(spec("dave"))
    assert [(p.user_id, p.media.audio) for p in dave.others] == [("alice", False), ("carol", True)]
    assert await there.hold(MEETING, alice.participant_id, "edge-a", until=10.0)
    await there.recover(claim("pid-a", dave.position))
    erin = await here.join(spec("erin"))
    assert [(p.user_id, p.edge_id) for p in erin.others] == [
        ("alice", "edge-b"),
        ("carol", "edge-a"),
        ("dave", "edge-a"),
    ]
    assert erin.others == (await there.snapshot(MEETING)).participants[:-1]

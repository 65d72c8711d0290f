"""Store contract for replay: reading after a position from the buffer, a snapshot when
the buffer no longer reaches, and waiting for the next event."""

from __future__ import annotations

import asyncio

from room_service.domain.models import LeaveReason, Position, Snapshot
from room_service.domain.requests import JoinOutcome
from room_service.store.base import RoomStore
from tests.support.stores import MEETING, StoreFactory, events_after, spec


async def room_with_chats(
    new_store: StoreFactory, *, replay_buffer: int, chats: int
) -> tuple[RoomStore, JoinOutcome]:
    """A store replaying at most `replay_buffer` events, with one participant who has sent
    `chats` messages since joining (head: `chats` + 1)."""
    store = await new_store(replay_buffer=replay_buffer)
    joined = await store.join(spec("u1"))
    for i in range(chats):
        await store.append_chat(MEETING, joined.participant.participant_id, f"m{i}")
    return store, joined


async def test_read_after_replays_from_the_buffer_in_order_and_honours_the_limit(
    new_store: StoreFactory,
) -> None:
    store, joined = await room_with_chats(new_store, replay_buffer=8, chats=4)
    batch = await events_after(store, Position(2, joined.position.epoch), 2)
    assert [e.position.sequence for e in batch] == [3, 4]
    assert await store.read_after(MEETING, Position(5, joined.position.epoch), 10) == []


async def test_read_after_falls_back_to_a_snapshot_when_the_buffer_no_longer_reaches(
    new_store: StoreFactory,
) -> None:
    store, joined = await room_with_chats(new_store, replay_buffer=4, chats=9)
    epoch = joined.position.epoch
    # Head is 10; the buffer holds 7..10, so replay from after 6 still works ...
    reachable = await events_after(store, Position(6, epoch), 100)
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

"""Held sessions on the Redis store as room watchers see them: what an expiry or a reap
appends reaches the watchers of the replica that made it (from the change's own reply,
without a Redis read) and those of another replica (by pub/sub), each entry once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

from prometheus_client import CollectorRegistry

from room_service.domain.events import ChatSent, ParticipantLeft, RoomEvent
from room_service.domain.models import Position
from room_service.domain.requests import RecoverSpec
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions
from room_service.store.redis import RedisStore, connect
from tests.support.redis_server import SessionRedis
from tests.support.stores import MEETING, meeting, observed_store, spec
from tests.support.timing import wait_until


@contextlib.asynccontextmanager
async def _watching(store: RedisStore, seen: list[RoomEvent], after: Position) -> AsyncIterator[None]:
    manager = RoomManager(store, ManagerOptions(), RoomMetrics(CollectorRegistry()))

    async def tail() -> None:
        async for item in manager.watch(MEETING, after):
            assert isinstance(item, list), item  # a batch of events, never a snapshot here
            seen.extend(item)

    watcher = asyncio.create_task(tail())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def _holds(seen: list[RoomEvent], count: int) -> Callable[[], bool]:
    return lambda: len(seen) >= count


def _told(seen: list[RoomEvent]) -> list[tuple[int, str, str]]:
    """Each event as (sequence, kind, whose)."""
    out = []
    for event in seen:
        payload = event.payload
        if isinstance(payload, ParticipantLeft):
            out.append((event.position.sequence, f"left:{payload.reason.value}", payload.participant.user_id))
        elif isinstance(payload, ChatSent):
            out.append((event.position.sequence, "chat", payload.message.participant_id))
        else:
            out.append((event.position.sequence, type(payload).__name__, ""))
    return out


async def test_expiries_reaps_and_recoveries_reach_watchers_on_both_replicas_once_in_order(
    session_redis: SessionRedis,
) -> None:
    local, operations = await observed_store(session_redis.url)
    remote = RedisStore(connect(session_redis.url, 0.5), StoreOptions())
    await local.upsert_meeting(meeting())
    alice = await local.join(dataclasses.replace(spec("alice", edge="edge-a"), recovery_id="pid-a"))
    await local.join(spec("bob", edge="edge-b"))
    carol = await local.join(dataclasses.replace(spec("carol", edge="edge-b"), recovery_id="pid-c"))
    dave = await local.join(spec("dave", edge="edge-c"))
    here: list[RoomEvent] = []
    there: list[RoomEvent] = []
    state = f"{{room:{MEETING}}}:state"
    try:
        async with _watching(local, here, dave.position), _watching(remote, there, dave.position):
            await wait_until(lambda: local._notifier.mark(state) is not None, within=5.0, what="subscribed")
            operations.clear()
            # Through the watcher's own replica: an expiry and a reap that holds carol.
            assert await local.hold(MEETING, alice.participant.participant_id, "edge-a", until=10.0)
            await local.expire_holds(now=20.0)
            await local.touch_edge("edge-b", 1.0)
            await local.drop_edge("edge-b", now=2.0, hold_until=30.0)
            await wait_until(lambda: len(here) >= 2, within=10.0, what="the local changes reached it")
            assert "read_after" not in operations and "wait_beyond" not in operations, operations
            # Through the other replica: carol recovers on another edge and speaks.
            recover = RecoverSpec("pid-c", carol.position, "edge-d", "", "fresh-c", take_over=False)
            recovered = await remote.recover(recover)
            assert await remote.expire_holds(now=40.0) == []  # recovered: nothing expires
            await remote.append_chat(MEETING, recovered.participant.participant_id, "back")
            expected = [
                (dave.position.sequence + 1, "left:disconnected", "alice"),
                (dave.position.sequence + 2, "left:disconnected", "bob"),
                (dave.position.sequence + 3, "chat", carol.participant.participant_id),
            ]
            for seen in (here, there):
                await wait_until(_holds(seen, 3), within=10.0, what="every change reached it")
            await local.append_chat(MEETING, dave.participant.participant_id, "last")
            for seen in (here, there):
                await wait_until(_holds(seen, 4), within=10.0, what="the last chat reached it")
                assert _told(seen)[:3] == expected  # anything twice would come before the last
                assert [e.position.sequence for e in seen] == [s for s, _, _ in expected] + [
                    dave.position.sequence + 4
                ]
                assert {e.position.epoch for e in seen} == {alice.position.epoch}
    finally:
        await local.close()
        await remote.close()

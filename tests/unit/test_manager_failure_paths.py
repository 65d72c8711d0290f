"""RoomManager's failure paths, in this process: a reaped edge cannot resurrect its
participants, a stalled service reaps nobody at once, shutdown ends every stream, and a
fresh service holds resync snapshots until the edges could re-announce."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from room_service.domain.models import MediaState, Meeting, MeetingStatus, Position, Snapshot
from room_service.domain.requests import JoinSpec
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions
from room_service.store.base_edges import RestoreRecord
from room_service.store.memory import MemoryStore
from tests.support.timing import FakeClock, wait_until

ROOM = "room"


async def _close(stream: AsyncIterator[object]) -> None:
    assert isinstance(stream, AsyncGenerator)  # RoomManager.watch is an async generator
    await stream.aclose()


def _spec(user: str, edge: str) -> JoinSpec:
    return JoinSpec(ROOM, user, f"Name {user}", MediaState(), edge, f"sock-{user}")


async def _manager(
    clock: FakeClock | None = None, grace: float = 0.0, registry: CollectorRegistry | None = None
) -> RoomManager:
    manager = RoomManager(
        MemoryStore(StoreOptions(replay_buffer=2)),
        ManagerOptions(edge_lease_seconds=5.0, restore_grace_seconds=grace),
        RoomMetrics(registry or CollectorRegistry()),
        clock=clock or time.monotonic,
    )
    meeting = Meeting(
        id=ROOM, meeting_name="Room", status=MeetingStatus.LIVE, creator_id="x", created_at=datetime.now(UTC)
    )
    await manager.upsert_meeting(meeting, None)
    return manager


async def test_a_reaped_edge_cannot_restore_its_participants() -> None:
    clock = FakeClock()
    manager = await _manager(clock)
    kept = (await manager.join(_spec("a", "edge-a"), "")).participant
    lost = (await manager.join(_spec("b", "edge-b"), "")).participant
    clock.now += 4
    await manager.heartbeat("edge-a")
    clock.now += 2
    assert await manager.reap_expired_edges() == 1
    # edge-b comes back: it is unknown now, and what it re-announces is refused.
    assert await manager.heartbeat("edge-b") is False
    rejected = await manager.restore("edge-b", [RestoreRecord(ROOM, lost)])
    assert rejected == [lost.participant_id]
    snapshot = await manager.list_participants(ROOM)
    assert [p.participant_id for p in snapshot.participants] == [kept.participant_id]


async def test_after_a_stall_every_edge_gets_a_full_lease_before_reaping() -> None:
    clock = FakeClock()
    manager = await _manager(clock)
    await manager.join(_spec("a", "edge-a"), "")
    await manager.join(_spec("b", "edge-b"), "")
    clock.now += 60  # the service was frozen: no lease could be renewed
    manager.note_stall(60)
    assert await manager.reap_expired_edges() == 0
    clock.now += 4
    await manager.heartbeat("edge-a")  # edge-a is alive and renews; edge-b is dead
    assert await manager.reap_expired_edges() == 0
    clock.now += 1.5  # the pause (one lease) is over
    assert await manager.reap_expired_edges() == 1
    remaining = await manager.list_participants(ROOM)
    assert [p.edge_id for p in remaining.participants] == ["edge-a"]


def _open_watches(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("room_service_watch_streams_open") or 0.0


async def test_close_streams_ends_open_watches() -> None:
    registry = CollectorRegistry()
    manager = await _manager(registry=registry)
    await manager.join(_spec("a", "edge-a"), "")
    snapshot = await manager.list_participants(ROOM)
    items: list[object] = []

    async def consume() -> None:
        async for item in manager.watch(ROOM, snapshot.position):
            items.append(item)

    task = asyncio.create_task(consume())
    await wait_until(lambda: _open_watches(registry) == 1, within=5, interval=0.01, what="watch open")
    assert not task.done()
    manager.close_streams()
    await asyncio.wait_for(task, 1.0)
    assert items == []


async def test_a_fresh_service_holds_resync_snapshots_for_the_grace() -> None:
    registry = CollectorRegistry()
    manager = await _manager(grace=0.3, registry=registry)
    started = time.monotonic()
    stream = manager.watch(ROOM, Position(7, "epoch-before-the-restart"))
    pending = asyncio.ensure_future(anext(stream))
    await wait_until(lambda: _open_watches(registry) == 1, within=5, interval=0.01, what="watch open")
    # An edge re-announces during the grace; the held snapshot includes it.
    restored = await manager.join(_spec("a", "edge-a"), "")
    first = await asyncio.wait_for(pending, 2.0)
    assert isinstance(first, Snapshot)
    assert time.monotonic() - started >= 0.29
    assert [p.participant_id for p in first.participants] == [restored.participant.participant_id]
    await _close(stream)


@pytest.mark.parametrize("grace", [0.0])
async def test_without_grace_the_snapshot_is_immediate(grace: float) -> None:
    manager = await _manager(grace=grace)
    stream = manager.watch(ROOM, Position(7, "old"))
    first = await asyncio.wait_for(anext(stream), 1.0)
    assert isinstance(first, Snapshot) and first.participants == ()
    await _close(stream)

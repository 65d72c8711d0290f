"""Ended meetings' rooms and replay logs are forgotten after the retention setting, so
memory stays bounded however many meetings end; late watchers still learn the end."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from datetime import UTC, datetime

import grpc
import pytest
from prometheus_client import CollectorRegistry

from meeting.v1 import room_service_pb2 as pb
from room_service.domain.models import MediaState, Meeting, MeetingStatus
from room_service.domain.requests import JoinSpec
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions
from room_service.store.memory import MemoryStore
from tests.support.room_rpc import join_request, room_service_app
from tests.support.timing import FakeClock, wait_until

RETENTION = 60.0
CYCLES = 40
CHATS = 100
TEXT = "x" * 1000  # a busy chat: ~100 KB of text per meeting


async def _end_cycle(manager: RoomManager, meeting_id: str) -> None:
    """Register, join two, chat, end: one meeting's life."""
    when = datetime.now(UTC)
    await manager.upsert_meeting(Meeting(meeting_id, "Busy", MeetingStatus.LIVE, "host", when), None)
    pids = []
    for user in ("host", "guest"):
        spec = JoinSpec(meeting_id, user, user.title(), MediaState(), "edge-a", f"{meeting_id}-{user}")
        pids.append((await manager.join(spec, "")).participant.participant_id)
    for i in range(CHATS):
        await manager.send_chat(meeting_id, pids[i % 2], TEXT)
    await manager.end_meeting(meeting_id, pids[0])


async def _retained_bytes_after(cycles: int) -> tuple[int, int, int]:
    """Runs `cycles` end cycles, lets the retention pass; returns (rooms, events, bytes)."""
    clock = FakeClock()
    store = MemoryStore(StoreOptions())
    manager = RoomManager(
        store, ManagerOptions(ended_room_retention_seconds=RETENTION), RoomMetrics(CollectorRegistry()), clock
    )
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for i in range(cycles):
            await _end_cycle(manager, f"meeting-{i}")
        clock.now += RETENTION + 1
        await manager.housekeeping()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    footprint = store.footprint()
    return footprint.rooms, footprint.events, retained


async def test_memory_stays_bounded_over_many_end_cycles() -> None:
    rooms, events, retained = await _retained_bytes_after(CYCLES)
    print(
        f"[memory] after {CYCLES} end cycles: {rooms} rooms, {events} log events, {retained} bytes retained"
    )
    assert (rooms, events) == (0, 0)
    # What stays is the meeting directory (a few hundred bytes per meeting), not the logs
    # (each ~100 KB of chat): the bound is far below a single meeting's log per meeting.
    assert retained < CYCLES * CHATS * len(TEXT) // 20


async def test_an_ended_room_is_kept_until_its_retention_passes() -> None:
    clock = FakeClock()
    store = MemoryStore(StoreOptions())
    manager = RoomManager(
        store, ManagerOptions(ended_room_retention_seconds=RETENTION), RoomMetrics(CollectorRegistry()), clock
    )
    await _end_cycle(manager, "m")
    clock.now += RETENTION - 1
    await manager.housekeeping()
    assert store.footprint().rooms == 1  # late watchers still read MeetingEnded from the log
    # Registered again and rejoined before its retention ends: its room is not dropped.
    await manager.upsert_meeting(Meeting("m", "Again", MeetingStatus.LIVE, "host", datetime.now(UTC)), None)
    await manager.join(JoinSpec("m", "late", "Late", MediaState(), "edge-a", "s-late"), "")
    clock.now += 2
    await manager.housekeeping()
    assert [p.user_id for p in (await manager.list_participants("m")).participants] == ["late"]
    assert store.footprint().rooms == 1


@pytest.mark.timeout(60)
async def test_a_watcher_of_a_dropped_room_gets_the_ended_snapshot() -> None:
    async with room_service_app("--ended-room-retention-seconds", "0") as (app, stub):
        store = app.store
        assert isinstance(store, MemoryStore)
        joined = await stub.Join(join_request("ada"), timeout=5)
        await stub.EndMeeting(pb.EndMeetingRequest(meeting_id=joined.meeting.id), timeout=5)

        async def dropped() -> bool:
            return store.footprint().rooms == 0

        await wait_until(dropped, within=10, what="the ended room dropped by the reaper")
        # A watcher resuming from its join learns the meeting ended (it does not hang).
        call = stub.WatchRoom(pb.WatchRoomRequest(meeting_id=joined.meeting.id, after=joined.position))
        try:
            first = await asyncio.wait_for(anext(aiter(call)), 10)
        finally:
            call.cancel()
        assert first.HasField("snapshot") and first.snapshot.ended and not first.snapshot.participants
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Join(join_request("bob"), timeout=5)  # still ended, not reopened

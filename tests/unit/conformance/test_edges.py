"""Store contract for edge leases: touch, expire, drop (the participants an edge held
leave), and restore (what an edge re-announces after a room-service restart)."""

from __future__ import annotations

import dataclasses

from room_service.domain.events import ParticipantLeft
from room_service.domain.models import LeaveReason, MeetingStatus
from room_service.store.base_edges import RestoreRecord
from tests.support.stores import MEETING, StoreFactory, meeting, spec


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


async def test_touch_edge_without_create_never_invents_an_edge(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.touch_edge("made-up", 10.0, create=False) is False
    assert await store.edge_count() == 0 and await store.expired_edges(100.0) == []
    await store.touch_edge("edge-a", 10.0)
    assert await store.touch_edge("edge-a", 2.0, create=False) is True  # shortened
    assert await store.expired_edges(3.0) == ["edge-a"]


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

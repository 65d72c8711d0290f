"""Store contract for held sessions (connection-state recovery): hold, recover once, expire.

Memory store only: the Redis store does not hold sessions yet (room_service/store/
redis_holds.py); once it does, these tests belong in the conformance suite (`new_store`)."""

from __future__ import annotations

import dataclasses

import pytest

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import (
    ChatSent,
    LeaveReason,
    ParticipantLeft,
    Position,
    RecoverSpec,
)
from room_service.store.base import StoreOptions
from room_service.store.memory import MemoryStore
from tests.support.stores import MEETING, meeting, spec


async def new_store(**options: object) -> MemoryStore:
    store = MemoryStore(StoreOptions(**options))  # type: ignore[arg-type]
    await store.upsert_meeting(meeting())
    return store


def claim(recovery_id: str, after: Position | None, *, edge: str = "edge-b", user: str = "") -> RecoverSpec:
    return RecoverSpec(
        recovery_id=recovery_id, after=after, edge_id=edge, user_id=user, fresh_recovery_id="fresh-id"
    )


async def joined(store: MemoryStore, user: str, recovery_id: str) -> tuple[str, Position]:
    outcome = await store.join(dataclasses.replace(spec(user), recovery_id=recovery_id))
    return outcome.participant.participant_id, outcome.position


async def test_a_held_session_is_recovered_once_with_the_events_it_missed_in_order() -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    bob, _ = await joined(store, "bob", "pid-b")
    await store.update_media(MEETING, alice, {"audio": False, "screen": True}, alice)
    before = await store.get_participant(MEETING, alice)
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    first = await store.append_chat(MEETING, bob, "one")
    second = await store.append_chat(MEETING, bob, "two")

    recovered = await store.recover(claim("pid-a", position))

    # Media state, permissions, host status, name, join time: all as before; only the edge moved.
    assert recovered.participant == dataclasses.replace(before, edge_id="edge-b")
    assert await store.get_participant(MEETING, alice) == recovered.participant
    assert [e.position for e in recovered.missed][-2:] == [first.position, second.position]
    assert [e.position.sequence for e in recovered.missed] == list(
        range(position.sequence + 1, second.position.sequence + 1)
    )
    assert recovered.position == second.position and not recovered.resynced
    with pytest.raises(DomainError) as again:
        await store.recover(claim("pid-a", position))  # at most one connection per hold
    assert again.value.code is ErrorCode.NOT_IN_MEETING
    assert await store.expire_holds(100.0) == []  # recovered: never expires


async def test_an_unheld_live_session_cannot_be_taken_over() -> None:
    store = await new_store()
    _, position = await joined(store, "alice", "pid-a")
    with pytest.raises(DomainError):
        await store.recover(claim("pid-a", position))


async def test_a_held_session_expires_into_a_disconnected_leave_and_its_id_dies() -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    await joined(store, "bob", "pid-b")
    assert await store.hold(MEETING, alice, "edge-a", until=5.0)
    assert await store.expire_holds(4.9) == []
    (event,) = await store.expire_holds(5.0)
    assert isinstance(event.payload, ParticipantLeft)
    assert event.payload.reason is LeaveReason.DISCONNECTED
    with pytest.raises(DomainError):
        await store.recover(claim("pid-a", position))


@pytest.mark.parametrize("how", ["left", "kicked", "replaced", "ended"])
async def test_a_session_that_left_was_kicked_replaced_or_ended_is_never_recovered(how: str) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    await joined(store, "bob", "pid-b")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    if how == "left":
        await store.leave(MEETING, alice, LeaveReason.LEFT)
    elif how == "kicked":
        await store.leave(MEETING, alice, LeaveReason.KICKED)
    elif how == "replaced":
        await store.join(spec("alice", socket="sock-new"))
    else:
        await store.end_meeting(MEETING, "", drop_at=100.0)
    with pytest.raises(DomainError) as refused:
        await store.recover(claim("pid-a", position))
    assert refused.value.code is ErrorCode.NOT_IN_MEETING
    assert await store.expire_holds(100.0) == []  # nothing left behind to expire


async def test_only_the_same_subject_recovers_a_session() -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    with pytest.raises(DomainError) as refused:
        await store.recover(claim("pid-a", position, user="mallory"))
    assert refused.value.code is ErrorCode.FORBIDDEN
    recovered = await store.recover(claim("pid-a", position, user="alice"))  # still held
    assert recovered.participant.participant_id == alice


async def test_a_log_that_no_longer_reaches_back_resumes_under_a_fresh_id() -> None:
    store = await new_store(replay_buffer=2)
    alice, position = await joined(store, "alice", "pid-a")
    bob, _ = await joined(store, "bob", "pid-b")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    for text in ("one", "two", "three"):
        await store.append_chat(MEETING, bob, text)

    recovered = await store.recover(claim("pid-a", position))

    assert recovered.resynced and recovered.missed == ()
    assert [p.participant_id for p in recovered.others] == [bob]
    assert recovered.position == (await store.snapshot(MEETING)).position
    assert await store.hold(MEETING, alice, "edge-b", until=20.0)
    with pytest.raises(DomainError):
        await store.recover(claim("pid-a", recovered.position))  # the old id is spent
    again = await store.recover(claim("fresh-id", recovered.position, edge="edge-c"))
    assert again.missed == () and not again.resynced


async def test_a_reaped_edge_leaves_its_recoverable_sessions_held_for_other_edges() -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 0.5)
    alice, position = await joined(store, "alice", "pid-a")
    plain = await store.join(spec("carol"))  # joined without a recovery id
    await joined(store, "bob", "pid-b")

    events = await store.drop_edge("edge-a", 1.0, hold_until=6.0)
    assert events is not None

    assert [
        e.payload.participant.participant_id for e in events if isinstance(e.payload, ParticipantLeft)
    ] == [plain.participant.participant_id]
    recovered = await store.recover(claim("pid-a", position, edge="edge-b"))
    assert recovered.participant.participant_id == alice
    assert any(isinstance(e.payload, ParticipantLeft) for e in recovered.missed)
    assert not any(isinstance(e.payload, ChatSent) for e in recovered.missed)


async def test_hold_refuses_a_participant_recovered_on_another_edge() -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    await store.recover(claim("pid-a", position, edge="edge-b"))
    assert not await store.hold(MEETING, alice, "edge-a", until=10.0)  # the old edge's late close
    assert (await store.get_participant(MEETING, alice)).edge_id == "edge-b"


async def test_a_claim_is_pending_only_while_its_session_is_still_bound() -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await store.recovery_pending("pid-a")  # its edge has not let go yet
    assert not await store.recovery_pending("pid-unknown")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    assert not await store.recovery_pending("pid-a")  # held: recoverable now
    await store.recover(claim("pid-a", position))
    await store.leave(MEETING, alice, LeaveReason.LEFT)
    assert not await store.recovery_pending("pid-a")  # gone for good

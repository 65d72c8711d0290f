"""Store contract for held sessions (connection-state recovery): hold, recover once, take
over, expire once. Part of the store conformance suite: every test runs against the memory
store, a real redis-server and a Redis Cluster (`new_store`, tests/unit/conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import ChatSent, ParticipantLeft
from room_service.domain.models import LeaveReason, Position
from room_service.domain.requests import MediaChange, RecoverSpec
from room_service.store.base import RoomStore
from tests.support.stores import MEETING, StoreFactory, claim, spec


async def joined(store: RoomStore, user: str, recovery_id: str, edge: str = "edge-a") -> tuple[str, Position]:
    outcome = await store.join(dataclasses.replace(spec(user, edge=edge), recovery_id=recovery_id))
    return outcome.participant.participant_id, outcome.position


async def refused_code(store: RoomStore, request: RecoverSpec) -> ErrorCode:
    with pytest.raises(DomainError) as refused:
        await store.recover(request)
    return refused.value.code


async def test_a_held_session_is_recovered_once_with_the_events_it_missed_in_order(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    bob, _ = await joined(store, "bob", "pid-b")
    await store.update_media(MediaChange(MEETING, alice, alice, audio=False, screen=True))
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
    assert recovered.moved_from == ""  # it was held: no socket to take it from
    assert [p.participant_id for p in recovered.others] == [bob]
    # At most one connection per hold.
    assert await refused_code(store, claim("pid-a", position)) is ErrorCode.NOT_IN_MEETING
    assert await store.expire_holds(100.0) == []  # recovered: never expires


async def test_an_unheld_live_session_is_taken_over_only_when_asked(new_store: StoreFactory) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await refused_code(store, claim("pid-a", position)) is ErrorCode.NOT_IN_MEETING
    assert (await store.get_participant(MEETING, alice)).edge_id == "edge-a"

    recovered = await store.recover(claim("pid-a", position, take_over=True))

    assert recovered.moved_from == "edge-a" and recovered.participant.edge_id == "edge-b"
    # The old edge's late close neither holds it nor, once it is reaped, removes it.
    assert not await store.hold(MEETING, alice, "edge-a", until=10.0)
    await store.touch_edge("edge-a", 1.0)
    assert await store.drop_edge("edge-a", 2.0) == []
    assert (await store.get_participant(MEETING, alice)).edge_id == "edge-b"


async def test_a_repeat_join_with_the_same_recovery_id_keeps_the_session_recoverable(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert (await joined(store, "alice", "pid-a"))[0] == alice
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)

    recovered = await store.recover(claim("pid-a", position))

    assert recovered.participant.participant_id == alice and not recovered.resynced


async def test_a_taken_over_session_is_its_socket_on_the_new_edge_only(new_store: StoreFactory) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    await store.recover(claim("pid-a", position, take_over=True))

    again = await store.join(spec("alice", edge="edge-b"))
    assert again.already_joined and again.participant.participant_id == alice
    fresh = await store.join(spec("alice", edge="edge-a"))
    assert not fresh.already_joined
    assert [p.participant_id for p in fresh.replaced] == [alice]


async def test_a_held_session_expires_into_a_disconnected_leave_and_its_id_dies(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    await joined(store, "bob", "pid-b")
    assert await store.hold(MEETING, alice, "edge-a", until=5.0)
    assert await store.expire_holds(4.9) == []
    (event,) = await store.expire_holds(5.0)
    assert isinstance(event.payload, ParticipantLeft)
    assert event.payload.reason is LeaveReason.DISCONNECTED
    assert event.position.sequence == 3  # the room's next sequence, in the same step
    for take_over in (False, True):
        request = claim("pid-a", position, take_over=take_over)
        assert await refused_code(store, request) is ErrorCode.NOT_IN_MEETING
    assert await store.expire_holds(100.0) == []


async def test_a_hold_again_moves_its_deadline(new_store: StoreFactory) -> None:
    store = await new_store()
    alice, _ = await joined(store, "alice", "pid-a")
    assert await store.hold(MEETING, alice, "edge-a", until=5.0)
    assert await store.hold(MEETING, alice, "edge-a", until=8.0)
    assert await store.expire_holds(6.0) == []
    (event,) = await store.expire_holds(8.0)
    assert isinstance(event.payload, ParticipantLeft)


@pytest.mark.parametrize("how", ["left", "kicked", "replaced", "ended"])
async def test_a_session_that_left_was_kicked_replaced_or_ended_is_never_recovered(
    new_store: StoreFactory, how: str
) -> None:
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
    for take_over in (False, True):
        request = claim("pid-a", position, take_over=take_over)
        assert await refused_code(store, request) is ErrorCode.NOT_IN_MEETING
    assert await store.expire_holds(100.0) == []  # nothing left behind to expire


async def test_only_the_same_subject_recovers_a_session(new_store: StoreFactory) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    for take_over in (False, True):
        request = claim("pid-a", position, user="mallory", take_over=take_over)
        assert await refused_code(store, request) is ErrorCode.FORBIDDEN
    recovered = await store.recover(claim("pid-a", position, user="alice"))  # still held
    assert recovered.participant.participant_id == alice


async def test_a_log_that_no_longer_reaches_back_resumes_under_a_fresh_id(new_store: StoreFactory) -> None:
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
    assert await refused_code(store, claim("pid-a", recovered.position)) is ErrorCode.NOT_IN_MEETING
    again = await store.recover(claim("fresh-id", recovered.position, edge="edge-c"))
    assert again.missed == () and not again.resynced


async def test_a_reaped_edge_leaves_its_recoverable_sessions_held_for_other_edges(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 0.5)
    alice, position = await joined(store, "alice", "pid-a")
    plain = await store.join(spec("carol"))  # joined without a recovery id
    await joined(store, "bob", "pid-b", edge="edge-b")

    events = await store.drop_edge("edge-a", 1.0, hold_until=6.0)
    assert events is not None

    assert [
        e.payload.participant.participant_id for e in events if isinstance(e.payload, ParticipantLeft)
    ] == [plain.participant.participant_id]
    recovered = await store.recover(claim("pid-a", position, edge="edge-b"))
    assert recovered.participant.participant_id == alice
    assert any(isinstance(e.payload, ParticipantLeft) for e in recovered.missed)
    assert not any(isinstance(e.payload, ChatSent) for e in recovered.missed)


async def test_a_reaped_edges_held_session_expires_at_its_deadline(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 0.5)
    alice, _ = await joined(store, "alice", "pid-a")
    await joined(store, "bob", "pid-b", edge="edge-b")
    assert await store.drop_edge("edge-a", 1.0, hold_until=6.0) == []
    assert await store.expire_holds(5.9) == []
    (event,) = await store.expire_holds(6.0)
    assert isinstance(event.payload, ParticipantLeft) and event.payload.participant.participant_id == alice


async def test_hold_refuses_a_participant_recovered_on_another_edge(new_store: StoreFactory) -> None:
    store = await new_store()
    alice, position = await joined(store, "alice", "pid-a")
    assert await store.hold(MEETING, alice, "edge-a", until=10.0)
    await store.recover(claim("pid-a", position, edge="edge-b"))
    assert not await store.hold(MEETING, alice, "edge-a", until=10.0)  # the old edge's late close
    assert (await store.get_participant(MEETING, alice)).edge_id == "edge-b"
    assert await store.expire_holds(100.0) == []


async def test_hold_refuses_a_participant_without_a_recovery_id(new_store: StoreFactory) -> None:
    store = await new_store()
    plain = await store.join(spec("carol"))
    assert not await store.hold(MEETING, plain.participant.participant_id, "edge-a", until=10.0)
    assert await store.expire_holds(100.0) == []
    assert await store.participant_count(MEETING) == 1


# -- several replicas on one store ----------------------------------------------------------


async def test_a_hold_through_one_replica_is_recovered_through_another(new_store: StoreFactory) -> None:
    first = await new_store()
    second = await new_store.replica()
    alice, position = await joined(first, "alice", "pid-a")
    assert await first.hold(MEETING, alice, "edge-a", until=10.0)
    recovered = await second.recover(claim("pid-a", position))
    assert recovered.participant.participant_id == alice
    assert await first.expire_holds(100.0) == [] and await second.expire_holds(100.0) == []


async def test_concurrent_claims_recover_a_held_session_once(new_store: StoreFactory) -> None:
    first = await new_store()
    second = await new_store.replica()
    alice, position = await joined(first, "alice", "pid-a")
    assert await first.hold(MEETING, alice, "edge-a", until=10.0)
    results = await asyncio.gather(
        first.recover(claim("pid-a", position, edge="edge-b")),
        second.recover(claim("pid-a", position, edge="edge-c")),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert (await first.get_participant(MEETING, alice)).edge_id == won[0].participant.edge_id


async def test_a_hold_expires_exactly_once_whichever_replica_notices(new_store: StoreFactory) -> None:
    first = await new_store()
    second = await new_store.replica()
    held = [await joined(first, f"u{i}", f"pid-{i}") for i in range(3)]
    await joined(first, "stays", "pid-stays")
    for participant_id, _ in held:
        assert await first.hold(MEETING, participant_id, "edge-a", until=5.0)
    results = await asyncio.gather(first.expire_holds(6.0), second.expire_holds(6.0))
    gone = [
        e.payload.participant.participant_id
        for r in results
        for e in r
        if isinstance(e.payload, ParticipantLeft)
    ]
    assert sorted(gone) == sorted(p for p, _ in held)
    snapshot = await second.snapshot(MEETING)
    assert len(snapshot.participants) == 1
    assert snapshot.position.sequence == 4 + 3  # four joins, three leaves: no gap, no repeat


async def test_ids_of_departed_participants_recover_nothing_and_do_not_pile_up(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    await joined(store, "stays", "pid-stays")
    for i in range(60):
        participant_id, _ = await joined(store, f"u{i}", f"pid-{i}")
        await store.leave(MEETING, participant_id, LeaveReason.LEFT)
    for i in (0, 30, 59):
        request = claim(f"pid-{i}", None, take_over=True)
        assert await refused_code(store, request) is ErrorCode.NOT_IN_MEETING
    assert await store.participant_count(MEETING) == 1
    # In Redis, what 61 joins bound is swept whenever it outgrows twice the room (two at
    # each join) plus the slack: never 61 pointers.
    assert await new_store.count_keys("{recovery:*") <= 2 * 2 + 16

"""RoomManager: passwords, refusals, permissions, participant ids and the seed's log lines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import LeaveReason, MediaState, Meeting, MeetingStatus, Position
from room_service.domain.passwords import hash_password, verify_password
from room_service.domain.requests import JoinOutcome, JoinSpec
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions
from room_service.store.memory import MemoryStore
from tests.support.timing import FakeClock

OPEN = "open-meeting"
LOCKED = "locked-meeting"
CREATOR = "user-1-id"


def meeting(meeting_id: str, status: MeetingStatus = MeetingStatus.LIVE) -> Meeting:
    return Meeting(
        id=meeting_id,
        meeting_name=f"Meeting {meeting_id}",
        status=status,
        creator_id=CREATOR,
        created_at=datetime.now(UTC),
    )


def spec(user: str, meeting_id: str = OPEN, *, name: str | None = None, edge: str = "edge-a") -> JoinSpec:
    return JoinSpec(
        meeting_id=meeting_id,
        user_id=user,
        user_name=name or f"Name {user}",
        media=MediaState(),
        edge_id=edge,
        socket_id=f"sock-{user}",
    )


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def manager(clock: FakeClock) -> RoomManager:
    rooms = RoomManager(
        MemoryStore(StoreOptions()),
        ManagerOptions(edge_lease_seconds=5.0, restore_grace_seconds=0.0),
        RoomMetrics(CollectorRegistry()),
        clock=clock,
    )
    await rooms.upsert_meeting(meeting(OPEN), None)
    await rooms.upsert_meeting(meeting(LOCKED), "password123")
    return rooms


# -- passwords ----------------------------------------------------------------------------


def test_password_hashes_are_salted_scrypt_and_verify_only_the_right_password() -> None:
    first, second = hash_password("password123"), hash_password("password123")
    assert first.startswith("scrypt$") and "password123" not in first
    assert first != second  # salted
    assert verify_password("password123", first)
    assert not verify_password("password124", first)
    assert not verify_password("", first)
    assert not verify_password("password123", "not-a-hash")
    assert not verify_password("password123", "bcrypt$1$2$3$c2FsdA==$ZGlnZXN0")


async def test_a_password_is_stored_only_as_its_hash(manager: RoomManager) -> None:
    stored = await manager.get_meeting(LOCKED)
    assert stored.password_hash is not None
    assert stored.password_hash.startswith("scrypt$")
    assert "password123" not in stored.password_hash
    assert (await manager.get_meeting(OPEN)).password_hash is None


async def test_right_password_joins(manager: RoomManager) -> None:
    outcome = await manager.join(spec("u2", LOCKED), "password123")
    assert outcome.position.sequence == 1


@pytest.mark.parametrize("password", ["", "wrong", "password1234", " password123"])
async def test_wrong_or_missing_password_is_invalid_password_and_changes_nothing(
    manager: RoomManager, password: str
) -> None:
    with pytest.raises(DomainError) as refused:
        await manager.join(spec("u2", LOCKED), password)
    assert refused.value.code is ErrorCode.INVALID_PASSWORD
    assert refused.value.message == "Invalid meeting password"
    assert (await manager.list_participants(LOCKED)).participants == ()


async def test_a_meeting_without_password_ignores_a_given_one(manager: RoomManager) -> None:
    outcome = await manager.join(spec("u2"), "anything")
    assert not outcome.already_joined


# -- refusals -----------------------------------------------------------------------------


async def test_unknown_meeting_is_meeting_not_found(manager: RoomManager) -> None:
    with pytest.raises(DomainError) as refused:
        await manager.join(spec("u2", "no-such-meeting"), "")
    assert refused.value.code is ErrorCode.MEETING_NOT_FOUND
    assert refused.value.message == "Meeting not found"


async def test_ended_meeting_is_meeting_not_active_but_scheduled_is_joinable(manager: RoomManager) -> None:
    await manager.upsert_meeting(meeting("done", MeetingStatus.ENDED), None)
    with pytest.raises(DomainError) as refused:
        await manager.join(spec("u2", "done"), "")
    assert refused.value.code is ErrorCode.MEETING_NOT_ACTIVE
    await manager.upsert_meeting(meeting("later", MeetingStatus.SCHEDULED), None)
    assert (await manager.join(spec("u2", "later"), "")).position.sequence == 1


async def test_an_ended_meeting_refuses_joins_even_with_the_right_password(manager: RoomManager) -> None:
    await manager.end_meeting(LOCKED, "")
    with pytest.raises(DomainError) as refused:
        await manager.join(spec("u2", LOCKED), "password123")
    assert refused.value.code is ErrorCode.MEETING_NOT_ACTIVE


async def test_meeting_ids_are_bounded(manager: RoomManager) -> None:
    with pytest.raises(DomainError) as refused:
        await manager.upsert_meeting(meeting("x" * 129), None)
    assert refused.value.code is ErrorCode.INVALID_PAYLOAD


# -- participants -------------------------------------------------------------------------


async def test_permissions_can_record_and_host_only_for_the_creator(manager: RoomManager) -> None:
    host = await manager.join(spec(CREATOR), "")
    guest = await manager.join(spec("user-2-id"), "")
    assert host.participant.permissions.can_record and host.participant.permissions.is_host
    assert not guest.participant.permissions.can_record
    assert not guest.participant.permissions.is_host
    for outcome in (host, guest):
        assert outcome.participant.permissions.can_share
        assert outcome.participant.permissions.can_chat


async def test_participant_ids_are_never_the_user_id_and_new_for_every_join(manager: RoomManager) -> None:
    seen: set[str] = set()
    for _ in range(5):
        outcome = await manager.join(spec("user-2-id"), "")
        pid = outcome.participant.participant_id
        assert pid != "user-2-id"
        assert pid not in seen
        seen.add(pid)
        await manager.leave(OPEN, pid, LeaveReason.LEFT)
    # Even two users whose id looks like a participant id get fresh ones.
    tricky = await manager.join(spec("participant-x"), "")
    assert tricky.participant.participant_id != "participant-x"


async def test_joiner_sees_everyone_already_there_but_not_itself(manager: RoomManager) -> None:
    first = await manager.join(spec("u1"), "")
    second = await manager.join(spec("u2"), "")
    third = await manager.join(spec("u3"), "")
    assert first.others == ()
    assert [p.participant_id for p in second.others] == [first.participant.participant_id]
    assert [p.participant_id for p in third.others] == [
        first.participant.participant_id,
        second.participant.participant_id,
    ]


async def test_an_expired_edge_loses_its_participants(manager: RoomManager, clock: FakeClock) -> None:
    await manager.join(spec("u1", edge="edge-a"), "")
    kept = await manager.join(spec("u2", edge="edge-b"), "")
    clock.now += 3
    assert await manager.heartbeat("edge-b") is True
    assert await manager.reap_expired_edges() == 0
    clock.now += 3  # edge-a silent for 6 s > 5 s lease; edge-b renewed 3 s ago
    assert await manager.reap_expired_edges() == 1
    snapshot = await manager.list_participants(OPEN)
    assert [p.participant_id for p in snapshot.participants] == [kept.participant.participant_id]
    assert await manager.heartbeat("edge-a") is False  # it must re-announce


# -- the seed's console lines, as structured records -----------------------------------------


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "room_service"]


async def test_join_logs_the_seed_lines_with_structured_fields(
    manager: RoomManager, caplog: pytest.LogCaptureFixture
) -> None:
    await manager.join(spec("user-1", name="User One"), "")
    await manager.join(spec("user-9", name="User Nine"), "")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="room_service"):
        outcome = await manager.join(spec("user-123", name="John Doe"), "")
    pid = outcome.participant.participant_id
    messages = [r.getMessage() for r in _records(caplog)]
    assert messages == [
        f"✅ User John Doe (user-123) joined meeting {OPEN} as {pid}",
        "📤 Broadcast participant-joined to 2 other participants",
    ]
    joined, broadcast = _records(caplog)
    assert joined.meeting_id == OPEN  # type: ignore[attr-defined]
    assert joined.user_id == "user-123"  # type: ignore[attr-defined]
    assert joined.participant_id == pid  # type: ignore[attr-defined]
    assert joined.sequence == outcome.position.sequence  # type: ignore[attr-defined]
    assert broadcast.recipients == 2  # type: ignore[attr-defined]


async def test_singular_wording_for_one_participant(
    manager: RoomManager, caplog: pytest.LogCaptureFixture
) -> None:
    first = await manager.join(spec("u1", name="User One"), "")
    with caplog.at_level(logging.INFO, logger="room_service"):
        await manager.join(spec("u2", name="User Two"), "")
        caplog.clear()
        await manager.leave(OPEN, first.participant.participant_id, LeaveReason.DISCONNECTED)
    messages = [r.getMessage() for r in _records(caplog)]
    assert messages == [
        f"👋 User User One disconnected from meeting {OPEN}",
        "📤 Broadcast participant-left to 1 remaining participant",
    ]
    left = _records(caplog)[0]
    assert left.reason == "disconnected"  # type: ignore[attr-defined]
    assert left.participant_id == first.participant.participant_id  # type: ignore[attr-defined]


async def test_replacement_is_logged_as_a_leave_with_reason_replaced(
    manager: RoomManager, caplog: pytest.LogCaptureFixture
) -> None:
    old = await manager.join(spec("u1", name="User One"), "")
    replacing = JoinSpec(OPEN, "u1", "User One", MediaState(), "edge-a", "another-socket")
    with caplog.at_level(logging.INFO, logger="room_service"):
        new = await manager.join(replacing, "")
    assert new.replaced == (old.participant,)
    left = [r for r in _records(caplog) if getattr(r, "reason", None) == "replaced"]
    assert left and left[0].participant_id == old.participant.participant_id  # type: ignore[attr-defined]


async def test_no_log_line_ever_contains_the_password(
    manager: RoomManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await manager.upsert_meeting(meeting("secret-room"), "hunter2-secret")
        await manager.join(spec("u1", "secret-room"), "hunter2-secret")
        with pytest.raises(DomainError):
            await manager.join(spec("u2", "secret-room"), "hunter3-wrong")
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert "hunter2-secret" not in text and "hunter3-wrong" not in text
        assert "scrypt$" not in text


async def test_idempotent_rejoin_logs_nothing_and_appends_nothing(
    manager: RoomManager, caplog: pytest.LogCaptureFixture
) -> None:
    first = await manager.join(spec("u1"), "")
    with caplog.at_level(logging.INFO, logger="room_service"):
        again = await manager.join(spec("u1"), "")
    assert again.already_joined and again.participant == first.participant
    assert _records(caplog) == []
    assert (await manager.list_participants(OPEN)).position == Position(1, first.position.epoch)


async def test_join_results_are_counted_including_unexpected_failures(clock: FakeClock) -> None:
    class BrokenStore(MemoryStore):
        async def join(
            self, spec: JoinSpec, meeting: Meeting | None = None, lease_until: float | None = None
        ) -> JoinOutcome:
            raise RuntimeError("disk on fire")

    registry = CollectorRegistry()
    rooms = RoomManager(BrokenStore(StoreOptions()), ManagerOptions(), RoomMetrics(registry), clock=clock)
    await rooms.upsert_meeting(meeting(OPEN), None)
    with pytest.raises(DomainError):
        await rooms.join(spec("u1", "no-such-meeting"), "")
    with pytest.raises(RuntimeError):
        await rooms.join(spec("u1"), "")

    def joins(result: str) -> float | None:
        return registry.get_sample_value("room_service_joins_total", {"result": result})

    assert joins("MEETING_NOT_FOUND") == 1
    assert joins("INTERNAL") == 1
    assert joins("ok") == 0

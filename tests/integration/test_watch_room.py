"""WatchRoom over real gRPC (a RoomServiceApp on 127.0.0.1:0 in this process): a stream
from a position carries exactly the later events in order, resumes without repeats, and
starts with a snapshot when the position is unknown, too old or from a closed room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.room_rpc import OPEN, join_request, reason_of, room_service_app
from tests.support.room_watch import Watch

pytestmark = pytest.mark.timeout(60)

REPLAY_BUFFER = 8


@pytest.fixture
async def stub() -> AsyncIterator[pb_grpc.RoomServiceAsyncStub]:
    """A service whose replay buffer is short enough to outrun."""
    async with room_service_app("--replay-buffer", str(REPLAY_BUFFER)) as (_, served_stub):
        yield served_stub


async def joined(stub: pb_grpc.RoomServiceAsyncStub, *users: str) -> list[pb.JoinResponse]:
    """Joins `users` to the open meeting one after another; their replies, in order."""
    return [await stub.Join(join_request(user)) for user in users]


async def test_watch_from_a_join_position_streams_exactly_the_later_events_in_order(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    first = await stub.Join(join_request("u1"))
    watches.append(watch := Watch(stub, OPEN, first.position))
    await watch.nothing()
    joins = await joined(stub, "u2", "u3", "u4", "u5")
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=joins[1].participant.participant_id))
    events = [await watch.event() for _ in range(5)]
    assert [e.sequence for e in events] == list(
        range(first.position.sequence + 1, first.position.sequence + 6)
    )
    assert {e.epoch for e in events} == {first.position.epoch}
    assert [e.WhichOneof("payload") for e in events] == ["participant_joined"] * 4 + ["participant_left"]
    assert [e.participant_joined.participant.user_id for e in events[:4]] == ["u2", "u3", "u4", "u5"]
    assert events[4].participant_left.reason == pb.LEAVE_REASON_LEFT
    assert all(e.meeting_id == OPEN for e in events)
    await watch.nothing()


async def test_events_ready_together_come_as_one_batch_only_to_a_watcher_that_asks(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    first, *joins = await joined(stub, "u1", "u2", "u3", "u4", "u5")
    expected = [first.position.sequence + n for n in range(1, 5)]
    # All four are in the log when these watchers start after u1's join.
    watches.append(batched := Watch(stub, OPEN, first.position, batch=True))
    watches.append(single := Watch(stub, OPEN, first.position))
    item = await batched.next()
    assert item.WhichOneof("item") == "events", item
    assert [e.sequence for e in item.events.events] == expected
    assert [e.participant_joined.participant.user_id for e in item.events.events] == ["u2", "u3", "u4", "u5"]
    assert [(await single.event()).sequence for _ in expected] == expected
    # One event alone keeps the single form, even for a watcher that asked for batches.
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=joins[0].participant.participant_id))
    assert (await batched.event()).sequence == expected[-1] + 1
    assert (await single.event()).sequence == expected[-1] + 1
    await batched.nothing()
    await single.nothing()


async def test_watch_resumes_after_a_position_without_repeating(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    first, *replies = await joined(stub, "u1", "u2", "u3", "u4")
    # A watcher that saw up to u2's join resumes after it: u3 and u4, nothing before.
    watches.append(watch := Watch(stub, OPEN, replies[0].position))
    resumed = [await watch.event(), await watch.event()]
    assert [e.sequence for e in resumed] == [replies[1].position.sequence, replies[2].position.sequence]
    await watch.nothing()
    # A watcher already at the head gets nothing until the next change.
    watches.append(at_head := Watch(stub, OPEN, replies[2].position))
    await at_head.nothing()
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=first.participant.participant_id))
    assert (await at_head.event()).participant_left.participant.user_id == "u1"
    assert (await watch.event()).participant_left.participant.user_id == "u1"


async def test_watch_with_an_empty_or_unknown_epoch_starts_with_a_snapshot(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    one, two = await joined(stub, "u1", "u2")
    for after in (pb.StreamPosition(), pb.StreamPosition(sequence=1, epoch="someone-elses-epoch")):
        watches.append(watch := Watch(stub, OPEN, after))
        first = await watch.next()
        assert first.HasField("snapshot")
        assert first.snapshot.position == two.position
        ids = [p.participant_id for p in first.snapshot.participants]
        assert ids == [one.participant.participant_id, two.participant.participant_id]
        await watch.nothing()
    three = await stub.Join(join_request("u3"))
    for watch in watches:
        event = await watch.event()
        assert event.sequence == three.position.sequence  # events continue after the snapshot


async def test_watch_gets_a_snapshot_when_the_buffer_no_longer_reaches(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    first = await stub.Join(join_request("u1"))
    await joined(stub, *(f"churn{i}" for i in range(REPLAY_BUFFER + 2)))
    last = await stub.Join(join_request("u-last"))
    watches.append(watch := Watch(stub, OPEN, first.position))
    item = await watch.next()
    assert item.HasField("snapshot")
    assert item.snapshot.position == last.position
    assert len(item.snapshot.participants) == REPLAY_BUFFER + 4
    await watch.nothing()


async def test_watch_from_a_closed_incarnation_gets_a_snapshot_of_the_new_one(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    one = await stub.Join(join_request("u1"))
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=one.participant.participant_id))
    # The room emptied and closed; its next incarnation has a new epoch, restarting at 1.
    again = await stub.Join(join_request("u2"))
    assert again.position.epoch != one.position.epoch
    assert again.position.sequence == 1
    # An edge resuming from the old incarnation is never "resumed" into the new one.
    watches.append(watch := Watch(stub, OPEN, one.position))
    item = await watch.next()
    assert item.HasField("snapshot"), item
    assert item.snapshot.position == again.position
    assert [p.user_id for p in item.snapshot.participants] == ["u2"]
    await watch.nothing()


async def test_a_watcher_of_a_room_that_closes_sees_it_empty_then_reopened(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    one = await stub.Join(join_request("u1"))
    watches.append(watch := Watch(stub, OPEN, one.position))
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=one.participant.participant_id))
    item = await watch.next()
    # Either the stream read the leave before the room closed, or it finds the room gone
    # and gets the (empty) truth; both leave the watcher with an empty room.
    if item.HasField("event"):
        assert item.event.participant_left.participant.participant_id == one.participant.participant_id
    else:
        assert item.snapshot.participants == []
    again = await stub.Join(join_request("u2"))
    item = await watch.next()
    if item.HasField("snapshot") and not item.snapshot.participants:
        item = await watch.next()
    assert item.HasField("snapshot"), item
    assert item.snapshot.position == again.position
    assert [p.user_id for p in item.snapshot.participants] == ["u2"]


async def test_watch_of_an_unknown_meeting_is_not_found(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    call = stub.WatchRoom(pb.WatchRoomRequest(meeting_id="ghost"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(caught.value) == "MEETING_NOT_FOUND"


async def test_many_watchers_see_the_same_sequence(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    first = await stub.Join(join_request("u0"))
    watches.extend(Watch(stub, OPEN, first.position) for _ in range(5))
    await asyncio.gather(*(stub.Join(join_request(f"u{i}")) for i in range(1, 11)))
    seen = []
    for watch in watches:
        seen.append([(e.sequence, e.participant_joined.participant.user_id) for e in
                     [await watch.event() for _ in range(10)]])  # fmt: skip
    assert all(s == seen[0] for s in seen)
    assert [s for s, _ in seen[0]] == list(range(2, 12))

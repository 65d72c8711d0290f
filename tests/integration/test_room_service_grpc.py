"""The RoomService over real gRPC: a RoomServiceApp on 127.0.0.1:0 in this process and a
real client channel. Covers the RPCs of the meeting protocol, the error statuses with their
ErrorInfo reason, health and reflection (WatchRoom has its own file, test_watch_room.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.rpc_status import error_code_from
from room_service.app import RoomServiceApp
from tests.support.room_rpc import LOCKED, OPEN, join_request, room_service_app, rpc_refused
from tests.support.room_watch import Watch

pytestmark = pytest.mark.timeout(60)

REPLAY_BUFFER = 8


@pytest.fixture
async def served() -> AsyncIterator[tuple[RoomServiceApp, pb_grpc.RoomServiceAsyncStub]]:
    async with room_service_app("--replay-buffer", str(REPLAY_BUFFER)) as pair:
        yield pair


@pytest.fixture
def stub(served: tuple[RoomServiceApp, pb_grpc.RoomServiceAsyncStub]) -> pb_grpc.RoomServiceAsyncStub:
    return served[1]


@pytest.fixture
async def channel(
    served: tuple[RoomServiceApp, pb_grpc.RoomServiceAsyncStub],
) -> AsyncIterator[grpc.aio.Channel]:
    """A second channel to the same service, for the health and reflection services."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{served[0].grpc_port}") as chan:
        yield chan


# -- meetings -----------------------------------------------------------------------------


async def test_demo_meetings_are_registered_without_their_password(
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    locked = (await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=LOCKED))).meeting
    assert locked.has_password
    assert locked.creator_id == "user-1-id"
    assert locked.status == pb.MEETING_STATUS_LIVE
    assert b"password123" not in locked.SerializeToString()
    assert not (await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=OPEN))).meeting.has_password


async def test_upsert_meeting_then_join_with_its_password(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    meeting = pb.Meeting(
        id="board", meeting_name="Board", creator_id="ceo", status=pb.MEETING_STATUS_SCHEDULED
    )
    stored = (await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=meeting, password="s3cret"))).meeting
    assert stored.has_password and stored.status == pb.MEETING_STATUS_SCHEDULED
    assert b"s3cret" not in stored.SerializeToString()
    joined = await stub.Join(join_request("ceo", "board", password="s3cret"))
    assert joined.participant.permissions.can_record
    await rpc_refused(stub.Join(join_request("guest", "board", password="S3cret")),
                  grpc.StatusCode.PERMISSION_DENIED, "INVALID_PASSWORD")  # fmt: skip


async def test_meeting_errors_carry_their_stable_code(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    error = await rpc_refused(
        stub.GetMeeting(pb.GetMeetingRequest(meeting_id="nope")),
        grpc.StatusCode.NOT_FOUND,
        "MEETING_NOT_FOUND",
    )
    assert error.details() == "Meeting not found"
    await rpc_refused(
        stub.GetMeeting(pb.GetMeetingRequest()), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD"
    )
    await rpc_refused(
        stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=pb.Meeting(meeting_name="no id"))),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAYLOAD",
    )


# -- join / leave / list ------------------------------------------------------------------


async def test_join_returns_the_others_the_position_and_the_seed_permissions(
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    host = await stub.Join(join_request("user-1-id"))
    guest = await stub.Join(join_request("user-2-id", media=pb.MediaState(audio=True, video=False)))
    assert host.participants == [] and not host.already_joined
    assert [p.participant_id for p in guest.participants] == [host.participant.participant_id]
    assert guest.position.sequence == host.position.sequence + 1
    assert guest.position.epoch == host.position.epoch != ""
    assert host.participant.permissions == pb.Permissions(
        can_share=True, can_chat=True, can_record=True, is_host=True
    )
    assert guest.participant.permissions == pb.Permissions(can_share=True, can_chat=True)
    assert guest.participant.media == pb.MediaState(audio=True, video=False, screen=False)
    assert host.participant.media == pb.MediaState(audio=True, video=True, screen=False)  # unset: on
    for reply in (host, guest):
        assert reply.participant.participant_id != reply.participant.user_id
        assert reply.meeting.id == OPEN
        assert reply.participant.joined_at.seconds > 0


async def test_join_refusals_map_to_status_and_reason(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    error = await rpc_refused(stub.Join(join_request("u", LOCKED, password="nope")),
                          grpc.StatusCode.PERMISSION_DENIED, "INVALID_PASSWORD")  # fmt: skip
    assert error.details() == "Invalid meeting password"
    await rpc_refused(
        stub.Join(join_request("u", LOCKED)), grpc.StatusCode.PERMISSION_DENIED, "INVALID_PASSWORD"
    )
    error = await rpc_refused(
        stub.Join(join_request("u", "ghost")), grpc.StatusCode.NOT_FOUND, "MEETING_NOT_FOUND"
    )
    assert error.details() == "Meeting not found"
    ended = pb.Meeting(id="over", status=pb.MEETING_STATUS_ENDED)
    await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=ended))
    await rpc_refused(
        stub.Join(join_request("u", "over")), grpc.StatusCode.FAILED_PRECONDITION, "MEETING_NOT_ACTIVE"
    )
    await rpc_refused(stub.Join(join_request("")), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD")
    await rpc_refused(
        stub.Join(join_request("u", socket_id="")), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD"
    )
    small = pb.Meeting(id="small", status=pb.MEETING_STATUS_LIVE, max_participants=1)
    await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=small))
    await stub.Join(join_request("a", "small"))
    await rpc_refused(stub.Join(join_request("b", "small")), grpc.StatusCode.RESOURCE_EXHAUSTED, "ROOM_FULL")
    # Nothing of the above changed the open room.
    listed = await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=OPEN))
    assert listed.snapshot.participants == []


async def test_join_from_the_same_socket_is_idempotent(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    first = await stub.Join(join_request("u1"))
    await stub.Join(join_request("u2"))
    again = await stub.Join(join_request("u1"))
    assert again.already_joined
    assert again.participant.participant_id == first.participant.participant_id
    assert [p.user_id for p in again.participants] == ["u2"]
    listed = (await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=OPEN))).snapshot
    assert len(listed.participants) == 2
    assert again.position == listed.position


async def test_leave_list_participants_and_list_rooms(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    one = await stub.Join(join_request("u1"))
    two = await stub.Join(join_request("u2"))
    rooms = (await stub.ListRooms(pb.ListRoomsRequest())).rooms
    assert [(r.meeting.id, r.participant_count) for r in rooms] == [(OPEN, 2)]
    left = await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=two.participant.participant_id))
    assert left.participant.participant_id == two.participant.participant_id
    assert left.position.sequence == two.position.sequence + 1
    snapshot = (await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=OPEN))).snapshot
    assert [p.participant_id for p in snapshot.participants] == [one.participant.participant_id]
    assert snapshot.position == left.position
    await rpc_refused(
        stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=two.participant.participant_id)),
        grpc.StatusCode.NOT_FOUND,
        "NOT_IN_MEETING",
    )
    await stub.Leave(pb.LeaveRequest(meeting_id=OPEN, participant_id=one.participant.participant_id))
    assert (await stub.ListRooms(pb.ListRoomsRequest())).rooms == []
    await rpc_refused(
        stub.ListParticipants(pb.ListParticipantsRequest(meeting_id="ghost")),
        grpc.StatusCode.NOT_FOUND,
        "MEETING_NOT_FOUND",
    )


async def test_same_user_from_another_socket_replaces_the_older_session(
    stub: pb_grpc.RoomServiceAsyncStub, watches: list[Watch]
) -> None:
    old = await stub.Join(join_request("u1", socket_id="s-old"))
    watches.append(watch := Watch(stub, OPEN, old.position))
    new = await stub.Join(join_request("u1", socket_id="s-new"))
    assert new.participants == []
    left = await watch.event()
    assert left.participant_left.participant.participant_id == old.participant.participant_id
    assert left.participant_left.reason == pb.LEAVE_REASON_REPLACED
    joined = await watch.event()
    assert joined.participant_joined.participant.participant_id == new.participant.participant_id
    assert joined.sequence == new.position.sequence


# -- edges (only the RPC surface; lease behaviour is tested at the store) ------------------


async def test_heartbeat_reports_whether_the_edge_was_known(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    first = await stub.Heartbeat(pb.HeartbeatRequest(edge_id="edge-hb"))
    assert not first.known and first.lease_seconds > 0
    assert (await stub.Heartbeat(pb.HeartbeatRequest(edge_id="edge-hb"))).known
    await rpc_refused(
        stub.Heartbeat(pb.HeartbeatRequest()), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD"
    )


# -- health and reflection ----------------------------------------------------------------


async def test_health_check_is_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "meeting.v1.RoomService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_the_room_service(channel: grpc.aio.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        yield reflection_pb2.ServerReflectionRequest(file_containing_symbol="meeting.v1.RoomService")

    replies = [reply async for reply in reflection.ServerReflectionInfo(requests())]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"meeting.v1.RoomService", "grpc.health.v1.Health"} <= names
    assert replies[1].file_descriptor_response.file_descriptor_proto  # the proto is served too


async def test_out_of_range_timestamps_are_invalid_argument_not_internal(
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    # Found by the gRPC fuzzer: nanos = -1 used to crash the conversion (INTERNAL).
    for created_at in (Timestamp(seconds=1, nanos=-1), Timestamp(seconds=2**62)):
        request = pb.UpsertMeetingRequest(meeting=pb.Meeting(id="ts-check", created_at=created_at))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.UpsertMeeting(request, timeout=5)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error_code_from(caught.value) == "INVALID_PAYLOAD"

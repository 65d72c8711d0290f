"""RestoreSessions lets an edge bring back only its own sessions, and the permissions of a
restored participant always come from the meeting, never from the request."""

from __future__ import annotations

import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.room import room_snapshot
from tests.support.room_rpc import join_request, room_service_app

pytestmark = pytest.mark.timeout(60)

MEETING = "restore-meeting"
HOST = "host-user"
EVERYTHING = pb.Permissions(can_share=True, can_chat=True, can_record=True, is_host=True)


async def _meeting(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    meeting = pb.Meeting(id=MEETING, meeting_name="Restore", status=pb.MEETING_STATUS_LIVE, creator_id=HOST)
    await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=meeting), timeout=5)


def _record(participant_id: str, user: str, edge: str, socket: str) -> pb.SessionRecord:
    participant = pb.Participant(
        participant_id=participant_id,
        user_id=user,
        user_name=f"Name {user}",
        media=pb.MediaState(audio=True),
        permissions=EVERYTHING,
        edge_id=edge,
        socket_id=socket,
    )
    return pb.SessionRecord(meeting_id=MEETING, participant=participant)


async def _roster(stub: pb_grpc.RoomServiceAsyncStub) -> dict[str, pb.Participant]:
    return {p.participant_id: p for p in (await room_snapshot(stub, MEETING)).participants}


async def test_restored_permissions_come_from_the_meeting_not_the_request() -> None:
    async with room_service_app() as (_app, stub):
        await _meeting(stub)
        guest = _record("participant-guest-1", "guest", "edge-m", "sock-g")
        host = _record("participant-host-1", HOST, "edge-m", "sock-h")
        request = pb.RestoreSessionsRequest(edge_id="edge-m", sessions=[guest, host])
        reply = await stub.RestoreSessions(request, timeout=5)
        assert list(reply.rejected_participant_ids) == []
        roster = await _roster(stub)
        assert roster["participant-guest-1"].permissions == pb.Permissions(can_share=True, can_chat=True)
        assert roster["participant-host-1"].permissions == EVERYTHING  # the creator hosts
        # The guest, restored with a forged host flag, still cannot kick the host.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.RemoveParticipant(
                pb.RemoveParticipantRequest(
                    meeting_id=MEETING,
                    participant_id="participant-host-1",
                    requested_by_participant_id="participant-guest-1",
                ),
                timeout=5,
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_edge_cannot_restore_or_take_over_another_edges_sessions() -> None:
    async with room_service_app() as (_app, stub):
        await _meeting(stub)
        held = await stub.Join(
            join_request(HOST, meeting=MEETING, edge_id="edge-h", socket_id="s-h"), timeout=5
        )
        host_pid = held.participant.participant_id
        takeover = _record(host_pid, HOST, "edge-m", "s-m")  # the host's id, claimed by edge-m
        foreign = _record("participant-foreign-1", "someone", "edge-h", "s-x")  # names edge-h
        reply = await stub.RestoreSessions(
            pb.RestoreSessionsRequest(edge_id="edge-m", sessions=[takeover, foreign]), timeout=5
        )
        assert sorted(reply.rejected_participant_ids) == sorted([host_pid, "participant-foreign-1"])
        roster = await _roster(stub)
        assert set(roster) == {host_pid}
        assert (roster[host_pid].edge_id, roster[host_pid].socket_id) == ("edge-h", "s-h")
        # Its own session comes back, once; repeating it is harmless.
        own = _record("participant-own-1", "guest", "edge-m", "s-g")
        for _ in range(2):
            again = await stub.RestoreSessions(
                pb.RestoreSessionsRequest(edge_id="edge-m", sessions=[own]), timeout=5
            )
            assert list(again.rejected_participant_ids) == []
        assert set(await _roster(stub)) == {host_pid, "participant-own-1"}

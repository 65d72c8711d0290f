"""The meeting.v1.RoomService servicer: convert, delegate to RoomManager; errors are mapped by
error_mapping.py."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.grpc_metrics import ServerMetrics
from room_service.api import convert
from room_service.api.commands import CommandStreams
from room_service.api.error_mapping import optional, require, streaming, unary
from room_service.api.roster import RosterEncoder
from room_service.domain import rules
from room_service.domain.errors import invalid
from room_service.domain.events import RoomEvent
from room_service.domain.models import MediaState, Snapshot
from room_service.domain.requests import JoinSpec, MediaChange, RecoverSpec
from room_service.rooms import RoomManager
from room_service.store.base_edges import RestoreRecord

ENCODED_EVENTS = 256
"""Converted room events kept for the other streams relaying them. The streams of one room
relay an event within moments of one another, so the recent ones suffice; each costs
about 3 KB (a protobuf message owns its arena), and at 4,096 a room of 1,000 kept its
whole join history converted (3 KB per participant, idle)."""


class RoomServicer(pb_grpc.RoomServiceServicer):
    """One servicer for the RoomService; all logic lives in RoomManager."""

    def __init__(self, manager: RoomManager, metrics: ServerMetrics | None = None) -> None:
        self._manager = manager
        # The Commands streams run this servicer's own methods (each command counted in
        # `metrics` under its method's name).
        self.commands = CommandStreams(self, metrics)
        # Events converted once and shared by every stream that relays them.
        self._encoded: OrderedDict[tuple[str, str, int], pb.WatchRoomResponse] = OrderedDict()
        # Rosters from cached participant encodings: a join costs no conversion per participant.
        self._join_roster = RosterEncoder(pb.JoinResponse)
        self._recover_roster = RosterEncoder(pb.RecoverSessionResponse)

    @unary
    async def UpsertMeeting(self, request: pb.UpsertMeetingRequest, context: Any) -> pb.UpsertMeetingResponse:
        require(request.meeting.id, "meeting.id")
        rules.checked_name(request.meeting.meeting_name, "meeting.meeting_name", required=False)
        optional(request.meeting.creator_id, "meeting.creator_id")
        meeting = await self._manager.upsert_meeting(
            convert.meeting_from_pb(request.meeting), request.password or None
        )
        return pb.UpsertMeetingResponse(meeting=convert.meeting_to_pb(meeting))

    @unary
    async def GetMeeting(self, request: pb.GetMeetingRequest, context: Any) -> pb.GetMeetingResponse:
        meeting = await self._manager.get_meeting(require(request.meeting_id, "meeting_id"))
        return pb.GetMeetingResponse(meeting=convert.meeting_to_pb(meeting))

    @unary
    async def EndMeeting(self, request: pb.EndMeetingRequest, context: Any) -> pb.EndMeetingResponse:
        meeting, position = await self._manager.end_meeting(
            require(request.meeting_id, "meeting_id"),
            optional(request.requested_by_participant_id, "requested_by_participant_id"),
        )
        return pb.EndMeetingResponse(
            meeting=convert.meeting_to_pb(meeting), position=convert.position_to_pb(position)
        )

    @unary
    async def Join(self, request: pb.JoinRequest, context: Any) -> pb.JoinResponse:
        media = convert.media_from_pb(request.media) if request.HasField("media") else None
        spec = JoinSpec(
            meeting_id=require(request.meeting_id, "meeting_id"),
            user_id=require(request.user_id, "user_id"),
            user_name=rules.checked_name(request.user_name, "user_name"),
            media=media if media is not None else MediaState(),
            edge_id=require(request.edge_id, "edge_id"),
            socket_id=require(request.socket_id, "socket_id"),
            recovery_id=optional(request.recovery_id, "recovery_id"),
        )
        outcome = await self._manager.join(spec, request.password)
        reply = pb.JoinResponse(
            **convert.seat_to_pb(outcome),
            already_joined=outcome.already_joined,
            instance_id=outcome.instance_id or await self._manager.instance_id(),
        )
        return self._join_roster.fill(reply, outcome.others, spec.meeting_id)

    @unary
    async def Leave(self, request: pb.LeaveRequest, context: Any) -> pb.LeaveResponse:
        event = await self._manager.leave(
            require(request.meeting_id, "meeting_id"),
            require(request.participant_id, "participant_id"),
            convert.reason_from_pb(request.reason),
        )
        return pb.LeaveResponse(
            participant=convert.event_to_pb(event).participant_left.participant,
            position=convert.position_to_pb(event.position),
        )

    @unary
    async def HoldSession(self, request: pb.HoldSessionRequest, context: Any) -> pb.HoldSessionResponse:
        held = await self._manager.hold(
            require(request.meeting_id, "meeting_id"),
            require(request.participant_id, "participant_id"),
            require(request.edge_id, "edge_id"),
            request.silent_seconds,
        )
        return pb.HoldSessionResponse(held=held)

    @unary
    async def RecoverSession(
        self, request: pb.RecoverSessionRequest, context: Any
    ) -> pb.RecoverSessionResponse:
        after = convert.position_from_pb(request.after) if request.HasField("after") else None
        recovered = await self._manager.recover(
            RecoverSpec(
                recovery_id=require(request.recovery_id, "recovery_id"),
                after=after,
                edge_id=require(request.edge_id, "edge_id"),
                user_id=optional(request.user_id, "user_id"),
                fresh_recovery_id=optional(request.fresh_recovery_id, "fresh_recovery_id"),
            )
        )
        reply = pb.RecoverSessionResponse(
            **convert.seat_to_pb(recovered),
            missed=[convert.event_to_pb(e) for e in recovered.missed],
            resynced=recovered.resynced,
            socket_id=recovered.participant.socket_id,
        )
        return self._recover_roster.fill(reply, recovered.others, recovered.meeting.id)

    @unary
    async def UpdateMediaState(
        self, request: pb.UpdateMediaStateRequest, context: Any
    ) -> pb.UpdateMediaStateResponse:
        change = MediaChange(
            meeting_id=require(request.meeting_id, "meeting_id"),
            participant_id=require(request.participant_id, "participant_id"),
            changed_by=optional(request.requested_by_participant_id, "requested_by_participant_id"),
            audio=request.audio if request.HasField("audio") else None,
            video=request.video if request.HasField("video") else None,
            screen=request.screen if request.HasField("screen") else None,
        )
        participant, event = await self._manager.update_media(change)
        position = event.position if event is not None else None
        return pb.UpdateMediaStateResponse(
            participant=convert.participant_to_pb(participant),
            position=convert.position_to_pb(position) if position is not None else None,
        )

    @unary
    async def RemoveParticipant(
        self, request: pb.RemoveParticipantRequest, context: Any
    ) -> pb.RemoveParticipantResponse:
        event = await self._manager.remove_participant(
            require(request.meeting_id, "meeting_id"),
            require(request.participant_id, "participant_id"),
            optional(request.requested_by_participant_id, "requested_by_participant_id"),
        )
        return pb.RemoveParticipantResponse(
            participant=convert.event_to_pb(event).participant_left.participant,
            position=convert.position_to_pb(event.position),
        )

    @unary
    async def ListParticipants(
        self, request: pb.ListParticipantsRequest, context: Any
    ) -> pb.ListParticipantsResponse:
        snapshot = await self._manager.list_participants(require(request.meeting_id, "meeting_id"))
        return pb.ListParticipantsResponse(snapshot=convert.snapshot_to_pb(snapshot))

    @unary
    async def ListRooms(self, request: pb.ListRoomsRequest, context: Any) -> pb.ListRoomsResponse:
        rooms = await self._manager.list_rooms()
        return pb.ListRoomsResponse(rooms=[convert.room_to_pb(r) for r in rooms])

    @unary
    async def SendSignal(self, request: pb.SendSignalRequest, context: Any) -> pb.SendSignalResponse:
        signal = convert.signal_from_pb(request.signal)
        require(signal.meeting_id, "signal.meeting_id")
        require(signal.from_participant_id, "signal.from_participant_id")
        require(signal.target_participant_id, "signal.target_participant_id")
        try:
            json.loads(signal.payload_json or "null")
        except ValueError as exc:
            raise invalid("payload_json is not JSON") from exc
        await self._manager.send_signal(signal)
        return pb.SendSignalResponse()

    @unary
    async def SendChat(self, request: pb.SendChatRequest, context: Any) -> pb.SendChatResponse:
        message, position = await self._manager.send_chat(
            require(request.meeting_id, "meeting_id"),
            require(request.participant_id, "participant_id"),
            request.text,
        )
        return pb.SendChatResponse(
            message=convert.chat_to_pb(message), position=convert.position_to_pb(position)
        )

    @streaming
    async def WatchRoom(
        self, request: pb.WatchRoomRequest, context: Any
    ) -> AsyncIterator[pb.WatchRoomResponse]:
        after = convert.position_from_pb(request.after)
        async for item in self._manager.watch(require(request.meeting_id, "meeting_id"), after):
            if isinstance(item, Snapshot):
                yield pb.WatchRoomResponse(snapshot=convert.snapshot_to_pb(item))
            elif request.batch and len(item) > 1:
                # Events ready together go as one stream message: gRPC's cost is per message.
                batch = pb.RoomEventBatch(events=[self._encode(event).event for event in item])
                yield pb.WatchRoomResponse(events=batch)
            else:
                for event in item:
                    yield self._encode(event)

    @unary
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Any) -> pb.HeartbeatResponse:
        known = await self._manager.heartbeat(require(request.edge_id, "edge_id"))
        return pb.HeartbeatResponse(
            known=known,
            lease_seconds=self._manager.lease_seconds,
            instance_id=await self._manager.instance_id(),
        )

    @unary
    async def RestoreSessions(
        self, request: pb.RestoreSessionsRequest, context: Any
    ) -> pb.RestoreSessionsResponse:
        records = [
            RestoreRecord(require(r.meeting_id, "meeting_id"), convert.participant_from_pb(r.participant))
            for r in request.sessions
        ]
        rejected = await self._manager.restore(require(request.edge_id, "edge_id"), records)
        return pb.RestoreSessionsResponse(rejected_participant_ids=rejected)

    @streaming
    async def WatchEdge(
        self, request: pb.WatchEdgeRequest, context: Any
    ) -> AsyncIterator[pb.WatchEdgeResponse]:
        async for signal in self._manager.edge_signals(require(request.edge_id, "edge_id")):
            yield pb.WatchEdgeResponse(signal=convert.signal_to_pb(signal))

    async def Commands(self, request_iterator: Any, context: Any) -> None:  # type: ignore[override]
        # Reads and writes through the context (one awaited call per message, no iterator
        # in between); the generated base class types the generator form only.
        await self.commands.serve(context)

    def _encode(self, event: RoomEvent) -> pb.WatchRoomResponse:
        key = (event.meeting_id, event.position.epoch, event.position.sequence)
        message = self._encoded.get(key)
        if message is None:
            message = pb.WatchRoomResponse(event=convert.event_to_pb(event))
            self._encoded[key] = message
            if len(self._encoded) > ENCODED_EVENTS:
                self._encoded.popitem(last=False)
        return message

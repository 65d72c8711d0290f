"""Typed RoomService client: one channel to every room-service replica (any gRPC target:
host:port, a list `ipv4:A:P,B:P`, or `dns:///name:port`), calls balanced round-robin, a
deadline on every unary call, retries only for calls that are safe to repeat, and errors
turned into EdgeError. Over 300 lines: one short method per RPC, each with its retry rule,
which read best side by side; the Commands streams live in edge_gateway.command_stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry

from edge_gateway.command_stream import COMMAND_FOR, CommandStreams
from edge_gateway.errors import UNAVAILABLE_MESSAGE, EdgeError, from_status
from edge_gateway.join_queue import JoinQueue
from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.codes import ErrorCode
from meeting_common.grpc_metrics import SERVER_STREAM, UNARY, ClientMetrics, CountedStream
from meeting_common.rpc_status import error_code_from

T = TypeVar("T")

_SERVICE = pb.DESCRIPTOR.services_by_name["RoomService"]
_SERVICE_CONFIG = json.dumps(
    {"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": _SERVICE.full_name}}
)

# The full name of the method each request message is for (one Request message per RPC).
_METHOD_FOR: dict[str, str] = {
    method.input_type.full_name: f"/{_SERVICE.full_name}/{method.name}" for method in _SERVICE.methods
}
assert len(_METHOD_FOR) == len(_SERVICE.methods), "a request message shared by two RPCs"

# Longest pause between two attempts of a retried call.
_MAX_RETRY_PAUSE = 0.8

# How long a heartbeat waits for some replica to be connected when none is at that moment:
# longer than the channel's reconnect backoff (at most 1 s, plus up to 20 % jitter), so a
# replica that just came back is found before the edge declares the service unreachable.
_RECONNECT_WAIT = 2.0

# Statuses after which a repeat of an idempotent call may succeed.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class RoomClient:
    """Calls the RoomService for one edge."""

    def __init__(
        self,
        target: str,
        edge_id: str,
        timeout: float,
        metrics: ClientMetrics | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        joins_per_meeting: int = 32,
        command_streams: int = 2,
    ) -> None:
        self.edge_id = edge_id
        self._timeout = timeout
        # Every call is reported here, where it is made: the channel has no interceptor
        # (grpc.aio would run each intercepted unary call in a task of its own, and relay
        # each streamed message through one more async generator).
        self._metrics = metrics if metrics is not None else ClientMetrics(CollectorRegistry())
        # Sent with every call (the internal bearer token); None when there is none.
        self._metadata = tuple(metadata) or None
        # Join calls wait their turn per meeting (edge_gateway.join_queue), so that a join
        # storm's deadlines run from each call, not from the start of the storm.
        self.joins = JoinQueue(joins_per_meeting)
        # False while the last heartbeat failed: a join that waited its turn meanwhile is
        # refused at once, as one arriving then is, instead of trying a service known away.
        self.reachable = True
        # Called with the instance id of each Join reply: the hub re-announces its
        # sockets at once when the room service's state changed under it.
        self.on_instance: Callable[[str], None] | None = None
        options = [
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.initial_reconnect_backoff_ms", 200),
            # Reconnect within about a second of a room service restart, so that the
            # edge re-announces its sockets inside the service's restore grace.
            ("grpc.max_reconnect_backoff_ms", 1_000),
            # Spread calls and streams over every address the target resolves to. A replica
            # leaves the rotation as soon as its connection breaks, or as soon as its
            # RoomService health turns NOT_SERVING (it is stopping, or its store is away):
            # gRPC watches each replica's health itself (client-side health checking).
            ("grpc.service_config", _SERVICE_CONFIG),
            # Re-resolve DNS targets often enough to see replicas come and go.
            ("grpc.dns_min_time_between_resolutions_ms", 2_000),
        ]
        # TLS (and the edge's client certificate for mutual TLS) when credentials are given.
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub: pb_grpc.RoomServiceAsyncStub = pb_grpc.RoomServiceStub(self._channel)
        # The commands made for sockets go over these streams (None: as unary calls).
        self._commands = (
            CommandStreams(self._stub, self._metadata, self._metrics, command_streams)
            if command_streams > 0
            else None
        )

    async def close(self) -> None:
        """Closes the command streams and the channel, cancelling open streams."""
        if self._commands is not None:
            await self._commands.close()
        await self._channel.close(None)

    async def _call(
        self,
        invoke: grpc.aio.UnaryUnaryMultiCallable[Any, T],
        request: Message,
        *,
        deadline: float | None = None,
        wait_for_ready: bool | None = None,
        retries: int = 0,
        retry_on: frozenset[grpc.StatusCode] = _RETRYABLE,
    ) -> T:
        """`invoke(request)` with this client's deadline (or `deadline` seconds) and metadata,
        as a command on the Commands streams when it is one and they are on; each attempt
        is reported as one unary RPC of its method either way."""
        method = _METHOD_FOR[request.DESCRIPTOR.full_name]
        command = COMMAND_FOR.get(request.DESCRIPTOR.full_name) if self._commands is not None else None
        timeout = deadline or self._timeout
        attempt = 0
        while True:
            rpc = self._metrics.start(UNARY, method)
            try:
                if command is None or self._commands is None:
                    call: Awaitable[T] = invoke(
                        request, timeout=timeout, metadata=self._metadata, wait_for_ready=wait_for_ready
                    )
                else:
                    call = self._commands.call(command, request, timeout)
                return await rpc.response(call)
            except grpc.aio.AioRpcError as exc:  # a CommandError too: the same code, message and details
                code, reason, message = exc.code(), error_code_from(exc), exc.details() or ""
            # Only a call that got no answer is retried: a refusal the room service
            # itself gave (it carries an ErrorInfo; e.g. its store is down) would
            # only be given again, after the user waited once more.
            if attempt < retries and code in retry_on and reason is None:
                attempt += 1
                await asyncio.sleep(min(_MAX_RETRY_PAUSE, 0.1 * 2**attempt))
                continue
            raise from_status(code, reason, message) from None

    async def join(
        self,
        meeting_id: str,
        user_id: str,
        user_name: str,
        password: str,
        media: pb.MediaState | None,
        socket_id: str,
        recovery_id: str = "",
    ) -> pb.JoinResponse:
        """Join. Safe to retry: the same edge and socket make it idempotent."""
        request = pb.JoinRequest(
            meeting_id=meeting_id,
            user_id=user_id,
            user_name=user_name,
            password=password,
            media=media,
            edge_id=self.edge_id,
            socket_id=socket_id,
            recovery_id=recovery_id,
        )
        # Retried only when the call never got through (UNAVAILABLE): after a deadline the
        # user has waited long enough, and a second deadline would double the wait. Three
        # retries (0.2 + 0.4 + 0.8 s) outlast the channel's reconnect backoff (1 s), so a
        # join during a rolling restart finds the replica that just came back; with no
        # replica serving each attempt fails at once.
        async with self.joins.turn(meeting_id):
            if not self.reachable:
                raise EdgeError(ErrorCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
            reply = await self._call(
                self._stub.Join,
                request,
                retries=3,
                retry_on=frozenset({grpc.StatusCode.UNAVAILABLE}),
            )
        if self.on_instance is not None:
            self.on_instance(reply.instance_id)
        return reply

    async def leave(self, meeting_id: str, participant_id: str, reason: pb.LeaveReason.ValueType) -> bool:
        """Leave; True once the participant is gone (also when it already was)."""
        request = pb.LeaveRequest(meeting_id=meeting_id, participant_id=participant_id, reason=reason)
        try:
            await self._call(self._stub.Leave, request, retries=2)
        except EdgeError as exc:
            if exc.code is ErrorCode.NOT_IN_MEETING:
                return True
            raise
        return True

    async def hold(self, meeting_id: str, participant_id: str, silent_seconds: float) -> bool:
        """HoldSession: True when the participant is held for recovery (else it left)."""
        request = pb.HoldSessionRequest(
            meeting_id=meeting_id,
            participant_id=participant_id,
            edge_id=self.edge_id,
            silent_seconds=silent_seconds,
        )
        reply = await self._call(self._stub.HoldSession, request, retries=2)
        return reply.held

    async def recover(
        self, recovery_id: str, after: pb.StreamPosition | None, user_id: str, fresh_recovery_id: str
    ) -> pb.RecoverSessionResponse:
        """RecoverSession on this edge. Not retried after a deadline: it may have succeeded."""
        request = pb.RecoverSessionRequest(
            recovery_id=recovery_id,
            after=after,
            edge_id=self.edge_id,
            user_id=user_id,
            fresh_recovery_id=fresh_recovery_id,
        )
        return await self._call(
            self._stub.RecoverSession,
            request,
            retries=1,
            retry_on=frozenset({grpc.StatusCode.UNAVAILABLE}),
        )

    async def update_media(
        self, meeting_id: str, participant_id: str, changes: dict[str, bool]
    ) -> pb.UpdateMediaStateResponse:
        """Media change by the participant itself. Idempotent (absolute values)."""
        request = pb.UpdateMediaStateRequest(
            meeting_id=meeting_id,
            participant_id=participant_id,
            requested_by_participant_id=participant_id,
            **changes,
        )
        return await self._call(self._stub.UpdateMediaState, request, retries=1)

    async def send_signal(self, signal: pb.Signal) -> None:
        """A WebRTC signal. Not retried: a duplicate offer would confuse the peer."""
        request = pb.SendSignalRequest(signal=signal)
        await self._call(self._stub.SendSignal, request)

    async def send_chat(self, meeting_id: str, participant_id: str, text: str) -> pb.SendChatResponse:
        """A chat message. Not retried: it would be sent twice."""
        request = pb.SendChatRequest(meeting_id=meeting_id, participant_id=participant_id, text=text)
        return await self._call(self._stub.SendChat, request)

    async def remove_participant(
        self, meeting_id: str, participant_id: str, requested_by: str
    ) -> pb.RemoveParticipantResponse:
        """Kick as the host."""
        request = pb.RemoveParticipantRequest(
            meeting_id=meeting_id, participant_id=participant_id, requested_by_participant_id=requested_by
        )
        return await self._call(self._stub.RemoveParticipant, request)

    async def end_meeting(self, meeting_id: str, requested_by: str) -> pb.EndMeetingResponse:
        """End the meeting as the host."""
        request = pb.EndMeetingRequest(meeting_id=meeting_id, requested_by_participant_id=requested_by)
        return await self._call(self._stub.EndMeeting, request)

    async def heartbeat(self) -> pb.HeartbeatResponse:
        """Renews this edge's lease."""
        request = pb.HeartbeatRequest(edge_id=self.edge_id)
        # Idempotent: retried once when it reached no replica (one just died), so a
        # replica's death does not flip this edge to not-ready. wait_for_ready: in a
        # rolling restart the replica still up may stop while the channel is in its
        # reconnect backoff towards the one that just came back; failing fast then would
        # mark the service unreachable (and refuse every join at once) although a
        # replica is serving. The wait is bounded well under the RPC deadline.
        try:
            reply = await self._call(
                self._stub.Heartbeat,
                request,
                deadline=min(self._timeout, _RECONNECT_WAIT),
                wait_for_ready=True,
                retries=1,
                retry_on=frozenset({grpc.StatusCode.UNAVAILABLE}),
            )
        except EdgeError:
            self.reachable = False
            raise
        self.reachable = True
        return reply

    async def restore(self, sessions: Sequence[pb.SessionRecord]) -> pb.RestoreSessionsResponse:
        """Re-announces this edge's sockets. Idempotent: known participants are skipped."""
        request = pb.RestoreSessionsRequest(edge_id=self.edge_id, sessions=sessions)
        return await self._call(self._stub.RestoreSessions, request, retries=2)

    def watch_room(self, meeting_id: str, after: pb.StreamPosition) -> CountedStream[pb.WatchRoomResponse]:
        """The room's event stream after `after` (no deadline: it lives as long as the room)."""
        request = pb.WatchRoomRequest(meeting_id=meeting_id, after=after, batch=True)
        rpc = self._metrics.start(SERVER_STREAM, _METHOD_FOR[request.DESCRIPTOR.full_name])
        return rpc.responses(self._stub.WatchRoom(request, metadata=self._metadata))

    def watch_edge(self) -> CountedStream[pb.WatchEdgeResponse]:
        """The stream of signals for this edge's sockets."""
        request = pb.WatchEdgeRequest(edge_id=self.edge_id)
        rpc = self._metrics.start(SERVER_STREAM, _METHOD_FOR[request.DESCRIPTOR.full_name])
        return rpc.responses(self._stub.WatchEdge(request, metadata=self._metadata))

"""The edge's runtime: its sessions, its room relays and its link to the room service
(lease heartbeats, re-announcing sockets after a room service restart, signal stream)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import grpc
import socketio

from edge_gateway import events, wire
from edge_gateway.engine import EdgeSocketServer
from edge_gateway.errors import EdgeError
from edge_gateway.events import SIGNAL_EVENT_OF
from edge_gateway.metrics import EdgeMetrics
from edge_gateway.relay import RoomRelay
from edge_gateway.relay_host import Broadcast, Payload
from edge_gateway.relay_view import views_from
from edge_gateway.rpc import RoomClient
from edge_gateway.sessions import Session, SessionRegistry, room_name
from meeting.v1 import room_service_pb2 as pb

log = logging.getLogger("edge_gateway")

# While the room service is unreachable the edge knocks this often (seconds): after a
# restart it must re-announce its sockets well within the service's restore grace.
_DOWN_RETRY_SECONDS = 0.25
# Longest a relay holds a local joiner's own join broadcast for its `meeting-joined`
# (seconds). The reply is normally already in flight; this only bounds a stalled handler.
_JOIN_ORDER_WAIT_SECONDS = 5.0


class Hub:
    """Everything one edge process knows, none of it authoritative."""

    def __init__(self, sio: socketio.AsyncServer, client: RoomClient, metrics: EdgeMetrics) -> None:
        self.sio = sio
        self.client = client
        self.metrics = metrics
        self.sessions = SessionRegistry()
        self.relays: dict[str, RoomRelay] = {}
        self.room_service_up = False
        self._tasks: list[asyncio.Task[None]] = []
        # Leaves the room service has not confirmed yet; retried until it does.
        self._unconfirmed_leaves: dict[str, tuple[str, pb.LeaveReason.ValueType]] = {}
        self._leave_retry = asyncio.Event()
        # The room service state our sockets were last announced to (its instance id);
        # a reply naming another one means it lost them, whichever call saw it first.
        self._instance: str | None = None
        self._recheck = asyncio.Event()
        client.on_instance = self._instance_seen
        # Sockets whose join is in flight, set once their `meeting-joined` is written: the
        # room stream may bring their join before the Join reply, and the others must not
        # hear of a joiner before it hears it is in (the seed's order).
        self._joining: dict[str, asyncio.Event] = {}
        # Closes a socket whose session a reconnection through another edge took over.
        self.on_session_moved: Callable[[str], Awaitable[None]] | None = None

    # -- emitting ---------------------------------------------------------------------

    async def emit(self, event: str, data: Payload, *, to: str | Broadcast) -> None:
        """Emits and counts; a broadcast is encoded once for all its sockets."""
        if isinstance(to, Broadcast):
            await self.sio.emit(event, data, room=to.room, skip_sid=to.skip_sid)
        else:
            await self.sio.emit(event, data, to=to)
        self.metrics.emitted(event)

    async def emit_now(self, event: str, data: Payload, *, to: str) -> None:
        """Emits to one socket and writes at once: a reply its client waits for does not wait
        for the next write of all sockets (after this loop iteration, or under load after the
        write window)."""
        await self.emit(event, data, to=to)
        if isinstance(self.sio, EdgeSocketServer):
            self.sio.flush(to)

    async def enter_room(self, sid: str, room: str) -> None:
        """Puts a socket in a Socket.IO room (for its relay)."""
        await self.sio.enter_room(sid, room)

    def watch_room(self, meeting_id: str, position: pb.StreamPosition) -> Any:
        """Opens a room's event stream (for its relay)."""
        return self.client.watch_room(meeting_id, position)

    @contextlib.contextmanager
    def joining(self, sid: str) -> Iterator[None]:
        """Marks a socket's join in flight until the block ends (its `meeting-joined`
        written, or the join failed): relays hold its own join broadcast meanwhile."""
        written = self._joining[sid] = asyncio.Event()
        try:
            yield
        finally:
            written.set()
            if self._joining.get(sid) is written:
                del self._joining[sid]

    async def joiner_told(self, participant: pb.Participant) -> None:
        """Returns once a joiner on this edge has its `meeting-joined` (bounded wait);
        at once for anyone else."""
        if participant.edge_id != self.client.edge_id:
            return
        written = self._joining.get(participant.socket_id)
        if written is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(written.wait(), _JOIN_ORDER_WAIT_SECONDS)

    # -- sessions ---------------------------------------------------------------------

    async def attach(self, session: Session, missed: Sequence[pb.RoomEvent] = ()) -> None:
        """Registers a socket that just got `meeting-joined` (or was recovered, owed the
        `missed` events first) and puts it in step."""
        self.sessions.add(session)
        relay = self.relays.get(session.meeting_id)
        if relay is None or relay.closed:
            relay = RoomRelay(
                self,
                session.meeting_id,
                session.position,
                views_from(session.roster, session.participant),
            )
            self.relays[session.meeting_id] = relay
            relay.start()
        await relay.register(session, missed)

    async def detach(self, sid: str) -> Session | None:
        """Takes a socket out of its meeting locally (no RPC) and returns its session."""
        session = self.sessions.remove(sid)
        if session is None:
            return None
        relay = self.relays.get(session.meeting_id)
        if relay is not None:
            relay.unregister(sid)
            if relay.empty:
                del self.relays[session.meeting_id]
                await relay.close()
        with contextlib.suppress(KeyError, ValueError):
            await self.sio.leave_room(sid, room_name(session.meeting_id))
        return session

    async def drop_session(self, sid: str) -> None:
        """The room closed under the socket: forget it locally."""
        await self.detach(sid)

    async def local_participant_left(self, participant_id: str, reason: pb.LeaveReason.ValueType) -> None:
        """The stream says a participant left; if its socket is here, tell it and detach it."""
        session = self.sessions.by_participant(participant_id)
        if session is None:
            return
        await self.detach(session.sid)
        if reason == pb.LEAVE_REASON_KICKED:
            await self.emit(
                events.KICKED,
                {"meetingId": session.meeting_id, "participantId": participant_id, "reason": "kicked"},
                to=session.sid,
            )
        else:
            await self.emit(
                events.PARTICIPANT_LEFT, wire.participant_left(session.participant, reason), to=session.sid
            )

    async def leave(self, session: Session, reason: pb.LeaveReason.ValueType) -> None:
        """Tells the room service a session is over; retried in the background if it is down."""
        try:
            await self.client.leave(session.meeting_id, session.participant_id, reason)
        except EdgeError as exc:
            log.warning(
                "leave not confirmed; will retry",
                extra={"participant_id": session.participant_id, "code": exc.code.value},
            )
            self._unconfirmed_leaves[session.participant_id] = (session.meeting_id, reason)
            self._leave_retry.set()

    # -- the room service link --------------------------------------------------------

    def start(self, heartbeat_interval: float) -> None:
        """Starts the heartbeat, leave-retry and signal loops."""
        self._tasks = [
            asyncio.create_task(self._heartbeats(heartbeat_interval), name="heartbeats"),
            asyncio.create_task(self._retry_leaves(), name="leave-retries"),
            asyncio.create_task(self._signals(), name="signals"),
        ]

    async def stop(self) -> None:
        """Stops the loops and relays."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for relay in list(self.relays.values()):
            await relay.close()
        self.relays.clear()

    async def heartbeat_once(self) -> None:
        """Renews the lease; re-announces every session when the room service forgot us
        (it says so, or it answers from another instance: a Join may have made this edge
        known to a restarted service before any heartbeat got there)."""
        self._recheck.clear()
        try:
            reply = await self.client.heartbeat()
            if not reply.known or reply.instance_id != self._instance:
                if len(self.sessions):
                    await self._restore()
                self._instance = reply.instance_id  # only once announced: a failure retries
        except EdgeError:
            self._set_up(False)
            return
        self._set_up(True)

    def _instance_seen(self, instance_id: str) -> None:
        if self._instance is not None and instance_id != self._instance:
            self._recheck.set()  # heartbeat (and re-announce) now, not at the next tick

    def _set_up(self, up: bool) -> None:
        if up != self.room_service_up:
            log.info("room service reachable" if up else "room service unreachable")
        self.room_service_up = up
        self.metrics.room_service_up.set(1 if up else 0)

    async def _heartbeats(self, interval: float) -> None:
        while True:
            await self.heartbeat_once()
            pause = interval if self.room_service_up else min(interval, _DOWN_RETRY_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck.wait(), pause)

    async def _restore(self) -> None:
        sessions = self.sessions.all()
        records = [pb.SessionRecord(meeting_id=s.meeting_id, participant=s.participant) for s in sessions]
        reply = await self.client.restore(records)
        log.info(
            "re-announced sessions to the room service",
            extra={"sessions": len(records), "rejected": len(reply.rejected_participant_ids)},
        )
        for participant_id in reply.rejected_participant_ids:
            await self.local_participant_left(participant_id, pb.LEAVE_REASON_DISCONNECTED)

    async def confirm_leaves(self) -> None:
        """Tries the unconfirmed leaves once more, now: a socket that left and joins again
        must not find its old session still seated (it would be handed that session back,
        and lose it when the leave lands after all)."""
        for participant_id, (meeting_id, reason) in list(self._unconfirmed_leaves.items()):
            try:
                await self.client.leave(meeting_id, participant_id, reason)
                self._unconfirmed_leaves.pop(participant_id, None)
            except EdgeError:
                pass

    async def _retry_leaves(self) -> None:
        delay = 0.2
        while True:
            await self._leave_retry.wait()
            await self.confirm_leaves()
            if not self._unconfirmed_leaves:
                self._leave_retry.clear()
                delay = 0.2
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _signals(self) -> None:
        backoff = 0.1
        while True:
            call = self.client.watch_edge()
            try:
                async for item in call:
                    backoff = 0.1
                    await self._deliver_signal(item.signal)
            except grpc.aio.AioRpcError as exc:
                log.debug("signal stream broken", extra={"status": exc.code().name})
                # The room service may have gone (and may come back empty): check now,
                # so joins pause while it is down and our sockets are re-announced first.
                self._recheck.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _deliver_signal(self, signal: pb.Signal) -> None:
        session = self.sessions.by_sid(signal.target_socket_id)
        if session is None or session.participant_id != signal.target_participant_id:
            return  # the target left meanwhile: a signal is never given to anyone else
        if signal.type == pb.SIGNAL_TYPE_SESSION_MOVED:
            if self.on_session_moved is not None:
                await self.on_session_moved(session.sid)
            return
        try:
            body = json.loads(signal.payload_json) if signal.payload_json else {}
        except ValueError:
            body = {}
        data = body if isinstance(body, dict) else {"data": body}
        data.update(
            fromParticipantId=signal.from_participant_id, targetParticipantId=signal.target_participant_id
        )
        await self.emit(SIGNAL_EVENT_OF[signal.type], data, to=session.sid)

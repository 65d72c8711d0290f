"""Connection-state recovery at the edge: a recovery id (`pid`) per socket, a session held
when its transport closes without a goodbye, and a held session resumed for a client that
reconnects with `{pid, offset}`, here or through any other edge (the binding lives in the
room service)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from enum import Enum
from typing import Any

import socketio

from edge_gateway import events, wire
from edge_gateway.auth import Identity
from edge_gateway.connect import Admission
from edge_gateway.errors import EdgeError
from edge_gateway.hub import Hub
from edge_gateway.limits import EdgeLimits
from edge_gateway.sessions import Session
from meeting.v1 import room_service_pb2 as pb

log = logging.getLogger("edge_gateway.recovery")

# Disconnect reasons where the client said no goodbye: its session is held for recovery.
_PING_TIMEOUT = socketio.AsyncServer.reason.PING_TIMEOUT
_TRANSPORT_CLOSE = socketio.AsyncServer.reason.TRANSPORT_CLOSE
_UNANNOUNCED = frozenset({_TRANSPORT_CLOSE, socketio.AsyncServer.reason.TRANSPORT_ERROR, _PING_TIMEOUT})

JoinedPayload = Callable[[pb.RecoverSessionResponse, str], dict[str, Any]]
LockOf = Callable[[str], asyncio.Lock | None]


def recovery_claim(auth: Any) -> tuple[str, pb.StreamPosition | None] | None:
    """The `{pid, offset}` the official client merges into its auth when it reconnects."""
    if not isinstance(auth, dict):
        return None
    pid = auth.get("pid")
    if not isinstance(pid, str) or not 16 <= len(pid) <= 64:
        return None
    return pid, wire.position_of(auth.get("offset"))


class Release(Enum):
    """What became of the session of a socket that disconnected."""

    HELD = "held"
    """Held for recovery by the room service."""
    LET_GO = "let go"
    """The room service removed it (reason disconnected), or it was gone or taken over."""
    LEAVE = "leave"
    """The edge must leave it (a goodbye, or the room service did not answer)."""


class SessionRecovery:
    """The edge's side of recovery; the room service holds and binds sessions."""

    def __init__(
        self, hub: Hub, limits: EdgeLimits, silent_after_ping_timeout: float, joined_payload: JoinedPayload
    ) -> None:
        self._hub = hub
        self._limits = limits
        # How long a client was already silent when its ping timed out.
        self._silent_after_ping_timeout = silent_after_ping_timeout
        self._joined_payload = joined_payload
        # Recovery ids (the CONNECT answer's `pid`) by socket, and back.
        self._pids: dict[str, str] = {}
        self._sid_of_pid: dict[str, str] = {}
        # Sockets closed here because their client reconnected: held, never left.
        self._superseded: set[str] = set()

    def pid_of(self, sid: str) -> str:
        """The socket's recovery id (bound to its participant when it joins)."""
        return self._pids.get(sid, "")

    def bind(self, admission: Admission) -> None:
        """The socket is connected under `admission`'s sid and pid."""
        self._pids[admission.sid] = admission.pid
        self._sid_of_pid[admission.pid] = admission.sid

    async def supersede(self, sid: str) -> None:
        """Closes a socket whose client reconnected (here, or through another edge that
        took its session over): its session is held or let go, never left."""
        self._superseded.add(sid)
        await self._hub.sio.disconnect(sid)

    def superseded(self, sid: str) -> bool:
        """True when the socket is being closed here because its client reconnected."""
        return sid in self._superseded

    def forget(self, sid: str) -> None:
        """The socket's disconnect is done (its session held, or let go)."""
        pid = self._pids.pop(sid, None)
        if pid is not None and self._sid_of_pid.get(pid) == sid:
            del self._sid_of_pid[pid]
        self._superseded.discard(sid)

    async def release(self, session: Session, reason: str, superseded: bool) -> Release:
        """Hands the session of a socket that disconnected without a goodbye to the room
        service, which holds it for recovery or lets it go itself (it may have been taken
        over by a reconnection through another edge: then it must not leave). LEAVE when
        the edge must leave it: a goodbye, or no answer."""
        if not (superseded or reason in _UNANNOUNCED):
            return Release.LEAVE
        silent = self._silent_after_ping_timeout if reason == _PING_TIMEOUT else 0.0
        try:
            held = await self._hub.client.hold(session.meeting_id, session.participant_id, silent)
        except EdgeError:
            return Release.LEAVE
        return Release.HELD if held else Release.LET_GO

    async def admit(
        self, sid: str, eio_sid: str, auth: Any, identity: Identity | None, lock_of: LockOf
    ) -> Admission:
        """A fresh pid for a new socket; for a client presenting `{pid, offset}`, its held
        session under its old sid, with the events it missed sent after the CONNECT
        answer (the client then sees `socket.recovered === true`)."""
        fresh = Admission(sid=sid, pid=secrets.token_urlsafe(24))
        claim = recovery_claim(auth)
        if claim is None:
            return fresh
        pid, after = claim
        old_sid = self._sid_of_pid.get(pid)
        old_lock = lock_of(old_sid) if old_sid is not None else None
        if old_sid is not None and old_lock is not None:
            # Its old connection is still open here (a long-poll the server has not seen
            # fail yet), or closing: that socket goes, and its session is held, not left,
            # before the claim (a hold landing after it would hold the recovered session).
            await self.supersede(old_sid)
            async with old_lock:
                pass
        user_id = identity.user_id if identity is not None else ""
        try:
            reply = await self._hub.client.recover(pid, after, user_id, fresh.pid)
        except EdgeError as exc:
            log.info("session not recovered", extra={"sid": sid, "code": exc.code.value})
            return fresh
        session = Session(
            sid=reply.socket_id,
            meeting_id=reply.meeting.id,
            participant=reply.participant,
            position=(reply.position.sequence, reply.position.epoch),
            roster=reply.participants,
        )
        taken = not self._hub.sio.sid_free(session.sid)
        if taken or not self._limits.engine_open(eio_sid) or not self._limits.admit(session.sid, eio_sid):
            # Its sid is in use here, or the new connection closed meanwhile.
            log.warning("recovered session cannot be resumed; held again", extra={"sid": session.sid})
            await self._hold_again(session)
            return fresh
        self._limits.release(sid)

        async def resume() -> None:
            lock = lock_of(session.sid)
            if lock is None:
                await self._hold_again(session)  # gone again before its CONNECT answer was out
                return
            async with lock:
                if reply.resynced:
                    # The log no longer reaches back: not recovered, and told so.
                    joined = (self._joined_payload(reply, session.sid), wire.offset(session.position))
                    await self._hub.emit(events.MEETING_JOINED, joined, to=session.sid)
                await self._hub.attach(session, () if reply.resynced else reply.missed)

        return Admission(sid=session.sid, pid=fresh.pid if reply.resynced else pid, then=resume)

    async def _hold_again(self, session: Session) -> None:
        """A recovered session that found no socket here: held once more, or it leaves."""
        if await self.release(session, _TRANSPORT_CLOSE, False) is Release.LEAVE:
            await self._hub.leave(session, pb.LEAVE_REASON_DISCONNECTED)

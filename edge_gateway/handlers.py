"""Socket.IO event handlers: one per client event, each validate → call → reply.

Every handler answers an acknowledgement when the client asked for one:
`{success: true, ...}` or `{success: false, error: {code, message}}`; a failure is also
sent as an `error {code, message}` event. A socket's events are handled one at a time,
in arrival order (a lock per socket), so `join-meeting` then `update-media` can never run
the other way round, and a disconnect waits for an in-flight join to finish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import socketio

from edge_gateway import events
from edge_gateway.auth import Authenticator, Identity, NoAuth
from edge_gateway.connect import Admission
from edge_gateway.errors import EdgeError
from edge_gateway.expiry import TokenDeadlines, iso_time
from edge_gateway.hub import Hub
from edge_gateway.limits import EdgeLimits, LimitSettings
from edge_gateway.metrics import event_label
from edge_gateway.recovery import Release, SessionRecovery
from edge_gateway.room_commands import Handler, Reply, RoomCommands, WebRtcConfig
from meeting.v1 import room_service_pb2 as pb
from meeting_common.codes import ErrorCode

log = logging.getLogger("edge_gateway")


class EventHandlers(RoomCommands):
    """The handlers of one edge, bound to its hub."""

    def __init__(
        self,
        hub: Hub,
        webrtc_config: WebRtcConfig,
        max_signal_bytes: int,
        *,
        authenticator: Authenticator | None = None,
        limits: EdgeLimits | None = None,
        token_warning_seconds: float = 60.0,
        token_grace_seconds: float = 10.0,
        silent_after_ping_timeout: float = 8.0,
    ) -> None:
        self.hub = hub
        self.authenticator: Authenticator = authenticator or NoAuth()
        self.limits = limits or EdgeLimits(LimitSettings())
        # Verified identities by socket (jwt mode only): join-meeting may only use these.
        self._identities: dict[str, Identity] = {}
        self._webrtc_config = webrtc_config
        self._max_signal_bytes = max_signal_bytes
        self._locks: dict[str, asyncio.Lock] = {}
        self.recovery = SessionRecovery(hub, self.limits, silent_after_ping_timeout, self._joined_payload)
        hub.on_session_moved = self.recovery.supersede
        self.draining = False
        self.deadlines = TokenDeadlines(
            warn_before=token_warning_seconds,
            grace=token_grace_seconds,
            on_warning=self._token_expiring,
            on_expiry=self._token_expired,
        )

    def register(self, sio: socketio.AsyncServer) -> None:
        """Binds every handler to its event name."""
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        handlers: dict[str, Handler] = {
            events.JOIN_MEETING: self.join_meeting,
            events.LEAVE_MEETING: self.leave_meeting,
            events.UPDATE_MEDIA: self.update_media,
            events.CHAT_MESSAGE: self.chat_message,
            events.KICK_PARTICIPANT: self.kick_participant,
            events.END_MEETING: self.end_meeting,
            events.REFRESH_TOKEN: self.refresh_token,
        }
        for name in events.SIGNAL_TYPE_OF:
            handlers[name] = self._signal_handler(name)
        for name, handler in handlers.items():
            sio.on(name, self._wrap(name, handler))
        sio.on("*", self.on_unknown)

    # -- connection lifecycle ---------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> Admission | bool:
        """Authenticates and admits the socket; a refusal reaches the client as connect_error."""
        if self.draining:
            return False
        eio_sid = self.hub.sio.manager.eio_sid_from_sid(sid, "/")
        try:
            identity = await self.authenticator.authenticate(auth, environ)
            if not self.limits.engine_open(eio_sid):
                # Closed while its token was checked: the disconnect handler will never
                # run for it, so nothing may be set up for it here.
                return False
            if not self.limits.admit(sid, eio_sid):
                raise EdgeError(ErrorCode.RATE_LIMITED, "Too many connections from this address")
        except EdgeError as exc:
            self.hub.metrics.errors.labels(code=exc.code.value).inc()
            log.info("connection refused", extra={"sid": sid, "code": exc.code.value, "reason": exc.message})
            # The client's connect_error gets `message` and `data: {code, message}`.
            raise socketio.exceptions.ConnectionRefusedError(exc.message, exc.payload()) from None
        admission = await self.recovery.admit(sid, eio_sid, auth, identity, self._locks.get)
        sid = admission.sid
        if identity is not None:
            self._identities[sid] = identity
            if identity.expires_at is not None:
                self.deadlines.track(sid, identity.expires_at)
        self._locks[sid] = asyncio.Lock()
        self.recovery.bind(admission)
        self.hub.metrics.sockets.inc()
        log.info(f"✅ Socket connected: {sid}", extra={"sid": sid, "recovered": admission.then is not None})
        return admission

    async def on_disconnect(self, sid: str, reason: str = "", *_: Any) -> None:
        """Leaves the socket's meeting with reason `disconnected`; a transport that closed
        without a goodbye only holds it for recovery (the room service decides for how long)."""
        self.limits.release(sid)
        self._identities.pop(sid, None)
        self.deadlines.forget(sid)
        lock = self._locks.get(sid)
        if lock is None:
            self.recovery.forget(sid)
            return
        async with lock:
            session = await self.hub.detach(sid)
            if session is not None:
                extra = {
                    "sid": sid,
                    "meeting_id": session.meeting_id,
                    "participant_id": session.participant_id,
                    "reason": reason,
                }
                superseded = self.recovery.superseded(sid)
                released = await self.recovery.release(session, reason, superseded)
                if released is Release.HELD:
                    log.info("socket lost its transport; session held for recovery", extra=extra)
                elif superseded and released is Release.LET_GO:
                    log.info("socket closed: its client resumed the session elsewhere", extra=extra)
                else:
                    name = session.participant.user_name
                    log.info(f"👋 User {name} disconnected from meeting {session.meeting_id}", extra=extra)
                if released is Release.LEAVE:
                    await self.hub.leave(session, pb.LEAVE_REASON_DISCONNECTED)
        # Only now: a reconnection of its client waits for this socket's session to be held.
        self.recovery.forget(sid)
        self._locks.pop(sid, None)
        self.hub.metrics.sockets.dec()

    async def on_unknown(self, event: str, sid: str, *args: Any) -> dict[str, Any]:
        """Any other event: refused, nothing changes."""
        self.hub.metrics.received.labels(event=event_label(str(event))).inc()
        error = EdgeError(ErrorCode.INVALID_PAYLOAD, "Unknown event")
        try:
            self.limits.check_event(sid, str(event), ())
        except EdgeError as exc:
            error = exc
        return await self._refuse(sid, error)

    # -- plumbing ---------------------------------------------------------------------

    def _wrap(self, name: str, handler: Handler) -> Callable[..., Awaitable[Reply]]:
        received = self.hub.metrics.received.labels(event=name)  # looked up once, not per event

        async def run(sid: str, *args: Any) -> Reply:
            received.inc()
            try:
                self.limits.check_event(sid, name, args)
            except EdgeError as exc:
                return await self._refuse(sid, exc)
            lock = self._locks.get(sid)
            if lock is None:
                return await self._refuse(sid, EdgeError(ErrorCode.UNAVAILABLE, "Socket is closing"))
            async with lock:
                try:
                    reply = await handler(sid, args)
                    return reply if isinstance(reply, orjson.Fragment) else {"success": True, **reply}
                except EdgeError as exc:
                    self.limits.record_error(sid, name, exc.code, args)
                    return await self._refuse(sid, exc)
                except Exception:
                    log.exception("handler failed", extra={"event": name, "sid": sid})
                    return await self._refuse(sid, EdgeError(ErrorCode.INTERNAL, "Internal error"))

        return run

    async def _refuse(self, sid: str, error: EdgeError) -> dict[str, Any]:
        self.hub.metrics.errors.labels(code=error.code.value).inc()
        await self.hub.emit(events.ERROR, error.payload(), to=sid)
        return {"success": False, "error": error.payload()}

    async def _token_expiring(self, sid: str, expires_at: float) -> None:
        payload = {
            "expiresAt": iso_time(expires_at),
            "expiresIn": max(0, round(expires_at - time.time())),
        }
        await self.hub.emit(events.TOKEN_EXPIRING, payload, to=sid)

    async def _token_expired(self, sid: str, expires_at: float) -> None:
        """No refresh came: the socket is closed (its meeting sees it leave)."""
        log.info("token expired without a refresh; disconnecting", extra={"sid": sid})
        error = EdgeError(ErrorCode.UNAUTHENTICATED, "Token has expired")
        self.hub.metrics.errors.labels(code=error.code.value).inc()
        await self.hub.emit(events.ERROR, error.payload(), to=sid)
        await self.hub.sio.disconnect(sid)

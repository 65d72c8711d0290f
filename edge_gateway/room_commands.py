"""The room commands a socket sends (join, leave, media, signals, chat, kick, end,
token refresh): each validates its payload, calls the room service, and says what to reply.
EventHandlers (handlers.py) wraps them with the per-socket lock and the acknowledgement."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from edge_gateway import events, wire
from edge_gateway.auth import Authenticator, Identity
from edge_gateway.errors import EdgeError
from edge_gateway.expiry import TokenDeadlines, iso_time
from edge_gateway.hub import Hub
from edge_gateway.payloads import (
    MAX_SIGNAL_DEPTH,
    ChatMessage,
    EndMeeting,
    JoinMeeting,
    KickParticipant,
    LeaveMeeting,
    RefreshToken,
    UpdateMedia,
    WebRtcSignal,
    nesting_depth,
    parse,
)
from edge_gateway.recovery import SessionRecovery
from edge_gateway.sessions import Session
from meeting.v1 import room_service_pb2 as pb
from meeting_common.codes import ErrorCode
from meeting_common.logs import plural as _plural

log = logging.getLogger("edge_gateway")

Reply = dict[str, Any] | orjson.Fragment
"""A handler's acknowledgement: its fields (`success: true` is added), or a whole reply
serialised already (the join's, whose bytes its `meeting-joined` carries too)."""
Handler = Callable[[str, tuple[Any, ...]], Awaitable[Reply]]
WebRtcConfig = Callable[[str, float | None], dict[str, Any]]


class RoomCommands:
    """The client events that act on a room; EventHandlers provides their state."""

    hub: Hub
    authenticator: Authenticator
    recovery: SessionRecovery
    deadlines: TokenDeadlines
    draining: bool
    _identities: dict[str, Identity]
    _webrtc_config: WebRtcConfig
    _max_signal_bytes: int

    def _authorized_name(self, sid: str, request: JoinMeeting) -> str:
        """The display name to join with; FORBIDDEN when the token names another user."""
        identity = self._identities.get(sid)
        if identity is None:
            return request.userName
        if request.userId != identity.user_id:
            raise EdgeError(ErrorCode.FORBIDDEN, "userId does not match the authenticated user")
        return identity.user_name or request.userName

    def _joined_payload(
        self,
        reply: pb.JoinResponse | pb.RecoverSessionResponse,
        sid: str,
        roster: orjson.Fragment | None = None,
    ) -> dict[str, Any]:
        """`meeting-joined` (and the join's ack): the meeting, the socket's participant and
        everyone else as of the reply's position (`roster`: that list as JSON already)."""
        return {
            "success": True,
            "meeting": wire.meeting(reply.meeting),
            "participantId": reply.participant.participant_id,
            "participant": wire.participant(reply.participant),
            "participants": roster
            if roster is not None
            else [wire.participant(p) for p in reply.participants],
            "permissions": wire.permissions(reply.participant.permissions),
            "webrtcConfig": self._webrtc_config(reply.participant.user_id, self.deadlines.expires_at(sid)),
        }

    def _session(self, sid: str, meeting_id: str | None = None) -> Session:
        session = self.hub.sessions.by_sid(sid)
        if session is None or (meeting_id is not None and session.meeting_id != meeting_id):
            raise EdgeError(ErrorCode.NOT_IN_MEETING, "Not in this meeting")
        return session

    # -- events -----------------------------------------------------------------------

    async def join_meeting(self, sid: str, args: tuple[Any, ...]) -> orjson.Fragment:
        """`join-meeting` → `meeting-joined` to the joiner; the relay tells the others."""
        started = time.perf_counter()
        request = parse(JoinMeeting, args)
        user_name = self._authorized_name(sid, request)
        if self.draining:
            raise EdgeError(ErrorCode.UNAVAILABLE, "Server is shutting down, please reconnect")
        if not self.hub.room_service_up:
            # Known to be down (or frozen): refuse at once instead of letting the user
            # wait for a deadline. The edge re-checks every quarter second meanwhile.
            raise EdgeError(ErrorCode.UNAVAILABLE, "Meeting service is unavailable, please retry")
        current = self.hub.sessions.by_sid(sid)
        if current is not None and current.meeting_id != request.meetingId:
            await self.hub.detach(sid)
            await self.hub.leave(current, pb.LEAVE_REASON_LEFT)
            current = None
        if current is None:
            await self.hub.confirm_leaves()
        media = None
        if request.audio is not None or request.video is not None:
            media = pb.MediaState(audio=request.audio is not False, video=request.video is not False)
        with self.hub.joining(sid):
            reply = await self.hub.client.join(
                request.meetingId,
                request.userId,
                user_name,
                request.meeting_password or "",
                media,
                sid,
                self.recovery.pid_of(sid),
            )
            position = (reply.position.sequence, reply.position.epoch)
            # The roster as this edge's view of the room has it, when that stands where the
            # reply does (each entry converted once per room, not once per joiner).
            relay = self.hub.relays.get(request.meetingId)
            me, own_join = reply.participant.participant_id, not reply.already_joined
            roster = relay.roster_json(position, me, own_join=own_join) if relay is not None else None
            # Serialised once: the ack repeats `meeting-joined` (roster included) byte for byte.
            payload = orjson.Fragment(
                orjson.dumps(
                    self._joined_payload(reply, sid, None if roster is None else orjson.Fragment(roster))
                )
            )
            if current is not None:
                # Same meeting again. The fresh roster is as of the log head, which the room
                # stream may not have relayed yet: out of the room until re-registered at the
                # head, or events already in the roster would reach the socket a second time.
                await self.hub.detach(sid)
            # Its own join's position is where the socket's room view starts: the recovery offset.
            await self.hub.emit_now(events.MEETING_JOINED, (payload, wire.offset(position)), to=sid)
        session = Session(
            sid=sid,
            meeting_id=request.meetingId,
            participant=reply.participant,
            position=position,
            roster=reply.participants,
        )
        await self.hub.attach(session)
        count = len(reply.participants)
        log.info(
            f"📤 Sent meeting-joined to {sid} with {_plural(count, 'existing participant')}",
            extra={
                "sid": sid,
                "meeting_id": request.meetingId,
                "participant_id": reply.participant.participant_id,
                "existing": count,
            },
        )
        self.hub.metrics.join_duration.observe(time.perf_counter() - started)
        return payload

    async def leave_meeting(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`leave-meeting` → `participant-left` (reason `left`) to the others."""
        request = parse(LeaveMeeting, args, optional=True)
        session = self._session(sid, request.meetingId)
        await self.hub.detach(sid)
        await self.hub.leave(session, pb.LEAVE_REASON_LEFT)
        log.info(
            f"👋 User {session.participant.user_name} left meeting {session.meeting_id}",
            extra={"sid": sid, "meeting_id": session.meeting_id, "participant_id": session.participant_id},
        )
        return {"meetingId": session.meeting_id, "participantId": session.participant_id}

    async def update_media(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`update-media` → `participant-updated` to the others."""
        request = parse(UpdateMedia, args)
        changes = request.changes()
        if not changes:
            raise EdgeError(ErrorCode.INVALID_PAYLOAD, "Give at least one of audio, video, screen")
        session = self._session(sid)
        reply = await self.hub.client.update_media(session.meeting_id, session.participant_id, changes)
        session.participant = reply.participant
        return wire.participant_updated(reply.participant, session.participant_id)

    def _signal_handler(self, name: str) -> Handler:
        async def relay_signal(sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
            request = parse(WebRtcSignal, args)
            session = self._session(sid)
            body = {k: v for k, v in (request.model_extra or {}).items()}
            if nesting_depth(body) > MAX_SIGNAL_DEPTH:
                raise EdgeError(ErrorCode.INVALID_PAYLOAD, "Signal is nested too deeply")
            try:
                # Strict JSON: binary would crash the encoder, and NaN/Infinity would reach
                # the target's browser as text its JSON parser rejects, dropping its socket.
                encoded = json.dumps(body, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError):
                raise EdgeError(ErrorCode.INVALID_PAYLOAD, "Signal must be plain JSON") from None
            if len(encoded) > self._max_signal_bytes:
                raise EdgeError(ErrorCode.INVALID_PAYLOAD, "Signal is too large")
            await self.hub.client.send_signal(
                pb.Signal(
                    type=events.SIGNAL_TYPE_OF[name],
                    meeting_id=session.meeting_id,
                    from_participant_id=session.participant_id,
                    target_participant_id=request.targetParticipantId,
                    payload_json=encoded,
                )
            )
            return {"targetParticipantId": request.targetParticipantId}

        return relay_signal

    async def chat_message(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`chat-message` → `chat-message` to everyone in the room."""
        request = parse(ChatMessage, args)
        session = self._session(sid)
        reply = await self.hub.client.send_chat(session.meeting_id, session.participant_id, request.text)
        return {"message": wire.chat(reply.message)}

    async def kick_participant(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`kick-participant` (host only) → `kicked` to the target, `participant-left` to the rest."""
        request = parse(KickParticipant, args)
        session = self._session(sid)
        await self.hub.client.remove_participant(
            session.meeting_id, request.participantId, session.participant_id
        )
        return {"participantId": request.participantId}

    async def end_meeting(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`end-meeting` (host only) → `meeting-ended` to everyone; the room closes."""
        parse(EndMeeting, args, optional=True)
        session = self._session(sid)
        await self.hub.client.end_meeting(session.meeting_id, session.participant_id)
        return {"meetingId": session.meeting_id}

    # -- token expiry (edge_gateway.expiry) -------------------------------------------

    async def refresh_token(self, sid: str, args: tuple[Any, ...]) -> dict[str, Any]:
        """`refresh-token {token}`: a new token for the same user moves the socket's expiry
        (and comes with fresh TURN credentials that do not outlive it)."""
        request = parse(RefreshToken, args)
        current = self._identities.get(sid)
        identity = await self.authenticator.authenticate({"token": request.token}, {})
        if identity is None or current is None:
            return {"expiresAt": None}  # authentication is off: nothing expires
        if identity.user_id != current.user_id:
            raise EdgeError(ErrorCode.FORBIDDEN, "Token is for another user")
        self._identities[sid] = identity
        expires_at = identity.expires_at
        if expires_at is not None:
            self.deadlines.track(sid, expires_at)
        log.info("token refreshed", extra={"sid": sid})
        return {
            "expiresAt": iso_time(expires_at) if expires_at is not None else None,
            "webrtcConfig": self._webrtc_config(identity.user_id, expires_at),
        }

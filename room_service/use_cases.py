"""The room service's use cases: meetings, joins and leaves, media, chat and signals.

Each checks (passwords, permissions, lengths), delegates the change to one atomic store
call, and logs the seed's console lines as structured records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from meeting_common.logs import plural
from room_service.domain import errors, rules
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import ChatSent, RoomEvent
from room_service.domain.models import (
    ChatMessage,
    LeaveReason,
    Meeting,
    Participant,
    Position,
    RoomSummary,
    Signal,
    Snapshot,
)
from room_service.domain.passwords import hash_password
from room_service.domain.requests import JoinOutcome, JoinSpec, MediaChange
from room_service.manager_core import ManagerCore
from room_service.store.base import StoreUnavailableError

log = logging.getLogger("room_service")


class UseCases(ManagerCore):
    """Meetings, participants and messaging; every method may raise DomainError."""

    # -- meetings ---------------------------------------------------------------------

    async def upsert_meeting(self, meeting: Meeting, password: str | None) -> Meeting:
        """Creates or replaces a meeting; a password is stored only as a slow hash."""
        if not meeting.id or len(meeting.id) > 128:
            raise errors.invalid("meeting id must be 1 to 128 characters")
        password_hash = await asyncio.to_thread(hash_password, password) if password else None
        stored = await self._store.upsert_meeting(_with_hash(meeting, password_hash))
        log.info("Meeting registered", extra={"meeting_id": stored.id, "status": stored.status.value})
        return stored

    async def get_meeting(self, meeting_id: str) -> Meeting:
        """A meeting; MEETING_NOT_FOUND when unknown."""
        return await self._store.get_meeting(meeting_id)

    async def end_meeting(self, meeting_id: str, requested_by: str) -> tuple[Meeting, Position]:
        """Ends a meeting; `requested_by` (a participant id) must be its host when given."""
        if not rules.is_internal(requested_by):
            rules.require_may_end(await self._store.get_participant(meeting_id, requested_by))
        drop_at = self._clock() + self._options.ended_room_retention_seconds
        meeting, event = await self._store.end_meeting(meeting_id, requested_by, drop_at)
        if event is not None:
            await self._published(event)
        if self._options.ban_kicked_users:
            await self._store.clear_bans(meeting_id)
        log.info("🏁 Meeting ended", extra={"meeting_id": meeting_id, "ended_by": requested_by or "service"})
        position = event.position if event is not None else Position(0, "")
        return meeting, position

    # -- participants -----------------------------------------------------------------

    async def join(self, spec: JoinSpec, password: str) -> JoinOutcome:
        """Validates the meeting and password, then adds the participant atomically."""
        try:
            outcome = await self._join(spec, password)
        except DomainError as exc:
            self._metrics.joins.labels(result=exc.code.value).inc()
            raise
        except Exception:
            self._metrics.joins.labels(result=ErrorCode.INTERNAL.value).inc()
            raise
        self._metrics.joins.labels(result="ok").inc()
        return outcome

    async def _join(self, spec: JoinSpec, password: str) -> JoinOutcome:
        if not self.store_answering:
            raise StoreUnavailableError(
                "Meeting service is unavailable, please retry", cause="store known down (pings unanswered)"
            )
        lease_until = self._clock() + self._options.edge_lease_seconds
        if not self._options.ban_kicked_users:
            # One round trip unless the meeting turns out to have a password.
            opened = await self._store.join_open(spec, lease_until)
            if opened is not None:
                return self._joined(spec, opened)
        meeting = await self._store.get_meeting(spec.meeting_id)
        rules.require_joinable(meeting)
        if self._options.ban_kicked_users and await self._store.is_banned(spec.meeting_id, spec.user_id):
            raise errors.forbidden("You were removed from this meeting by the host and cannot rejoin it")
        if meeting.password_hash is not None:
            # A socket already in the room proved the password when it joined: its
            # repeat join costs no hash.
            again = await self._store.rejoin(spec)
            if again is not None:
                return again
            await self._passwords.check(
                spec.meeting_id, meeting.password_hash, password, spec.edge_id, spec.socket_id
            )
        outcome = await self._store.join(spec, meeting, lease_until)
        return self._joined(spec, outcome)

    def _joined(self, spec: JoinSpec, outcome: JoinOutcome) -> JoinOutcome:
        """Reports a join that happened: who it replaced, its log lines and metrics."""
        if outcome.already_joined:
            return outcome
        for old in outcome.replaced:
            self._left(spec.meeting_id, old, LeaveReason.REPLACED, len(outcome.others))
        p = outcome.participant
        self._metrics.events.labels(type="participant_joined").inc()
        log.info(
            f"✅ User {p.user_name} ({p.user_id}) joined meeting {spec.meeting_id} as {p.participant_id}",
            extra={
                "meeting_id": spec.meeting_id,
                "user_id": p.user_id,
                "participant_id": p.participant_id,
                "sequence": outcome.position.sequence,
            },
        )
        others = len(outcome.others)
        log.info(
            f"📤 Broadcast participant-joined to {plural(others, 'other participant')}",
            extra={"meeting_id": spec.meeting_id, "participant_id": p.participant_id, "recipients": others},
        )
        return outcome

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        """Removes a participant at its own (or its socket's) request."""
        event = await self._store.leave(meeting_id, participant_id, reason)
        await self._published(event)
        return event

    async def remove_participant(self, meeting_id: str, participant_id: str, requested_by: str) -> RoomEvent:
        """Kicks a participant; `requested_by` must be the host when given."""
        if not rules.is_internal(requested_by):
            rules.require_may_kick(
                await self._store.get_participant(meeting_id, requested_by), participant_id
            )
        if self._options.ban_kicked_users:
            # Banned before it leaves, so that no rejoin slips in between.
            kicked = await self._store.get_participant(meeting_id, participant_id)
            await self._store.ban_user(meeting_id, kicked.user_id)
        return await self.leave(meeting_id, participant_id, LeaveReason.KICKED)

    async def update_media(self, change: MediaChange) -> tuple[Participant, RoomEvent | None]:
        """Changes media state: the participant itself, or an internal service (empty)."""
        if change.screen:
            # Turning sharing on depends on the participant's permission: read it first.
            participant = await self._store.get_participant(change.meeting_id, change.participant_id)
            rules.require_may_change_media(participant, change)
        else:
            # Nothing to read (a store round trip on Redis): the change itself answers
            # NOT_IN_MEETING for a participant who is not there.
            rules.require_own_media(change)
        updated, event = await self._store.update_media(change)
        if event is not None:
            await self._published(event)
        return updated, event

    async def list_participants(self, meeting_id: str) -> Snapshot:
        """The room's participants and the position they reflect."""
        return await self._store.snapshot(meeting_id)

    async def list_rooms(self) -> list[RoomSummary]:
        """Rooms with participants."""
        return await self._store.list_rooms()

    # -- messaging --------------------------------------------------------------------

    async def send_chat(
        self, meeting_id: str, participant_id: str, text: str
    ) -> tuple[ChatMessage, Position]:
        """Broadcasts a chat message after the length and permission checks."""
        text = text.strip()
        if not text:
            raise errors.invalid("chat text is empty")
        if len(text) > self._options.max_chat_length:
            raise errors.invalid(f"chat text is longer than {self._options.max_chat_length} characters")
        sender = await self._store.get_participant(meeting_id, participant_id)
        rules.require_may_chat(sender)
        event = await self._store.append_chat(meeting_id, participant_id, text)
        await self._published(event)
        assert isinstance(event.payload, ChatSent)
        return event.payload.message, event.position

    async def send_signal(self, signal: Signal) -> None:
        """Routes a WebRTC signal to the target's edge; both must be in the meeting."""
        if signal.target_participant_id == signal.from_participant_id:
            raise errors.invalid("a signal needs another participant as target")
        await self._store.get_participant(signal.meeting_id, signal.from_participant_id)
        try:
            target = await self._store.get_participant(signal.meeting_id, signal.target_participant_id)
        except DomainError as exc:
            raise errors.not_in_meeting("Target participant is not in this meeting") from exc
        routed = Signal(
            type=signal.type,
            meeting_id=signal.meeting_id,
            from_participant_id=signal.from_participant_id,
            target_participant_id=target.participant_id,
            payload_json=signal.payload_json,
            target_socket_id=target.socket_id,
        )
        await self._store.publish_signal(target.edge_id, routed)
        self._metrics.signals.inc()


def _with_hash(meeting: Meeting, password_hash: str | None) -> Meeting:
    return dataclasses.replace(meeting, password_hash=password_hash)

"""A room's log: the event payloads, one class per kind of change, and RoomEvent, the
log entry that carries one with its position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, get_args

from room_service.domain.models import ChatMessage, LeaveReason, Participant, Position


class _Payload:
    """What every event payload has."""

    __slots__ = ()

    kind: ClassVar[str]
    """The event type, as in metrics labels."""


@dataclass(frozen=True, slots=True)
class ParticipantJoined(_Payload):
    """Event payload: a participant joined."""

    kind = "participant_joined"

    participant: Participant
    """Who."""


@dataclass(frozen=True, slots=True)
class ParticipantLeft(_Payload):
    """Event payload: a participant left."""

    kind = "participant_left"

    participant: Participant
    """Who, as it was."""
    reason: LeaveReason
    """Why."""


@dataclass(frozen=True, slots=True)
class ParticipantUpdated(_Payload):
    """Event payload: media state changed."""

    kind = "participant_updated"

    participant: Participant
    """Who, with the new state."""
    changed_by: str
    """Participant id of the actor, or '' for an internal service."""


@dataclass(frozen=True, slots=True)
class ChatSent(_Payload):
    """Event payload: a chat message."""

    kind = "chat_message"

    message: ChatMessage
    """The message."""


@dataclass(frozen=True, slots=True)
class MeetingEnded(_Payload):
    """Event payload: the meeting ended; the room is closed."""

    kind = "meeting_ended"

    ended_by: str
    """Participant id of the host, or '' for an internal service."""


EventPayload = ParticipantJoined | ParticipantLeft | ParticipantUpdated | ChatSent | MeetingEnded

EVENT_KINDS: tuple[str, ...] = tuple(payload.kind for payload in get_args(EventPayload))
"""Every event type, for metrics that start each series at zero (read from the union, so
a new payload class is counted once it is part of `EventPayload`)."""


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One entry of a room's log."""

    meeting_id: str
    """The room."""
    position: Position
    """Its sequence and epoch."""
    time: datetime
    """When it was applied."""
    payload: EventPayload
    """What happened."""

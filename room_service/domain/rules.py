"""Who may do what, and how ids are made: the rules in one place.

The use cases call a `require_*` rule before they change anything; it raises the
DomainError the caller sees. The internal-caller convention: a request with an empty
`requested_by` comes from a trusted service (the admin API, the operator CLI) acting on
its own authority, not from a participant, and is not held to a participant's rules.
"""

from __future__ import annotations

import os
from datetime import datetime

from meeting_common.text import unsafe_character
from room_service.domain import errors
from room_service.domain.models import ChatMessage, Meeting, Participant, Permissions
from room_service.domain.requests import JoinSpec, MediaChange

MAX_ID = 128
"""Longest id (meeting, user, participant, edge, socket)."""
MAX_NAME = 256
"""Longest display name."""


def checked_id(value: str, what: str, limit: int = MAX_ID) -> str:
    """`value` when it is a usable id: 1 to `limit` characters, no control or format
    characters (they would forge log lines); else INVALID_PAYLOAD."""
    if not value or len(value) > limit:
        raise errors.invalid(f"{what} must be 1 to {limit} characters")
    bad = unsafe_character(value)
    if bad is not None:
        raise errors.invalid(f"{what} contains a control or format character ({bad})")
    return value


def checked_name(value: str, what: str, limit: int = MAX_NAME, *, required: bool = True) -> str:
    """`value` when it is a usable display name (joiners allowed inside words); else
    INVALID_PAYLOAD. An empty name passes only when not `required`."""
    if (required and not value) or len(value) > limit:
        raise errors.invalid(f"{what} must be {1 if required else 0} to {limit} characters")
    bad = unsafe_character(value, joiners=True)
    if bad is not None:
        raise errors.invalid(f"{what} contains a control or format character ({bad})")
    return value


NO_PERMISSIONS = Permissions(can_share=False, can_chat=False, can_record=False, is_host=False)
"""Placeholder for a participant whose permissions the store has yet to derive."""


def permissions_for(meeting: Meeting, user_id: str) -> Permissions:
    """The seed's permissions: everyone shares and chats (unless the meeting keeps that to
    its host); the creator records and hosts."""
    is_creator = bool(meeting.creator_id) and meeting.creator_id == user_id
    return Permissions(
        can_share=is_creator or meeting.guests_can_share,
        can_chat=is_creator or meeting.guests_can_chat,
        can_record=is_creator,
        is_host=is_creator,
    )


def random_id() -> str:
    """A random version-4 UUID as 32 hex digits, as `uuid.uuid4().hex` gives it, made
    without building the UUID object (which cost a join's reply about 60 µs, cold)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def new_participant_id() -> str:
    """A fresh id per join: random, so it never equals a user id and never repeats."""
    return f"participant-{random_id()}"


def new_participant(meeting: Meeting, spec: JoinSpec, joined_at: datetime) -> Participant:
    """The participant a join of `spec` seats in `meeting` (with a fresh id)."""
    return Participant(
        participant_id=new_participant_id(),
        user_id=spec.user_id,
        user_name=spec.user_name,
        media=spec.media,
        permissions=permissions_for(meeting, spec.user_id),
        joined_at=joined_at,
        edge_id=spec.edge_id,
        socket_id=spec.socket_id,
    )


def new_chat_message(sender: Participant, text: str, sent_at: datetime) -> ChatMessage:
    """The chat message `sender` sends: a fresh id, and the sender's name as it stands."""
    return ChatMessage(
        message_id=f"msg-{random_id()}",
        participant_id=sender.participant_id,
        user_name=sender.user_name,
        text=text,
        sent_at=sent_at,
    )


def new_epoch() -> str:
    """A fresh log epoch; a new one whenever a room's log starts afresh."""
    return random_id()[:16]


def is_internal(requested_by: str) -> bool:
    """Whether a request comes from a trusted service rather than a participant."""
    return not requested_by


def may_moderate(actor: Participant | None) -> bool:
    """Kick and end are for the host; `None` is an internal service, which may always."""
    return actor is None or actor.permissions.is_host


def require_joinable(meeting: Meeting) -> None:
    """Joins only while the meeting is scheduled or live."""
    if not meeting.joinable:
        raise errors.meeting_not_active()


def require_may_end(actor: Participant | None) -> None:
    """Only the host (or an internal service) ends a meeting."""
    if not may_moderate(actor):
        raise errors.forbidden("Only the host can end the meeting")


def require_may_kick(actor: Participant | None, target_id: str) -> None:
    """Only the host (or an internal service) removes participants, and never itself."""
    if not may_moderate(actor):
        raise errors.forbidden("Only the host can remove participants")
    if actor is not None and actor.participant_id == target_id:
        raise errors.invalid("The host cannot kick itself; use leave-meeting")


def require_may_change_media(participant: Participant, change: MediaChange) -> None:
    """A participant changes only its own media (a service anyone's); turning screen
    sharing on needs the permission to share."""
    require_own_media(change)
    if change.screen and not participant.permissions.can_share:
        raise errors.forbidden("Screen sharing is not allowed")


def require_own_media(change: MediaChange) -> None:
    """The part of `require_may_change_media` that needs no participant: who asks."""
    if not is_internal(change.changed_by) and change.changed_by != change.participant_id:
        raise errors.forbidden("Participants change only their own media")


def require_may_chat(sender: Participant) -> None:
    """Chat needs the permission to chat."""
    if not sender.permissions.can_chat:
        raise errors.forbidden("Chat is not allowed")


def may_restore(edge_id: str, claimed: Participant, held: Participant | None) -> bool:
    """An edge re-announces only its own sessions: the record names that edge (or no
    edge), and a participant the service holds on another edge or socket stays there."""
    if claimed.edge_id and claimed.edge_id != edge_id:
        return False
    return held is None or (held.edge_id == edge_id and held.socket_id == claimed.socket_id)


def room_capacity(meeting: Meeting, default: int) -> int:
    """The meeting's own capacity, or the service default."""
    return meeting.max_participants or default

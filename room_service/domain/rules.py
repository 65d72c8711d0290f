"""Who may do what, and how ids are made: the rules in one place."""

from __future__ import annotations

import uuid

from room_service.domain.models import Meeting, Participant, Permissions


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


def new_participant_id() -> str:
    """A fresh id per join: random, so it never equals a user id and never repeats."""
    return f"participant-{uuid.uuid4().hex}"


def new_message_id() -> str:
    """A fresh chat message id."""
    return f"msg-{uuid.uuid4().hex}"


def new_epoch() -> str:
    """A fresh log epoch; a new one whenever a room's log starts afresh."""
    return uuid.uuid4().hex[:16]


def may_moderate(actor: Participant | None) -> bool:
    """Kick and end are for the host; `None` is an internal service, which may always."""
    return actor is None or actor.permissions.is_host


def room_capacity(meeting: Meeting, default: int) -> int:
    """The meeting's own capacity, or the service default."""
    return meeting.max_participants or default

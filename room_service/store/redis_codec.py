"""Domain values as the JSON the Redis store keeps, and log entries back into RoomEvents.

The Lua scripts read only `status` of a meeting and `user_id`, `edge_id`, `socket_id` of a
participant; everything else is opaque to them.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

from room_service.domain import events
from room_service.domain.models import (
    ChatMessage,
    LeaveReason,
    MediaState,
    Meeting,
    MeetingStatus,
    Participant,
    Permissions,
    Position,
)

# Log entry kinds as stored (the `k` field of a log entry).
JOINED, LEFT, UPDATED, CHAT, ENDED = "joined", "left", "updated", "chat", "ended"


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def meeting_json(meeting: Meeting) -> str:
    """A meeting without `created_at` (kept apart, so an upsert cannot change it)."""
    return _dumps(
        {
            "id": meeting.id,
            "meeting_name": meeting.meeting_name,
            "status": meeting.status.value,
            "creator_id": meeting.creator_id,
            "password_hash": meeting.password_hash,
            "max_participants": meeting.max_participants,
            "guests_can_share": meeting.guests_can_share,
            "guests_can_chat": meeting.guests_can_chat,
        }
    )


def meeting_from(raw: str | bytes, created_at: str | bytes) -> Meeting:
    """The meeting stored as `raw`, created at `created_at` (ISO 8601)."""
    d = json.loads(raw)
    return Meeting(
        id=d["id"],
        meeting_name=d["meeting_name"],
        status=MeetingStatus(d["status"]),
        creator_id=d["creator_id"],
        created_at=datetime.fromisoformat(_text(created_at)),
        password_hash=d.get("password_hash") or None,
        max_participants=int(d.get("max_participants") or 0),
        guests_can_share=bool(d.get("guests_can_share", True)),
        guests_can_chat=bool(d.get("guests_can_chat", True)),
    )


def participant_json(p: Participant) -> str:
    """A participant as stored in its room."""
    return _dumps(
        {
            "participant_id": p.participant_id,
            "user_id": p.user_id,
            "user_name": p.user_name,
            "media": [p.media.audio, p.media.video, p.media.screen],
            "permissions": [
                p.permissions.can_share,
                p.permissions.can_chat,
                p.permissions.can_record,
                p.permissions.is_host,
            ],
            "joined_at": p.joined_at.isoformat(),
            "edge_id": p.edge_id,
            "socket_id": p.socket_id,
        }
    )


def participant_from(raw: str | bytes) -> Participant:
    """The participant stored as `raw`."""
    d = json.loads(raw)
    audio, video, screen = d["media"]
    can_share, can_chat, can_record, is_host = d["permissions"]
    return Participant(
        participant_id=d["participant_id"],
        user_id=d["user_id"],
        user_name=d["user_name"],
        media=MediaState(bool(audio), bool(video), bool(screen)),
        permissions=Permissions(bool(can_share), bool(can_chat), bool(can_record), bool(is_host)),
        joined_at=datetime.fromisoformat(d["joined_at"]),
        edge_id=d["edge_id"],
        socket_id=d["socket_id"],
    )


# A room's participants come back as JSON with joins, snapshots and log entries; each
# stored JSON names one immutable Participant, so its decoding is kept for the next time.
participant_of = functools.lru_cache(maxsize=8192)(participant_from)


def chat_json(message: ChatMessage) -> str:
    """A chat message as logged."""
    return _dumps(
        {
            "message_id": message.message_id,
            "participant_id": message.participant_id,
            "user_name": message.user_name,
            "text": message.text,
            "sent_at": message.sent_at.isoformat(),
        }
    )


def _chat_from(raw: str) -> ChatMessage:
    d = json.loads(raw)
    return ChatMessage(
        message_id=d["message_id"],
        participant_id=d["participant_id"],
        user_name=d["user_name"],
        text=d["text"],
        sent_at=datetime.fromisoformat(d["sent_at"]),
    )


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_from(meeting_id: str, epoch: str, entry: list[Any]) -> events.RoomEvent:
    """A RoomEvent from a script's entry `[seq, kind, payload, reason, by, time]`."""
    seq, kind, payload, reason, by, at = (str(_text(v)) if not isinstance(v, int) else str(v) for v in entry)
    body: events.EventPayload
    if kind == JOINED:
        body = events.ParticipantJoined(participant_of(payload))
    elif kind == LEFT:
        body = events.ParticipantLeft(participant_of(payload), LeaveReason(reason))
    elif kind == UPDATED:
        body = events.ParticipantUpdated(participant_of(payload), by)
    elif kind == CHAT:
        body = events.ChatSent(_chat_from(payload))
    elif kind == ENDED:
        body = events.MeetingEnded(ended_by=by)
    else:
        raise ValueError(f"unknown log entry kind {kind!r}")
    return events.RoomEvent(
        meeting_id, Position(int(seq), epoch), datetime.fromtimestamp(float(at), UTC), body
    )

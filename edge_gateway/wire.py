"""meeting.v1 messages → the Socket.IO payloads the frontend expects (the seed's shapes)."""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from meeting.v1 import room_service_pb2 as pb

_STATUS = {
    pb.MEETING_STATUS_SCHEDULED: "scheduled",
    pb.MEETING_STATUS_LIVE: "live",
    pb.MEETING_STATUS_ENDED: "ended",
}
_REASON: dict[pb.LeaveReason.ValueType, str] = {
    pb.LEAVE_REASON_LEFT: "left",
    pb.LEAVE_REASON_DISCONNECTED: "disconnected",
    pb.LEAVE_REASON_KICKED: "kicked",
    pb.LEAVE_REASON_REPLACED: "replaced",
    pb.LEAVE_REASON_MEETING_ENDED: "meeting_ended",
}


def iso(ts: Any) -> str:
    """RFC 3339 UTC text of a protobuf Timestamp."""
    return _iso(ts.seconds, ts.nanos)


@functools.lru_cache(maxsize=1 << 14)
def _iso(seconds: int, nanos: int) -> str:
    # Cached: every join lists every participant, each with the same joined_at as before.
    return str(Timestamp(seconds=seconds, nanos=nanos).ToJsonString())


def meeting(m: pb.Meeting) -> dict[str, Any]:
    """The meeting object: never a password or its hash."""
    return {
        "id": m.id,
        "meeting_name": m.meeting_name,
        "meeting_status": _STATUS.get(m.status, "scheduled"),
        "creator_id": m.creator_id,
        "has_password": m.has_password,
        "max_participants": m.max_participants,
        "created_at": iso(m.created_at),
    }


def permissions(p: pb.Permissions) -> dict[str, bool]:
    """The seed's permissions object, plus isHost."""
    return {"canShare": p.can_share, "canChat": p.can_chat, "canRecord": p.can_record, "isHost": p.is_host}


_PARTICIPANTS: dict[bytes, dict[str, Any]] = {}
_PARTICIPANTS_MAX = 1 << 12


def participant(p: pb.Participant) -> dict[str, Any]:
    """A participant as in `participants[]` and `participant-joined`. Read only: the same
    dict is handed out for the same participant state (every join lists every participant
    of the room, so building them anew made a storm of N joins cost N²/2 of them)."""
    key = p.SerializeToString()
    found = _PARTICIPANTS.get(key)
    if found is None:
        if len(_PARTICIPANTS) >= _PARTICIPANTS_MAX:
            del _PARTICIPANTS[next(iter(_PARTICIPANTS))]  # bounded: the oldest entry goes
        found = _PARTICIPANTS[key] = _participant(p)
    return found


def _who(p: pb.Participant) -> dict[str, Any]:
    # Every participant payload starts with who it is about, then adds its own fields.
    return {"participantId": p.participant_id, "userId": p.user_id, "userName": p.user_name}


def _media(m: pb.MediaState) -> dict[str, bool]:
    return {"audio": m.audio, "video": m.video, "screen": m.screen}


def _participant(p: pb.Participant) -> dict[str, Any]:
    # `_who`, `_media` and `permissions` spelt out: a joiner's own entry is always new (made
    # while its `meeting-joined` waits), and the calls and merges were most of its cost.
    media, granted = p.media, p.permissions
    return {
        "participantId": p.participant_id,
        "userId": p.user_id,
        "userName": p.user_name,
        "audio": media.audio,
        "video": media.video,
        "screen": media.screen,
        "permissions": {
            "canShare": granted.can_share,
            "canChat": granted.can_chat,
            "canRecord": granted.can_record,
            "isHost": granted.is_host,
        },
        "joinedAt": iso(p.joined_at),
    }


def participant_left(p: pb.Participant, reason: pb.LeaveReason.ValueType) -> dict[str, Any]:
    """`participant-left`."""
    return {**_who(p), "reason": _REASON.get(reason, "left")}


def participant_updated(p: pb.Participant, changed_by: str) -> dict[str, Any]:
    """`participant-updated`."""
    return {**_who(p), **_media(p.media), "changedBy": changed_by or None}


def chat(m: pb.ChatMessage) -> dict[str, Any]:
    """`chat-message` as broadcast."""
    return {
        "messageId": m.message_id,
        "participantId": m.participant_id,
        "userName": m.user_name,
        "text": m.text,
        "sentAt": iso(m.sent_at),
    }


def offset(position: tuple[int, str]) -> str:
    """A room position as the Socket.IO recovery offset: the last argument of every relayed
    room event, the same for every recipient (opaque to clients; parsed back below)."""
    sequence, epoch = position
    return f"{epoch}:{sequence}"


def position_of(text: object) -> pb.StreamPosition | None:
    """The position an offset names; None for anything that is not one of ours."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    epoch, sep, sequence = text.rpartition(":")
    if not sep or not epoch or not sequence.isdigit() or len(sequence) > 19:
        return None
    return pb.StreamPosition(sequence=int(sequence), epoch=epoch)

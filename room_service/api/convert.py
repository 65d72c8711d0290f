"""Conversions between domain values and meeting.v1 messages.

Both sides are named by their module (`models.Meeting` beside `pb.Meeting`,
`events.ChatSent` beside `pb.RoomEvent.chat_message`), so a signature says which way it
converts.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, TypedDict, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from meeting.v1 import room_service_pb2 as pb
from room_service.domain import events, models, rules
from room_service.domain.errors import invalid
from room_service.domain.requests import Seat

_Domain = TypeVar("_Domain", bound=StrEnum)
_Wire = TypeVar("_Wire", bound=int)
_Wire_co = TypeVar("_Wire_co", bound=int, covariant=True)


class _ProtoEnum(Protocol[_Wire_co]):
    """A generated proto enum: its values by name."""

    def Value(self, name: str) -> _Wire_co: ...


def _by_name(
    domain: type[_Domain], wire: _ProtoEnum[_Wire], prefix: str
) -> tuple[dict[_Domain, _Wire], dict[_Wire, _Domain]]:
    """Both directions between a domain enum and the proto enum whose values are named
    `prefix` + the member's name; a member without its proto value fails at import."""
    to_pb = {member: wire.Value(prefix + member.name) for member in domain}
    return to_pb, {v: k for k, v in to_pb.items()}


_STATUS_TO_PB, _STATUS_FROM_PB = _by_name(models.MeetingStatus, pb.MeetingStatus, "MEETING_STATUS_")
_REASON_TO_PB, _REASON_FROM_PB = _by_name(models.LeaveReason, pb.LeaveReason, "LEAVE_REASON_")
_SIGNAL_TO_PB, _ANY_SIGNAL_FROM_PB = _by_name(models.SignalType, pb.SignalType, "SIGNAL_TYPE_")
# What SendSignal accepts: WebRTC signals only (SESSION_MOVED comes from the room service).
_SIGNAL_FROM_PB = {
    wire: kind for wire, kind in _ANY_SIGNAL_FROM_PB.items() if kind is not models.SignalType.SESSION_MOVED
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    """A protobuf Timestamp (a naive datetime is taken as UTC, as `FromDatetime` takes it).

    Computed here rather than by `Timestamp.FromDatetime`, which costs three times as much
    and runs for every event and reply."""
    delta = value - (_EPOCH if value.tzinfo is not None else _EPOCH.replace(tzinfo=None))
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1_000)


def from_timestamp(ts: Timestamp) -> datetime:
    """An aware UTC datetime; an unset timestamp means now; out-of-range ones are refused."""
    if ts.seconds == 0 and ts.nanos == 0:
        return datetime.now(UTC)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise invalid("timestamp out of range") from exc


@functools.lru_cache(maxsize=1 << 10)
def meeting_to_pb(meeting: models.Meeting) -> pb.Meeting:
    """The client-visible meeting: never the password or its hash. Cached (Meeting is
    frozen; every caller copies the message into its reply): every Join reply carries
    its meeting. Never mutate the result."""
    return pb.Meeting(
        id=meeting.id,
        meeting_name=meeting.meeting_name,
        status=_STATUS_TO_PB[meeting.status],
        creator_id=meeting.creator_id,
        has_password=meeting.password_hash is not None,
        max_participants=meeting.max_participants,
        created_at=timestamp(meeting.created_at),
        guests_can_share=meeting.guests_can_share,
        guests_can_chat=meeting.guests_can_chat,
    )


def meeting_from_pb(message: pb.Meeting) -> models.Meeting:
    """A meeting to store (its password is handled separately)."""
    status = _STATUS_FROM_PB.get(message.status, models.MeetingStatus.SCHEDULED)
    return models.Meeting(
        id=message.id,
        meeting_name=message.meeting_name,
        status=status,
        creator_id=message.creator_id,
        created_at=from_timestamp(message.created_at),
        max_participants=message.max_participants,
        guests_can_share=message.guests_can_share if message.HasField("guests_can_share") else True,
        guests_can_chat=message.guests_can_chat if message.HasField("guests_can_chat") else True,
    )


@functools.lru_cache(maxsize=1 << 12)
def participant_to_pb(p: models.Participant) -> pb.Participant:
    """A participant message. Cached (Participant is frozen; every caller copies the
    message into its reply): a join lists every participant of the room, so without it
    a storm of N joins converts N²/2 of them. Never mutate the result."""
    return pb.Participant(
        participant_id=p.participant_id,
        user_id=p.user_id,
        user_name=p.user_name,
        media=pb.MediaState(audio=p.media.audio, video=p.media.video, screen=p.media.screen),
        permissions=permissions_to_pb(p.permissions),
        joined_at=timestamp(p.joined_at),
        edge_id=p.edge_id,
        socket_id=p.socket_id,
    )


def participant_from_pb(m: pb.Participant) -> models.Participant:
    """A participant re-announced by an edge. Its permissions are not taken from the
    request (a caller could grant itself host): the store derives them from the meeting."""
    return models.Participant(
        participant_id=rules.checked_id(m.participant_id, "participant.participant_id"),
        user_id=rules.checked_id(m.user_id, "participant.user_id"),
        user_name=rules.checked_name(m.user_name, "participant.user_name"),
        media=media_from_pb(m.media),
        permissions=rules.NO_PERMISSIONS,
        joined_at=from_timestamp(m.joined_at),
        edge_id=rules.checked_id(m.edge_id, "participant.edge_id") if m.edge_id else "",
        socket_id=rules.checked_id(m.socket_id, "participant.socket_id"),
    )


def permissions_to_pb(p: models.Permissions) -> pb.Permissions:
    """A permissions message."""
    return pb.Permissions(
        can_share=p.can_share, can_chat=p.can_chat, can_record=p.can_record, is_host=p.is_host
    )


def media_from_pb(m: pb.MediaState) -> models.MediaState:
    """A media state."""
    return models.MediaState(audio=m.audio, video=m.video, screen=m.screen)


def position_to_pb(position: models.Position) -> pb.StreamPosition:
    """A stream position."""
    return pb.StreamPosition(sequence=position.sequence, epoch=position.epoch)


def position_from_pb(m: pb.StreamPosition) -> models.Position:
    """A stream position."""
    return models.Position(m.sequence, m.epoch)


def reason_from_pb(value: pb.LeaveReason.ValueType) -> models.LeaveReason:
    """A leave reason; unset means LEFT."""
    return _REASON_FROM_PB.get(value, models.LeaveReason.LEFT)


def chat_to_pb(message: models.ChatMessage) -> pb.ChatMessage:
    """A chat message."""
    return pb.ChatMessage(
        message_id=message.message_id,
        participant_id=message.participant_id,
        user_name=message.user_name,
        text=message.text,
        sent_at=timestamp(message.sent_at),
    )


class _SignalRoute(TypedDict):
    """The fields a signal carries unchanged in both directions."""

    meeting_id: str
    from_participant_id: str
    target_participant_id: str
    payload_json: str


def _signal_route(signal: models.Signal | pb.Signal) -> _SignalRoute:
    """Who a signal goes from and to, and its body: the same names on both sides."""
    return _SignalRoute(
        meeting_id=signal.meeting_id,
        from_participant_id=signal.from_participant_id,
        target_participant_id=signal.target_participant_id,
        payload_json=signal.payload_json,
    )


def signal_from_pb(m: pb.Signal) -> models.Signal:
    """A signal from an edge; the type must be set."""
    if m.type not in _SIGNAL_FROM_PB:
        raise invalid("signal type is required")
    if not m.meeting_id or not m.from_participant_id or not m.target_participant_id:
        raise invalid("meeting_id, from_participant_id and target_participant_id are required")
    return models.Signal(type=_SIGNAL_FROM_PB[m.type], **_signal_route(m))


def signal_to_pb(signal: models.Signal) -> pb.Signal:
    """A signal for an edge."""
    return pb.Signal(
        type=_SIGNAL_TO_PB[signal.type],
        target_socket_id=signal.target_socket_id,
        **_signal_route(signal),
    )


class SeatFields(TypedDict):
    """The response fields a join and a recovery share, but for the roster (everyone
    else), which the servicer adds from its cached encodings (api.roster)."""

    meeting: pb.Meeting
    participant: pb.Participant
    position: pb.StreamPosition


def seat_to_pb(seated: Seat) -> SeatFields:
    """The meeting, the client's participant and the position it stands at."""
    return SeatFields(
        meeting=meeting_to_pb(seated.meeting),
        participant=participant_to_pb(seated.participant),
        position=position_to_pb(seated.position),
    )


def snapshot_to_pb(snapshot: models.Snapshot) -> pb.RoomSnapshot:
    """A room snapshot."""
    return pb.RoomSnapshot(
        meeting_id=snapshot.meeting_id,
        participants=[participant_to_pb(p) for p in snapshot.participants],
        position=position_to_pb(snapshot.position),
        ended=snapshot.ended,
    )


def room_to_pb(room: models.RoomSummary) -> pb.Room:
    """A room summary."""
    return pb.Room(
        meeting=meeting_to_pb(room.meeting),
        participant_count=room.participant_count,
        position=position_to_pb(room.position),
    )


def event_to_pb(event: events.RoomEvent) -> pb.RoomEvent:
    """A room event with its oneof payload."""
    message = pb.RoomEvent(
        sequence=event.position.sequence,
        epoch=event.position.epoch,
        time=timestamp(event.time),
        meeting_id=event.meeting_id,
    )
    payload = event.payload
    if isinstance(payload, events.ParticipantJoined):
        message.participant_joined.participant.CopyFrom(participant_to_pb(payload.participant))
    elif isinstance(payload, events.ParticipantLeft):
        message.participant_left.participant.CopyFrom(participant_to_pb(payload.participant))
        message.participant_left.reason = _REASON_TO_PB[payload.reason]
    elif isinstance(payload, events.ParticipantUpdated):
        message.participant_updated.participant.CopyFrom(participant_to_pb(payload.participant))
        message.participant_updated.changed_by = payload.changed_by
    elif isinstance(payload, events.ChatSent):
        message.chat_message.CopyFrom(chat_to_pb(payload.message))
    elif isinstance(payload, events.MeetingEnded):
        message.meeting_ended.ended_by = payload.ended_by
    return message

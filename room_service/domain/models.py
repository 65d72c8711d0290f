"""Meetings, participants and room events as plain immutable values.

A little over 300 lines on purpose: it is the domain's one vocabulary (every value the
use cases, the stores and the API converters exchange), and most of its lines are the
docstring each field carries; split, the event payloads would sit apart from the
participants and positions they are made of. The one seam is the requests and results
of joins and recoveries at the end (JoinSpec to Recovered); every store imports them from
here alongside the rest, so moving them is a change to the stores as much as to this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import ClassVar


class MeetingStatus(StrEnum):
    """Lifecycle of a meeting in the directory."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class LeaveReason(StrEnum):
    """Why a participant left; the values are the Socket.IO `reason` strings."""

    LEFT = "left"
    DISCONNECTED = "disconnected"
    KICKED = "kicked"
    REPLACED = "replaced"
    MEETING_ENDED = "meeting_ended"


class SignalType(StrEnum):
    """WebRTC signal kinds (the values are the Socket.IO event names), and the room
    service's own notice to an edge that one of its sockets' sessions moved elsewhere."""

    OFFER = "webrtc-offer"
    ANSWER = "webrtc-answer"
    ICE_CANDIDATE = "webrtc-ice-candidate"
    SESSION_MOVED = "session-moved"


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting in the directory."""

    id: str
    """Stable id, the Socket.IO `meetingId`."""
    meeting_name: str
    """Display name."""
    status: MeetingStatus
    """Lifecycle state."""
    creator_id: str
    """User id of the creator, who is the host."""
    created_at: datetime
    """When it was registered."""
    password_hash: str | None = None
    """Salted slow hash of the password, or None when open. Never leaves the service."""
    max_participants: int = 0
    """Room capacity; 0 means the service default."""
    guests_can_share: bool = True
    """Whether participants other than the host may share their screen."""
    guests_can_chat: bool = True
    """Whether participants other than the host may send chat messages."""

    @property
    def joinable(self) -> bool:
        """Whether new participants may join."""
        return self.status in (MeetingStatus.SCHEDULED, MeetingStatus.LIVE)


@dataclass(frozen=True, slots=True)
class MediaState:
    """What a participant publishes."""

    audio: bool = True
    """Microphone on."""
    video: bool = True
    """Camera on."""
    screen: bool = False
    """Screen share on."""


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a participant may do."""

    can_share: bool
    """May share its screen."""
    can_chat: bool
    """May chat."""
    can_record: bool
    """May record (the creator only)."""
    is_host: bool
    """May kick and end the meeting (the creator only)."""


@dataclass(frozen=True, slots=True)
class Participant:
    """One session of one user in one room."""

    participant_id: str
    """Unique per join, never the user id."""
    user_id: str
    """The user."""
    user_name: str
    """Display name."""
    media: MediaState
    """Current media state."""
    permissions: Permissions
    """What it may do."""
    joined_at: datetime
    """When it joined."""
    edge_id: str
    """Edge gateway holding its socket."""
    socket_id: str
    """Socket id on that edge."""


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a room's log: the last sequence included and the log's epoch."""

    sequence: int
    """Last event included; 0 before any."""
    epoch: str
    """Incarnation of the log."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A chat message as broadcast."""

    message_id: str
    """Unique id."""
    participant_id: str
    """Sender."""
    user_name: str
    """Sender's display name."""
    text: str
    """The text."""
    sent_at: datetime
    """When the service accepted it."""


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

EVENT_KINDS: tuple[str, ...] = tuple(
    c.kind for c in (ParticipantJoined, ParticipantLeft, ParticipantUpdated, ChatSent, MeetingEnded)
)
"""Every event type, for metrics that start each series at zero."""


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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A room's participants exactly as of `position`."""

    meeting_id: str
    """The room."""
    participants: tuple[Participant, ...]
    """Everyone in it."""
    position: Position
    """The log position reflected."""
    ended: bool = False
    """The meeting ended."""


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """A room with participants, for listings."""

    meeting: Meeting
    """Its meeting."""
    participant_count: int
    """How many are in it."""
    position: Position
    """Its log head."""


@dataclass(frozen=True, slots=True)
class Signal:
    """A WebRTC signal routed to one participant's socket."""

    type: SignalType
    """Kind."""
    meeting_id: str
    """The shared meeting."""
    from_participant_id: str
    """Sender."""
    target_participant_id: str
    """Receiver."""
    payload_json: str
    """The client's signal body, JSON-encoded."""
    target_socket_id: str = ""
    """Receiver's socket on its edge; filled in by the service."""


@dataclass(frozen=True, slots=True)
class MediaChange:
    """A request to change one participant's media state."""

    meeting_id: str
    """The room."""
    participant_id: str
    """Whose media."""
    changed_by: str
    """Participant id of the actor, or '' for an internal service."""
    audio: bool | None = None
    """Microphone on or off; None leaves it as it is."""
    video: bool | None = None
    """Camera on or off; None leaves it as it is."""
    screen: bool | None = None
    """Screen share on or off; None leaves it as it is."""

    def applied_to(self, media: MediaState) -> MediaState:
        """`media` with the named media changed (equal to `media` when nothing changes)."""
        return MediaState(
            audio=media.audio if self.audio is None else self.audio,
            video=media.video if self.video is None else self.video,
            screen=media.screen if self.screen is None else self.screen,
        )


@dataclass(frozen=True, slots=True)
class JoinSpec:
    """Everything a join needs once the password has been checked."""

    meeting_id: str
    """The meeting."""
    user_id: str
    """The user."""
    user_name: str
    """Display name."""
    media: MediaState
    """Initial media state."""
    edge_id: str
    """Edge of the socket."""
    socket_id: str
    """Socket on that edge."""
    recovery_id: str = ""
    """The socket's connection-state recovery id (Socket.IO `pid`); empty: not recoverable."""


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    """What a join did."""

    meeting: Meeting
    """The meeting joined."""
    participant: Participant
    """The joiner."""
    others: tuple[Participant, ...]
    """Everyone else as of `position`."""
    position: Position
    """The joiner's own join event (or the head, when already joined)."""
    already_joined: bool = False
    """The same socket was already in; nothing changed."""
    replaced: tuple[Participant, ...] = field(default=())
    """Older sessions of the same user that this join removed."""
    instance_id: str = ""
    """The store's instance id, when the store read it along with the join (empty: ask)."""


@dataclass(frozen=True, slots=True)
class RecoverSpec:
    """A reconnecting client's claim on a held session."""

    recovery_id: str
    """The `pid` it presents."""
    after: Position | None
    """The last room position it received (None: it received none)."""
    edge_id: str
    """The edge it reconnected through."""
    user_id: str
    """Its verified subject; empty without token authentication."""
    fresh_recovery_id: str
    """The id the session continues under when the log no longer reaches `after`."""
    take_over: bool = False
    """Also take a session still bound to a socket (its client reconnected before that
    socket's edge noticed the loss: the socket is dead, or the claim is its successor)."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """A session taken over by a reconnected client."""

    meeting: Meeting
    """Its meeting."""
    participant: Participant
    """The participant, unchanged except for its edge."""
    missed: tuple[RoomEvent, ...]
    """Events after the client's position, in order (empty when `resynced`)."""
    position: Position
    """The room's head: the last of `missed`, or where a resynced session stands."""
    resynced: bool = False
    """The log no longer reached back: bound to the fresh id, nothing in `missed`."""
    others: tuple[Participant, ...] = ()
    """Everyone else in the room as of `position`."""
    moved_from: str = ""
    """The edge whose socket still held the session when it was taken over (it must let
    that socket go without a leave); empty when the session was held."""

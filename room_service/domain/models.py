"""The domain's plain immutable values: meetings, participants (with their media and
permissions), log positions, chat messages, signals, and the views of a room (snapshots,
summaries). The room log's events are in `events`; the requests that carry more than
ids (joins, recoveries, media changes) and what joins and recoveries give back, in
`requests`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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

    @property
    def ended(self) -> bool:
        """Whether the meeting has ended: no joins ever again, its room closed."""
        return self.status is MeetingStatus.ENDED

    def as_ended(self) -> Meeting:
        """This meeting, ended."""
        return dataclasses.replace(self, status=MeetingStatus.ENDED)


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

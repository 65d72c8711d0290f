"""The requests that carry more than ids (a join, a reconnecting client's recovery, a
media change), as the use cases hand them to a store, and what joins and recoveries give
back."""

from __future__ import annotations

from dataclasses import dataclass, field

from room_service.domain.events import RoomEvent
from room_service.domain.models import MediaState, Meeting, Participant, Position


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
class Seat:
    """A client seated in a room, by a join or a recovery: what either reply starts with."""

    meeting: Meeting
    """The meeting."""
    participant: Participant
    """The client's participant (a recovery changes nothing of it but its edge)."""
    others: tuple[Participant, ...]
    """Everyone else in the room as of `position`."""
    position: Position
    """Where the client stands in the room's log: its own join event, or the head (when
    already joined, or recovered: the last of the missed events)."""


@dataclass(frozen=True, slots=True)
class JoinOutcome(Seat):
    """What a join did."""

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
class Recovered(Seat):
    """A session taken over by a reconnected client."""

    missed: tuple[RoomEvent, ...] = ()
    """Events after the client's position, in order (empty when `resynced`)."""
    resynced: bool = False
    """The log no longer reached back: bound to the fresh id, nothing in `missed`."""
    moved_from: str = ""
    """The edge whose socket still held the session when it was taken over (it must let
    that socket go without a leave); empty when the session was held."""


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

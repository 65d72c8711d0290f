"""The store contract, split by role, that every implementation (memory, Redis) honours.

Atomicity: each mutating method validates, changes state and appends its event as one
indivisible step; no other operation (in this process or, for a shared store, in any
replica) observes a state between them.

Sequencing: each room has a log. Every event gets the room's next sequence number:
strictly increasing by one, no gaps, within an *epoch*. A room's log starts afresh (new
epoch, sequence restarting at 1) when the room is created, i.e. on the first join after
it was empty or never existed, and also when a shared store lost its data. A snapshot at
position P reflects exactly the events with sequence <= P of that epoch.

Replay: `read_after` returns the events after a position while the bounded buffer still
holds them; otherwise (too old, or another epoch) it returns a snapshot, and the caller
continues from the snapshot's position.

Time: deadlines (`expires_at`, `drop_at`) and `now` are on the caller's clock. A store
shared by several processes needs a clock they share (the wall clock, see
`factory.store_clock`); a process-local store uses a monotonic one.

Held sessions (connection-state recovery): a participant joined with a recovery id can
be *held* when its socket's transport closed without a goodbye. A held participant stays
in the room (nobody is told anything) until a reconnecting client presenting the id
recovers it, once (or takes it over from a socket whose loss its edge has not noticed
yet), or its deadline passes and `expire_holds` removes it (reason
DISCONNECTED). Any other removal (leave, kick, replacement, end, reaping without a hold)
forgets the id: it can never recover anything again.

Bounded memory: nothing a caller can name stays behind on its own. An edge's lease and
signal mailbox live while it holds a lease or a WatchEdge reader; an ended room and its
log live until their `drop_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import RoomEvent
from room_service.domain.models import LeaveReason, Meeting, Participant, Position, RoomSummary, Snapshot
from room_service.domain.requests import JoinOutcome, JoinSpec, MediaChange
from room_service.store.base_edges import EdgeLeases, SessionHolds, SignalRouter


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """Behaviour knobs shared by every store."""

    replay_buffer: int = 1024
    """Events kept per room for replay."""
    default_capacity: int = 500
    """Room capacity when a meeting sets none."""
    multiple_sessions: bool = False
    """Allow several sessions per user in a room (else a new one replaces the older)."""
    signal_queue: int = 256
    """Undelivered signals kept per edge; the oldest are dropped beyond."""
    reaped_edges_kept: int = 4096
    """Reaped edges remembered (so a late re-announcement cannot resurrect anyone)."""
    reaped_edge_seconds: float = 3600.0
    """How long a reaped edge is remembered."""


class StoreUnavailableError(DomainError):
    """The store cannot be reached (or did not answer in time); the caller may retry."""

    def __init__(self, message: str = "Room store unavailable", cause: str = "") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)
        self.cause = cause
        """Why, for the log (never shown to callers): what failed, in which operation."""


class MeetingDirectory(Protocol):
    """Meetings, and how long an ended meeting's room is kept."""

    async def upsert_meeting(self, meeting: Meeting) -> Meeting:
        """Creates or replaces a meeting (keeping `created_at` of an existing one)."""
        ...

    async def get_meeting(self, meeting_id: str) -> Meeting:
        """The meeting; raises MEETING_NOT_FOUND."""
        ...

    async def end_meeting(
        self, meeting_id: str, ended_by: str, drop_at: float
    ) -> tuple[Meeting, RoomEvent | None]:
        """Marks it ended, empties its room, appends MeetingEnded when the room was open.

        The ended room's log stays readable (watchers get MeetingEnded itself, not a
        snapshot) until `drop_at`, when `drop_ended_rooms` forgets the room and its log
        (the meeting itself stays, ENDED); ending an already ended meeting appends
        nothing and returns None."""
        ...

    async def drop_ended_rooms(self, now: float) -> int:
        """Forgets the rooms (and logs) of ended meetings whose `drop_at` passed; their
        watchers wake and get the ended snapshot. Returns how many; costs O(dropped)."""
        ...


class RoomLog(Protocol):
    """Rooms: their participants and their sequenced, bounded logs."""

    async def join(
        self, spec: JoinSpec, meeting: Meeting | None = None, lease_until: float | None = None
    ) -> JoinOutcome:
        """Adds a participant (checks joinable, capacity; replaces older sessions).
        `meeting`: the meeting as the caller just read it, which a store may use instead
        of reading it again (whether it is joinable is checked with the change itself).
        `lease_until`: the joining edge's lease is renewed until then first (as
        `touch_edge` does), in the same round trip where the store can."""
        ...

    async def join_open(self, spec: JoinSpec, lease_until: float | None = None) -> JoinOutcome | None:
        """`join` reading the meeting itself, with the change, for a caller that checks no
        ban: the same refusals (MEETING_NOT_FOUND, MEETING_NOT_ACTIVE, ROOM_FULL), the
        outcome carrying the meeting as stored. A meeting with a password changes nothing
        and answers None: its password must be checked first (then `join`)."""
        ...

    async def rejoin(self, spec: JoinSpec) -> JoinOutcome | None:
        """The idempotent outcome (`already_joined`) when `spec`'s edge and socket already
        hold a participant in the room; None otherwise. Never changes anything: a join
        with a password calls it first, so that a repeat join costs no password hash."""
        ...

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        """Removes a participant; raises NOT_IN_MEETING."""
        ...

    async def update_media(self, change: MediaChange) -> tuple[Participant, RoomEvent | None]:
        """Applies media changes; no event when nothing changed."""
        ...

    async def append_chat(self, meeting_id: str, participant_id: str, text: str) -> RoomEvent:
        """Appends a chat message from a participant."""
        ...

    async def get_participant(self, meeting_id: str, participant_id: str) -> Participant:
        """A participant; raises NOT_IN_MEETING."""
        ...

    async def snapshot(self, meeting_id: str) -> Snapshot:
        """The room's participants and log head; an empty snapshot for a closed room."""
        ...

    async def list_rooms(self) -> list[RoomSummary]:
        """Rooms with at least one participant."""
        ...

    async def participant_count(self, meeting_id: str) -> int:
        """Participants in a room now (0 for a closed or unknown room)."""
        ...

    async def read_after(self, meeting_id: str, after: Position, limit: int) -> list[RoomEvent] | Snapshot:
        """Up to `limit` events after `after`, or a snapshot when they cannot be replayed."""
        ...

    async def wait_beyond(self, meeting_id: str, position: Position) -> None:
        """Returns once the room's log moved past `position` (or changed epoch).

        May also return early (a shared store bounds each wait); callers re-read."""
        ...


class PasswordAttempts(Protocol):
    """Wrong-password counts per socket, shared by every replica (so N replicas do not
    give a guesser N times the attempts)."""

    async def take_password_attempt(self, meeting_id: str, key: str, limit: int, window: float) -> bool:
        """Counts one attempt of `key` at `meeting_id`'s password; False (not counted)
        when `limit` attempts were already counted in the last `window` seconds."""
        ...

    async def return_password_attempt(self, meeting_id: str, key: str) -> None:
        """Takes back one counted attempt of `key` (it turned out to be the right password)."""
        ...


class MeetingBans(Protocol):
    """Users kept out of a meeting (kicked with the ban setting on), for the meeting's life."""

    async def ban_user(self, meeting_id: str, user_id: str) -> None:
        """Keeps `user_id` out of `meeting_id` until its bans are cleared."""
        ...

    async def is_banned(self, meeting_id: str, user_id: str) -> bool:
        """Whether `user_id` is kept out of `meeting_id`."""
        ...

    async def clear_bans(self, meeting_id: str) -> None:
        """Forgets every ban of `meeting_id` (it ended)."""
        ...


class RoomStore(
    MeetingDirectory, RoomLog, EdgeLeases, SessionHolds, SignalRouter, PasswordAttempts, MeetingBans, Protocol
):
    """Authoritative meetings, rooms, participants, leases and signals. See the module
    docstring for atomicity and sequencing."""

    async def instance_id(self) -> str:
        """Names this store's state: the same for as long as the state lives (every
        replica on one Redis answers the same), a new one once it was lost (an
        in-memory restart; a Redis that lost its data). Edges re-announce their
        sockets when it changes."""
        ...

    async def ready(self) -> bool:
        """Whether the store answers now."""
        ...

    async def close(self) -> None:
        """Releases connections and background tasks."""
        ...

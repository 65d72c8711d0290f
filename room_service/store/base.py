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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import (
    JoinOutcome,
    JoinSpec,
    LeaveReason,
    Meeting,
    Participant,
    Position,
    Recovered,
    RecoverSpec,
    RoomEvent,
    RoomSummary,
    Signal,
    Snapshot,
)


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


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    """One participant an edge re-announces."""

    meeting_id: str
    """Its meeting."""
    participant: Participant
    """As the edge knew it; its permissions are ignored (derived from the meeting)."""


class StoreUnavailableError(DomainError):
    """The store cannot be reached (or did not answer in time); the caller may retry."""

    def __init__(self, message: str = "Room store unavailable") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


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

    async def update_media(
        self,
        meeting_id: str,
        participant_id: str,
        changes: dict[str, bool],
        changed_by: str,
    ) -> tuple[Participant, RoomEvent | None]:
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


class EdgeLeases(Protocol):
    """Which edges are alive, reaping the dead ones exactly once, and re-announcements."""

    async def touch_edge(self, edge_id: str, expires_at: float, *, create: bool = True) -> bool:
        """Sets an edge's lease deadline; returns whether the edge was known.

        With `create=False` an unknown edge stays unknown (nothing is stored): used to
        shorten the lease of an edge whose connection closed, and to renew it again
        when the edge reconnects, without inventing edges."""
        ...

    async def expired_edges(self, now: float) -> list[str]:
        """Edges whose lease ran out by `now` (and edges whose reaping is unfinished)."""
        ...

    async def drop_edge(
        self, edge_id: str, now: float, hold_until: float | None = None
    ) -> list[RoomEvent] | None:
        """Reaps an edge whose lease ran out by `now`: forgets its lease, remembers it as
        reaped, removes its participants (reason DISCONNECTED), discards its undelivered
        signals (a waiting `next_signal` keeps waiting: an edge reaped while its
        connection survived gets the signals for the sockets it holds again). With
        `hold_until`, participants with a recovery id are held until then instead (their
        clients may resume them through another edge).

        None when the lease was renewed meanwhile or another caller reaped it first: each
        expiry is reaped once, whichever process notices it first."""
        ...

    async def edge_count(self) -> int:
        """Edges holding a lease."""
        ...

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        """Re-adds participants an edge still holds; returns the ids it could not restore.

        Refused (returned): every record of an edge that was reaped (its participants were
        reported gone); a record whose meeting is gone or ended, or that fails
        `rules.may_restore` (it names another edge, or the service holds that participant
        on another edge or socket). A participant already held as claimed is skipped.
        Permissions never come from the record: each restored participant gets
        `rules.permissions_for(meeting, user_id)`, and `edge_id` is the caller's."""
        ...


class SessionHolds(Protocol):
    """Held sessions for Socket.IO connection-state recovery (see the module docstring)."""

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, until: float) -> bool:
        """Holds a participant of `edge_id` that has a recovery id until `until`; False
        (nothing changes) when it is not in the room, has no recovery id, or is on
        another edge (recovered there meanwhile)."""
        ...

    async def recover(self, spec: RecoverSpec) -> Recovered:
        """Binds a held participant to `spec.edge_id`, atomically, at most once per hold;
        with `spec.take_over`, also one still bound to a socket (its edge may not have
        noticed the loss yet: a dead edge until it is reaped, a long-poll until its ping
        timeout), whose edge is named in `moved_from`.

        NOT_IN_MEETING when the id names no such session (unknown, already recovered,
        left, kicked, replaced, ended, expired); FORBIDDEN when `spec.user_id` is set and
        differs from the participant's (nothing changes then). When the room log still
        holds every event after `spec.after`, they are returned; otherwise the session
        is bound to `spec.fresh_recovery_id` and the room as it is now is returned."""
        ...

    async def expire_holds(self, now: float) -> list[RoomEvent]:
        """Removes the held participants whose deadline passed by `now` (reason
        DISCONNECTED) and returns their events. Costs O(expired)."""
        ...


class SignalRouter(Protocol):
    """WebRTC signals queued per edge, whichever process the edge listens on."""

    async def publish_signal(self, edge_id: str, signal: Signal) -> None:
        """Queues a signal for an edge (bounded; the oldest go first). A signal for an
        edge that has neither a lease nor a waiter is dropped: nobody could read it."""
        ...

    async def next_signal(self, edge_id: str) -> Signal:
        """Waits for the next signal queued for an edge. Waiting keeps the edge's
        mailbox; once an unknown edge has no waiter left, nothing of it remains."""
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

"""The RoomStore's edge-facing roles (protocols): edge leases and reaping with the
re-announcement records, sessions held for connection-state recovery, and WebRTC signals
routed per edge. RoomStore (base.py) composes them; the atomicity rules in its docstring
apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from room_service.domain.events import RoomEvent
from room_service.domain.models import Participant, Signal
from room_service.domain.requests import Recovered, RecoverSpec


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    """One participant an edge re-announces."""

    meeting_id: str
    """Its meeting."""
    participant: Participant
    """As the edge knew it; its permissions are ignored (derived from the meeting)."""


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
    """Held sessions for Socket.IO connection-state recovery (see the docstring of base.py)."""

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

"""RoomManager: the room service's use cases over a RoomStore.

It checks (passwords, permissions, lengths), delegates each change to one atomic store
call, logs the seed's console lines as structured records, counts metrics, and reaps the
participants of edges whose lease ran out. No protobuf here: the API layer converts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from meeting_common.logs import plural as _plural
from room_service.domain import errors, rules
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import (
    ChatMessage,
    ChatSent,
    JoinOutcome,
    JoinSpec,
    LeaveReason,
    Meeting,
    Participant,
    ParticipantLeft,
    Position,
    Recovered,
    RecoverSpec,
    RoomEvent,
    RoomSummary,
    Signal,
    Snapshot,
)
from room_service.domain.passwords import hash_password
from room_service.metrics import RoomMetrics
from room_service.password_gate import PasswordGate
from room_service.store.base import RestoreRecord, RoomStore

log = logging.getLogger("room_service")
T = TypeVar("T")

_MEDIA_FIELDS = ("audio", "video", "screen")
_READ_BATCH = 256
# Reaped edges remembered so that a late RestoreSessions cannot resurrect participants
# everyone was already told had left; older tombstones are forgotten.
_TOMBSTONES = 4096
_TOMBSTONE_SECONDS = 3600.0
# How long past an edge's disconnect grace a recovery claim waits for a still-bound session
# to be held (the reaper's tick and the edge's RPC fit well within), and how often it looks.
_RECOVERY_PATIENCE_SECONDS = 1.5
_RECOVERY_POLL_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """Service-level knobs."""

    edge_lease_seconds: float = 6.0
    """An edge silent this long loses its participants."""
    restore_grace_seconds: float = 3.0
    """After start, how long a watcher needing a snapshot waits for edges to re-announce."""
    max_chat_length: int = 2000
    """Longest chat message."""
    password_attempts_per_minute: int = 20
    """Wrong passwords per socket (edge and socket id) per minute before its joins get RATE_LIMITED."""
    password_checks_per_edge: int = 2
    """Password hashes one edge may have running at once; more wait their turn."""
    edge_disconnect_grace_seconds: float = 1.0
    """After an edge's connection closed, how long before its participants are removed."""
    ended_room_retention_seconds: float = 300.0
    """How long an ended meeting's room and replay log are kept for late watchers."""
    recovery_window_seconds: float = 5.0
    """A session whose transport closed without a goodbye is held this long after its
    client was last heard (0: never held)."""


class RoomManager:
    """The room service's operations; every public method may raise DomainError."""

    def __init__(
        self,
        store: RoomStore,
        options: ManagerOptions,
        metrics: RoomMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._options = options
        self._metrics = metrics
        self._clock = clock
        self._started = clock()
        self._reaped: dict[str, float] = {}
        # Open WatchEdge streams per edge (of this process); an entry lives while one does.
        self._edge_streams: dict[str, int] = {}
        self._reap_not_before = 0.0
        # Set on shutdown: every open stream ends so the server can stop without
        # waiting out its grace period.
        self._closing = asyncio.Event()
        self._passwords = PasswordGate(
            options.password_attempts_per_minute,
            options.password_checks_per_edge,
            metrics.password_checks,
            clock,
        )

    @property
    def edge_streams_open(self) -> int:
        """Edges with an open WatchEdge stream here (diagnostics)."""
        return len(self._edge_streams)

    @property
    def password_edges_tracked(self) -> int:
        """Edges with a password check running or waiting (diagnostics; 0 when idle)."""
        return self._passwords.edges_tracked

    @property
    def lease_seconds(self) -> float:
        """An edge's lease length."""
        return self._options.edge_lease_seconds

    # -- meetings ---------------------------------------------------------------------

    async def upsert_meeting(self, meeting: Meeting, password: str | None) -> Meeting:
        """Creates or replaces a meeting; a password is stored only as a slow hash."""
        if not meeting.id or len(meeting.id) > 128:
            raise errors.invalid("meeting id must be 1 to 128 characters")
        password_hash = await asyncio.to_thread(hash_password, password) if password else None
        stored = await self._store.upsert_meeting(_with_hash(meeting, password_hash))
        log.info("Meeting registered", extra={"meeting_id": stored.id, "status": stored.status.value})
        return stored

    async def get_meeting(self, meeting_id: str) -> Meeting:
        """A meeting; MEETING_NOT_FOUND when unknown."""
        return await self._store.get_meeting(meeting_id)

    async def end_meeting(self, meeting_id: str, requested_by: str) -> tuple[Meeting, Position]:
        """Ends a meeting; `requested_by` (a participant id) must be its host when given."""
        if not rules.is_internal(requested_by):
            rules.require_may_end(await self._store.get_participant(meeting_id, requested_by))
        drop_at = self._clock() + self._options.ended_room_retention_seconds
        meeting, event = await self._store.end_meeting(meeting_id, requested_by, drop_at)
        if event is not None:
            await self._published(event)
        log.info("🏁 Meeting ended", extra={"meeting_id": meeting_id, "ended_by": requested_by or "service"})
        position = event.position if event is not None else Position(0, "")
        return meeting, position

    # -- participants -----------------------------------------------------------------

    async def join(self, spec: JoinSpec, password: str) -> JoinOutcome:
        """Validates the meeting and password, then adds the participant atomically."""
        try:
            outcome = await self._join(spec, password)
        except DomainError as exc:
            self._metrics.joins.labels(result=exc.code.value).inc()
            raise
        except Exception:
            self._metrics.joins.labels(result=ErrorCode.INTERNAL.value).inc()
            raise
        self._metrics.joins.labels(result="ok").inc()
        return outcome

    async def _join(self, spec: JoinSpec, password: str) -> JoinOutcome:
        meeting = await self._store.get_meeting(spec.meeting_id)
        rules.require_joinable(meeting)
        if meeting.password_hash is not None:
            # A socket already in the room proved the password when it joined: its
            # repeat join costs no hash.
            again = await self._store.rejoin(spec)
            if again is not None:
                return again
            await self._passwords.check(meeting.password_hash, password, spec.edge_id, spec.socket_id)
        await self._store.touch_edge(spec.edge_id, self._clock() + self._options.edge_lease_seconds)
        outcome = await self._store.join(spec)
        if outcome.already_joined:
            return outcome
        for old in outcome.replaced:
            self._left(spec.meeting_id, old, LeaveReason.REPLACED, len(outcome.others))
        p = outcome.participant
        self._metrics.events.labels(type="participant_joined").inc()
        log.info(
            f"✅ User {p.user_name} ({p.user_id}) joined meeting {spec.meeting_id} as {p.participant_id}",
            extra={
                "meeting_id": spec.meeting_id,
                "user_id": p.user_id,
                "participant_id": p.participant_id,
                "sequence": outcome.position.sequence,
            },
        )
        others = len(outcome.others)
        log.info(
            f"📤 Broadcast participant-joined to {_plural(others, 'other participant')}",
            extra={"meeting_id": spec.meeting_id, "participant_id": p.participant_id, "recipients": others},
        )
        return outcome

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        """Removes a participant at its own (or its socket's) request."""
        event = await self._store.leave(meeting_id, participant_id, reason)
        await self._published(event)
        return event

    async def remove_participant(self, meeting_id: str, participant_id: str, requested_by: str) -> RoomEvent:
        """Kicks a participant; `requested_by` must be the host when given."""
        if not rules.is_internal(requested_by):
            rules.require_may_kick(
                await self._store.get_participant(meeting_id, requested_by), participant_id
            )
        return await self.leave(meeting_id, participant_id, LeaveReason.KICKED)

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, silent_seconds: float) -> bool:
        """A socket's transport closed without a goodbye: holds its participant until the
        window after its client was last heard, or removes it (DISCONNECTED) when that
        already passed or it cannot be recovered. True when held."""
        window = self._options.recovery_window_seconds - max(0.0, silent_seconds)
        if window > 0 and await self._store.hold(meeting_id, participant_id, edge_id, self._clock() + window):
            self._metrics.recoveries.labels(outcome="held").inc()
            log.info(
                "session held for recovery",
                extra={
                    "meeting_id": meeting_id,
                    "participant_id": participant_id,
                    "seconds": round(window, 3),
                },
            )
            return True
        try:
            current = await self._store.get_participant(meeting_id, participant_id)
        except DomainError:
            return False
        if current.edge_id == edge_id:  # not recovered elsewhere meanwhile
            with contextlib.suppress(DomainError):
                await self.leave(meeting_id, participant_id, LeaveReason.DISCONNECTED)
        return False

    async def recover(self, spec: RecoverSpec) -> Recovered:
        """Resumes a held session on the caller's edge (see RoomStore.recover).

        A client often reconnects before its old edge let go of the session (a dead edge
        is reaped after its disconnect grace; a long-poll lingers until its ping
        timeout): while the session is still bound, the claim waits a bounded while for
        it to be held instead of being refused at once."""
        deadline = self._clock() + self._options.edge_disconnect_grace_seconds + _RECOVERY_PATIENCE_SECONDS
        while True:
            try:
                recovered = await self._store.recover(spec)
                break
            except DomainError as exc:
                waiting = exc.code is ErrorCode.NOT_IN_MEETING and self._clock() < deadline
                if not waiting or not await self._store.recovery_pending(spec.recovery_id):
                    self._metrics.recoveries.labels(outcome="refused").inc()
                    raise
            await asyncio.sleep(_RECOVERY_POLL_SECONDS)
        outcome = "resynced" if recovered.resynced else "recovered"
        self._metrics.recoveries.labels(outcome=outcome).inc()
        log.info(
            "session recovered" if not recovered.resynced else "session resumed without the missed events",
            extra={
                "meeting_id": recovered.meeting.id,
                "participant_id": recovered.participant.participant_id,
                "edge_id": spec.edge_id,
                "missed": len(recovered.missed),
            },
        )
        return recovered

    async def update_media(
        self, meeting_id: str, participant_id: str, changes: dict[str, bool], requested_by: str
    ) -> tuple[Participant, RoomEvent | None]:
        """Changes media state: the participant itself, or an internal service (empty)."""
        unknown = set(changes) - set(_MEDIA_FIELDS)
        if unknown:
            raise errors.invalid(f"unknown media fields: {sorted(unknown)}")
        participant = await self._store.get_participant(meeting_id, participant_id)
        rules.require_may_change_media(participant, requested_by, changes)
        updated, event = await self._store.update_media(meeting_id, participant_id, changes, requested_by)
        if event is not None:
            await self._published(event)
        return updated, event

    async def list_participants(self, meeting_id: str) -> Snapshot:
        """The room's participants and the position they reflect."""
        return await self._store.snapshot(meeting_id)

    async def list_rooms(self) -> list[RoomSummary]:
        """Rooms with participants."""
        return await self._store.list_rooms()

    # -- messaging --------------------------------------------------------------------

    async def send_chat(
        self, meeting_id: str, participant_id: str, text: str
    ) -> tuple[ChatMessage, Position]:
        """Broadcasts a chat message after the length and permission checks."""
        text = text.strip()
        if not text:
            raise errors.invalid("chat text is empty")
        if len(text) > self._options.max_chat_length:
            raise errors.invalid(f"chat text is longer than {self._options.max_chat_length} characters")
        sender = await self._store.get_participant(meeting_id, participant_id)
        rules.require_may_chat(sender)
        event = await self._store.append_chat(meeting_id, participant_id, text)
        await self._published(event)
        assert isinstance(event.payload, ChatSent)
        return event.payload.message, event.position

    async def send_signal(self, signal: Signal) -> None:
        """Routes a WebRTC signal to the target's edge; both must be in the meeting."""
        if signal.target_participant_id == signal.from_participant_id:
            raise errors.invalid("a signal needs another participant as target")
        await self._store.get_participant(signal.meeting_id, signal.from_participant_id)
        try:
            target = await self._store.get_participant(signal.meeting_id, signal.target_participant_id)
        except DomainError as exc:
            raise errors.not_in_meeting("Target participant is not in this meeting") from exc
        routed = Signal(
            type=signal.type,
            meeting_id=signal.meeting_id,
            from_participant_id=signal.from_participant_id,
            target_participant_id=target.participant_id,
            payload_json=signal.payload_json,
            target_socket_id=target.socket_id,
        )
        await self._store.publish_signal(target.edge_id, routed)
        self._metrics.signals.inc()

    async def edge_signals(self, edge_id: str) -> AsyncIterator[Signal]:
        """The signals for one edge's sockets, as they come.

        The stream doubles as the edge's liveness: a (re)opened stream renews a known
        edge's lease, and when the edge's last stream ends because its connection closed
        (the process died) its lease is cut to the disconnect grace."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        self._edge_streams[edge_id] = self._edge_streams.get(edge_id, 0) + 1
        try:
            await self._store.touch_edge(
                edge_id, self._clock() + self._options.edge_lease_seconds, create=False
            )
            while True:
                signal = await self._unless_closing(self._store.next_signal(edge_id))
                if signal is None:
                    return
                yield signal
        finally:
            await self._edge_stream_ended(edge_id)

    async def _edge_stream_ended(self, edge_id: str) -> None:
        remaining = self._edge_streams.pop(edge_id) - 1
        if remaining:
            self._edge_streams[edge_id] = remaining
            return
        if self._closing.is_set():
            return  # this service is stopping; the edge is not the one that went away
        # A dead edge never reconnects; a live one whose connection blipped reopens its
        # stream (renewing the lease above) or heartbeats within the grace.
        grace = self._options.edge_disconnect_grace_seconds
        if await self._store.touch_edge(edge_id, self._clock() + grace, create=False):
            log.info(
                "edge connection closed; its participants go unless it reconnects",
                extra={"edge_id": edge_id, "grace_seconds": grace},
            )

    # -- the stream -------------------------------------------------------------------

    async def watch(self, meeting_id: str, after: Position) -> AsyncIterator[RoomEvent | Snapshot]:
        """The room's events after `after`, in order; a snapshot where replay cannot reach."""
        await self._store.get_meeting(meeting_id)
        position = after
        self._metrics.watch_streams.inc()
        try:
            while True:
                batch = await self._store.read_after(meeting_id, position, _READ_BATCH)
                if isinstance(batch, Snapshot):
                    await self._restore_grace()
                    if self._closing.is_set():
                        return
                    # Re-read: edges may have re-announced their sockets meanwhile.
                    batch = await self._store.snapshot(meeting_id)
                    if batch.position != position:
                        yield batch
                        position = batch.position
                    continue
                for event in batch:
                    yield event
                    position = event.position
                if not batch:
                    await self._unless_closing(self._store.wait_beyond(meeting_id, position))
                if self._closing.is_set():
                    return
        finally:
            self._metrics.watch_streams.dec()

    async def _restore_grace(self) -> None:
        # A fresh in-memory service knows nobody until the edges re-announce their
        # sockets. A resuming watcher answered with a snapshot now would tell its sockets
        # that every participant of a slower edge left; so stale watchers wait out the
        # grace (edges re-announce within about a second of the service coming back).
        remaining = self._started + self._options.restore_grace_seconds - self._clock()
        if remaining > 0:
            await self._unless_closing(asyncio.sleep(remaining))

    async def _unless_closing(self, awaitable: Awaitable[T]) -> T | None:
        """The awaitable's result, or None when the service starts shutting down first."""
        if self._closing.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return None
        work = asyncio.ensure_future(awaitable)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        return work.result() if not work.cancelled() else None

    def close_streams(self) -> None:
        """Ends every WatchRoom and WatchEdge stream (shutdown); new ones end at once."""
        self._closing.set()

    # -- edges ------------------------------------------------------------------------

    async def heartbeat(self, edge_id: str) -> bool:
        """Renews an edge's lease; False when the edge was unknown (its sessions are gone)."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        return await self._store.touch_edge(edge_id, self._clock() + self._options.edge_lease_seconds)

    async def instance_id(self) -> str:
        """Names the state this service serves; edges re-announce their sockets when it changes."""
        return await self._store.instance_id()

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        """Re-adds the participants an edge still holds after this service lost them."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        await self._store.touch_edge(edge_id, self._clock() + self._options.edge_lease_seconds)
        if edge_id in self._reaped:
            # Its lease ran out and everyone was told these participants left: the edge
            # must tell its sockets so, not bring them back.
            rejected = [r.participant.participant_id for r in records]
        else:
            rejected = await self._store.restore(edge_id, records)
        log.info(
            "Edge re-announced its sessions",
            extra={"edge_id": edge_id, "sessions": len(records), "rejected": len(rejected)},
        )
        return rejected

    async def reap_expired_edges(self) -> int:
        """Removes the participants of every edge whose lease ran out; returns how many."""
        reaped = 0
        now = self._clock()
        if now < self._reap_not_before:
            return 0
        window = self._options.recovery_window_seconds
        for edge_id in await self._store.expired_edges(now):
            # Its sockets' clients may reconnect through another edge: held for the window.
            events = await self._store.drop_edge(edge_id, hold_until=now + window if window > 0 else None)
            self._remember_reaped(edge_id, now)
            for event in events:
                await self._published(event)
            reaped += len(events)
            self._metrics.reaped.inc(len(events))
            log.warning(
                "Edge lease expired; its participants were removed",
                extra={"edge_id": edge_id, "participants": len(events)},
            )
        return reaped

    def _remember_reaped(self, edge_id: str, now: float) -> None:
        self._reaped[edge_id] = now
        for old, when in list(self._reaped.items()):
            if len(self._reaped) <= _TOMBSTONES and now - when < _TOMBSTONE_SECONDS:
                break
            del self._reaped[old]

    def note_stall(self, seconds: float) -> None:
        """This process did not run for `seconds` (frozen, starved): no edge could renew
        its lease meanwhile, so every edge gets one full lease before anyone is reaped."""
        self._reap_not_before = self._clock() + self._options.edge_lease_seconds
        log.warning(
            "room service stalled; reaping paused for one lease",
            extra={"stalled_seconds": round(seconds, 3), "lease_seconds": self._options.edge_lease_seconds},
        )

    async def run_reaper(self, interval: float) -> None:
        """Reaps expired edges forever, every `interval` seconds."""
        last = self._clock()
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            if now - last > interval + max(1.0, self._options.edge_lease_seconds / 4):
                self.note_stall(now - last - interval)
            last = now
            try:
                await self.housekeeping()
            except Exception:
                log.exception("reaping expired edges or ended rooms failed")

    async def housekeeping(self) -> None:
        """One reaper tick: expired edges lose their participants, ended rooms past their
        retention are forgotten."""
        await self.reap_expired_edges()
        for event in await self._store.expire_holds(self._clock()):
            self._metrics.recoveries.labels(outcome="expired").inc()
            await self._published(event)
        dropped = await self._store.drop_ended_rooms(self._clock())
        if dropped:
            log.info("ended rooms dropped", extra={"rooms": dropped})

    async def refresh_gauges(self) -> None:
        """Sets the room, participant and edge gauges from the store (at scrape time)."""
        rooms = await self._store.list_rooms()
        self._metrics.rooms.set(len(rooms))
        self._metrics.participants.set(sum(r.participant_count for r in rooms))
        self._metrics.edges.set(await self._store.edge_count())

    # -- internals --------------------------------------------------------------------

    async def _published(self, event: RoomEvent) -> None:
        payload = event.payload
        if isinstance(payload, ParticipantLeft):
            remaining = await self._store.participant_count(event.meeting_id)
            self._left(event.meeting_id, payload.participant, payload.reason, remaining)
            return
        self._metrics.events.labels(type=_event_type(event)).inc()

    def _left(self, meeting_id: str, participant: Participant, reason: LeaveReason, remaining: int) -> None:
        self._metrics.events.labels(type="participant_left").inc()
        self._metrics.leaves.labels(reason=reason.value).inc()
        verb = "disconnected from" if reason is LeaveReason.DISCONNECTED else f"left ({reason.value})"
        fields = {
            "meeting_id": meeting_id,
            "participant_id": participant.participant_id,
            "reason": reason.value,
        }
        log.info(f"👋 User {participant.user_name} {verb} meeting {meeting_id}", extra=fields)
        log.info(
            f"📤 Broadcast participant-left to {_plural(remaining, 'remaining participant')}",
            extra=fields | {"recipients": remaining},
        )


def _event_type(event: RoomEvent) -> str:
    return event.payload.kind


def _with_hash(meeting: Meeting, password_hash: str | None) -> Meeting:
    return dataclasses.replace(meeting, password_hash=password_hash)

"""What the RoomManager's parts share: its options, its state (store, clock, metrics,
the restore grace, the closing flag), the store-continuity check, and how a published
event is logged and counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from meeting_common.logs import plural
from room_service.domain.events import ParticipantLeft, RoomEvent
from room_service.domain.models import LeaveReason, Participant
from room_service.metrics import RoomMetrics
from room_service.password_gate import PasswordGate
from room_service.store.base import RoomStore

log = logging.getLogger("room_service")


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
    ban_kicked_users: bool = False
    """A kicked user's joins to that meeting are refused (FORBIDDEN) until it ends."""
    ended_room_retention_seconds: float = 300.0
    """How long an ended meeting's room and replay log are kept for late watchers."""
    recovery_window_seconds: float = 5.0
    """A session whose transport closed without a goodbye is held this long after its
    client was last heard (0: never held)."""


class ManagerCore:
    """State and helpers shared by the use cases, the edge leases and the streams."""

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
        self._instance = ""
        # Called when the store lost its data, before anything else uses it again (the
        # app re-registers its meetings file there).
        self.on_store_reset: Callable[[], Awaitable[None]] | None = None
        # Open WatchEdge streams per edge (of this process); an entry lives while one does.
        self._edge_streams: dict[str, int] = {}
        self._reap_not_before = 0.0
        # Set on shutdown: every open stream ends so the server can stop without
        # waiting out its grace period.
        self._closing = asyncio.Event()
        # False while the store is known down (the app's readiness pings went unanswered
        # a few times in a row): joins are then refused at once instead of each waiting
        # out the store's command timeout.
        self.store_answering = True
        self._passwords = PasswordGate(
            store,
            options.password_attempts_per_minute,
            options.password_checks_per_edge,
            metrics.password_checks,
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

    async def check_store_continuity(self) -> None:
        """Restarts the restore grace when the store lost its data (a Redis restarted
        empty): every room begins a new epoch and edges re-announce, as after a start."""
        instance = await self._store.instance_id()
        if self._instance and instance != self._instance:
            self._started = self._clock()
            log.warning("room store lost its data; rooms start new epochs")
            if self.on_store_reset is not None:
                await self.on_store_reset()
        self._instance = instance

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
            f"📤 Broadcast participant-left to {plural(remaining, 'remaining participant')}",
            extra=fields | {"recipients": remaining},
        )


def _event_type(event: RoomEvent) -> str:
    return event.payload.kind

"""The room service's domain metrics (the gRPC server metrics wrap each method's handler, app.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from meeting_common.codes import ErrorCode
from meeting_common.metrics import Registrar
from room_service.domain.events import EVENT_KINDS
from room_service.domain.models import LeaveReason
from room_service.store.redis_base import OPERATIONS as STORE_OPERATIONS

# The `type` values of room_service_events_published_total (one per RoomEvent payload).
EVENT_TYPES = EVENT_KINDS
# The `outcome` values of room_service_session_recoveries_total.
RECOVERY_OUTCOMES = ("held", "recovered", "resynced", "refused", "expired")


class RoomMetrics:
    """Domain metrics, registered in one registry. Labels are bounded: no ids ever."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        declare = Registrar(registry)
        self.rooms = declare.gauge("room_service_rooms_active", "Rooms with at least one participant.")
        self.participants = declare.gauge("room_service_participants_active", "Participants in all rooms.")
        self.joins = declare.counter(
            "room_service_joins",
            "Join attempts by result (ok or an error code).",
            "result",
            ("ok", *ErrorCode),
        )
        self.leaves = declare.counter(
            "room_service_leaves", "Participants that left, by reason.", "reason", LeaveReason
        )
        self.events = declare.counter(
            "room_service_events_published", "Room events appended, by type.", "type", EVENT_TYPES
        )
        self.watch_streams = declare.gauge("room_service_watch_streams_open", "Open WatchRoom streams.")
        self.edges = declare.gauge("room_service_edges_connected", "Edge gateways holding a lease.")
        self.reaped = declare.counter(
            "room_service_participants_reaped", "Participants removed because their edge's lease expired."
        )
        self.signals = declare.counter("room_service_signals_routed", "WebRTC signals routed to an edge.")
        self.store_seconds = declare.histogram(
            "room_service_store_operation_seconds",
            "Time each shared-store (Redis) operation took, by operation.",
            (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            "operation",
            STORE_OPERATIONS,
        )
        self.store_errors = declare.counter(
            "room_service_store_errors",
            "Shared-store (Redis) operations that failed, by operation.",
            "operation",
            STORE_OPERATIONS,
        )
        self.store_up = declare.gauge(
            "room_service_store_up", "1 while the room store answers (always 1 for the in-memory store)."
        )
        self.recoveries = declare.counter(
            "room_service_session_recoveries",
            "Socket.IO connection-state recoveries: held sessions by outcome (held, recovered, "
            "resynced: recovered without the missed events, refused, expired).",
            "outcome",
            RECOVERY_OUTCOMES,
        )
        self.password_checks = declare.counter(
            "room_service_password_checks",
            "Meeting password hashes computed (scrypt), by result (ok or wrong).",
            "result",
            ("ok", "wrong"),
        )

    def observe_store(self, operation: str, seconds: float, ok: bool) -> None:
        """Records one store operation (called by the Redis store after each)."""
        self.store_seconds.labels(operation=operation).observe(seconds)
        if not ok:
            self.store_errors.labels(operation=operation).inc()

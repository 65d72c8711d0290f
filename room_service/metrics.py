"""The room service's domain metrics (the gRPC server metrics come from an interceptor)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from meeting_common.codes import ErrorCode
from room_service.domain.models import EVENT_KINDS, LeaveReason
from room_service.store.redis_base import OPERATIONS as STORE_OPERATIONS

# The `type` values of room_service_events_published_total (one per RoomEvent payload).
EVENT_TYPES = EVENT_KINDS
# The `outcome` values of room_service_session_recoveries_total.
RECOVERY_OUTCOMES = ("held", "recovered", "resynced", "refused", "expired")


class RoomMetrics:
    """Domain metrics, registered in one registry. Labels are bounded: no ids ever."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.rooms = Gauge(
            "room_service_rooms_active", "Rooms with at least one participant.", registry=registry
        )
        self.participants = Gauge(
            "room_service_participants_active", "Participants in all rooms.", registry=registry
        )
        self.joins = Counter(
            "room_service_joins",
            "Join attempts by result (ok or an error code).",
            ["result"],
            registry=registry,
        )
        self.leaves = Counter(
            "room_service_leaves", "Participants that left, by reason.", ["reason"], registry=registry
        )
        self.events = Counter(
            "room_service_events_published", "Room events appended, by type.", ["type"], registry=registry
        )
        self.watch_streams = Gauge(
            "room_service_watch_streams_open", "Open WatchRoom streams.", registry=registry
        )
        self.edges = Gauge(
            "room_service_edges_connected", "Edge gateways holding a lease.", registry=registry
        )
        self.reaped = Counter(
            "room_service_participants_reaped",
            "Participants removed because their edge's lease expired.",
            registry=registry,
        )
        self.signals = Counter(
            "room_service_signals_routed", "WebRTC signals routed to an edge.", registry=registry
        )
        self.store_seconds = Histogram(
            "room_service_store_operation_seconds",
            "Time each shared-store (Redis) operation took, by operation.",
            ["operation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.store_errors = Counter(
            "room_service_store_errors",
            "Shared-store (Redis) operations that failed, by operation.",
            ["operation"],
            registry=registry,
        )
        self.store_up = Gauge(
            "room_service_store_up",
            "1 while the room store answers (always 1 for the in-memory store).",
            registry=registry,
        )
        self.recoveries = Counter(
            "room_service_session_recoveries",
            "Socket.IO connection-state recoveries: held sessions by outcome (held, recovered, "
            "resynced: recovered without the missed events, refused, expired).",
            ["outcome"],
            registry=registry,
        )
        self.password_checks = Counter(
            "room_service_password_checks",
            "Meeting password hashes computed (scrypt), by result (ok or wrong).",
            ["result"],
            registry=registry,
        )
        # Every known series exists from the start, at zero: a counter series born at its
        # first increment hides that increment from rate() and increase(), so the first
        # joins, failures and leaves after a start would reach neither dashboard nor alerts.
        for result in ("ok", *(code.value for code in ErrorCode)):
            self.joins.labels(result=result)
        for result in ("ok", "wrong"):
            self.password_checks.labels(result=result)
        for outcome in RECOVERY_OUTCOMES:
            self.recoveries.labels(outcome=outcome)
        for reason in LeaveReason:
            self.leaves.labels(reason=reason.value)
        for event_type in EVENT_TYPES:
            self.events.labels(type=event_type)
        for operation in STORE_OPERATIONS:
            self.store_seconds.labels(operation=operation)
            self.store_errors.labels(operation=operation)

    def observe_store(self, operation: str, seconds: float, ok: bool) -> None:
        """Records one store operation (called by the Redis store after each)."""
        self.store_seconds.labels(operation=operation).observe(seconds)
        if not ok:
            self.store_errors.labels(operation=operation).inc()

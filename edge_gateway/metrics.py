"""The edge's metrics (the gRPC client metrics come from an interceptor)."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from edge_gateway.events import CLIENT_EVENTS, KNOWN_EVENTS, SERVER_EVENTS
from meeting_common.codes import ErrorCode

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def event_label(name: str) -> str:
    """A bounded label value for an event name: a hostile client cannot grow the label set."""
    return name if name in KNOWN_EVENTS else "other"


class EdgeMetrics:
    """Edge metrics in one registry. Labels are bounded: no ids ever."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sockets = Gauge(
            "edge_gateway_sockets_connected", "Connected Socket.IO clients.", registry=registry
        )
        self.received = Counter(
            "edge_gateway_events_received",
            "Socket.IO events received, by name.",
            ["event"],
            registry=registry,
        )
        self.sent = Counter(
            "edge_gateway_events_emitted", "Socket.IO events emitted, by name.", ["event"], registry=registry
        )
        self.errors = Counter(
            "edge_gateway_errors", "Errors sent to clients, by code.", ["code"], registry=registry
        )
        self.join_duration = Histogram(
            "edge_gateway_join_duration_seconds",
            "join-meeting received to meeting-joined sent.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.relay_lag = Histogram(
            "edge_gateway_relay_lag_seconds",
            "Room event created in the room service to emitted to sockets.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.room_streams = Gauge(
            "edge_gateway_room_streams_open", "Open WatchRoom streams.", registry=registry
        )
        self.slow_sockets_dropped = Counter(
            "edge_gateway_slow_sockets_dropped",
            "Sockets closed because their outgoing buffer went over --max-buffered-bytes.",
            registry=registry,
        )
        self.malformed_frames = Counter(
            "edge_gateway_malformed_frames",
            "Client frames that could not be decoded (a socket is dropped after a few).",
            registry=registry,
        )
        self.room_service_up = Gauge(
            "edge_gateway_room_service_up",
            "1 when the room service answers the edge's heartbeats.",
            registry=registry,
        )
        # Every known series exists from the start, at zero: a counter series born at its
        # first increment hides that increment from rate() and increase(), so the first
        # events and errors after a start would never reach the dashboard or the alerts.
        for event in (*CLIENT_EVENTS, "other"):
            self.received.labels(event=event)
        for event in SERVER_EVENTS:
            self.sent.labels(event=event)
        for code in ErrorCode:
            self.errors.labels(code=code.value)

    def emitted(self, event: str) -> None:
        """Counts one emitted event."""
        self.sent.labels(event=event_label(event)).inc()

    def observe_lag(self, created: Timestamp) -> None:
        """Records relay lag from the event's creation time."""
        lag = time.time() - (created.seconds + created.nanos / 1e9)
        self.relay_lag.observe(max(lag, 0.0))

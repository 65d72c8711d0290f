"""The edge's metrics (the gRPC client metrics are recorded by the RoomClient, edge_gateway.rpc)."""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import CollectorRegistry

from edge_gateway.events import CLIENT_EVENTS, KNOWN_EVENTS, SERVER_EVENTS
from meeting_common.codes import ErrorCode
from meeting_common.metrics import Registrar

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def event_label(name: str) -> str:
    """A bounded label value for an event name: a hostile client cannot grow the label set."""
    return name if name in KNOWN_EVENTS else "other"


class EdgeMetrics:
    """Edge metrics in one registry. Labels are bounded: no ids ever."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        declare = Registrar(registry)
        self.sockets = declare.gauge("edge_gateway_sockets_connected", "Connected Socket.IO clients.")
        self.received = declare.counter(
            "edge_gateway_events_received",
            "Socket.IO events received, by name.",
            "event",
            (*CLIENT_EVENTS, "other"),
        )
        self.sent = declare.counter(
            "edge_gateway_events_emitted", "Socket.IO events emitted, by name.", "event", SERVER_EVENTS
        )
        self.errors = declare.counter(
            "edge_gateway_errors", "Errors sent to clients, by code.", "code", ErrorCode
        )
        self.join_duration = declare.histogram(
            "edge_gateway_join_duration_seconds",
            "join-meeting received to meeting-joined sent.",
            _LATENCY_BUCKETS,
        )
        self.relay_lag = declare.histogram(
            "edge_gateway_relay_lag_seconds",
            "Room event created in the room service to emitted to sockets.",
            _LATENCY_BUCKETS,
        )
        self.room_streams = declare.gauge("edge_gateway_room_streams_open", "Open WatchRoom streams.")
        self.slow_sockets_dropped = declare.counter(
            "edge_gateway_slow_sockets_dropped",
            "Sockets closed because their outgoing buffer went over --max-buffered-bytes.",
        )
        self.malformed_frames = declare.counter(
            "edge_gateway_malformed_frames",
            "Client frames that could not be decoded (a socket is dropped after a few).",
        )
        self.room_service_up = declare.gauge(
            "edge_gateway_room_service_up", "1 when the room service answers the edge's heartbeats."
        )

    def emitted(self, event: str) -> None:
        """Counts one emitted event."""
        self.sent.labels(event=event_label(event)).inc()

    def observe_lag(self, created: Timestamp) -> None:
        """Records relay lag from the event's creation time."""
        lag = time.time() - (created.seconds + created.nanos / 1e9)
        self.relay_lag.observe(max(lag, 0.0))

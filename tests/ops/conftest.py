"""Shared pieces of the operations tests: paths, the known metric names, tool look-ups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.prometheus import require_tool

PROMTOOL_TESTS = Path(__file__).with_name("promtool") / "alerts_test.yaml"

_GRPC_FAMILIES = ("started_total", "handled_total", "msg_received_total", "msg_sent_total")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")

# The metric names the tiers export; dashboards and alerts may use only these.
KNOWN_METRICS: frozenset[str] = frozenset(
    {
        "up",
        "room_service_rooms_active",
        "room_service_participants_active",
        "room_service_joins_total",
        "room_service_leaves_total",
        "room_service_events_published_total",
        "room_service_watch_streams_open",
        "room_service_edges_connected",
        "room_service_participants_reaped_total",
        "room_service_session_recoveries_total",
        "room_service_signals_routed_total",
        "room_service_store_up",
        "room_service_store_errors_total",
        *(f"room_service_store_operation_seconds{suffix}" for suffix in _HISTOGRAM_SERIES),
        "edge_gateway_sockets_connected",
        "edge_gateway_events_received_total",
        "edge_gateway_events_emitted_total",
        "edge_gateway_errors_total",
        "edge_gateway_room_streams_open",
        "edge_gateway_room_service_up",
        *(
            f"edge_gateway_{name}{suffix}"
            for name in ("join_duration_seconds", "relay_lag_seconds")
            for suffix in _HISTOGRAM_SERIES
        ),
        *(f"grpc_{side}_{family}" for side in ("server", "client") for family in _GRPC_FAMILIES),
        *(
            f"grpc_{side}_handling_seconds{suffix}"
            for side in ("server", "client")
            for suffix in _HISTOGRAM_SERIES
        ),
    }
)

_PROMQL_WORDS = frozenset(
    {
        "sum", "by", "without", "rate", "increase", "histogram_quantile", "absent", "and",
        "or", "unless", "count", "max", "min", "avg", "on", "ignoring", "bool", "le",
        "label_values", "offset",
    }
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (label matchers, strings and ranges removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()", text))
    return {name for name in names if name not in _PROMQL_WORDS and not name[0].isdigit()}


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; FAILS when it is not installed (see `require_tool`)."""
    return require_tool("promtool")

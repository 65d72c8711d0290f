"""The Grafana dashboard and the Prometheus alert rules the Helm chart ships, read for the
operator-side tests: every panel's queries with Grafana's variables filled in, the
rules of the rule file, and the metric names the tiers export, the only ones either may
select."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.support.managed import REPO_ROOT

CHART = REPO_ROOT / "helm" / "meeting-rooms"
CHART_FILES = CHART / "files"
DASHBOARD_FILE = CHART_FILES / "dashboard.json"
RULES_FILE = CHART_FILES / "alerts.rules.yaml"

# The scrape job names the alert rules and the dashboard select on (docs/operations.md).
ROOM_SERVICE_JOB = "room-service"
EDGE_JOB = "edge-gateway"


@dataclass(frozen=True)
class PanelQuery:
    """One query target of one dashboard panel."""

    panel: str
    ref_id: str
    expr: str


def load_dashboard() -> dict[str, Any]:
    """The Grafana dashboard the chart ships."""
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def _all_panels(panels: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for panel in panels:
        yield panel
        # Collapsed rows carry their panels inside.
        yield from _all_panels(panel.get("panels", []))


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every Prometheus query target of every panel (rows excluded)."""
    queries = []
    for panel in _all_panels(dashboard["panels"]):
        if panel.get("type") == "row":
            continue
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append(PanelQuery(panel["title"], str(target.get("refId", "")), target["expr"]))
    return queries


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def fill_variables(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with Grafana's variables (`$x`, `${x}`, `${x:fmt}`, `[[x]]`) replaced from
    `values`; an unknown variable is an error (it would reach Prometheus verbatim)."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def alert_rules() -> list[dict[str, Any]]:
    """The rules of the chart's rule file."""
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def has_finite_value(result: Sequence[Mapping[str, Any]]) -> bool:
    """Whether an instant-query vector holds a sample a panel can draw (not NaN/Inf)."""
    return any(math.isfinite(float(item["value"][1])) for item in result)


_GRPC_FAMILIES = ("started_total", "handled_total", "msg_received_total", "msg_sent_total")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")

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
"""The metric names the tiers export; dashboards and alerts may use only these."""

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

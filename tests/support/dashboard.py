"""The Grafana dashboard and the Prometheus alert rules the Helm chart ships, read for the
operator-side tests: every panel's queries with Grafana's variables filled in, and the
rules of the rule file."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]

from tests.support.processes import REPO_ROOT

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

"""The Grafana dashboard: structure, datasource variable, PromQL validity, metric names."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dashboard import DASHBOARD_FILE, KNOWN_METRICS, metric_names

ROWS = ["Traffic", "Latency", "Errors", "Rooms", "Edge tier", "Room service", "Room store", "gRPC"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in _panels(dashboard) for target in panel["targets"]]
    variables = dashboard["templating"]["list"]
    for var in variables:
        if var["type"] == "query":  # label_values(METRIC, LABEL): keep the selector
            exprs.append(var["definition"].removeprefix("label_values(").rsplit(",", 1)[0])
    return exprs


def test_datasource_is_a_prometheus_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_rows_in_order(dashboard: dict[str, Any]) -> None:
    assert [p["title"] for p in dashboard["panels"] if p["type"] == "row"] == ROWS


def test_join_health_at_a_glance(dashboard: dict[str, Any]) -> None:
    first_row = []
    for panel in dashboard["panels"][1:]:
        if panel["type"] == "row":
            break
        first_row.append(panel)
    stats = {panel["title"]: panel for panel in first_row if panel["type"] == "stat"}
    assert {"Join success ratio", "Join p50", "Join p99"} <= set(stats)
    ratio = stats["Join success ratio"]["targets"][0]["expr"]
    assert 'room_service_joins_total{result="ok"' in ratio
    assert "histogram_quantile(0.99" in stats["Join p99"]["targets"][0]["expr"]
    assert "edge_gateway_join_duration_seconds_bucket" in stats["Join p50"]["targets"][0]["expr"]


def test_layout(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"panel {panel['title']!r} overlaps another"
        occupied |= cells


def test_queries_use_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    for expr in _exprs(dashboard):
        unknown = metric_names(expr) - KNOWN_METRICS
        assert not unknown, f"{expr!r} uses unknown metrics {unknown}"


def test_queries_are_valid_promql(dashboard: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables filled in."""
    rules = []
    for index, expr in enumerate(_exprs(dashboard)):
        concrete = (
            expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$namespace", ".*")
        )
        rules.append({"record": f"dashboard:query_{index}", "expr": concrete})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

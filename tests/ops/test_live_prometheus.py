"""A real Prometheus scrapes a running system (one room service on the Redis store, two
edges) while the
official JavaScript client drives traffic; then every dashboard query must draw something
and every alert expression must evaluate, through Prometheus' own HTTP API."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard import (
    EDGE_JOB,
    ROOM_SERVICE_JOB,
    RULES_FILE,
    alert_rules,
    fill_variables,
    has_finite_value,
    load_dashboard,
    panel_queries,
)
from tests.support.jsclient import JsClientPool
from tests.support.processes import QUICK_STOP, EdgeProcess, RoomServiceProcess, start_room_service
from tests.support.prometheus import (
    PrometheusServer,
    require_tool,
)
from tests.support.redis_server import start_redis
from tests.support.traffic import TrafficIds, drive_traffic

# What the Prometheus Operator adds to every target of a ServiceMonitor; the dashboard's
# `namespace` variable lists its values.
NAMESPACE = "meetings-ops-test"

# Grafana's built-in intervals. The whole test runs in well under a minute, so a one-minute
# window (what Grafana picks for a dashboard over the last few hours) covers all traffic.
INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1m"}

# Alerts that must stay silent on a healthy system with only user errors. The latency
# alerts are only evaluated: a busy test machine is not what they measure.
QUIET_ON_A_HEALTHY_SYSTEM = {
    "RoomServiceDown",
    "EdgeCannotReachRoomService",
    "JoinErrorRatioHigh",
    "ParticipantsReapedAfterEdgeLoss",
    "RoomStoreFailing",
}

DEADLINE_SECONDS = 30.0

# Panels that must show the traffic itself, not just a zero line: panel title -> the label
# the query groups by (None: a single series) and the values of it that must be above 0.
# Counter series created only at their first increment would fail here: Prometheus never
# sees that first rise, so the first joins, errors and leaves after a start go missing.
SHOWS_THE_TRAFFIC: dict[str, tuple[str | None, set[str]]] = {
    "Join success ratio": (None, {""}),
    "Join p50": (None, {""}),
    "Join p99": (None, {""}),
    "Joins / s": (None, {""}),
    "Participants": (None, {""}),
    "Sockets": (None, {""}),
    "Joins by result": ("result", {"ok", "INVALID_PASSWORD", "MEETING_NOT_FOUND"}),
    "Socket.IO events received": ("event", {"join-meeting", "update-media", "chat-message", "leave-meeting"}),
    "Socket.IO events emitted": (
        "event",
        {"meeting-joined", "participant-joined", "participant-left", "error"},
    ),
    "Join failures by result": ("result", {"INVALID_PASSWORD", "MEETING_NOT_FOUND"}),
    "Edge errors by code": ("code", {"INVALID_PASSWORD", "MEETING_NOT_FOUND", "INVALID_PAYLOAD"}),
    "Leaves by reason": ("reason", {"left", "disconnected"}),
    "Room events published": ("type", {"participant_joined", "participant_left", "chat_message"}),
    "WebRTC signals routed": (None, {""}),
    "RPCs by method": ("grpc_method", {"Join", "Leave", "SendChat", "WatchRoom"}),
    "Replicas reaching the store": (None, {""}),
    "Store operation p99 by operation": ("operation", {"join", "leave", "append_chat"}),
}


@pytest.fixture
async def room_service() -> AsyncIterator[RoomServiceProcess]:
    """The room service on the Redis store (a redis-server of its own), so that the store
    panels have something to draw; the edges of the shared fixtures dial it."""
    redis = await start_redis()
    try:
        async with await start_room_service(
            "--store",
            "redis",
            "--edge-lease-seconds",
            "3",
            *QUICK_STOP,
            env={"ROOM_SERVICE_REDIS_URL": redis.url},
        ) as proc:
            yield proc
    finally:
        await redis.terminate()


def _missing_traffic(title: str, result: list[dict[str, Any]]) -> set[str]:
    """The label values `title`'s panel should show above zero but does not."""
    if title not in SHOWS_THE_TRAFFIC:
        return set()
    label, wanted = SHOWS_THE_TRAFFIC[title]
    shown = {
        (item["metric"].get(label, "") if label else ""): float(item["value"][1])
        for item in result
        if math.isfinite(float(item["value"][1]))
    }
    return {value for value in wanted if shown.get(value, 0.0) <= 0.0}


async def _wait_drawn(prom: PrometheusServer, title: str, expr: str, deadline: float) -> str | None:
    """None once `expr` returns a finite sample (and shows the traffic, where the panel is
    expected to); otherwise, at the deadline, why not."""
    while True:
        answer = await prom.query(expr)
        if answer.get("status") != "success":
            return f"query failed: {answer.get('errorType')}: {answer.get('error')}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        missing = _missing_traffic(title, result)
        if has_finite_value(result) and not missing:
            return None
        if time.monotonic() >= deadline:
            shown = (
                "no finite sample"
                if not has_finite_value(result)
                else f"nothing above 0 for {sorted(missing)}"
            )
            return f"{shown}; last result {result}"
        await asyncio.sleep(0.5)


async def test_every_dashboard_query_and_alert_evaluates_on_a_live_prometheus(
    room_service: RoomServiceProcess,
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    tmp_path: Path,
) -> None:
    binary = require_tool("prometheus")
    began = time.monotonic()
    jobs = {
        ROOM_SERVICE_JOB: [room_service.metrics_address],
        EDGE_JOB: [edge.http_address, edge2.http_address],
    }
    async with PrometheusServer(
        tmp_path, jobs, target_labels={"namespace": NAMESPACE}, rule_files=[RULES_FILE], binary=binary
    ) as prom:
        # Every target scraped before the traffic, so each counter's rise is seen by rate().
        def all_three_up(result: list[dict[str, Any]]) -> bool:
            return len(result) == 3 and all(item["value"][1] == "1" for item in result)

        await prom.wait_until(f'up{{job=~"{ROOM_SERVICE_JOB}|{EDGE_JOB}"}}', all_three_up, within=15)
        ids = TrafficIds()
        await drive_traffic(js, [edge, edge2], "live", ids)
        deadline = time.monotonic() + DEADLINE_SECONDS

        # The dashboard's namespace variable offers the scraped namespace.
        dashboard = load_dashboard()
        variables = {var["name"]: var for var in dashboard["templating"]["list"]}
        definition = variables["namespace"]["definition"]
        metric = definition.removeprefix("label_values(").split(",")[0].strip()
        offered = await prom.api("label/namespace/values", **{"match[]": metric})
        assert offered["status"] == "success" and NAMESPACE in offered["data"], offered

        queries = panel_queries(dashboard)
        assert len(queries) >= 30, "the dashboard lost its panels?"
        checks = []
        for query in queries:
            for namespace in (NAMESPACE, variables["namespace"]["allValue"]):
                values = {**INTERVALS, "datasource": "prometheus", "namespace": namespace}
                expr = fill_variables(query.expr, values)
                label = f"{query.panel} [{query.ref_id}] namespace={namespace}: {expr}"
                checks.append((label, query.panel, expr))
        outcomes = await asyncio.gather(
            *(_wait_drawn(prom, title, expr, deadline) for _, title, expr in checks)
        )
        empty = [f"{label}\n    -> {why}" for (label, _, _), why in zip(checks, outcomes, strict=True) if why]
        assert not empty, f"{len(empty)} dashboard queries draw nothing:\n" + "\n".join(empty)
        # Three joins succeeded, a wrong password and an unknown meeting did not.
        ratio = next(expr for _, title, expr in checks if title == "Join success ratio")
        (sample,) = (await prom.query(ratio))["data"]["result"]
        assert 0.0 < float(sample["value"][1]) < 1.0, sample

        # Alert expressions: valid and evaluated without error, here and by the rule engine.
        for rule in alert_rules():
            answer = await prom.query(rule["expr"])
            assert answer["status"] == "success", (rule["alert"], answer)
            if rule["alert"] in QUIET_ON_A_HEALTHY_SYSTEM:
                assert answer["data"]["result"] == [], (rule["alert"], answer["data"]["result"])
        loaded = await prom.wait_until_rules_evaluated(within=max(deadline - time.monotonic(), 5.0))
        assert {rule["name"] for rule in loaded} == {rule["alert"] for rule in alert_rules()}
        for rule in loaded:
            assert rule["health"] == "ok" and not rule.get("lastError"), rule
            assert rule["state"] == "inactive" or rule["name"] not in QUIET_ON_A_HEALTHY_SYSTEM, rule

        # Nothing Prometheus stored carries an id the traffic used: ids in labels would
        # grow a series per meeting, user or socket until the TSDB falls over.
        names = await prom.api("labels")
        assert names["status"] == "success", names
        for name in names["data"]:
            stored = (await prom.api(f"label/{name}/values"))["data"]
            leaked = {value for value in stored for known in ids.values if known in value}
            assert not leaked, f"label {name} carries ids: {sorted(leaked)}"
        assert len(ids.values) >= 10, ids.values

        # Both jobs are up, under the names the rules and the dashboard select on.
        up = await prom.query("up")
        by_job: dict[str, list[str]] = {}
        for item in up["data"]["result"]:
            by_job.setdefault(item["metric"]["job"], []).append(item["value"][1])
        assert by_job == {ROOM_SERVICE_JOB: ["1"], EDGE_JOB: ["1", "1"]}, by_job
    assert prom.process is not None and not prom.process.running
    assert time.monotonic() - began < 60, f"took {time.monotonic() - began:.1f}s"

"""The alert rules: promtool checks them and runs their unit tests; names and metrics hold."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.dashboard import KNOWN_METRICS, RULES_FILE, metric_names
from tests.support.managed import REPO_ROOT as ROOT

PROMTOOL_TESTS = Path(__file__).with_name("promtool") / "alerts_test.yaml"

ALERTS = {
    "RoomServiceDown",
    "EdgeCannotReachRoomService",
    "JoinErrorRatioHigh",
    "JoinLatencyP99High",
    "RelayLagHigh",
    "ParticipantsReapedAfterEdgeLoss",
    "RoomStoreFailing",
}


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", RULES_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests(promtool: str) -> None:
    result = _run(promtool, "test", "rules", PROMTOOL_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_are_the_agreed_ones() -> None:
    assert {rule["alert"] for rule in _rules()} == ALERTS
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert {"summary", "description", "runbook"} <= set(rule["annotations"])
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{anchor}"


def test_runbook_has_a_section_per_alert() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    for alert in ALERTS:
        assert f"### {alert}" in text


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in ALERTS:
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == alert}
        assert outcomes == {True, False}, f"{alert}: firing and not-firing cases needed"


def test_rules_use_only_exported_metrics() -> None:
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS
        assert not unknown, f"{rule['alert']} uses unknown metrics {unknown}"

"""The Helm chart as Kubernetes sees it: strict lint, the Kubernetes schemas of every
variant, the monitoring objects, secrets, locked-down containers, ingress, and replicas
per store (its agreement with the programs' settings is in test_helm_settings.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from edge_gateway.config import OPTIONS as EDGE_OPTIONS
from meeting_common.settings import parse_address
from tests.support.dashboard import CHART, DASHBOARD_FILE, RULES_FILE
from tests.support.helm import (
    CUSTOM_KINDS,
    EVERYTHING_ON,
    EXAMPLES,
    KUBE_VERSIONS,
    REQUIRED,
    VARIANTS,
    by_kind,
    container,
    env,
    render,
)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    yield request.param, render(VARIANTS[request.param])


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_lint_strict(name: str) -> None:
    report = helm.lint(CHART, VARIANTS[name], strict=True, namespace="rooms")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_manifests_match_kubernetes_schemas(variant: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = variant
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue  # CRDs: checked by the tests below
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_custom_resources_are_well_formed() -> None:
    docs = render(EVERYTHING_ON)
    monitors = by_kind(docs, "ServiceMonitor")
    assert {m["metadata"]["labels"]["app.kubernetes.io/component"] for m in monitors} == {
        "room-service",
        "edge-gateway",
    }
    services = {s["metadata"]["labels"]["app.kubernetes.io/component"]: s for s in by_kind(docs, "Service")}
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        # job = the Service's component label, which the alert rules select on.
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        service = services[component]
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        port_names = {port["name"] for port in service["spec"]["ports"]}
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
            "metrics" if component == "room-service" else "http"
        ]
        assert monitor["spec"]["endpoints"][0]["port"] in port_names
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    (rule,) = by_kind(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]


def test_monitoring_objects_are_off_by_default() -> None:
    kinds = {doc["kind"] for doc in render()}
    assert not kinds & CUSTOM_KINDS
    assert "ConfigMap" not in kinds and "Ingress" not in kinds and "Secret" not in kinds


def test_dashboard_configmap() -> None:
    (config_map,) = by_kind(render(EVERYTHING_ON), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    assert json.loads(text) == json.loads(DASHBOARD_FILE.read_text())


def test_production_defaults() -> None:
    docs = render()
    room, edge = container(docs, "room-service"), container(docs, "edge-gateway")
    assert env(edge)["EDGE_GATEWAY_AUTH_MODE"] == "jwt"
    (auth_mode,) = [o for o in EDGE_OPTIONS if o.env == "EDGE_GATEWAY_AUTH_MODE"]
    auth_mode.parse("jwt")
    assert env(room)["ROOM_SERVICE_MEETINGS_FILE"] == ""  # no demo meetings
    assert env(room)["ROOM_SERVICE_LOG_FORMAT"] == "json"
    (room_deployment,) = [d for d in by_kind(docs, "Deployment") if "room-service" in d["metadata"]["name"]]
    assert room_deployment["spec"]["replicas"] == 1
    assert room_deployment["spec"]["strategy"]["type"] == "Recreate"
    (edge_deployment,) = [d for d in by_kind(docs, "Deployment") if d is not room_deployment]
    assert "replicas" not in edge_deployment["spec"]  # the HPA owns it
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == edge_deployment["metadata"]["name"]
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == edge_deployment["spec"]["selector"]["matchLabels"]


def test_secrets_come_from_a_secret() -> None:
    for values, name in (
        ({}, "meet-secrets"),
        ({"secret": {"existingSecret": "ops-managed"}}, "ops-managed"),
        (EVERYTHING_ON, "meet-meeting-rooms"),
    ):
        docs = render(values)
        edge_env = env(container(docs, "edge-gateway"))
        ref = edge_env["EDGE_GATEWAY_JWT_SECRET"]["secretKeyRef"]
        assert ref == {"name": name, "key": "jwt-secret", "optional": True}
        # The internal token is never optional, on either side.
        for component, variable in (
            ("room-service", "ROOM_SERVICE_INTERNAL_TOKEN"),
            ("edge-gateway", "EDGE_GATEWAY_ROOM_SERVICE_TOKEN"),
        ):
            token_ref = env(container(docs, component))[variable]["secretKeyRef"]
            assert token_ref == {"name": name, "key": "internal-token", "optional": False}
        secrets = by_kind(docs, "Secret")
        assert [s["metadata"]["name"] for s in secrets] == ([name] if values is EVERYTHING_ON else [])
    (secret,) = by_kind(render(EVERYTHING_ON), "Secret")
    assert secret["stringData"] == {"jwt-secret": "s3cret", "internal-token": "t0ken"}


def test_containers_are_locked_down(variant: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = variant
    for deployment in by_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for entry in pod["containers"]:
            context = entry["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert entry["resources"]["requests"]


def test_ingress_supports_websockets_and_sticky_polling() -> None:
    (ingress,) = by_kind(render(EVERYTHING_ON), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"  # user's kept
    (rule,) = ingress["spec"]["rules"]
    assert rule["http"]["paths"][0]["path"] == "/socket.io/"
    assert ingress["spec"]["ingressClassName"] == "nginx"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_redis_examples_run_replicas_that_roll_one_at_a_time(name: str) -> None:
    """Each Redis example: several replicas, the Redis store, the URL from the Secret, a
    PodDisruptionBudget, and a rolling update that never has fewer pods than replicas."""
    values = EXAMPLES[name]
    docs = render(values)
    room = container(docs, "room-service")
    room_env = env(room)
    assert room_env["ROOM_SERVICE_STORE"] == "redis"
    ref = room_env["ROOM_SERVICE_REDIS_URL"]["secretKeyRef"]
    assert ref["key"] == "redis-url"
    assert ref["name"] == values["secret"].get("existingSecret", "meet-meeting-rooms")
    (deployment,) = [d for d in by_kind(docs, "Deployment") if "room-service" in d["metadata"]["name"]]
    replicas = deployment["spec"]["replicas"]
    assert replicas == values["roomService"]["replicas"] > 1
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pdbs = [p for p in by_kind(docs, "PodDisruptionBudget") if "room-service" in p["metadata"]["name"]]
    (pdb,) = pdbs
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # Edges dial the headless Service by DNS: every replica's address, balanced round-robin.
    edge_env = env(container(docs, "edge-gateway"))
    host, _ = parse_address(edge_env["EDGE_GATEWAY_ROOM_SERVICE_ADDRESS"])
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == host]
    assert service["spec"]["clusterIP"] == "None"


def test_the_memory_store_keeps_one_replica_and_no_room_service_budget() -> None:
    docs = render(REQUIRED)
    assert env(container(docs, "room-service"))["ROOM_SERVICE_STORE"] == "memory"
    assert all("room-service" not in p["metadata"]["name"] for p in by_kind(docs, "PodDisruptionBudget"))
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema({"roomService": {"store": "redis", "replicas": 5}})

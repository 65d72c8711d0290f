"""The Helm chart: lint, render, Kubernetes schemas, and agreement with the programs' options.

Helm comes from the `helm-python-sdk` package (Helm's Go SDK as a bundled shared library, no
helm binary and no download); schemas from `kubernetes-validate`.

Over 300 lines on purpose: the chart is one artefact, and every check here reads it
through the same value variants and render/lookup helpers defined at the top of the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from edge_gateway.config import OPTIONS as EDGE_OPTIONS
from meeting_common.settings import Option, parse_address
from room_service.config import OPTIONS as ROOM_OPTIONS
from tests.support.dashboard import CHART, DASHBOARD_FILE, RULES_FILE
from tests.support.processes import REPO_ROOT as ROOT

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed"
)

KUBE_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
EVERYTHING_ON: dict[str, Any] = {
    "secret": {"create": True, "values": {"jwt-secret": "s3cret", "internal-token": "t0ken"}},
    "roomService": {
        "grpcPort": 6000,
        "metricsPort": 9200,
        "demoMeetings": True,
        "settings": {"edge_lease_seconds": 10, "replay_buffer": 4096, "multiple_sessions": True},
        "env": {"EXTRA_FLAG": "1"},
    },
    "edge": {
        "port": 9000,
        "authMode": "none",
        "allowInsecure": True,
        "settings": {"max_payload_bytes": 1048576, "rpc_timeout_seconds": 2.5},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"},
            "tls": [{"secretName": "meet-tls", "hosts": ["meet.example.com"]}],
        },
        "autoscaling": {"enabled": False},
        "replicas": 3,
        "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    },
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
}
# The least a release must give: where the internal token comes from (the chart refuses
# to render without it).
REQUIRED: dict[str, Any] = {"secret": {"existingSecret": "meet-secrets"}}
EXAMPLES = {
    path.stem: yaml.safe_load(path.read_text()) for path in sorted((CHART / "examples").glob("*.yaml"))
}
VARIANTS = {"defaults": REQUIRED, "everything-on": EVERYTHING_ON, **EXAMPLES}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders with `values` (plus REQUIRED's secret when they name
    none), in release "meet", namespace "rooms"."""
    given = dict(values or {})
    given.setdefault("secret", REQUIRED["secret"])
    with helm.Chart.load(CHART) as chart:
        files = chart.render(given, name="meet", namespace="rooms", is_install=True)
    return [
        doc
        for name, text in sorted(files.items())
        if name.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (deployment,) = [
        doc
        for doc in by_kind(docs, "Deployment")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env(entry: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in entry["env"]}


def default_port(options: tuple[Option, ...], name: str) -> int:
    (option,) = [option for option in options if option.name == name]
    return parse_address(option.default)[1]


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


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_ports_probes_and_addresses_agree(name: str) -> None:
    values = VARIANTS[name]
    docs = render(values)
    room, edge = container(docs, "room-service"), container(docs, "edge-gateway")
    room_env, edge_env = env(room), env(edge)
    ports = {p["name"]: p["containerPort"] for c in (room, edge) for p in c["ports"]}

    room_values = values.get("roomService", {})
    edge_values = values.get("edge", {})
    grpc_port = room_values.get("grpcPort", default_port(ROOM_OPTIONS, "grpc_address"))
    metrics_port = room_values.get("metricsPort", default_port(ROOM_OPTIONS, "metrics_address"))
    http_port = edge_values.get("port", default_port(EDGE_OPTIONS, "http_address"))

    # Listen on every interface inside the pod, on the declared container ports.
    assert parse_address(room_env["ROOM_SERVICE_GRPC_ADDRESS"]) == ("0.0.0.0", grpc_port)
    assert parse_address(room_env["ROOM_SERVICE_METRICS_ADDRESS"]) == ("0.0.0.0", metrics_port)
    assert parse_address(edge_env["EDGE_GATEWAY_HTTP_ADDRESS"]) == ("0.0.0.0", http_port)
    assert ports == {"grpc": grpc_port, "metrics": metrics_port, "http": http_port}

    # Probes: native gRPC health on the gRPC port (liveness: the overall service ""; readiness:
    # the RoomService, not serving while its store does not answer); the edge's HTTP endpoints.
    assert room["livenessProbe"]["grpc"] == {"port": grpc_port}
    assert room["readinessProbe"]["grpc"] == {"port": grpc_port, "service": "meeting.v1.RoomService"}
    assert edge["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": http_port}
    assert edge["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": http_port}

    # The edge dials the room service's Service on its gRPC port.
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    host, port = parse_address(edge_env["EDGE_GATEWAY_ROOM_SERVICE_ADDRESS"])
    room_service = services[host]
    assert room_service["spec"]["clusterIP"] == "None"
    service_ports = {p["name"]: p for p in room_service["spec"]["ports"]}
    assert service_ports["grpc"]["port"] == port == grpc_port
    assert service_ports["metrics"]["port"] == metrics_port
    (edge_service,) = [s for s in services.values() if s is not room_service]
    assert edge_service["spec"]["ports"][0]["targetPort"] == "http"


def test_option_defaults_match_chart_defaults() -> None:
    with helm.Chart.load(CHART) as chart:
        values = chart.values
    assert values["roomService"]["grpcPort"] == default_port(ROOM_OPTIONS, "grpc_address")
    assert values["roomService"]["metricsPort"] == default_port(ROOM_OPTIONS, "metrics_address")
    assert values["edge"]["port"] == default_port(EDGE_OPTIONS, "http_address")
    assert values["edge"]["port"] == values["edge"]["service"]["port"]
    assert default_port(EDGE_OPTIONS, "room_service_address") == values["roomService"]["grpcPort"]
    known = {option.name for option in (*ROOM_OPTIONS, *EDGE_OPTIONS)}
    for tier in ("roomService", "edge"):
        assert set(values[tier]["settings"]) <= known


@pytest.mark.parametrize(
    ("tier", "options", "reserved"),
    [
        ("roomService", ROOM_OPTIONS, {"grpc_address", "metrics_address", "store"}),
        (
            "edge",
            EDGE_OPTIONS,
            {"http_address", "room_service_address", "auth_mode", "allow_insecure", "trusted_proxies"},
        ),
    ],
)
def test_every_option_is_reachable_from_values(
    tier: str, options: tuple[Option, ...], reserved: set[str]
) -> None:
    """Plain options through `settings` by name; secret ones from the Secret (`secretEnv`)."""
    settings = {o.name: o.default for o in options if o.name not in reserved and not o.secret}
    docs = render({tier: {"settings": settings}})
    rendered = env(container(docs, "room-service" if tier == "roomService" else "edge-gateway"))
    for option in options:
        if option.name in reserved:
            continue
        if option.secret:
            assert "secretKeyRef" in rendered.get(option.env, {}), (
                f"secret option {option.env}: map it in {tier}.secretEnv in values.yaml"
            )
            continue
        assert rendered[option.env] == option.default
        option.parse(rendered[option.env])  # the program accepts what the chart wrote


def test_numbers_render_as_the_programs_expect() -> None:
    edge_env = env(container(render(EVERYTHING_ON), "edge-gateway"))
    assert edge_env["EDGE_GATEWAY_MAX_PAYLOAD_BYTES"] == "1048576"
    assert edge_env["EDGE_GATEWAY_RPC_TIMEOUT_SECONDS"] == "2.5"


@pytest.mark.parametrize(
    "values",
    [
        {"roomService": {"settings": {"grpc_address": "0.0.0.0:1"}}},
        {"edge": {"settings": {"http_address": "0.0.0.0:1"}}},
        {"edge": {"settngs": {}}},
        {"roomService": {"replicas": 2}},
        {"roomService": {"store": "redis", "settings": {"store": "redis"}}},
        {"roomService": {"store": "sqlite"}},
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_environment_names_are_options(name: str) -> None:
    docs = render(VARIANTS[name])
    known = {option.env for option in (*ROOM_OPTIONS, *EDGE_OPTIONS)}
    for component, prefix in (("room-service", "ROOM_SERVICE_"), ("edge-gateway", "EDGE_GATEWAY_")):
        names = {n for n in env(container(docs, component)) if n.startswith(prefix)}
        assert names <= known, names - known


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


def test_dockerfile_builds_one_non_root_image_for_both_tiers() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install -c constraints.txt ." in text
    assert "USER 10001:10001" in text
    for option, options in (
        ("grpc_address", ROOM_OPTIONS),
        ("metrics_address", ROOM_OPTIONS),
        ("http_address", EDGE_OPTIONS),
    ):
        (env_name,) = [o.env for o in options if o.name == option]
        assert f"{env_name}=0.0.0.0:{default_port(options, option)}" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


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

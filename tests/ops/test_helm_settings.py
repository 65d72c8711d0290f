"""The Helm chart agrees with the programs' settings: ports, probes and addresses, option
defaults, every option reachable from values and rendered as the program parses it, the
values schema, and the image's defaults."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from edge_gateway.config import OPTIONS as EDGE_OPTIONS
from meeting_common.settings import Option, parse_address
from room_service.config import OPTIONS as ROOM_OPTIONS
from tests.support.dashboard import CHART
from tests.support.helm import (
    EVERYTHING_ON,
    VARIANTS,
    by_kind,
    container,
    default_port,
    env,
    render,
)
from tests.support.managed import REPO_ROOT as ROOT


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

"""The Helm chart as the ops tests read it: the value variants (defaults, everything on,
the chart's examples), rendering with Helm's Go SDK (`helm-python-sdk`, no helm binary),
and lookups in the rendered objects."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

from meeting_common.settings import Option, parse_address
from tests.support.dashboard import CHART

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
    """The rendered objects of one kind."""
    return [doc for doc in docs if doc["kind"] == kind]


def container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The one container of a component's Deployment."""
    (deployment,) = [
        doc
        for doc in by_kind(docs, "Deployment")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env(entry: dict[str, Any]) -> dict[str, Any]:
    """A container's environment: value, or valueFrom, by name."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in entry["env"]}


def default_port(options: tuple[Option, ...], name: str) -> int:
    """The port of an address option's default."""
    (option,) = [option for option in options if option.name == name]
    return int(parse_address(option.default)[1])

"""Edge gateway settings: every one a flag and an EDGE_GATEWAY_* variable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from meeting_common.settings import (
    Option,
    choice,
    parse_address,
    parse_options,
    parse_positive_float,
    parse_positive_int,
)


def _origins(text: str) -> str | list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    if not items:
        raise ValueError("give '*' or a comma-separated list of origins")
    return items


OPTIONS = (
    Option(
        "http_address",
        "EDGE_GATEWAY_HTTP_ADDRESS",
        "127.0.0.1:8080",
        "HTTP listen address for Socket.IO, /metrics, /healthz, /readyz",
        parse_address,
    ),
    Option(
        "room_service_address",
        "EDGE_GATEWAY_ROOM_SERVICE_ADDRESS",
        "127.0.0.1:50051",
        "gRPC address of the room service",
    ),
    Option(
        "rpc_timeout_seconds",
        "EDGE_GATEWAY_RPC_TIMEOUT_SECONDS",
        "5",
        "deadline of each unary RPC",
        parse_positive_float,
    ),
    Option(
        "heartbeat_interval_seconds",
        "EDGE_GATEWAY_HEARTBEAT_INTERVAL_SECONDS",
        "2",
        "how often the edge renews its lease with the room service",
        parse_positive_float,
    ),
    Option(
        "ping_interval_seconds",
        "EDGE_GATEWAY_PING_INTERVAL_SECONDS",
        "4",
        "Engine.IO ping interval",
        parse_positive_float,
    ),
    Option(
        "ping_timeout_seconds",
        "EDGE_GATEWAY_PING_TIMEOUT_SECONDS",
        "5",
        "Engine.IO ping timeout (a silent client is dropped after interval + timeout)",
        parse_positive_float,
    ),
    Option(
        "max_payload_bytes",
        "EDGE_GATEWAY_MAX_PAYLOAD_BYTES",
        "65536",
        "largest Socket.IO message accepted",
        parse_positive_int,
    ),
    Option(
        "cors_allowed_origins",
        "EDGE_GATEWAY_CORS_ALLOWED_ORIGINS",
        "*",
        "'*' or comma-separated origins allowed to connect",
        _origins,
    ),
    Option(
        "shutdown_grace_seconds",
        "EDGE_GATEWAY_SHUTDOWN_GRACE_SECONDS",
        "5",
        "on SIGTERM, how long sockets get to leave",
        parse_positive_float,
    ),
    Option(
        "log_level",
        "EDGE_GATEWAY_LOG_LEVEL",
        "INFO",
        "log level",
        choice("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    Option("log_format", "EDGE_GATEWAY_LOG_FORMAT", "text", "log format", choice("text", "json")),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated edge gateway settings."""

    http_address: tuple[str, int]
    """Host and port of the HTTP server."""
    room_service_address: str
    """gRPC target of the room service."""
    rpc_timeout_seconds: float
    """Unary RPC deadline."""
    heartbeat_interval_seconds: float
    """Lease renewal interval."""
    ping_interval_seconds: float
    """Engine.IO ping interval."""
    ping_timeout_seconds: float
    """Engine.IO ping timeout."""
    max_payload_bytes: int
    """Largest accepted message."""
    cors_allowed_origins: str | list[str]
    """Allowed origins."""
    shutdown_grace_seconds: float
    """Grace period on SIGTERM."""
    log_level: str
    """Log level name."""
    log_format: str
    """"text" or "json"."""


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from flags, then EDGE_GATEWAY_* variables, then defaults."""
    values = parse_options(
        OPTIONS,
        argv,
        environ,
        prog="python -m edge_gateway",
        description="Socket.IO edge gateway in front of the RoomService.",
    )
    return Settings(**values)

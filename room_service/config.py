"""Room service settings: every one a flag and a ROOM_SERVICE_* variable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from meeting_common.settings import (
    Option,
    SettingsError,
    choice,
    parse_address,
    parse_bool,
    parse_non_negative_float,
    parse_options,
    parse_positive_float,
    parse_positive_int,
)
from meeting_common.tls import TlsConfigError, server_credentials

DEMO_MEETINGS_FILE = Path(__file__).with_name("demo_meetings.json")


def parse_redis_url(text: str) -> str:
    """Checks a redis:// or rediss:// URL; errors never repeat it (it may hold a password)."""
    if not text.strip():
        return ""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("expected a redis:// or rediss:// URL")
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise ValueError("the URL's port is not a number") from None
    if not parts.hostname:
        raise ValueError("the URL names no host")
    return text.strip()


def redacted_url(url: str) -> str:
    """The URL without its user and password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


OPTIONS = (
    Option(
        "grpc_address",
        "ROOM_SERVICE_GRPC_ADDRESS",
        "127.0.0.1:50051",
        "gRPC listen address (port 0 picks a free port)",
        parse_address,
    ),
    Option(
        "metrics_address",
        "ROOM_SERVICE_METRICS_ADDRESS",
        "127.0.0.1:9101",
        "HTTP address serving /metrics and /healthz",
        parse_address,
    ),
    Option(
        "meetings_file",
        "ROOM_SERVICE_MEETINGS_FILE",
        str(DEMO_MEETINGS_FILE),
        "JSON file of meetings to register at start; empty for none",
    ),
    Option(
        "replay_buffer",
        "ROOM_SERVICE_REPLAY_BUFFER",
        "1024",
        "events kept per room for WatchRoom resumption",
        parse_positive_int,
    ),
    Option(
        "edge_lease_seconds",
        "ROOM_SERVICE_EDGE_LEASE_SECONDS",
        "6",
        "an edge silent this long loses its participants",
        parse_positive_float,
    ),
    Option(
        "restore_grace_seconds",
        "ROOM_SERVICE_RESTORE_GRACE_SECONDS",
        "3",
        "after a start, how long resynchronising streams wait for edges to re-announce",
        parse_non_negative_float,
    ),
    Option(
        "multiple_sessions",
        "ROOM_SERVICE_MULTIPLE_SESSIONS",
        "false",
        "let one user hold several sessions in a room instead of replacing the older",
        parse_bool,
    ),
    Option(
        "max_participants",
        "ROOM_SERVICE_MAX_PARTICIPANTS",
        "500",
        "default room capacity when a meeting sets none",
        parse_positive_int,
    ),
    Option(
        "max_chat_length",
        "ROOM_SERVICE_MAX_CHAT_LENGTH",
        "2000",
        "longest chat message, in characters",
        parse_positive_int,
    ),
    Option(
        "shutdown_grace_seconds",
        "ROOM_SERVICE_SHUTDOWN_GRACE_SECONDS",
        "5",
        "on SIGTERM, how long in-flight calls and streams may finish",
        parse_positive_float,
    ),
    # -- store (issue 10): in this process, or shared by replicas in Redis -------------
    Option(
        "store",
        "ROOM_SERVICE_STORE",
        "memory",
        "where rooms live: memory (this process only) or redis (shared by any number of replicas)",
        choice("memory", "redis"),
    ),
    Option(
        "redis_url",
        "ROOM_SERVICE_REDIS_URL",
        "",
        "Redis for --store redis (required then): redis:// or rediss:// (TLS), user and password in "
        "the URL, e.g. redis://:PASSWORD@redis:6379/0; prefer the variable",
        parse_redis_url,
        secret=True,
    ),
    Option(
        "redis_timeout_seconds",
        "ROOM_SERVICE_REDIS_TIMEOUT_SECONDS",
        "1",
        "each Redis command's timeout; beyond it (Redis away) calls fail with UNAVAILABLE",
        parse_positive_float,
    ),
    Option(
        "log_level",
        "ROOM_SERVICE_LOG_LEVEL",
        "INFO",
        "log level",
        choice("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
    Option("log_format", "ROOM_SERVICE_LOG_FORMAT", "text", "log format", choice("text", "json")),
    # -- security (issue 6): TLS, internal callers, password throttling ----------------
    Option("tls_cert_file", "ROOM_SERVICE_TLS_CERT_FILE", "", "server certificate (PEM); set to serve TLS"),
    Option("tls_key_file", "ROOM_SERVICE_TLS_KEY_FILE", "", "key of --tls-cert-file (PEM)"),
    Option(
        "tls_client_ca_file",
        "ROOM_SERVICE_TLS_CLIENT_CA_FILE",
        "",
        "CA (PEM) for client certificates; when set, every caller needs one (mutual TLS)",
    ),
    Option(
        "internal_token",
        "ROOM_SERVICE_INTERNAL_TOKEN",
        "",
        "bearer token every caller must send (health checks exempt); empty: no check; prefer the variable",
        secret=True,
    ),
    Option(
        "password_attempts_per_minute",
        "ROOM_SERVICE_PASSWORD_ATTEMPTS_PER_MINUTE",
        "20",
        "wrong passwords per meeting per minute before joins to it get RATE_LIMITED",
        parse_positive_int,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated room service settings."""

    grpc_address: tuple[str, int]
    """Host and port of the gRPC server."""
    metrics_address: tuple[str, int]
    """Host and port of the metrics HTTP server."""
    meetings_file: str
    """Meetings loaded at start ('' for none)."""
    replay_buffer: int
    """Events kept per room."""
    edge_lease_seconds: float
    """Lease of an edge without heartbeats."""
    restore_grace_seconds: float
    """Wait before answering a stale watcher with a snapshot after a start."""
    multiple_sessions: bool
    """Allow several sessions per user in one room."""
    max_participants: int
    """Default room capacity."""
    max_chat_length: int
    """Longest chat message."""
    shutdown_grace_seconds: float
    """Grace period on SIGTERM."""
    log_level: str
    """Log level name."""
    log_format: str
    """"text" or "json"."""
    tls_cert_file: str = ""
    """Server certificate ('' = plaintext)."""
    tls_key_file: str = ""
    """Server key."""
    tls_client_ca_file: str = ""
    """CA of client certificates ('' = none required)."""
    internal_token: str = field(default="", repr=False)
    """Bearer token required of callers ('' = none); kept out of repr."""
    password_attempts_per_minute: int = 20
    """Wrong passwords per meeting per minute."""
    store: str = "memory"
    """"memory" or "redis"."""
    redis_url: str = field(default="", repr=False)
    """Redis URL (may hold a password); kept out of repr."""
    redis_timeout_seconds: float = 1.0
    """Timeout of each Redis command."""


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from flags, then ROOM_SERVICE_* variables, then defaults."""
    values = parse_options(
        OPTIONS,
        argv,
        environ,
        prog="python -m room_service",
        description="The authoritative meeting RoomService (gRPC).",
    )
    try:
        server_credentials(values["tls_cert_file"], values["tls_key_file"], values["tls_client_ca_file"])
    except TlsConfigError as exc:
        raise SettingsError([f"TLS: {exc}"]) from None
    if values["store"] == "redis" and not values["redis_url"]:
        raise SettingsError(["redis_url: required with --store redis (set ROOM_SERVICE_REDIS_URL)"])
    return Settings(**values)

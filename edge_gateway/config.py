"""Edge gateway settings: every one a flag and an EDGE_GATEWAY_* variable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge_gateway.auth import security_problems
from edge_gateway.webrtc import IceServer, parse_ice_servers, parse_turn_urls
from meeting_common.settings import (
    Option,
    SettingsError,
    choice,
    parse_address,
    parse_options,
    parse_positive_float,
    parse_positive_int,
)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"must be >= 0: {text!r}")
    return value


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
        "gRPC target of the room service replicas: host:port, a list (ipv4:10.0.0.1:50051,10.0.0.2:50051) "
        "or DNS (dns:///room-service-headless:50051); calls are balanced round-robin",
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
        "3",
        "Engine.IO ping interval (with the timeout, a vanished client is reported left in < 9 s)",
        parse_positive_float,
    ),
    Option(
        "ping_timeout_seconds",
        "EDGE_GATEWAY_PING_TIMEOUT_SECONDS",
        "5",
        "Engine.IO ping timeout (a silent client is dropped after interval + timeout + 0.5 s at most)",
        parse_positive_float,
    ),
    Option(
        "max_queued_packets",
        "EDGE_GATEWAY_MAX_QUEUED_PACKETS",
        "2048",
        "packets a socket may have waiting to be written; a socket that stops reading is dropped beyond",
        parse_positive_int,
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
    Option(
        "ice_servers",
        "EDGE_GATEWAY_ICE_SERVERS",
        "[]",
        "webrtcConfig.iceServers sent to every joiner: a JSON list of {urls, username?, credential?}",
        parse_ice_servers,
    ),
    Option(
        "turn_urls",
        "EDGE_GATEWAY_TURN_URLS",
        "",
        "comma-separated turn:/turns: URLs given time-limited TURN REST credentials (needs --turn-secret)",
        parse_turn_urls,
    ),
    Option(
        "turn_secret",
        "EDGE_GATEWAY_TURN_SECRET",
        "",
        "shared secret of the TURN servers (coturn static-auth-secret); prefer the variable to the flag",
        secret=True,
    ),
    Option(
        "turn_ttl_seconds",
        "EDGE_GATEWAY_TURN_TTL_SECONDS",
        "86400",
        "lifetime of the TURN credentials handed out at join",
        parse_positive_int,
    ),
    # -- security (issue 6): authentication, internal TLS and token, limits -------------
    Option(
        "auth_mode",
        "EDGE_GATEWAY_AUTH_MODE",
        "none",
        "'jwt': every socket must present a valid JWT (auth: {token}); 'none': trust the payload's "
        "userId (development only)",
        choice("none", "jwt"),
    ),
    Option(
        "jwt_secret",
        "EDGE_GATEWAY_JWT_SECRET",
        "",
        "HS256/384/512 shared secret verifying tokens (one key source only); prefer the variable",
        secret=True,
    ),
    Option("jwt_public_key_file", "EDGE_GATEWAY_JWT_PUBLIC_KEY_FILE", "", "PEM public key (RS256/ES256)"),
    Option("jwt_jwks_file", "EDGE_GATEWAY_JWT_JWKS_FILE", "", "local JWKS document (keys chosen by kid)"),
    Option("jwt_jwks_url", "EDGE_GATEWAY_JWT_JWKS_URL", "", "JWKS URL, fetched and cached (5 min)"),
    Option("jwt_issuer", "EDGE_GATEWAY_JWT_ISSUER", "", "required token issuer (iss); empty: not checked"),
    Option(
        "jwt_audience",
        "EDGE_GATEWAY_JWT_AUDIENCE",
        "",
        "accepted audiences (aud), comma-separated; empty: not checked",
    ),
    Option(
        "jwt_leeway_seconds",
        "EDGE_GATEWAY_JWT_LEEWAY_SECONDS",
        "30",
        "clock skew tolerated on exp/nbf/iat",
        _non_negative_float,
    ),
    Option("jwt_name_claim", "EDGE_GATEWAY_JWT_NAME_CLAIM", "name", "claim holding the display name"),
    Option(
        "room_service_tls_ca_file",
        "EDGE_GATEWAY_ROOM_SERVICE_TLS_CA_FILE",
        "",
        "CA (PEM) verifying the room service; set to use TLS towards it",
    ),
    Option(
        "tls_cert_file",
        "EDGE_GATEWAY_TLS_CERT_FILE",
        "",
        "client certificate (PEM) presented to the room service (mutual TLS)",
    ),
    Option("tls_key_file", "EDGE_GATEWAY_TLS_KEY_FILE", "", "key of --tls-cert-file (PEM)"),
    Option(
        "room_service_token",
        "EDGE_GATEWAY_ROOM_SERVICE_TOKEN",
        "",
        "bearer token sent to the room service (its ROOM_SERVICE_INTERNAL_TOKEN); prefer the variable",
        secret=True,
    ),
    Option(
        "events_per_second",
        "EDGE_GATEWAY_EVENTS_PER_SECOND",
        "20",
        "sustained client events per socket; more get RATE_LIMITED",
        parse_positive_float,
    ),
    Option(
        "event_burst",
        "EDGE_GATEWAY_EVENT_BURST",
        "40",
        "client events a socket may send at once",
        parse_positive_int,
    ),
    Option(
        "password_attempts_per_minute",
        "EDGE_GATEWAY_PASSWORD_ATTEMPTS_PER_MINUTE",
        "5",
        "wrong meeting passwords per socket per minute before joins get RATE_LIMITED",
        parse_positive_int,
    ),
    Option(
        "max_connections_per_address",
        "EDGE_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
        "50",
        "open sockets per client IP address (the peer address: behind a proxy, the proxy's)",
        parse_positive_int,
    ),
    Option(
        "max_name_length",
        "EDGE_GATEWAY_MAX_NAME_LENGTH",
        "100",
        "longest userName, in characters (at most 100)",
        parse_positive_int,
    ),
    Option(
        "max_text_length",
        "EDGE_GATEWAY_MAX_TEXT_LENGTH",
        "2000",
        "longest chat text, in characters (at most 4000)",
        parse_positive_int,
    ),
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
    ice_servers: tuple[IceServer, ...] = ()
    """Static ICE servers for webrtcConfig."""
    turn_urls: tuple[str, ...] = ()
    """TURN URLs that get TURN REST credentials."""
    turn_secret: str = field(default="", repr=False)
    """TURN shared secret; kept out of repr so it never reaches a log."""
    turn_ttl_seconds: int = 86400
    """TURN credential lifetime."""
    auth_mode: str = "none"
    """"none" (development) or "jwt"."""
    jwt_secret: str = field(default="", repr=False)
    """HMAC secret for tokens; kept out of repr."""
    jwt_public_key_file: str = ""
    """PEM public key for tokens."""
    jwt_jwks_file: str = ""
    """Local JWKS document for tokens."""
    jwt_jwks_url: str = ""
    """JWKS URL for tokens."""
    jwt_issuer: str = ""
    """Required issuer ('' = unchecked)."""
    jwt_audience: str = ""
    """Accepted audiences, comma-separated ('' = unchecked)."""
    jwt_leeway_seconds: float = 30.0
    """Clock skew tolerance."""
    jwt_name_claim: str = "name"
    """Display-name claim."""
    room_service_tls_ca_file: str = ""
    """CA verifying the room service ('' = plaintext)."""
    tls_cert_file: str = ""
    """Client certificate for mutual TLS."""
    tls_key_file: str = ""
    """Key of the client certificate."""
    room_service_token: str = field(default="", repr=False)
    """Bearer token for the room service; kept out of repr."""
    events_per_second: float = 20.0
    """Per-socket sustained event rate."""
    event_burst: int = 40
    """Per-socket event burst."""
    password_attempts_per_minute: int = 5
    """Wrong passwords per socket per minute."""
    max_connections_per_address: int = 50
    """Open sockets per client address."""
    max_name_length: int = 100
    """Longest userName."""
    max_text_length: int = 2000
    """Longest chat text."""
    max_queued_packets: int = 2048
    """Outgoing packets queued per socket before it is dropped as not reading."""


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Builds the settings from flags, then EDGE_GATEWAY_* variables, then defaults."""
    values = parse_options(
        OPTIONS,
        argv,
        environ,
        prog="python -m edge_gateway",
        description="Socket.IO edge gateway in front of the RoomService.",
    )
    problems = []
    if values["turn_urls"] and not values["turn_secret"]:
        problems.append("turn_urls: TURN URLs need EDGE_GATEWAY_TURN_SECRET (or --turn-secret)")
    if values["turn_secret"] and not values["turn_urls"]:
        problems.append("turn_secret: set EDGE_GATEWAY_TURN_URLS too, or the secret is unused")
    problems += security_problems(values)
    if problems:
        raise SettingsError(problems)
    return Settings(**values)

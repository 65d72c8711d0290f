"""Edge gateway settings: every one a field, hence a flag and an EDGE_GATEWAY_* variable.

The limits are declared with the rules that use them (`limits.LimitSettings`); the checks
across settings (one JWT key source, TLS files that load, TURN URLs with their secret)
live here with the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from edge_gateway.guard import TrustedProxies
from edge_gateway.limits import LimitSettings
from edge_gateway.webrtc import IceServers, TurnUrls
from meeting_common.net import insecure_listen_problem
from meeting_common.settings import Address, Count, Flag, HostPort, Pause, Seconds, TierSettings, from_text
from meeting_common.tls import TlsConfigError, channel_credentials


def _origins(text: str) -> str | list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    if not items:
        raise ValueError("give '*' or a comma-separated list of origins")
    return items


Origins = Annotated[str | list[str], from_text(_origins)]
"""'*' or the allowed origins, given as comma-separated text."""

JWT_KEY_SOURCES = ("jwt_secret", "jwt_public_key_file", "jwt_jwks_file", "jwt_jwks_url")
"""Where token keys may come from; exactly one in jwt mode."""


class Settings(LimitSettings, TierSettings):
    """Socket.IO edge gateway in front of the RoomService."""

    model_config = SettingsConfigDict(env_prefix="EDGE_GATEWAY_")
    PROG: ClassVar[str] = "python -m edge_gateway"

    http_address: HostPort = Field(
        Address("127.0.0.1", 8080),
        description="HTTP listen address for Socket.IO, /metrics, /healthz, /readyz",
    )
    room_service_address: str = Field(
        "127.0.0.1:50051",
        description="gRPC target of the room service replicas: host:port, a list "
        "(ipv4:10.0.0.1:50051,10.0.0.2:50051) or DNS (dns:///room-service-headless:50051); "
        "calls are balanced round-robin",
    )
    rpc_timeout_seconds: Seconds = Field(5, description="deadline of each unary RPC")
    joins_in_flight_per_meeting: Count = Field(
        32,
        description="Join calls one edge has in flight per meeting; more wait their turn at the edge, "
        "so that a join storm's deadlines run from each call, not from the start of the storm",
    )
    command_streams: Annotated[int, Field(ge=0)] = Field(
        2,
        description="long-lived gRPC streams that carry the commands the edge makes for its sockets "
        "(join, leave, media, chat, ...) as messages, at about half a unary call's latency; their "
        "starts are spread over the replicas (0: one unary call per command)",
    )
    heartbeat_interval_seconds: Seconds = Field(
        2, description="how often the edge renews its lease with the room service"
    )
    ping_interval_seconds: Seconds = Field(
        3,
        description="Engine.IO ping interval (with the batch grid and the timeout, a vanished client is "
        "reported left in < 10 s)",
    )
    ping_timeout_seconds: Seconds = Field(
        5,
        description="Engine.IO ping timeout (a silent client is dropped after interval + batch grid + "
        "timeout + 0.5 s at most)",
    )
    max_buffered_bytes: Count = Field(
        1 << 20,
        description="bytes a socket may have waiting to be written; a socket that stops reading is "
        "dropped beyond",
    )
    max_payload_bytes: Count = Field(65536, description="largest Socket.IO message accepted")
    cors_allowed_origins: Origins = Field(
        "*", description="'*' or comma-separated origins allowed to connect"
    )
    # -- WebRTC ---------------------------------------------------------------------------
    ice_servers: IceServers = Field(
        (),
        description="webrtcConfig.iceServers sent to every joiner: a JSON list of "
        "{urls, username?, credential?}",
    )
    turn_urls: TurnUrls = Field(
        (),
        description="comma-separated turn:/turns: URLs given time-limited TURN REST credentials "
        "(needs --turn-secret)",
    )
    turn_secret: SecretStr = Field(
        SecretStr(""), description="shared secret of the TURN servers (coturn static-auth-secret)"
    )
    turn_ttl_seconds: Count = Field(86400, description="lifetime of the TURN credentials handed out at join")
    # -- client authentication ------------------------------------------------------------
    auth_mode: Literal["none", "jwt"] = Field(
        "none",
        description="'jwt': every socket must present a valid JWT (auth: {token}); 'none': trust the "
        "payload's userId (development only)",
    )
    jwt_secret: SecretStr = Field(
        SecretStr(""), description="HS256/384/512 shared secret verifying tokens (one key source only)"
    )
    jwt_public_key_file: str = Field("", description="PEM public key (RS256/ES256)")
    jwt_jwks_file: str = Field("", description="local JWKS document (keys chosen by kid)")
    jwt_jwks_url: str = Field("", description="JWKS URL, fetched and cached (5 min)")
    jwt_issuer: str = Field("", description="required token issuer (iss); empty: not checked")
    jwt_audience: str = Field("", description="accepted audiences (aud), comma-separated; empty: not checked")
    jwt_leeway_seconds: Pause = Field(30, description="clock skew tolerated on exp/nbf/iat")
    jwt_name_claim: str = Field("name", description="claim holding the display name")
    token_expiry_warning_seconds: Pause = Field(
        60, description="jwt mode: emit token-expiring this long before a socket's token expires (0: never)"
    )
    token_expiry_grace_seconds: Pause = Field(
        10,
        description="jwt mode: a socket whose token expired (beyond --jwt-leeway-seconds) is disconnected "
        "after this long without refresh-token",
    )
    allow_insecure: Flag = Field(
        False,
        description="allow --auth-mode none on a non-loopback --http-address (refused otherwise: "
        "fail closed)",
    )
    # -- client addresses -----------------------------------------------------------------
    trusted_proxies: TrustedProxies = Field(
        (),
        description="comma-separated addresses/CIDRs of proxies whose X-Forwarded-For is believed: the "
        "right-most hop that is not one of them is the client (empty: the peer is the client)",
    )
    # -- the edge's own credentials towards the room service ------------------------------
    room_service_tls_ca_file: str = Field(
        "", description="CA (PEM) verifying the room service; set to use TLS towards it"
    )
    tls_cert_file: str = Field(
        "", description="client certificate (PEM) presented to the room service (mutual TLS)"
    )
    tls_key_file: str = Field("", description="key of --tls-cert-file (PEM)")
    room_service_token: SecretStr = Field(
        SecretStr(""), description="bearer token sent to the room service (its ROOM_SERVICE_INTERNAL_TOKEN)"
    )
    # -- idle cost and pauses -------------------------------------------------------------
    ping_batch_seconds: Pause = Field(
        0.5,
        description="Engine.IO pings are due on a grid of this many seconds, so that idle sockets are "
        "pinged (and answer) in batches: a PING goes out at most this much after its interval "
        "(0: exactly on time)",
    )
    gc_young_threshold: Count = Field(
        20_000,
        description="allocations between two collections of Python's youngest generation (the "
        "interpreter's default is 700); fewer, larger collections, and far fewer of the older "
        "generations, whose pauses a join or a broadcast waiting in the loop would feel",
    )
    # -- the write path -------------------------------------------------------------------
    write_window_seconds: Pause = Field(
        0.005,
        description="under load, a socket's outgoing frames are written at most once per this long, "
        "several in one write (an idle socket's leave at once; 0: every loop iteration)",
    )

    def problems(self) -> list[str]:
        """Checks across settings, each problem as one line."""
        problems: list[str] = []
        turn_secret = self.turn_secret.get_secret_value()
        if self.turn_urls and not turn_secret:
            problems.append("turn_urls: TURN URLs need EDGE_GATEWAY_TURN_SECRET (or --turn-secret)")
        if turn_secret and not self.turn_urls:
            problems.append("turn_secret: set EDGE_GATEWAY_TURN_URLS too, or the secret is unused")
        given = [name for name in JWT_KEY_SOURCES if self.jwt_key_source(name)]
        if self.auth_mode == "jwt":
            if len(given) != 1:
                problems.append(
                    f"auth_mode=jwt needs exactly one of {', '.join(JWT_KEY_SOURCES)} (got {len(given)})"
                )
            for name, path in (
                ("jwt_public_key_file", self.jwt_public_key_file),
                ("jwt_jwks_file", self.jwt_jwks_file),
            ):
                if path and not Path(path).is_file():
                    problems.append(f"{name}: no such file {path!r}")
        elif given:
            problems.append(f"{given[0]} is set but auth_mode is 'none': set EDGE_GATEWAY_AUTH_MODE=jwt")
        if self.auth_mode == "none" and not self.allow_insecure:
            problem = insecure_listen_problem(
                "http_address",
                self.http_address.host,
                "auth_mode is 'none'",
                "--allow-insecure true (EDGE_GATEWAY_ALLOW_INSECURE=true)",
            )
            problems += [problem] if problem else []
        try:
            channel_credentials(self.room_service_tls_ca_file, self.tls_cert_file, self.tls_key_file)
        except TlsConfigError as exc:
            problems.append(f"room service TLS: {exc}")
        return problems

    def jwt_key_source(self, name: str) -> str:
        """The value of one of JWT_KEY_SOURCES ('' when unset)."""
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


OPTIONS = Settings.options()
"""Every setting as a flag and a variable (for the README tables and the chart's tests)."""

load_settings = Settings.load
"""Builds the settings from flags, then EDGE_GATEWAY_* variables, then defaults."""

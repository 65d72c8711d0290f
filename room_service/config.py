"""Room service settings: every one a field, hence a flag and a ROOM_SERVICE_* variable."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from meeting_common.net import insecure_listen_problem
from meeting_common.settings import Address, Count, Flag, HostPort, Pause, Seconds, TierSettings
from meeting_common.tls import TlsConfigError, server_credentials
from room_service.store.redis_url import redacted as redacted_url
from room_service.store.redis_url import url_problem as redis_url_problem

__all__ = ["OPTIONS", "Settings", "load_settings", "redacted_url"]

DEMO_MEETINGS_FILE = Path(__file__).with_name("demo_meetings.json")


class Settings(TierSettings):
    """The authoritative meeting RoomService (gRPC)."""

    model_config = SettingsConfigDict(env_prefix="ROOM_SERVICE_")
    PROG: ClassVar[str] = "python -m room_service"

    grpc_address: HostPort = Field(
        Address("127.0.0.1", 50051), description="gRPC listen address (port 0 picks a free port)"
    )
    metrics_address: HostPort = Field(
        Address("127.0.0.1", 9101), description="HTTP address serving /metrics and /healthz"
    )
    meetings_file: str = Field(
        str(DEMO_MEETINGS_FILE), description="JSON file of meetings to register at start; empty for none"
    )
    replay_buffer: Count = Field(1024, description="events kept per room for WatchRoom resumption")
    edge_lease_seconds: Seconds = Field(6, description="an edge silent this long loses its participants")
    restore_grace_seconds: Pause = Field(
        3,
        description="after a start, how long resynchronising streams wait for edges to re-announce",
    )
    multiple_sessions: Flag = Field(
        False, description="let one user hold several sessions in a room instead of replacing the older"
    )
    ban_kicked_users: Flag = Field(
        False, description="keep a user the host kicked out of that meeting for the rest of its life"
    )
    max_participants: Count = Field(500, description="default room capacity when a meeting sets none")
    max_chat_length: Count = Field(2000, description="longest chat message, in characters")
    # -- security: TLS, internal callers, password throttling ---------------------------
    tls_cert_file: str = Field("", description="server certificate (PEM); set to serve TLS")
    tls_key_file: str = Field("", description="key of --tls-cert-file (PEM)")
    tls_client_ca_file: str = Field(
        "",
        description="CA (PEM) for client certificates; when set, every caller needs one (mutual TLS)",
    )
    internal_token: SecretStr = Field(
        SecretStr(""),
        description="bearer token every caller must send (health checks exempt); empty: no check",
    )
    password_attempts_per_minute: Count = Field(
        20, description="wrong passwords one socket may try per minute before its joins get RATE_LIMITED"
    )
    password_checks_per_edge: Count = Field(
        2, description="password hashes one edge may have running at once; more wait their turn"
    )
    # -- crashed edges, ended rooms -------------------------------------------------------
    edge_disconnect_grace_seconds: Pause = Field(
        1,
        description="when an edge's connection closes (its process died), its participants go "
        "after this long unless it reconnects",
    )
    recovery_window_seconds: Pause = Field(
        5,
        description="a socket whose transport closed without a goodbye is held this long after the "
        "client was last heard, for Socket.IO connection-state recovery; 0 turns recovery off",
    )
    ended_room_retention_seconds: Pause = Field(
        300, description="how long an ended meeting's room and replay log are kept for late watchers"
    )
    allow_insecure: Flag = Field(
        False,
        description="allow a non-loopback --grpc-address with neither --internal-token nor "
        "--tls-client-ca-file (refused otherwise: fail closed)",
    )
    # -- store: in this process, or shared by any number of replicas in Redis ------------
    store: Literal["memory", "redis"] = Field(
        "memory",
        description="where rooms live: memory (this process only) or redis (shared by any replicas)",
    )
    redis_url: SecretStr = Field(
        SecretStr(""),
        description="Redis for --store redis (required then): redis:// or rediss:// (TLS), "
        "redis+sentinel://SENTINEL:26379,.../PRIMARY/DB or redis+cluster://ANY-NODE:6379/0; user and "
        "password in the URL, e.g. redis://:PASSWORD@redis:6379/0",
    )
    redis_timeout_seconds: Seconds = Field(
        1,
        description="each Redis store operation's deadline (a stall of this process does not count); "
        "beyond it calls fail with UNAVAILABLE",
    )

    def problems(self) -> list[str]:
        """The TLS files must load as the server will load them; callers must be
        authenticated beyond loopback unless allow_insecure says otherwise; the Redis store
        needs a URL."""
        found: list[str] = []
        try:
            server_credentials(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)
        except TlsConfigError as exc:
            found.append(f"TLS: {exc}")
        if self.store == "redis":
            url = self.redis_url.get_secret_value()
            if not url:
                found.append("redis_url: required with --store redis (set ROOM_SERVICE_REDIS_URL)")
            elif (problem := redis_url_problem(url)) is not None:
                found.append(f"redis_url: {problem}")
        if found or self.internal_token.get_secret_value() or self.tls_client_ca_file or self.allow_insecure:
            return found
        problem = insecure_listen_problem(
            "grpc_address",
            self.grpc_address.host,
            "callers are not authenticated (no internal token, no client CA)",
            "--allow-insecure true (ROOM_SERVICE_ALLOW_INSECURE=true)",
        )
        return [problem] if problem else []


OPTIONS = Settings.options()
"""Every setting as a flag and a variable (for the README tables and the chart's tests)."""

load_settings = Settings.load
"""Builds the settings from flags, then ROOM_SERVICE_* variables, then defaults."""

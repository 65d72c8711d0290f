"""Settings of both tiers: flags over environment over defaults, every problem at once,
and `--help` that documents every variable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from edge_gateway import config as edge_config
from edge_gateway.engine import _SWEEP_SECONDS as SWEEP_SECONDS
from edge_gateway.limits import EdgeLimits
from meeting_common.settings import Option, SettingsError, parse_address, parse_bool
from room_service import config as room_config
from room_service.app import _REAPER_INTERVAL_SECONDS as REAPER_TICK_SECONDS
from tests.support.managed import REPO_ROOT

TIERS = [
    pytest.param(room_config, "python -m room_service", id="room_service"),
    pytest.param(edge_config, "python -m edge_gateway", id="edge_gateway"),
]


def _flag(option: Option) -> str:
    return "--" + option.name.replace("_", "-")


def test_room_service_defaults_match_the_design() -> None:
    settings = room_config.load_settings([], {})
    assert settings.grpc_address == ("127.0.0.1", 50051)
    assert settings.metrics_address == ("127.0.0.1", 9101)
    assert settings.meetings_file == str(room_config.DEMO_MEETINGS_FILE)
    assert settings.multiple_sessions is False
    assert settings.replay_buffer == 1024


def test_edge_defaults_match_the_design() -> None:
    settings = edge_config.load_settings([], {})
    assert settings.http_address == ("127.0.0.1", 8080)
    assert settings.room_service_address == "127.0.0.1:50051"
    assert settings.cors_allowed_origins == "*"


def test_default_time_budgets_keep_the_designs_promises() -> None:
    """DESIGN.md's budgets at the defaults, from the settings that make them up. The fault
    tests measure and report the real times; this pins the arithmetic.

    - A silent client is reported left within 10 s: ping interval + the ping batch grid +
      ping timeout + one sweep.
      Its recovery window counts from its last sign of life, so a loss found by the ping
      timeout has already spent it.
    - A crashed edge's connection closes at once: its sessions are held for the recovery
      window (so that its clients can resume on another edge) after the disconnect grace and
      one reaper tick; without a window that is the design's 2 s.
    """
    edge = edge_config.load_settings([], {})
    room = room_config.load_settings([], {})
    silent_loss = (
        edge.ping_interval_seconds + edge.ping_batch_seconds + edge.ping_timeout_seconds + SWEEP_SECONDS
    )
    assert silent_loss <= 10.0
    assert room.recovery_window_seconds <= edge.ping_interval_seconds + edge.ping_timeout_seconds
    crash_noticed = room.edge_disconnect_grace_seconds + REAPER_TICK_SECONDS
    assert crash_noticed <= 2.0
    assert crash_noticed + room.recovery_window_seconds <= silent_loss


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"ROOM_SERVICE_GRPC_ADDRESS": "127.0.0.1:6000", "ROOM_SERVICE_MULTIPLE_SESSIONS": "yes"}
    from_env = room_config.load_settings([], env)
    assert from_env.grpc_address == ("127.0.0.1", 6000)
    assert from_env.multiple_sessions is True
    from_flag = room_config.load_settings(["--grpc-address", "127.0.0.1:7000"], env)
    assert from_flag.grpc_address == ("127.0.0.1", 7000)
    assert from_flag.multiple_sessions is True  # untouched by the flag
    edge = edge_config.load_settings(
        ["--room-service-address", "127.0.0.1:9"],
        {"EDGE_GATEWAY_ROOM_SERVICE_ADDRESS": "127.0.0.1:8", "EDGE_GATEWAY_CORS_ALLOWED_ORIGINS": "a, b"},
    )
    assert edge.room_service_address == "127.0.0.1:9"
    assert edge.cors_allowed_origins == ["a", "b"]


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_GATEWAY_HTTP_ADDRESS", "127.0.0.1:0")
    assert edge_config.load_settings([]).http_address == ("127.0.0.1", 0)


@pytest.mark.parametrize(("module", "prog"), TIERS)
def test_every_option_is_a_flag_and_a_tier_prefixed_variable(module: Any, prog: str) -> None:
    prefix = "ROOM_SERVICE_" if module is room_config else "EDGE_GATEWAY_"
    names = [option.name for option in module.OPTIONS]
    assert len(set(names)) == len(names)
    settings = module.load_settings([], {})
    for option in module.OPTIONS:
        assert option.env == prefix + option.name.upper()
        assert hasattr(settings, option.name)
        # The documented default parses: a fresh start never fails on its own defaults.
        option.parse(option.default)


def test_all_problems_are_reported_at_once_with_their_source() -> None:
    env = {"ROOM_SERVICE_REPLAY_BUFFER": "lots", "ROOM_SERVICE_EDGE_LEASE_SECONDS": "0"}
    argv = ["--grpc-address", "no-port", "--log-level", "LOUD", "--multiple-sessions", "maybe"]
    with pytest.raises(SettingsError) as caught:
        room_config.load_settings(argv, env)
    problems = caught.value.problems
    assert len(problems) == 5
    joined = "\n".join(problems)
    for fragment in (
        "replay_buffer (from ROOM_SERVICE_REPLAY_BUFFER)",
        "edge_lease_seconds (from ROOM_SERVICE_EDGE_LEASE_SECONDS)",
        "grpc_address (from --grpc-address)",
        "log_level (from --log-level)",
        "multiple_sessions (from --multiple-sessions)",
    ):
        assert fragment in joined
    assert str(caught.value).count("\n") == 5


def test_edge_reports_all_problems_too() -> None:
    env = {"EDGE_GATEWAY_MAX_PAYLOAD_BYTES": "-5", "EDGE_GATEWAY_CORS_ALLOWED_ORIGINS": " , "}
    with pytest.raises(SettingsError) as caught:
        edge_config.load_settings(["--http-address", "127.0.0.1:70000"], env)
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (parse_address, "[::1]:80", ("::1", 80)),
        (parse_address, "0.0.0.0:0", ("0.0.0.0", 0)),
        (parse_bool, "On", True),
        (parse_bool, "0", False),
    ],
)
def test_value_parsers(parse: Callable[[str], Any], text: str, expected: Any) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize("text", [":80", "host", "host:-1", "host:65536", "host:http"])
def test_bad_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def _run(prog: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    module = prog.rsplit(maxsplit=1)[-1]
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(("module", "prog"), TIERS)
def test_help_lists_every_flag_variable_and_default(module: Any, prog: str) -> None:
    # Wide enough not to wrap: argparse would break a default path at a hyphen.
    result = _run(prog, "--help", env={**os.environ, "COLUMNS": "1000"})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert text.startswith(f"usage: {prog}")
    options: Sequence[Option] = module.OPTIONS
    for option in options:
        assert _flag(option) in text
        assert f"env {option.env}" in text
        assert f"default: {option.default}" in text


@pytest.mark.parametrize(("module", "prog"), TIERS)
def test_bad_settings_stop_the_entry_point_with_every_problem(module: Any, prog: str) -> None:
    env_var = "ROOM_SERVICE_LOG_FORMAT" if module is room_config else "EDGE_GATEWAY_LOG_FORMAT"

    result = _run(prog, "--log-level", "SHOUT", env={**os.environ, env_var: "xml"})
    assert result.returncode == 2
    assert "log_level (from --log-level)" in result.stderr
    assert f"log_format (from {env_var})" in result.stderr
    assert "Traceback" not in result.stderr


def test_non_finite_and_negative_durations_are_refused() -> None:
    load_settings = room_config.load_settings
    try:
        load_settings(["--restore-grace-seconds", "nan", "--edge-lease-seconds", "inf"], environ={})
    except SettingsError as exc:
        assert len(exc.problems) == 2
        assert any("restore_grace_seconds" in p for p in exc.problems)
        assert any("edge_lease_seconds" in p for p in exc.problems)
    else:
        raise AssertionError("nan and inf were accepted")
    assert load_settings(["--restore-grace-seconds", "0"], environ={}).restore_grace_seconds == 0


def test_the_store_is_memory_by_default_and_redis_needs_a_url_that_is_never_echoed() -> None:
    assert room_config.load_settings([], {}).store == "memory"
    with pytest.raises(SettingsError) as missing:
        room_config.load_settings(["--store", "redis"], {})
    assert "ROOM_SERVICE_REDIS_URL" in str(missing.value)
    url = "rediss://app:hunter2-pass@redis.example:6380/2"
    settings = room_config.load_settings(["--store", "redis"], {"ROOM_SERVICE_REDIS_URL": url})
    assert (settings.store, settings.redis_url.get_secret_value()) == ("redis", url)
    assert "hunter2-pass" not in repr(settings)
    assert room_config.redacted_url(url) == "rediss://redis.example:6380/2"
    # Only the Redis store reads the URL.
    assert room_config.load_settings([], {"ROOM_SERVICE_REDIS_URL": "not a url"}).store == "memory"
    for bad in ("http://:hunter2-pass@x:1/0", "redis://:hunter2-pass@x:port/0", "redis://:hunter2-pass@/0"):
        with pytest.raises(SettingsError) as refused:
            room_config.load_settings(["--store", "redis"], {"ROOM_SERVICE_REDIS_URL": bad})
        assert "hunter2-pass" not in str(refused.value)
    with pytest.raises(SettingsError):
        room_config.load_settings(["--store", "sqlite"], {})
    sentinel = "redis+sentinel://:hunter2-pass@s1:26379,s2:26379/main/3"
    assert (
        room_config.load_settings(["--store", "redis"], {"ROOM_SERVICE_REDIS_URL": sentinel}).store == "redis"
    )
    assert room_config.redacted_url(sentinel) == "redis+sentinel://s1:26379,s2:26379/main/3"
    for bad in ("redis+sentinel://:hunter2-pass@s1:26379/", "redis+sentinel://:hunter2-pass@s1/main"):
        with pytest.raises(SettingsError) as refused:
            room_config.load_settings(["--store", "redis"], {"ROOM_SERVICE_REDIS_URL": bad})
        assert "hunter2-pass" not in str(refused.value)


SECRET_MARK = "s3cret-value-never-shown"


@pytest.mark.parametrize(("module", "prog"), TIERS)
def test_secret_values_never_reach_reprs_dumps_or_help(module: Any, prog: str) -> None:
    secrets = [option for option in module.OPTIONS if option.secret]
    assert secrets, "every tier has at least one secret setting"
    env = {option.env: f"{SECRET_MARK}-{option.name}" for option in secrets}
    if module is edge_config:
        env.update({"EDGE_GATEWAY_AUTH_MODE": "jwt", "EDGE_GATEWAY_TURN_URLS": "turn:t.test"})
    settings = module.load_settings([], env)
    for option in secrets:
        assert getattr(settings, option.name).get_secret_value() == env[option.env]
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert SECRET_MARK not in shown
    result = _run(prog, "--help", env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    assert SECRET_MARK not in result.stdout


def test_a_problem_with_a_secret_set_does_not_show_it() -> None:
    with pytest.raises(SettingsError) as caught:
        edge_config.load_settings([], {"EDGE_GATEWAY_JWT_SECRET": SECRET_MARK})
    assert "jwt_secret is set but auth_mode is 'none'" in str(caught.value)
    assert SECRET_MARK not in str(caught.value)


def test_limit_settings_reach_the_limits() -> None:
    settings = edge_config.load_settings(["--max-connections-per-address", "1"], {})
    limits = EdgeLimits(settings)
    assert limits.open_engine("eio-1", "10.0.0.1") and limits.admit("sid-1", "eio-1")
    assert limits.open_engine("eio-2", "10.0.0.1") and not limits.admit("sid-2", "eio-2")
    assert not limits.open_engine("eio-3", "10.0.0.1")  # handshakes beyond twice the limit
    with pytest.raises(SettingsError) as caught:
        edge_config.load_settings(["--max-name-length", "101"], {"EDGE_GATEWAY_MAX_TEXT_LENGTH": "4001"})
    assert [p.split(" ", 1)[0] for p in caught.value.problems] == ["max_name_length", "max_text_length"]

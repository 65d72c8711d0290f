"""webrtcConfig: ICE servers from the settings and TURN REST credentials, checked against
an independent computation (openssl) rather than the module's own code."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from edge_gateway.config import load_settings
from edge_gateway.webrtc import IceServer, WebRtcConfigBuilder, parse_ice_servers, turn_rest_credential
from meeting_common.settings import SettingsError

SECRET = "coturn-shared-secret"
# Computed once by hand, outside Python:
#   printf '%s' '1700086400:user-1-id' | openssl dgst -sha1 -hmac 'coturn-shared-secret' -binary | base64
KNOWN_USERNAME = "1700086400:user-1-id"
KNOWN_CREDENTIAL = "Yu1+i4YJQ3JcUeSA/LGHtt6hZgE="


def _openssl_credential(secret: str, username: str) -> str:
    digest = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=username.encode(),
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout
    encoded = subprocess.run(["base64"], input=digest, capture_output=True, check=True, timeout=10).stdout
    return encoded.decode().strip()


def test_turn_credential_matches_known_vector() -> None:
    assert turn_rest_credential(SECRET, "user-1-id", 1700086400) == (KNOWN_USERNAME, KNOWN_CREDENTIAL)


def test_builder_gives_time_limited_turn_credentials() -> None:
    builder = WebRtcConfigBuilder(
        ice_servers=(IceServer(("stun:stun.example.test:3478",)),),
        turn_urls=("turn:turn.example.test:3478?transport=udp", "turns:turn.example.test:5349"),
        turn_secret=SECRET,
        turn_ttl_seconds=86400,
        clock=lambda: 1700000000.7,
    )
    config = builder("user-1-id")
    stun, turn = config["iceServers"]
    assert stun == {"urls": ["stun:stun.example.test:3478"]}
    assert turn["urls"] == ["turn:turn.example.test:3478?transport=udp", "turns:turn.example.test:5349"]
    # Expiry is now + TTL (whole seconds), then the user id, as coturn's use-auth-secret parses it.
    assert turn["username"] == KNOWN_USERNAME
    assert turn["credential"] == KNOWN_CREDENTIAL
    assert SECRET not in repr(builder)


@pytest.mark.skipif(shutil.which("openssl") is None or shutil.which("base64") is None, reason="no openssl")
@pytest.mark.parametrize("user_id", ["u1", "42", "user:with:colons", "ünïcødé-user"])
def test_credential_agrees_with_openssl(user_id: str) -> None:
    builder = WebRtcConfigBuilder(turn_urls=("turn:t.test",), turn_secret="s3cr3t", clock=lambda: 1000.0)
    turn = builder(user_id)["iceServers"][0]
    assert turn["username"] == f"87400:{user_id}"
    assert turn["credential"] == _openssl_credential("s3cr3t", turn["username"])


def test_no_servers_configured_gives_empty_list() -> None:
    assert WebRtcConfigBuilder()("u1") == {"iceServers": []}


def test_static_ice_servers_parse() -> None:
    servers = parse_ice_servers(
        '[{"urls": "stun:a.test"}, {"urls": ["turn:b.test"], "username": "u", "credential": "p"}]'
    )
    builder = WebRtcConfigBuilder(ice_servers=servers)
    assert builder("x") == {
        "iceServers": [
            {"urls": ["stun:a.test"]},
            {"urls": ["turn:b.test"], "username": "u", "credential": "p"},
        ]
    }


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"urls": "stun:a"}',
        '[{"url": "stun:a"}]',
        '[{"urls": "http://a"}]',
        '[{"urls": []}]',
        '[{"urls": "stun:a", "username": 5}]',
        '[{"urls": "stun:a", "extra": 1}]',
    ],
)
def test_bad_ice_servers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ice_servers(text)


def test_settings_from_environment() -> None:
    settings = load_settings(
        [],
        {
            "EDGE_GATEWAY_ICE_SERVERS": '[{"urls": "stun:s.test:3478"}]',
            "EDGE_GATEWAY_TURN_URLS": "turn:t.test:3478, turns:t.test:5349",
            "EDGE_GATEWAY_TURN_SECRET": SECRET,
            "EDGE_GATEWAY_TURN_TTL_SECONDS": "600",
        },
    )
    assert settings.ice_servers == (IceServer(("stun:s.test:3478",)),)
    assert settings.turn_urls == ("turn:t.test:3478", "turns:t.test:5349")
    assert settings.turn_secret.get_secret_value() == SECRET
    assert settings.turn_ttl_seconds == 600
    # The settings object may be logged or shown in a traceback: never with the secret.
    assert SECRET not in repr(settings)


def test_turn_urls_without_secret_is_a_settings_error() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(["--turn-urls", "turn:t.test"], {})
    assert any("turn_urls" in problem for problem in info.value.problems)
    with pytest.raises(SettingsError):
        load_settings(["--turn-urls", "stun:t.test", "--turn-secret", "x"], {})


def test_help_lists_the_options_without_the_secret() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge_gateway", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"EDGE_GATEWAY_TURN_SECRET": "do-not-show-me", "PATH": "/usr/bin:/bin"},
    )
    for flag in ("--ice-servers", "--turn-urls", "--turn-secret", "--turn-ttl-seconds"):
        assert flag in result.stdout
    assert "do-not-show-me" not in result.stdout

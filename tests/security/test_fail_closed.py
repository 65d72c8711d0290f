"""Fail closed: neither entry point serves beyond loopback with authentication off unless
told so explicitly, and `make run` says plainly that authentication is off."""

from __future__ import annotations

import sys

import pytest

from edge_gateway.config import load_settings as edge_settings
from meeting_common.settings import SettingsError
from room_service.config import load_settings as room_settings
from tests.support.managed import ManagedProcess
from tests.support.processes import edge_argv, room_service_argv
from tests.support.prometheus import free_port

from . import keys

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        pytest.param(edge_argv("127.0.0.1:1", "--http-address", "0.0.0.0:0"), "EDGE_GATEWAY_", id="edge"),
        pytest.param(room_service_argv("--grpc-address", "0.0.0.0:0"), "ROOM_SERVICE_", id="room-service"),
    ],
)
async def test_entry_points_refuse_an_open_address_without_authentication(
    argv: list[str], variable: str
) -> None:
    async with ManagedProcess("refused", argv) as proc:
        assert await proc.wait(30) != 0
    text = "\n".join(line.text for line in proc.lines)
    assert "is not a loopback address" in text and f"{variable}ALLOW_INSECURE=true" in text, text


def test_what_the_refusal_lets_through() -> None:
    """Loopback, authentication on, or the explicit flag: accepted (settings only; the
    tests never listen beyond loopback)."""
    edge_settings(["--http-address", "127.0.0.1:0"], {})
    edge_settings(["--http-address", "[::1]:0"], {})
    edge_settings(
        ["--http-address", "0.0.0.0:0", "--auth-mode", "jwt"], {"EDGE_GATEWAY_JWT_SECRET": keys.HS_SECRET}
    )
    assert edge_settings(["--http-address", "0.0.0.0:0", "--allow-insecure", "true"], {}).allow_insecure
    with pytest.raises(SettingsError):
        edge_settings(["--http-address", "10.1.2.3:0"], {})
    room_settings(["--grpc-address", "localhost:0"], {})
    room_settings(["--grpc-address", "0.0.0.0:0"], {"ROOM_SERVICE_INTERNAL_TOKEN": "t0ken"})
    assert room_settings(
        ["--grpc-address", "0.0.0.0:0"], {"ROOM_SERVICE_ALLOW_INSECURE": "true"}
    ).allow_insecure
    with pytest.raises(SettingsError):
        room_settings(["--grpc-address", ":0"], {})


async def test_make_run_says_plainly_that_authentication_is_off() -> None:
    env = {
        "ROOM_SERVICE_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
        "ROOM_SERVICE_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "EDGE_GATEWAY_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    async with ManagedProcess("make-run", [sys.executable, "-m", "tools.run_local"], env=env) as proc:
        await proc.wait_for_log(lambda r: "Ready: Socket.IO" in str(r.get("msg")), timeout=40)
        await proc.wait_for_log(lambda r: "AUTHENTICATION IS OFF at the edge" in str(r.get("msg")), timeout=5)
        await proc.wait_for_log(
            lambda r: "AUTHENTICATION IS OFF at the room service" in str(r.get("msg")), timeout=5
        )

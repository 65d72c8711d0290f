"""`make run`: the room service and one edge on this machine, in-memory store, demo meetings.

Starts `python -m room_service`, waits until its gRPC port accepts connections, starts
`python -m edge_gateway`, waits until /readyz says ready, and stops both on Ctrl-C or
SIGTERM (SIGTERM to each, so both shut down gracefully). Extra settings pass through the
usual ROOM_SERVICE_* and EDGE_GATEWAY_* environment variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from types import FrameType

READY_TIMEOUT = 30.0


def _wait(check: str, probe: object, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{check} exited with {proc.returncode} before it was ready")
        try:
            if callable(probe) and probe():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{check} was not ready within {READY_TIMEOUT:.0f}s")


def _port_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:
        return bool(response.status == 200)


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _auth_notice(env: dict[str, str]) -> str:
    """What `make run` says about authentication: plainly, when it is off."""
    lines = []
    if env.get("EDGE_GATEWAY_AUTH_MODE", "none") == "none":
        lines.append(
            "AUTHENTICATION IS OFF at the edge: any client may join as any userId "
            "(set EDGE_GATEWAY_AUTH_MODE=jwt and a key to turn it on)."
        )
    if not (env.get("ROOM_SERVICE_INTERNAL_TOKEN") or env.get("ROOM_SERVICE_TLS_CLIENT_CA_FILE")):
        lines.append(
            "AUTHENTICATION IS OFF at the room service: any caller may use its gRPC API "
            "(set ROOM_SERVICE_INTERNAL_TOKEN and EDGE_GATEWAY_ROOM_SERVICE_TOKEN)."
        )
    if lines:
        lines.append("Both listen on loopback only; this is for development.")
    return "".join(line + "\n" for line in lines)


def main() -> int:
    """Runs both tiers until interrupted."""
    env = dict(os.environ)
    grpc_address = env.setdefault("ROOM_SERVICE_GRPC_ADDRESS", "127.0.0.1:50051")
    env.setdefault("EDGE_GATEWAY_ROOM_SERVICE_ADDRESS", grpc_address)
    http_address = env.setdefault("EDGE_GATEWAY_HTTP_ADDRESS", "127.0.0.1:8080")
    procs: list[subprocess.Popen[bytes]] = []

    def stop(_signum: int = 0, _frame: FrameType | None = None) -> None:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        room = subprocess.Popen([sys.executable, "-m", "room_service"], env=env)
        procs.append(room)
        host, port = _split(grpc_address)
        _wait("room_service", lambda: _port_open(host, port), room)
        edge = subprocess.Popen([sys.executable, "-m", "edge_gateway"], env=env)
        procs.append(edge)
        host, port = _split(http_address)
        _wait("edge_gateway", lambda: _ready(f"http://{host}:{port}/readyz"), edge)
        print(
            f"\nReady: Socket.IO at http://{host}:{port} (demo meetings: test-meeting-123, "
            "test-meeting-locked / password123). Ctrl-C stops both.\n" + _auth_notice(env),
            file=sys.stderr,
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())

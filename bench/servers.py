"""The servers `make bench` compares, each started fresh for a run and stopped after it:
the Node reference, our stack as `make run` starts it (optionally on a throwaway
redis-server), with the caps a load test from one address meets first raised."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} not ready within {timeout:.0f} s")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@contextlib.contextmanager
def reference() -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(BENCH / "reference.js"), str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "listening <port>"
        yield f"http://127.0.0.1:{port}", [proc.pid]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


@contextlib.contextmanager
def redis_store() -> Iterator[dict[str, str]]:
    """A throwaway redis-server on a free port (no persistence): the stack's store settings."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(port), "redis-server")
        yield {"ROOM_SERVICE_STORE": "redis", "ROOM_SERVICE_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextlib.contextmanager
def stack(
    clients: int, root: Path, store: str = "memory", logs: Path | None = None
) -> Iterator[tuple[str, list[int]]]:
    with contextlib.ExitStack() as scope:
        store_env = scope.enter_context(redis_store()) if store == "redis" else {}
        yield scope.enter_context(_stack(clients, root, store_env, logs))


def _scrape(url: str, to: Path) -> None:
    """Saves one tier's /metrics (best effort: a tier that died says so in its log)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            to.write_bytes(response.read())
    except OSError as exc:
        to.write_text(f"# scrape failed: {exc}\n")


@contextlib.contextmanager
def _stack(
    clients: int, root: Path, store_env: dict[str, str], logs: Path | None
) -> Iterator[tuple[str, list[int]]]:
    http, grpc, metrics = free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        **store_env,
        ROOM_SERVICE_GRPC_ADDRESS=f"127.0.0.1:{grpc}",
        ROOM_SERVICE_METRICS_ADDRESS=f"127.0.0.1:{metrics}",
        EDGE_GATEWAY_HTTP_ADDRESS=f"127.0.0.1:{http}",
        # The caps a load test from one address meets first, raised by their settings.
        EDGE_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=str(clients + 10),
        ROOM_SERVICE_MAX_PARTICIPANTS=str(clients + 10),
    )
    log = open(logs.with_suffix(".log"), "wb") if logs else None  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.run_local"],
        cwd=root,
        env=env,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    try:
        ready = f"http://127.0.0.1:{http}/readyz"
        wait_until(lambda: urllib.request.urlopen(ready, timeout=1).status == 200, "the stack")
        yield f"http://127.0.0.1:{http}", children(proc.pid)
    finally:
        if logs:
            _scrape(f"http://127.0.0.1:{http}/metrics", logs.with_suffix(".edge.prom"))
            _scrape(f"http://127.0.0.1:{metrics}/metrics", logs.with_suffix(".room.prom"))
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            log.close()

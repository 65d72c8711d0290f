"""A real three-node Redis Cluster on free loopback ports, for a whole test session."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

NODES = 3


def _cluster_port(taken: set[int]) -> int:
    """A free port whose cluster-bus port (10000 higher, so at most 55535) is free too."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(20000, 55535)
        if port in taken or port + 10000 in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _converged(info: bytes) -> bool:
    """Every node knows every other and all slots are served."""
    wanted = (b"cluster_state:ok", f"cluster_known_nodes:{NODES}".encode(), b"cluster_slots_ok:16384")
    return all(item in info for item in wanted)


def _ask(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), 1.0) as sock:
        sock.sendall(command)
        return sock.recv(65536)


class SessionRedisCluster:
    """Three primaries (no replicas) sharing the 16384 slots; stopped on exit."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        for _ in range(NODES):
            self.ports.append(_cluster_port(set(self.ports) | {p + 10000 for p in self.ports}))
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}/0"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir = tempfile.TemporaryDirectory(prefix="redis-cluster-")

    def __enter__(self) -> SessionRedisCluster:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            pytest.fail("redis-server is not installed: run `make test` (it installs it)")
        for port in self.ports:
            argv = [
                binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--dir", self._dir.name,
            ]  # fmt: skip
            log = open(Path(self._dir.name) / f"{port}.log", "wb")
            self._procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        try:
            for port in self.ports:
                self._wait(lambda p=port: _ask(p, b"PING\r\n").startswith(b"+PONG"), "node up")
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            for port in self.ports:
                self._wait(lambda p=port: _converged(_ask(p, b"CLUSTER INFO\r\n")), "cluster ok")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait(self, check: object, what: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if check():  # type: ignore[operator]
                    return
            time.sleep(0.05)
        logs = "\n".join(p.read_text(errors="replace")[-600:] for p in Path(self._dir.name).glob("*.log"))
        pytest.fail(f"Redis Cluster: {what} not reached\n{logs}")

    def __exit__(self, *_: object) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        self._dir.cleanup()

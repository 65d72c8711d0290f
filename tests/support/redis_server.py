"""A real `redis-server` on a free loopback port, started and stopped by the test.

Nothing depends on a Redis the machine happens to run: each server has its own port
and no persistence, so a restart comes back empty (a Redis that lost its data).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.managed import ManagedProcess

READY_TEXT = "Ready to accept connections"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer(ManagedProcess):
    """One redis-server; `restart_empty()` brings it back empty on the same port.

    Each has a directory of its own: a replica writes the dataset it receives there, and a
    server started in a directory holding a dataset would load it (not come back empty)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        password: str = "",
        extra: tuple[str, ...] = (),
        data_dir: Path | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test` (it installs it)")
        self.port = port or free_port()
        self.password = password
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix=f"redis-{self.port}-"))
        for leftover in self.data_dir.glob("*.rdb"):
            leftover.unlink()
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
        ]  # fmt: skip
        if password:
            argv += ["--requirepass", password, "--masterauth", password]
        argv += extra
        self.extra = extra
        super().__init__(f"redis-{self.port}", argv, ready_msg=None)

    @property
    def url(self) -> str:
        """The URL the room service is given."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Starts and waits until it accepts connections."""
        await super().start()
        await self.wait_for_log(lambda r: READY_TEXT in str(r.get("msg", "")), timeout=20.0)

    async def terminate(self, grace: float = 5.0) -> int | None:
        """Stops it and removes its directory."""
        code = await super().terminate(grace)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code

    async def restart_empty(self) -> None:
        """SIGKILL, then the same port again with no data (no persistence)."""
        await self.kill()
        fresh = RedisServer(self.port, password=self.password, extra=self.extra, data_dir=self.data_dir)
        await fresh.start()
        self._adopt(fresh)

    def _adopt(self, other: RedisServer) -> None:
        self.__dict__.update(other.__dict__)


async def start_redis(*, password: str = "", replica_of: int | None = None) -> RedisServer:
    """A running redis-server on a free port (a replica of the one on `replica_of`)."""
    extra = ("--replicaof", "127.0.0.1", str(replica_of)) if replica_of else ()
    server = RedisServer(password=password, extra=extra)
    await server.start()
    return server


class SentinelServer(ManagedProcess):
    """One Redis Sentinel watching the primary named `primary` (quorum 1, fast failover)."""

    def __init__(
        self, config_dir: Path, primary_port: int, *, primary: str = "main", password: str = ""
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test` (it installs it)")
        self.port = free_port()
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"sentinel monitor {primary} 127.0.0.1 {primary_port} 1",
            f"sentinel down-after-milliseconds {primary} 1000",
            f"sentinel failover-timeout {primary} 5000",
        ]
        if password:
            lines.append(f"sentinel auth-pass {primary} {password}")
        config = config_dir / f"sentinel-{self.port}.conf"
        config.write_text("\n".join(lines) + "\n")
        super().__init__(f"sentinel-{self.port}", [binary, str(config), "--sentinel"], ready_msg=None)

    async def start(self) -> None:
        """Starts and waits until it watches the primary."""
        await super().start()
        await self.wait_for_log(lambda r: "+monitor master" in str(r.get("msg", "")), timeout=20.0)


class SessionRedis:
    """A redis-server for a whole test session (started without an event loop)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SessionRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test` (it installs it)")
        self._dir = tempfile.TemporaryDirectory(prefix="redis-session-")
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", self._dir.name]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__(None, None, None)
        pytest.fail(f"redis-server on port {self.port} did not start")

    def __exit__(self, *_: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5.0)
        self._dir.cleanup()

"""Start the real entry points (``python -m room_service`` / ``python -m edge_gateway``)
as subprocesses, the way ``make run`` does, and watch their JSON logs.

Each process writes JSON log lines (one object per line) to stderr; one of them is the
ready line (``"msg": "room service ready"`` with ``grpc_address``/``metrics_address``,
``"msg": "edge gateway ready"`` with ``http_address``). Every line, from stdout and
stderr, is kept in memory for assertions and printed when a test using the process
as a context manager fails.

Usage::

    async with await start_room_service() as rs:
        async with await start_edge(rs.grpc_address) as edge:
            ... edge.url ...

or, in a fixture, ``proc = await start_room_service()`` then ``await proc.terminate()``
in the finaliser. Anything still running when the interpreter exits is SIGKILLed.

Longer than ~300 lines on purpose: the Managed base and ManagedProcess (spawn, read the
output, signal, reap) are one mechanism that every process a test starts relies on; the
tiers' processes are the few lines on top of it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from tests.support.timing import condition_met, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

ROOM_SERVICE_READY = "room service ready"
EDGE_READY = "edge gateway ready"

_STREAM_LIMIT = 16 * 1024 * 1024
_LIVE: set[ManagedProcess] = set()


def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        pid = proc.pid
        if pid is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


class ProcessError(RuntimeError):
    """A managed process failed to start, exited early or a wait timed out."""


@dataclass(frozen=True)
class LogLine:
    """One output line. ``record`` is the parsed JSON object, or ``{"msg": text,
    "unparsed": True}`` for a line that is not a JSON object."""

    stream: str  # "stderr" | "stdout"
    text: str
    record: dict[str, Any]
    received: float  # time.monotonic()
    index: int

    @property
    def msg(self) -> str:
        return str(self.record.get("msg", ""))

    @property
    def level(self) -> str:
        return str(self.record.get("level", ""))


LogPredicate = Callable[[dict[str, Any]], bool]
LineHandler = Callable[[LogLine], Awaitable[None]]


def msg_is(message: str, **fields: Any) -> LogPredicate:
    """Predicate: ``record["msg"] == message`` and every given field equals its value."""

    def check(record: dict[str, Any]) -> bool:
        return record.get("msg") == message and all(record.get(k) == v for k, v in fields.items())

    return check


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:PORT"`` -> ``("127.0.0.1", PORT)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Managed(ABC):
    """Something a test starts and must stop: ``async with`` starts it (unless started
    already) and stops it, whatever happens."""

    @property
    @abstractmethod
    def started(self) -> bool:
        """Whether :meth:`start` ran."""

    @abstractmethod
    async def start(self) -> object:
        """Starts it; returns when it is usable."""

    @abstractmethod
    async def stop(self) -> object:
        """Stops it within a bounded time."""

    def failed(self) -> None:
        """Called after stopping when the block failed: shows what helps find out why."""
        print(f"{self!r} stopped after a failure", file=sys.stderr)

    async def __aenter__(self) -> Self:
        if not self.started:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if exc is not None:
            self.failed()


class ManagedProcess(Managed):
    """An asyncio subprocess with its JSON log lines collected in memory.

    The base of every process a test starts: the tiers, Prometheus, the node driver of
    the JavaScript clients. A process that talks over stdin/stdout (the driver) gets
    ``stdin=True`` and an ``on_stdout`` handler that takes its stdout lines instead of
    the log (``None`` once stdout closed); :meth:`terminate` then closes stdin first.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        ready_msg: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        ready_timeout: float = 20.0,
        echo: bool = False,
        stdin: bool = False,
        on_stdout: Callable[[LogLine | None], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_msg = ready_msg
        base = dict(os.environ)
        base["PYTHONUNBUFFERED"] = "1"
        if env is not None:
            base.update(env)
        self.env = base
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.echo = echo
        self.lines: list[LogLine] = []
        self.ready: dict[str, Any] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._cond = asyncio.Condition()
        self._readers: list[asyncio.Task[None]] = []
        self._stopped = False
        self._stdin = stdin
        self._on_stdout = on_stdout
        self.started_at: float | None = None

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, returncode={self.returncode})"

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> dict[str, Any] | None:
        """Spawn; when ``ready_msg`` is set, wait for it (``ready_timeout``) and return the
        ready record. Raises :class:`ProcessError` (with the output so far) on timeout or
        early exit; the process is killed in that case."""
        if self._proc is not None:
            raise ProcessError(f"{self.name} already started")
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=str(self.cwd),
            env=self.env,
            stdin=asyncio.subprocess.PIPE if self._stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_STREAM_LIMIT,
            start_new_session=True,
        )
        self.started_at = time.monotonic()
        _LIVE.add(self)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, "stdout"), name=f"{self.name}-stdout"),
            asyncio.create_task(self._read(self._proc.stderr, "stderr"), name=f"{self.name}-stderr"),
            asyncio.create_task(self._watch_exit(self._proc), name=f"{self.name}-exit"),
        ]
        if self.ready_msg is None:
            return None
        try:
            line = await self.wait_for_log(msg_is(self.ready_msg), timeout=self.ready_timeout)
        except ProcessError as exc:
            await self.kill()
            raise ProcessError(f"{self.name} did not become ready: {exc}") from None
        self.ready = line.record
        return self.ready

    @property
    def started(self) -> bool:
        return self._proc is not None

    async def stop(self) -> None:
        """Terminates (SIGTERM, then SIGKILL after the grace)."""
        await self.terminate()

    def failed(self) -> None:
        """Prints the output, for the report of the failed test."""
        print(self.dump(), file=sys.stderr)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(sig)

    def freeze(self) -> None:
        """SIGSTOP: freeze the process (a hung server: connections stay open)."""
        self._signal(signal.SIGSTOP)
        self._stopped = True

    def thaw(self) -> None:
        """SIGCONT: resume after :meth:`freeze`."""
        self._signal(signal.SIGCONT)
        self._stopped = False

    def send_signal(self, sig: signal.Signals) -> None:
        self._signal(sig)

    async def write(self, data: bytes) -> None:
        """Writes to the process's stdin (``stdin=True``); raises ProcessError when closed."""
        if self._proc is None or self._proc.stdin is None:
            raise ProcessError(f"{self.name} has no stdin")
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ProcessError(f"{self.name}: stdin closed\n{self.dump(40)}") from exc

    async def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; returns its return code."""
        if self._proc is None:
            raise ProcessError(f"{self.name} was never started")
        try:
            async with asyncio.timeout(timeout):
                code = await self._proc.wait()
        except TimeoutError:
            raise ProcessError(f"{self.name} still running after {timeout}s\n{self.dump(40)}") from None
        await self._drain_readers()
        _LIVE.discard(self)
        return code

    async def terminate(self, grace: float = 5.0) -> int | None:
        """SIGTERM (plus SIGCONT if stopped), then SIGKILL after ``grace`` seconds."""
        if self._proc is None:
            return None
        if self._proc.returncode is None and self._proc.stdin is not None:
            # A process driven over stdin exits when it ends; signals only if it does not.
            with contextlib.suppress(Exception):
                self._proc.stdin.close()
            with contextlib.suppress(ProcessError):
                return await self.wait(grace)
        if self._proc.returncode is None:
            self._signal(signal.SIGTERM)
            if self._stopped:
                self.thaw()
            try:
                return await self.wait(grace)
            except ProcessError:
                return await self.kill()
        await self._drain_readers()
        _LIVE.discard(self)
        return self._proc.returncode

    async def kill(self) -> int | None:
        """SIGKILL and wait."""
        if self._proc is None:
            return None
        self._signal(signal.SIGKILL)
        return await self.wait(10.0)

    async def _drain_readers(self, timeout: float = 2.0) -> None:
        for task in self._readers:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(timeout):
                    await task
            task.cancel()

    # -- logs -------------------------------------------------------------------------

    async def _read(self, stream: asyncio.StreamReader, label: str) -> None:
        try:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # line longer than the limit
                    raw = await stream.read(_STREAM_LIMIT)
                if not raw:
                    break
                text = raw.decode(errors="replace").rstrip("\r\n")
                record: dict[str, Any]
                try:
                    parsed = json.loads(text)
                    record = parsed if isinstance(parsed, dict) else {"msg": text, "unparsed": True}
                except ValueError:
                    record = {"msg": text, "unparsed": True}
                line = LogLine(label, text, record, time.monotonic(), len(self.lines))
                if label == "stdout" and self._on_stdout is not None:
                    await self._on_stdout(line)
                    continue
                self.lines.append(line)
                if self.echo:
                    print(f"[{self.name}:{label}] {text}", file=sys.stderr)
                async with self._cond:
                    self._cond.notify_all()
        finally:
            if label == "stdout" and self._on_stdout is not None:
                await self._on_stdout(None)
            async with self._cond:
                self._cond.notify_all()

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        async with self._cond:
            self._cond.notify_all()

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every parsed log record so far (non-JSON lines as ``{"msg", "unparsed"}``)."""
        return [line.record for line in self.lines]

    def logs_matching(self, predicate: LogPredicate, *, start: int = 0) -> list[LogLine]:
        return [line for line in self.lines[start:] if _safe(predicate, line.record)]

    def mark(self) -> int:
        """Current end of the log; pass as ``start=`` to only see later lines."""
        return len(self.lines)

    async def wait_for_log(
        self,
        predicate: LogPredicate,
        *,
        timeout: float = 10.0,
        start: int = 0,
    ) -> LogLine:
        """First line at index >= ``start`` whose record satisfies ``predicate``. Raises
        :class:`ProcessError` on timeout or when the process exits without it."""
        found: list[LogLine] = []

        def ready() -> bool:
            found[:] = self.logs_matching(predicate, start=start)
            return bool(found) or self._exited()

        if not await condition_met(self._cond, ready, within=timeout):
            raise ProcessError(f"{self.name}: no matching log line within {timeout}s\n{self.dump(60)}")
        if not found:
            raise ProcessError(
                f"{self.name} exited (returncode {self.returncode}) "
                f"without a matching log line\n{self.dump(60)}"
            )
        return found[0]

    def _exited(self) -> bool:
        if self._proc is None or self._proc.returncode is None:
            return False
        return all(task.done() for task in self._readers)

    def dump(self, last: int | None = None) -> str:
        lines = self.lines if last is None else self.lines[-last:]
        head = f"----- {self.name} pid={self.pid} returncode={self.returncode} argv={self.argv}"
        body = "\n".join(f"[{line.stream}] {line.text}" for line in lines)
        return f"{head}\n{body or '(no output)'}\n----- end {self.name}"


def _safe(predicate: LogPredicate, record: dict[str, Any]) -> bool:
    try:
        return bool(predicate(record))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


class RoomServiceProcess(ManagedProcess):
    @property
    def grpc_address(self) -> str:
        return self._ready_field("grpc_address")

    @property
    def metrics_address(self) -> str:
        return self._ready_field("metrics_address")

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    def _ready_field(self, key: str) -> str:
        if self.ready is None or key not in self.ready:
            raise ProcessError(f"{self.name}: ready line has no {key!r}: {self.ready!r}")
        return str(self.ready[key])


class EdgeProcess(ManagedProcess):
    @property
    def http_address(self) -> str:
        if self.ready is None or "http_address" not in self.ready:
            raise ProcessError(f"{self.name}: ready line has no 'http_address': {self.ready!r}")
        return str(self.ready["http_address"])

    @property
    def url(self) -> str:
        """Base URL for socket.io-client / HTTP (``http://127.0.0.1:PORT``)."""
        return f"http://{self.http_address}"

    async def readyz(self) -> int:
        """The status code of ``/readyz``."""
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/readyz") as response:
            return response.status

    async def wait_ready(self, *, within: float) -> float:
        """Polls ``/readyz`` until it answers 200; returns the seconds it took."""

        async def ready() -> bool:
            return await self.readyz() == 200

        return await wait_until(ready, within=within, what=f"{self.name} ready")


def _tier_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, "--log-format", "json", *args]


def room_service_argv(*args: str) -> list[str]:
    """``python -m room_service`` on free loopback ports, logging JSON; then ``args``."""
    return _tier_argv(
        "room_service", "--grpc-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", *args
    )


def edge_argv(room_service_address: str, *args: str) -> list[str]:
    """``python -m edge_gateway`` on a free loopback port, logging JSON; then ``args``."""
    return _tier_argv(
        "edge_gateway", "--http-address", "127.0.0.1:0", "--room-service-address", room_service_address, *args
    )


async def start_room_service(
    *args: str,
    env: Mapping[str, str] | None = None,
    name: str = "room_service",
    ready_timeout: float = 20.0,
    echo: bool = False,
) -> RoomServiceProcess:
    """Start ``python -m room_service`` on ephemeral loopback ports and wait until ready.
    Later flags in ``args`` override the defaults (e.g. a fixed ``--grpc-address`` for a
    restart on the same port)."""
    proc = RoomServiceProcess(
        name,
        room_service_argv(*args),
        ready_msg=ROOM_SERVICE_READY,
        env=env,
        ready_timeout=ready_timeout,
        echo=echo,
    )
    await proc.start()
    return proc


async def start_edge(
    room_service_address: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    name: str = "edge_gateway",
    ready_timeout: float = 20.0,
    echo: bool = False,
) -> EdgeProcess:
    """Start ``python -m edge_gateway`` on an ephemeral loopback port against the given
    room service and wait until ready."""
    argv = edge_argv(room_service_address, *args)
    proc = EdgeProcess(name, argv, ready_msg=EDGE_READY, env=env, ready_timeout=ready_timeout, echo=echo)
    await proc.start()
    return proc


async def terminate_all(procs: Sequence[ManagedProcess], grace: float = 5.0) -> None:
    """Terminate several processes concurrently (for fixture finalisers)."""
    await asyncio.gather(*(p.terminate(grace) for p in procs), return_exceptions=True)

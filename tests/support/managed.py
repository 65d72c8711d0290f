"""Something a test starts and must stop, and the subprocess under every process a test
starts (the tiers, Prometheus, redis-server, the JavaScript clients' node driver): spawn,
signal, reap, with its output kept by :class:`~tests.support.process_log.ProcessLog`.

Anything still running when the interpreter exits is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.process_log import STREAM_LIMIT, LineHandler, ProcessError, ProcessLog, msg_is

REPO_ROOT = Path(__file__).resolve().parents[2]

_LIVE: set[ManagedProcess] = set()


def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        pid = proc.pid
        if pid is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


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


class ManagedProcess(Managed, ProcessLog):
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
        on_stdout: LineHandler | None = None,
    ) -> None:
        ProcessLog.__init__(self, name, echo=echo, on_stdout=on_stdout)
        self.argv = list(argv)
        self.ready_msg = ready_msg
        base = dict(os.environ)
        base["PYTHONUNBUFFERED"] = "1"
        if env is not None:
            base.update(env)
        self.env = base
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.ready: dict[str, Any] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._stopped = False
        self._stdin = stdin
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
            limit=STREAM_LIMIT,
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

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        await self._notify()

    def _exited(self) -> bool:
        if self._proc is None or self._proc.returncode is None:
            return False
        return all(task.done() for task in self._readers)

    def _describe(self) -> str:
        return f"{self.name} pid={self.pid} returncode={self.returncode} argv={self.argv}"

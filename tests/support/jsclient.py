"""Drive the official JavaScript ``socket.io-client`` (v4) from asyncio tests.

One node process (``tests/e2e/js/driver.js``) holds any number of client sockets; this
module talks to it over newline-delimited JSON on stdin/stdout.

Usage::

    async with JsClientPool() as pool:
        alice = pool.client("alice")
        await alice.connect(url, transports=["websocket"])
        reply = await alice.emit_with_ack("join-meeting", {...})
        joined = await alice.wait_for_event("meeting-joined")

Binary values (``bytes``) are carried as ``{"$binary": base64}`` and converted both ways.
``node_modules`` is installed by ``make install``/``make test`` (``npm ci`` in
``tests/e2e/js``); when it is missing, :meth:`JsClientPool.start` raises
:class:`JsHarnessError` (tests fail, they do not skip).

This module is the harness's entry point and holds the pool; the socket handle is in
`tests.support.js_socket`, the driver's wire format and errors in `tests.support.js_wire`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.js_socket import JsClient
from tests.support.js_wire import AckTimeoutError, JsCommandError, JsHarnessError, decode_value
from tests.support.managed import REPO_ROOT, Managed, ManagedProcess
from tests.support.process_log import LogLine, ProcessError
from tests.support.received import ClientEvent, EventTimeoutError

JS_DIR = REPO_ROOT / "tests" / "e2e" / "js"
DRIVER = JS_DIR / "driver.js"


_STREAM_LIMIT = 64 * 1024 * 1024

__all__ = [
    "JS_DIR",
    "AckTimeoutError",
    "ClientEvent",
    "EventTimeoutError",
    "JsClient",
    "JsClientPool",
    "JsCommandError",
    "JsHarnessError",
]


@dataclass
class _Pending:
    cmd: str
    future: asyncio.Future[Any]


@dataclass
class _DriverState:
    stdout: deque[str] = field(default_factory=lambda: deque(maxlen=500))
    """Lines on stdout that are not driver records."""
    logs: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    orphan_replies: list[dict[str, Any]] = field(default_factory=list)


class JsClientPool(Managed):
    """Owns one ``node driver.js`` process and the :class:`JsClient` handles in it.

    ``start()``/``stop()`` or ``async with JsClientPool() as pool``. The driver is a
    :class:`~tests.support.managed.ManagedProcess`: ``stop()`` closes its stdin (the
    driver disconnects its sockets and exits), then SIGTERM, then SIGKILL, each with a
    bounded wait.
    """

    def __init__(
        self,
        *,
        node: str | None = None,
        js_dir: Path = JS_DIR,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        self.node = node or os.environ.get("NODE") or shutil.which("node") or "node"
        self.js_dir = js_dir
        self.env = dict(env) if env is not None else None
        self.start_timeout = start_timeout
        self.clients: dict[str, JsClient] = {}
        self.versions: dict[str, Any] = {}
        self.dead = False
        self.process: ManagedProcess | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._state = _DriverState()
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._auto = 0

    @property
    def started(self) -> bool:
        return self.process is not None

    def _check_install(self) -> None:
        driver = self.js_dir / "driver.js"
        module = self.js_dir / "node_modules" / "socket.io-client" / "package.json"
        if not driver.is_file():
            raise JsHarnessError(f"socket.io-client driver not found: {driver}")
        if not module.is_file():
            raise JsHarnessError(
                f"socket.io-client is not installed ({module} is missing). "
                f"Run `make install` (or `cd {self.js_dir} && npm ci`) before the tests."
            )
        if shutil.which(self.node) is None and not Path(self.node).is_file():
            raise JsHarnessError(f"node executable not found ({self.node!r}); install Node.js >= 18")

    async def start(self) -> None:
        if self.process is not None:
            raise JsHarnessError("pool already started")
        self._check_install()
        self._ready = asyncio.get_running_loop().create_future()
        self.process = ManagedProcess(
            "jsdriver",
            [self.node, str(self.js_dir / "driver.js")],
            cwd=self.js_dir,
            env=self.env,
            stdin=True,
            on_stdout=self._on_stdout,
        )
        await self.process.start()
        try:
            async with asyncio.timeout(self.start_timeout):
                self.versions = await asyncio.shield(self._ready)
        except BaseException as exc:
            diag = self.diagnostics()
            await self.stop()
            if isinstance(exc, TimeoutError):
                raise JsHarnessError(f"node driver not ready after {self.start_timeout}s\n{diag}") from None
            raise

    async def stop(self, grace: float = 3.0) -> int | None:
        if self.process is None:
            return None
        code = await self.process.terminate(grace)
        self._fail_pending("driver stopped")
        self.dead = True
        return code

    def client(self, name: str | None = None) -> JsClient:
        """The handle for ``name`` (created on first use; a fresh name if None)."""
        if name is None:
            self._auto += 1
            name = f"c{self._auto}"
        existing = self.clients.get(name)
        if existing is not None:
            return existing
        created = JsClient(self, name)
        self.clients[name] = created
        return created

    async def connect_many(
        self,
        url: str,
        count: int,
        *,
        prefix: str = "c",
        timeout: float = 30.0,
        **options: Any,
    ) -> list[JsClient]:
        """Create and connect ``count`` clients concurrently (same options)."""
        created = [self.client(f"{prefix}{i}") for i in range(count)]
        await asyncio.gather(*(c.connect(url, timeout=timeout, **options) for c in created))
        return created

    async def command(self, cmd: str, *, reply_timeout: float = 15.0, **fields: Any) -> Any:
        """Send a raw driver command and return its ``result`` (raises JsCommandError)."""
        if self.process is None or self.dead:
            raise JsHarnessError(f"driver not running; cannot send {cmd!r}\n{self.diagnostics()}")
        self._next_id += 1
        cmd_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = _Pending(cmd, future)
        line = json.dumps({"cmdId": cmd_id, "cmd": cmd, **fields}) + "\n"
        try:
            await self.process.write(line.encode())
            async with asyncio.timeout(reply_timeout):
                return await future
        except TimeoutError:
            raise JsHarnessError(f"driver gave no reply to {cmd!r} within {reply_timeout}s") from None
        except ProcessError as exc:
            raise JsHarnessError(f"driver pipe closed while sending {cmd!r}\n{self.diagnostics()}") from exc
        finally:
            self._pending.pop(cmd_id, None)

    async def send_raw_line(self, line: str) -> None:
        """Write an arbitrary line to the driver (to test its robustness)."""
        if self.process is None:
            raise JsHarnessError("driver not running")
        await self.process.write(line.encode() + b"\n")

    @property
    def stderr_lines(self) -> list[str]:
        lines = self.process.lines if self.process else []
        return [line.text for line in lines if line.stream == "stderr"][-500:] + list(self._state.stdout)

    @property
    def logs(self) -> list[dict[str, Any]]:
        return list(self._state.logs)

    @property
    def orphan_replies(self) -> list[dict[str, Any]]:
        """Replies without a matching command (e.g. to unparsable lines)."""
        return list(self._state.orphan_replies)

    def diagnostics(self) -> str:
        parts = [f"node driver: {self.process!r}"]
        if self.stderr_lines:
            parts.append("stderr:\n" + "\n".join(self.stderr_lines[-40:]))
        if self._state.logs:
            parts.append("driver logs:\n" + "\n".join(json.dumps(r) for r in list(self._state.logs)[-40:]))
        return "\n".join(parts)

    # -- readers ----------------------------------------------------------------------

    def _fail_pending(self, why: str) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(JsHarnessError(f"{why} before replying to {pending.cmd!r}"))
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(JsHarnessError(f"{why} before it was ready\n{self.diagnostics()}"))

    async def _on_stdout(self, line: LogLine | None) -> None:
        if line is None:  # stdout closed: the driver is gone
            self.dead = True
            self._fail_pending("node driver exited")
            for c in list(self.clients.values()):
                await c.notify()
            return
        if line.record.get("unparsed"):
            self._state.stdout.append("(stdout) " + line.text)
            return
        await self._dispatch(line.record, line.received)

    async def _dispatch(self, record: dict[str, Any], received: float) -> None:
        kind = record.get("type")
        if kind == "event":
            name = str(record.get("client"))
            target = self.client(name)
            target.receive(record, received)
            await target.notify()
        elif kind == "reply":
            cmd_id = record.get("cmdId")
            pending = self._pending.get(cmd_id) if isinstance(cmd_id, int) else None
            if pending is None:
                self._state.orphan_replies.append(record)
                return
            if pending.future.done():
                return
            if record.get("ok"):
                pending.future.set_result(decode_value(record.get("result")))
            else:
                err = record.get("error") or {}
                pending.future.set_exception(
                    JsCommandError(pending.cmd, str(err.get("code")), str(err.get("message")))
                )
        elif kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(record)
        elif kind == "fatal":
            self._state.logs.append(record)
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(JsHarnessError(f"node driver failed: {record.get('message')}"))
        else:
            self._state.logs.append(record)

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

Longer than ~300 lines on purpose: the wire encoding, the socket handle and the pool that
routes the driver's records into the handles share one protocol and private state.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.support.processes import REPO_ROOT, LogLine, Managed, ManagedProcess, ProcessError
from tests.support.timing import nothing_arrives

JS_DIR = REPO_ROOT / "tests" / "e2e" / "js"
DRIVER = JS_DIR / "driver.js"

DropMode = Literal["reset", "blackhole"]
RawLevel = Literal["engine", "transport"]

_STREAM_LIMIT = 64 * 1024 * 1024


class JsHarnessError(RuntimeError):
    """The node driver is missing, failed to start or died."""


class JsCommandError(RuntimeError):
    """The driver answered a command with ``ok: false``."""

    def __init__(self, cmd: str, code: str, message: str) -> None:
        super().__init__(f"{cmd}: {code}: {message}")
        self.cmd = cmd
        self.code = code
        self.message = message


class AckTimeoutError(TimeoutError):
    """The server did not call the acknowledgement callback in time."""


class EventTimeoutError(TimeoutError):
    """An awaited event did not arrive in time."""


def encode_value(value: Any) -> Any:
    """Python value -> JSON value for the driver (bytes -> {"$binary": b64})."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """JSON value from the driver -> Python value ({"$binary": b64} -> bytes)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$binary"), str):
            return base64.b64decode(value["$binary"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


@dataclass(frozen=True)
class JsEvent:
    """One event a client received (or a lifecycle event: connect, disconnect, ...).

    ``data`` is the first argument (``None`` without arguments), ``args`` all of them.
    Lifecycle payloads: ``connect`` {id, transport}; ``disconnect`` {reason, description};
    ``connect_error`` {message, data, type}; ``$open`` {transport} (engine.io connection
    opened, before ``connect``); ``$upgrade`` {transport} (e.g. polling -> websocket,
    which may happen before or after ``connect``).
    ``ts`` is the node wall clock in ms, ``hr`` node's monotonic ms, ``received`` this
    process's :func:`time.monotonic` when the line was read, ``index`` the position in
    the client's event list.
    """

    client: str
    event: str
    data: Any
    args: list[Any]
    ts: float
    hr: float
    received: float
    index: int


EventPredicate = Callable[[JsEvent], bool]
DataPredicate = Callable[[Any], bool]


def _describe(events: Sequence[JsEvent], limit: int = 30) -> str:
    shown = events[-limit:]
    lines = [f"  #{e.index} {e.event} {json.dumps(e.args, default=repr)[:300]}" for e in shown]
    if len(events) > limit:
        lines.insert(0, f"  ... {len(events) - limit} earlier events")
    return "\n".join(lines) if lines else "  (no events)"


class JsClient:
    """A handle on one socket.io-client socket living in the pool's node process."""

    def __init__(self, pool: JsClientPool, name: str) -> None:
        self.pool = pool
        self.name = name
        self.events: list[JsEvent] = []
        self.sid: str | None = None
        self.transport: str | None = None
        self.connected = False
        self._cond = asyncio.Condition()

    def __repr__(self) -> str:
        return f"JsClient({self.name!r}, connected={self.connected}, sid={self.sid!r})"

    # -- commands ---------------------------------------------------------------------

    async def connect(
        self,
        url: str,
        *,
        wait: bool = True,
        timeout: float = 10.0,
        **options: Any,
    ) -> dict[str, Any]:
        """``io(url, options)``; ``options`` are socket.io-client options (camelCase,
        e.g. ``transports=["websocket"]``, ``auth={...}``, ``reconnection=True``,
        ``upgrade=False``). Defaults: ``reconnection: false``, ``forceNew: true``.
        With ``wait`` (default) returns once connected and raises
        :class:`JsCommandError` (code CONNECT_ERROR/CONNECT_TIMEOUT) otherwise."""
        result = await self.pool.command(
            "connect",
            client=self.name,
            url=url,
            options=encode_value(options),
            wait=wait,
            timeoutMs=int(timeout * 1000),
            reply_timeout=timeout + 5.0,
        )
        status: dict[str, Any] = result
        return status

    async def emit(self, event: str, *args: Any) -> None:
        """``socket.emit(event, *args)`` without an acknowledgement callback."""
        await self.pool.command("emit", client=self.name, event=event, args=encode_value(list(args)))

    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        """``socket.timeout(ms).emitWithAck(event, *args)``: returns the first argument
        the server passed to the ack (see :meth:`emit_with_ack_args` for all of them);
        raises :class:`AckTimeoutError` when no ack comes within ``timeout``."""
        values = await self.emit_with_ack_args(event, *args, timeout=timeout)
        return values[0] if values else None

    async def emit_with_ack_args(self, event: str, *args: Any, timeout: float = 5.0) -> list[Any]:
        try:
            result = await self.pool.command(
                "emit",
                client=self.name,
                event=event,
                args=encode_value(list(args)),
                ack=True,
                timeoutMs=int(timeout * 1000),
                reply_timeout=timeout + 5.0,
            )
        except JsCommandError as exc:
            if exc.code == "ACK_TIMEOUT":
                raise AckTimeoutError(f"{self.name}: no ack for {event!r} within {timeout}s") from exc
            raise
        values: list[Any] = decode_value(result["args"])
        return values

    async def disconnect(self) -> None:
        """Clean ``socket.disconnect()`` (the server sees "client namespace disconnect")."""
        await self.pool.command("disconnect", client=self.name)

    async def drop(self, mode: DropMode = "reset") -> None:
        """Vanish without a clean disconnect (no DISCONNECT/CLOSE packet, no reconnect).

        ``reset``: websocket -> the TCP connection is reset, the server notices at once;
        polling -> the long-poll is aborted and the client falls silent, the server
        notices at its ping timeout. ``blackhole``: the connection stays open but nothing
        is sent or processed any more (vanished network); the server notices at its ping
        timeout (pingInterval + pingTimeout). See driver.js for the limitations."""
        await self.pool.command("close", client=self.name, mode=mode)

    async def raw_send(self, data: str | bytes, *, level: RawLevel = "engine") -> None:
        """Send raw bytes/text. ``engine``: one engine.io message whose payload is
        ``data`` (i.e. a Socket.IO packet like ``'2["ev",{}]'`` or garbage).
        ``transport``: the exact WebSocket frame (websocket transport only)."""
        if isinstance(data, bytes):
            await self.pool.command(
                "rawSend",
                client=self.name,
                data=base64.b64encode(data).decode("ascii"),
                binary=True,
                level=level,
            )
        else:
            await self.pool.command("rawSend", client=self.name, data=data, level=level)

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.pool.command("status", client=self.name)
        return result

    async def forget(self) -> None:
        """Disconnect (if needed) and remove the socket from the driver entirely."""
        await self.pool.command("forget", client=self.name)

    # -- events -----------------------------------------------------------------------

    def mark(self) -> int:
        """Current end of the event list; pass as ``start=`` to only see later events."""
        return len(self.events)

    def events_named(self, name: str, *, start: int = 0) -> list[JsEvent]:
        return [e for e in self.events[start:] if e.event == name]

    def payloads(self, name: str, *, start: int = 0) -> list[Any]:
        """The ``data`` of every event called ``name``."""
        return [e.data for e in self.events_named(name, start=start)]

    def _matches(self, name: str | None, predicate: DataPredicate | None, start: int) -> list[JsEvent]:
        return [
            e
            for e in self.events[start:]
            if (name is None or e.event == name) and (predicate is None or predicate(e.data))
        ]

    async def wait_for_event(
        self,
        name: str | None,
        predicate: DataPredicate | None = None,
        *,
        timeout: float = 5.0,
        start: int = 0,
    ) -> JsEvent:
        """First event called ``name`` (any event if None) at index >= ``start`` whose
        ``data`` satisfies ``predicate``; already received events count."""
        events = await self.wait_for_events(name, 1, predicate, timeout=timeout, start=start)
        return events[0]

    async def wait_for_events(
        self,
        name: str | None,
        count: int,
        predicate: DataPredicate | None = None,
        *,
        timeout: float = 5.0,
        start: int = 0,
    ) -> list[JsEvent]:
        """Wait until at least ``count`` matching events exist; returns all matches."""
        found: list[JsEvent] = []

        def ready() -> bool:
            nonlocal found
            found = self._matches(name, predicate, start)
            return len(found) >= count or self.pool.dead

        try:
            async with asyncio.timeout(timeout):
                async with self._cond:
                    await self._cond.wait_for(ready)
        except TimeoutError:
            raise EventTimeoutError(
                f"{self.name}: waited {timeout}s for {count} x {name!r} (from #{start}), "
                f"got {len(found)}; events:\n{_describe(self.events)}"
            ) from None
        if len(found) < count:
            raise JsHarnessError(
                f"driver died while {self.name} waited for {name!r}\n{self.pool.diagnostics()}"
            )
        return found

    async def expect_no_event(
        self,
        name: str | None,
        predicate: DataPredicate | None = None,
        *,
        within: float = 0.5,
        start: int = 0,
    ) -> None:
        """Assert that no matching event arrives (or has arrived) during ``within`` s."""
        try:
            await nothing_arrives(
                lambda: self.wait_for_event(name, predicate, timeout=within + 1, start=start), within=within
            )
        except AssertionError as exc:
            raise AssertionError(f"{self.name}: {exc}\n{_describe(self.events)}") from None

    def clear_events(self) -> None:
        self.events.clear()

    def _record(self, record: Mapping[str, Any], received: float) -> None:
        args = decode_value(record.get("args") or [])
        event = JsEvent(
            client=self.name,
            event=str(record.get("event")),
            data=args[0] if args else None,
            args=args,
            ts=float(record.get("ts") or 0.0),
            hr=float(record.get("hr") or 0.0),
            received=received,
            index=len(self.events),
        )
        self.events.append(event)
        if event.event == "connect" and isinstance(event.data, dict):
            self.connected = True
            self.sid = event.data.get("id")
            self.transport = event.data.get("transport")
        elif event.event in ("$open", "$upgrade") and isinstance(event.data, dict):
            self.transport = event.data.get("transport")
        elif event.event == "disconnect":
            self.connected = False

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()


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
    :class:`~tests.support.processes.ManagedProcess`: ``stop()`` closes its stdin (the
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

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

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
        parts = [f"node driver pid={self.pid} returncode={self.returncode}"]
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
                await c._notify()
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
            target._record(record, received)
            await target._notify()
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

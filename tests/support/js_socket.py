"""One socket.io-client socket living in the node driver, seen from asyncio: the commands
it accepts (connect, emit, ack, drop, raw packets) and the events it has received, with
waits on them. The pool (`tests.support.jsclient.JsClientPool`) runs the driver and
routes its records here."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any, Protocol

from tests.support.js_wire import (
    AckTimeoutError,
    DataPredicate,
    DropMode,
    EventTimeoutError,
    JsCommandError,
    JsEvent,
    JsHarnessError,
    RawLevel,
    decode_value,
    describe,
    encode_value,
)
from tests.support.timing import condition_met, nothing_arrives


class Driver(Protocol):
    """What a socket handle needs of the pool whose driver holds its socket."""

    dead: bool
    """The driver process is gone."""

    async def command(self, cmd: str, *, reply_timeout: float = 15.0, **fields: Any) -> Any:
        """Sends a driver command and returns its result."""

    def diagnostics(self) -> str:
        """What helps find out why the driver failed."""


class JsClient:
    """A handle on one socket.io-client socket living in the pool's node process."""

    def __init__(self, pool: Driver, name: str) -> None:
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

        if not await condition_met(self._cond, ready, within=timeout):
            raise EventTimeoutError(
                f"{self.name}: waited {timeout}s for {count} x {name!r} (from #{start}), "
                f"got {len(found)}; events:\n{describe(self.events)}"
            )
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
            raise AssertionError(f"{self.name}: {exc}\n{describe(self.events)}") from None

    def clear_events(self) -> None:
        self.events.clear()

    # -- called by the pool ------------------------------------------------------------

    def receive(self, record: Mapping[str, Any], received: float) -> None:
        """Records an event record of the driver, read at `received` (monotonic)."""
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

    async def notify(self) -> None:
        """Wakes the waits, after a record or when the driver died."""
        async with self._cond:
            self._cond.notify_all()

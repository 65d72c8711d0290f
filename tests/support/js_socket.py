"""One socket.io-client socket living in the node driver, seen from asyncio: the commands
it accepts (connect, emit, ack, drop, raw packets); the events it has received, and the
waits on them, are kept as every test client keeps them (`tests.support.received`). The
pool (`tests.support.jsclient.JsClientPool`) runs the driver and routes its records here."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol

from tests.support.js_wire import (
    AckTimeoutError,
    DropMode,
    JsCommandError,
    JsHarnessError,
    RawLevel,
    decode_value,
    encode_value,
)
from tests.support.received import RecordingClient


class Driver(Protocol):
    """What a socket handle needs of the pool whose driver holds its socket."""

    dead: bool
    """The driver process is gone."""

    async def command(self, cmd: str, *, reply_timeout: float = 15.0, **fields: Any) -> Any:
        """Sends a driver command and returns its result."""

    def diagnostics(self) -> str:
        """What helps find out why the driver failed."""


class JsClient(RecordingClient):
    """A handle on one socket.io-client socket living in the pool's node process."""

    def __init__(self, pool: Driver, name: str) -> None:
        super().__init__(name)
        self.pool = pool
        self.sid: str | None = None
        self.transport: str | None = None
        self._connected = False

    def __repr__(self) -> str:
        return f"JsClient({self.name!r}, connected={self.connected}, sid={self.sid!r})"

    @property
    def connected(self) -> bool:
        """Whether the driver last reported the socket connected."""
        return self._connected

    def _lost(self, waiting_for: str) -> Exception | None:
        if not self.pool.dead:
            return None
        return JsHarnessError(
            f"driver died while {self.name} waited for {waiting_for}\n{self.pool.diagnostics()}"
        )

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

    # -- called by the pool ------------------------------------------------------------

    def receive(self, record: Mapping[str, Any], received: float) -> None:
        """Records an event record of the driver, read at `received` (monotonic)."""
        event = self._add(
            str(record.get("event")),
            decode_value(record.get("args") or []),
            ts=float(record.get("ts") or 0.0),
            hr=float(record.get("hr") or 0.0),
            received=received,
        )
        if event.event == "connect" and isinstance(event.data, dict):
            self._connected = True
            self.sid = event.data.get("id")
            self.transport = event.data.get("transport")
        elif event.event in ("$open", "$upgrade") and isinstance(event.data, dict):
            self.transport = event.data.get("transport")
        elif event.event == "disconnect":
            self._connected = False

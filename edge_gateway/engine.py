"""The edge's engine.io server: bounded outgoing queues and prompt dead-peer detection.

Bounded queues: a socket that stops reading is dropped, not buffered forever.
python-engineio gives every socket an unbounded queue of packets waiting to be written.
A client that stops reading (a frozen tab, a stalled network) would make it grow with
every room broadcast. Here each queue refuses to grow past a limit: the packet that
would cross it is discarded and the socket is closed (its session then leaves with
reason `disconnected`, like any other disconnect). Putting never waits, so one stuck
socket never slows a broadcast to the others.

Dead peers: python-engineio checks each socket's ping deadline once per `ping_timeout`
(spread over all sockets), so a vanished client could linger for interval + 2 x timeout.
Here every socket is checked every half second: it is dropped within about
interval + timeout + 0.5 s of its last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import engineio
import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as aiohttp_driver

from edge_gateway.connect import RecoveringConnect

log = logging.getLogger("edge_gateway.engine")

_SWEEP_SECONDS = 0.5

OverflowHandler = Callable[["BoundedQueue"], None]


class BoundedQueue(asyncio.Queue[Any]):
    """An engine.io socket queue that calls `on_overflow` once instead of growing past `limit`."""

    def __init__(self, limit: int, on_overflow: OverflowHandler) -> None:
        super().__init__()  # unbounded underneath: the limit is enforced without waiting
        self._limit = limit
        self._on_overflow = on_overflow
        self.overflowed = False

    async def put(self, item: Any) -> None:
        """Never waits (see put_nowait)."""
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """Queues the packet, or drops it and reports the overflow once.

        `None` is engine.io's own wake-up sentinel for the writer and always gets in.
        """
        if item is not None and (self.overflowed or self.qsize() >= self._limit):
            if not self.overflowed:
                self.overflowed = True
                self._on_overflow(self)
            return
        super().put_nowait(item)


class _EdgeWebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp websocket, remembering its request so that an overflowing
    socket's TCP connection can be aborted (its writer may be blocked on a peer that
    never reads), and without per-message deflate: room events are small, and
    compressing every broadcast once per socket costs more CPU than the bytes saved."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        request = environ["aiohttp.request"]
        owner = getattr(self.handler, "__self__", None)
        if owner is not None:
            owner.edge_request = request
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


class BoundedEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io server whose sockets have bounded outgoing queues."""

    _async: dict[str, Any]  # the async driver table, set by the base constructor

    def __init__(
        self, *args: Any, max_queued_packets: int, on_drop: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_queued = max_queued_packets
        self._on_drop = on_drop
        self._closing: set[asyncio.Future[Any]] = set()
        drivers = dict(self._async)
        drivers["websocket"] = _EdgeWebSocket
        self._async = drivers

    async def _service_task(self) -> None:
        """Replaces engine.io's sweep: every socket's ping deadline checked twice a second."""
        self.service_task_event = self.create_event()
        while not self.service_task_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.service_task_event.wait(), timeout=_SWEEP_SECONDS)
                break
            now = time.time()
            for sock in list(self.sockets.values()):
                if sock.closed:
                    self.sockets.pop(sock.sid, None)
                elif not sock.closing and sock.last_ping and now - sock.last_ping > self.ping_timeout:
                    # Closing runs the disconnect handler (a room service call): one task
                    # each, so that many dead sockets do not queue behind one another.
                    self._spawn(sock.check_ping_timeout())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def create_queue(self, *args: Any, **kwargs: Any) -> BoundedQueue:
        """Every socket's queue (engine.io creates no other queues on the server)."""
        return BoundedQueue(self._max_queued, self._overflowed)

    def _overflowed(self, queue: BoundedQueue) -> None:
        sock = next((s for s in list(self.sockets.values()) if s.queue is queue), None)
        if sock is None:
            return
        log.warning(
            "socket is not reading; dropping it",
            extra={"eio_sid": sock.sid, "queued": queue.qsize(), "limit": self._max_queued},
        )
        self._on_drop()
        # Closed outside the emit that overflowed: the disconnect handler calls the
        # room service, and the broadcast to the other sockets must not wait for it.
        self._spawn(self._drop(sock))

    async def drop_socket(self, sid: str) -> None:
        """Closes one socket at once, whatever its peer is doing (no-op if it is gone)."""
        sock = self.sockets.get(sid)
        if sock is not None:
            await self._drop(sock)

    async def _drop(self, sock: Any) -> None:
        request = getattr(sock, "edge_request", None)
        with contextlib.suppress(Exception):
            await sock.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT)
        transport = getattr(request, "transport", None)
        if transport is not None:
            transport.abort()  # frees the writer blocked on the peer's full window


class EdgeSocketServer(RecoveringConnect, socketio.AsyncServer):  # type: ignore[misc]
    """The Socket.IO server of the edge, on a BoundedEngineServer; its CONNECT answer
    carries a recovery pid (edge_gateway.connect)."""

    def __init__(
        self, *args: Any, max_queued_packets: int, on_drop: Callable[[], None], **kwargs: Any
    ) -> None:
        # Read by _engineio_server_class, which the base constructor calls.
        self._max_queued = max_queued_packets
        self._on_drop = on_drop
        super().__init__(*args, **kwargs)

    def _engineio_server_class(self) -> Any:
        return functools.partial(
            BoundedEngineServer, max_queued_packets=self._max_queued, on_drop=self._on_drop
        )

"""The edge's Engine.IO/Socket.IO write path: the extensions of python-engineio and
python-socketio internals live in this module and, for the WebSocket connection after
its upgrade (reading frames, closing), in edge_gateway/engine_ws.py. Over 300 lines
because the extensions of upstream internals are kept together, split only
between writing and pinging (here) and reading a connection (engine_ws).

Few writes per recipient. A room event is serialised once (orjson), made an Engine.IO
message once and framed once; the same bytes are appended to each recipient's outbox
(the room's recipients kept from one broadcast to the next until its membership
changes), synchronously, in the emitting coroutine: no task, queue hop or re-encoding
per recipient. Direct emits, acknowledgements, pings and broadcasts all take that same
path, so a socket receives its packets exactly in the order they were emitted. The
frames a socket gathered since its last write go to its transport in one write, from one
callback for all sockets (`Coalescer`): on an idle edge at the start of the next loop
iteration, under load at most once per `write_window` (a stream of room events costs one
syscall per few events per socket, not one per event). A reply its client waits for is
written at once (`EdgeSocketServer.flush`).
Long-polling sockets (and a WebSocket socket before its transport is attached) keep
engine.io's queue, drained by upstream's poll.

Backpressure in bytes. A socket's outgoing bytes (the transport's write buffer, or its
queue while polling) may not pass `max_buffered_bytes`; the write that crosses it drops the
socket (its session then leaves with reason `disconnected`) and aborts its connection.
Nothing ever waits on a slow socket, so the others keep their latency.

Pings. No task per ping: a socket that answered (or just connected) goes on one FIFO of
due times (the interval is constant, so it stays sorted), and one loop timer, armed for
the head only, writes the pre-framed PING to every socket then due. An idle socket costs
no task, coroutine or timer of its own; a PONG is taken as its frame is read
(edge_gateway.engine_ws: no coroutine wakes for it) and costs a deque append. Due times
are rounded up to a grid (`ping_batch_seconds`): at 1,000 idle sockets the edge's CPU is
mostly the kernel's, a send and a receive per ping; pings sent together come back
together and are read many per wake-up, and the timer fires a few times a second at
most. A batch is written in chunks, so a large one never holds the loop for long.

Dead peers. Each Engine.IO PING sent puts the socket on a deadline list (deadlines only
grow, so it is a FIFO); twice a second the sweep looks at the expired entries only and
drops a socket whose answer is overdue, so one is gone within interval + batch grid +
timeout + 0.5 s of its last answer. The cost per tick is the number of expired pings,
not of sockets.

Upstream members relied on (python-engineio 4.15.1, python-socketio 5.18.1, pinned in
pyproject.toml; tests/integration/test_write_path.py covers the behaviour built on them):
- engineio.AsyncServer: `create_queue`, `_async["websocket"]` (the transport driver),
  `_service_task` and `service_task_event`, `_trigger_event` ("connect"/"disconnect"),
  `sockets`, `ping_timeout`, `max_http_buffer_size`, `reason`, `logger`.
- engineio AsyncSocket: `queue`, `receive`, `close`, `check_ping_timeout`, `last_ping`,
  `schedule_ping` (replaced), `connected`, `upgraded`, `upgrading`, `closing`, `closed`,
  `sid`; the server creates plain AsyncSockets, made EdgeSockets in the connect hook.
- engineio `packet.Packet` (`packet_type`, `binary`, `data`, `encode`).
- socketio.AsyncServer: `_engineio_server_class`, the `client_manager`, `serializer` and
  `json` options, `packet_class`; socketio.AsyncManager: `emit`, `get_participants`,
  `rooms`, `server`; socketio `packet.Packet.data_is_binary` (a classmethod).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import engineio
import orjson
import socketio
from engineio import async_socket as eio_socket
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from edge_gateway.connect import RecoveringConnect
from edge_gateway.engine_ws import EdgeWebSocket, EngineConnection
from edge_gateway.frames import OrjsonCodec, engineio_frame, event_frame

log = logging.getLogger("edge_gateway.engine")

_SWEEP_SECONDS = 0.5
# Pings due this close to the timer firing go out with it (one wake-up, not several).
_PING_EARLY_SECONDS = 0.05
# Pings written per loop callback: the rest of a batch follows in the next iteration, so a
# batch of thousands never delays a join's reply by more than one chunk's writes.
_PING_CHUNK = 256
_PING = eio_packet.Packet(eio_packet.PING)
_PING_FRAME = engineio_frame(_PING)
# Frames gathered for one socket in one loop iteration are written early past this many
# bytes (or a quarter of the byte bound): a burst that the kernel takes at once is never
# counted against the bound as if the peer had stopped reading.
_FLUSH_BYTES = 16 * 1024


def _size(pkt: Any) -> int:
    """Bytes a queued packet will take (binary data is counted raw: the poll encodes it)."""
    return len(pkt.data) if pkt.binary else len(pkt.encode())


class Coalescer:
    """The outboxes written to since the last flush, flushed together by one callback: each
    socket's frames gathered meanwhile leave in one write.

    Adaptive. When nothing was flushed for `window` seconds (an idle edge), the flush runs
    at the start of the next loop iteration, as soon as it can. Under load (the previous
    flush was less than `window` ago) it waits until `window` after the previous one, so
    that a socket receiving a stream of room events gets several per write instead of one
    syscall each. A reply its client waits for is flushed at once regardless
    (EdgeSocketServer.flush), and the byte bound and the early flush of a big burst work
    on what is held (Outbox._write). A `window` of 0 flushes every loop iteration."""

    def __init__(self, window: float = 0.0) -> None:
        self._dirty: list[Outbox] = []
        self._handle: asyncio.Handle | None = None
        self._window = window
        self._flushed_at = -math.inf  # loop time of the last flush

    def add(self, outbox: Outbox) -> None:
        """An outbox got its first frame since it was last flushed."""
        self._dirty.append(outbox)
        if self._handle is None:
            loop = asyncio.get_running_loop()
            due = self._flushed_at + self._window
            if due > loop.time():
                self._handle = loop.call_at(due, self.flush)
            else:
                self._handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Writes every dirty outbox's frames (one failing socket never holds back the rest)."""
        self._handle = None
        self._flushed_at = asyncio.get_running_loop().time()
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            try:
                outbox.flush()
            except Exception:
                log.exception("write failed", extra={"eio_sid": getattr(outbox.sock, "sid", None)})


class Outbox:
    """One socket's outgoing path: straight to its WebSocket transport once attached,
    before that (handshake, long-polling) an asyncio.Queue, counted in bytes, that
    upstream's poll drains. It is the socket's `queue` (engine.io calls `put`,
    `put_nowait`, `get`, `get_nowait`, `task_done` and `join`); slotted, and without the
    queue once attached: an idle WebSocket socket's outbox is about 200 bytes."""

    __slots__ = (
        "_coalescer",
        "_conn",
        "_ended",
        "_flush_at",
        "_limit",
        "_on_overflow",
        "_on_ping",
        "_pending",
        "_pending_bytes",
        "_queue",
        "_transport",
        "overflowed",
        "queued_bytes",
        "sock",
    )

    def __init__(
        self,
        limit_bytes: int,
        on_overflow: Callable[[Outbox], None],
        on_ping: Callable[[Outbox], None],
        coalescer: Coalescer,
    ) -> None:
        # Unbounded underneath: the byte limit is enforced without waiting.
        self._queue: asyncio.Queue[Any] | None = asyncio.Queue()
        self._limit = limit_bytes
        self._on_overflow = on_overflow
        self._on_ping = on_ping
        self.sock: Any = None  # the engine.io socket, bound by the server's connect hook
        self.queued_bytes = 0
        self.overflowed = False
        self._transport: asyncio.WriteTransport | None = None
        self._conn: EngineConnection | None = None
        self._ended = False
        self._coalescer = coalescer
        self._flush_at = min(_FLUSH_BYTES, limit_bytes // 4)
        # Frames written during this loop iteration, not yet given to the transport.
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0

    @property
    def transport(self) -> asyncio.WriteTransport | None:
        """The WebSocket connection's transport once attached (None while polling)."""
        return self._transport

    @property
    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the peer (or queued, while polling)."""
        if self._transport is None:
            return self.queued_bytes
        return self._transport.get_write_buffer_size() + self._pending_bytes

    async def put(self, item: Any) -> None:
        """Never waits (see put_nowait)."""
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """Every packet engine.io sends to this socket, and its writer's wake-up sentinel."""
        if item is None:  # the sentinel: flush and hang up
            if self._conn is not None:
                self._hang_up()
            elif not self._ended and self._queue is not None:
                self._queue.put_nowait(None)
            return
        if item.packet_type == eio_packet.PING:
            self._on_ping(self)
        if self._transport is not None:
            self._write(_PING_FRAME if item is _PING else engineio_frame(item))
            if item.packet_type == eio_packet.CLOSE:
                self._hang_up()
        elif not self._ended:
            self._enqueue(item)

    def send_frame(self, frame: bytes, packet: Callable[[], Any]) -> None:
        """An emit: its ready frame on a WebSocket, else its packet (made by `packet`, once
        for all the emit's recipients that poll) through the queue."""
        if self._transport is not None:
            self._write(frame)
        elif not self._ended:
            self._enqueue(packet())

    def get_nowait(self) -> Any:
        """Takes a queued packet (upstream's poll drains through here)."""
        if self._queue is None:
            raise asyncio.QueueEmpty
        item = self._queue.get_nowait()
        if item is not None:
            self.queued_bytes -= _size(item)
        return item

    async def get(self) -> Any:
        """Waits for a queued packet (a poll). Attached, nothing is ever queued again: it
        waits until upstream's timeout, as a poll on an upgraded socket did before."""
        if self._queue is None:
            await asyncio.get_running_loop().create_future()
        assert self._queue is not None
        item = await self._queue.get()
        if item is not None:
            self.queued_bytes -= _size(item)
        return item

    def task_done(self) -> None:
        """As asyncio.Queue's (nothing to count once attached)."""
        if self._queue is not None:
            self._queue.task_done()

    async def join(self) -> None:
        """Until every queued packet was taken (at once once attached)."""
        if self._queue is not None:
            await self._queue.join()

    def empty(self) -> bool:
        """True when nothing is queued."""
        return self._queue is None or self._queue.empty()

    def attach(self, conn: EngineConnection, transport: asyncio.WriteTransport) -> None:
        """From now on every packet is written to this WebSocket; first what was queued, in order."""
        hang_up = False
        while not self.empty():
            item = self.get_nowait()
            self.task_done()
            if item is None:
                hang_up = True
            elif not self.overflowed and not transport.is_closing():
                transport.write(engineio_frame(item))
        self._transport, self._conn = transport, conn
        self._queue = None  # nothing is queued from now on (an asyncio.Queue is about 1 KB)
        if hang_up:
            self._hang_up()

    def detach(self) -> None:
        """The WebSocket ended: nothing more is written or queued."""
        self._transport = None
        self._ended = True
        self._drop_pending()

    def abort(self) -> None:
        """Cuts the connection at once (a writer blocked on the peer's window is freed)."""
        self._drop_pending()
        if self._transport is not None:
            self._transport.abort()

    def flush(self) -> None:
        """Gives the frames gathered this loop iteration to the transport, in one write."""
        frames = self._pending
        if frames is None:
            return
        self._drop_pending()
        transport = self._transport
        if transport is None or self.overflowed or transport.is_closing():
            return  # see _write: a dead connection is left to its reading loop
        if len(frames) == 1:
            transport.write(frames[0])
        else:
            transport.writelines(frames)  # one writev for the lot

    def _drop_pending(self) -> None:
        self._pending = None
        self._pending_bytes = 0

    def _write(self, frame: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if self.overflowed:
            return
        if transport.is_closing():
            # The connection is gone and the reading loop has not noticed yet. uvloop
            # raises on such a write, and one dead recipient must never break an emit
            # (a relay losing a broadcast for every socket of the room).
            self.detach()
            return
        pending = self._pending
        if pending is None:
            self._pending = [frame]
            self._coalescer.add(self)
        else:
            pending.append(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes + transport.get_write_buffer_size() > self._limit:
            self._overflow()
        elif self._pending_bytes >= self._flush_at:
            self.flush()  # a long burst: to the kernel now, not held in memory until the tick ends

    def _enqueue(self, item: Any) -> None:
        if self.overflowed:
            return
        size = _size(item)
        if self.queued_bytes + size > self._limit:
            self._overflow()
            return
        self.queued_bytes += size
        assert self._queue is not None  # _ended is set when the queue goes
        self._queue.put_nowait(item)

    def _overflow(self) -> None:
        self.overflowed = True
        self._on_overflow(self)

    def _hang_up(self) -> None:
        # The closing handshake; what was written before goes out first. A peer that never
        # answers has its connection cut (edge_gateway.engine_ws).
        if self._conn is not None:
            self._conn.close()


class EdgeSocket(eio_socket.AsyncSocket):  # type: ignore[misc]
    """engine.io's socket whose next ping is a place on the server's ping FIFO, not a task."""

    last_ping: float | None  # set by the base class; None while a PING awaits its PONG
    server: Any

    def schedule_ping(self) -> None:
        """After connecting and after each PONG: the next PING goes out one interval later."""
        if self.last_ping:  # as upstream: only once the previous ping was answered
            self.last_ping = None
            self.server.ping_later(self)


class EdgeEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """engine.io server with Outbox sockets and a deadline-driven dead-peer sweep."""

    _async: dict[str, Any]  # the async driver table, set by the base constructor

    def __init__(
        self,
        *args: Any,
        max_buffered_bytes: int,
        on_drop: Callable[[], None],
        ping_batch_seconds: float = 0.0,
        write_window: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_buffered_bytes = max_buffered_bytes
        self.ping_batch_seconds = ping_batch_seconds
        self._on_drop = on_drop
        self._background: set[asyncio.Future[Any]] = set()
        self._deadlines: deque[tuple[float, Outbox]] = deque()
        self._pings: deque[tuple[float, Any]] = deque()  # (loop time due, socket), in due order
        self._ping_timer: asyncio.TimerHandle | None = None
        self.coalescer = Coalescer(write_window)
        drivers = dict(self._async)
        drivers["websocket"] = EdgeWebSocket
        self._async = drivers

    def create_queue(self, *args: Any, **kwargs: Any) -> Outbox:
        """Every socket's queue (engine.io creates no other queues on the server)."""
        return Outbox(self.max_buffered_bytes, self._overflowed, self._pinged, self.coalescer)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            sock = self.sockets.get(args[0])
            if sock is not None:
                sock.queue.sock = sock
                # Same layout, one method replaced: upstream builds the socket itself.
                sock.__class__ = EdgeSocket
        elif event == "disconnect":
            sock = self.sockets.get(args[0])
            if sock is not None:  # closing now: reaped from `sockets` by the sweep after
                self._deadlines.append((time.monotonic() + self.ping_timeout, sock.queue))
        return await super()._trigger_event(event, *args, **kwargs)

    def _pinged(self, outbox: Outbox) -> None:
        # Deadlines are appended in time order (constant timeout), so the deque stays sorted.
        # The margin makes the wall-clock check below true when the entry comes due.
        self._deadlines.append((time.monotonic() + self.ping_timeout + 0.05, outbox))

    def ping_later(self, sock: Any) -> None:
        """Puts a socket's next PING on the FIFO: one interval from now, rounded up to
        the batch grid (so that sockets answering at different times share a batch)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.ping_interval
        grid = self.ping_batch_seconds
        if grid > 0:
            due = math.ceil(due / grid) * grid  # monotonic in `due`: the FIFO stays sorted
        self._pings.append((due, sock))
        if self._ping_timer is None:
            self._ping_timer = loop.call_at(self._pings[0][0], self._send_due_pings)

    def _send_due_pings(self) -> None:
        """Writes the PING to the sockets now due, a chunk at a time; re-arms for the rest
        (next loop iteration) or for the next one due."""
        self._ping_timer = None
        loop = asyncio.get_running_loop()
        until = loop.time() + _PING_EARLY_SECONDS
        pings = self._pings
        now = time.time()
        for _ in range(_PING_CHUNK):
            if not pings or pings[0][0] > until:
                break
            sock = pings.popleft()[1]
            if not sock.closing and not sock.closed:
                sock.last_ping = now
                try:
                    sock.queue.put_nowait(_PING)
                except Exception:  # one broken socket must not stop the others' pings
                    log.exception("ping failed", extra={"eio_sid": sock.sid})
        if pings:  # the rest of this batch after whatever else is ready, or the next one
            self._ping_timer = loop.call_at(max(pings[0][0], loop.time()), self._send_due_pings)

    async def _service_task(self) -> None:
        """Replaces engine.io's sweep (which visits every socket once per ping_timeout)."""
        self.service_task_event = self.create_event()
        while not self.service_task_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.service_task_event.wait(), timeout=_SWEEP_SECONDS)
                break
            try:
                self.sweep(time.monotonic())
            except Exception:  # as upstream's loop: one failure must not end dead-peer detection
                log.exception("dead-peer sweep failed; sweeping on")
        if self._ping_timer is not None:  # the server is shutting down
            self._ping_timer.cancel()
            self._ping_timer = None

    def sweep(self, now: float) -> None:
        """Drops the sockets whose PING answer is overdue; forgets closed ones."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, outbox = self._deadlines.popleft()
            sock = outbox.sock
            if sock is None:
                continue
            if sock.closed:
                if self.sockets.get(sock.sid) is sock:
                    del self.sockets[sock.sid]
            elif not sock.closing and sock.last_ping and time.time() - sock.last_ping > self.ping_timeout:
                # Closing runs the disconnect handler (a room service call): one task each,
                # so that many dead sockets do not queue behind one another.
                self._spawn(sock.check_ping_timeout())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _overflowed(self, outbox: Outbox) -> None:
        sock = outbox.sock
        log.warning(
            "socket is not reading; dropping it",
            extra={
                "eio_sid": getattr(sock, "sid", None),
                "buffered_bytes": outbox.buffered_bytes,
                "limit_bytes": self.max_buffered_bytes,
            },
        )
        self._on_drop()
        outbox.abort()  # frees its buffer now; the peer sees the connection cut
        if sock is not None:
            # Closed outside the emit that overflowed: the disconnect handler calls the
            # room service, and the broadcast to the other sockets must not wait for it.
            self._spawn(sock.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT))

    async def drop_socket(self, sid: str) -> None:
        """Closes one socket at once, whatever its peer is doing (no-op if it is gone)."""
        sock = self.sockets.get(sid)
        if sock is not None:
            sock.queue.abort()  # a writer blocked on the peer's full window is freed
            with contextlib.suppress(Exception):
                await sock.close(wait=False, abort=True, reason=self.reason.SERVER_DISCONNECT)


def _json_array(items: list[Any]) -> bytes | None:
    """`items` as JSON, serialised once in C; None for binary data or what only the codec's
    standard-library fallback writes (those take upstream's packet encoding). The frame is
    then built straight from these bytes: the same frame as upstream's packet and the codec
    give, without their check for binary data (one more serialisation) and text copies."""
    try:
        return orjson.dumps(items)
    except TypeError:
        return None


def _same(pkt: Any) -> Any:
    return pkt


def _message(body: bytes) -> Any:
    """The Engine.IO packet of a default-namespace event whose JSON array is `body`."""
    return eio_packet.Packet(eio_packet.MESSAGE, "2" + body.decode())


class EdgePacket(sio_packet.Packet):  # type: ignore[misc]
    """A Socket.IO packet whose check for binary data is one attempt at serialising it in C
    (orjson refuses bytes) rather than upstream's Python walk over every value: a
    `meeting-joined` lists every participant, and is checked for its event and its ack."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """True when `data` holds bytes anywhere (upstream's walk decides when orjson refuses)."""
        try:
            orjson.dumps(data)
        except TypeError:
            return bool(sio_packet.Packet.data_is_binary(data))
        return False


class EdgeManager(socketio.AsyncManager):  # type: ignore[misc]
    """Socket.IO emits without a task per recipient: encoded and framed once, written in place.

    A room's recipients (each socket with its Socket.IO sid) are kept as one tuple from the
    first broadcast after the room last changed, so a stream of room events walks no
    dictionaries per recipient; entering or leaving the room drops the tuple. Sid rooms
    (direct emits) are not kept: one entry per socket would cost every idle socket memory."""

    def __init__(self) -> None:
        super().__init__()
        self._recipients: dict[tuple[str, Any], tuple[tuple[str, Any], ...]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        """As upstream's; the room's kept recipients gain the socket (a room that grows by
        one socket per join is not looked up again, socket by socket, at its next emit)."""
        key = (namespace, room)
        kept = self._recipients.pop(key, None)
        if kept is not None and sid in self.rooms.get(namespace, {}).get(room, ()):
            kept = None  # entering again: looked up afresh, as upstream then sees it
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if kept is None:
            return
        sock = self.server.eio.sockets.get(self.rooms[namespace][room][sid])
        if sock is not None:  # else looked up afresh at the next emit (see _recipients_of)
            self._recipients[key] = (*kept, (sid, sock))

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        """As upstream's (its disconnect and close_room leave through here too)."""
        self._recipients.pop((namespace, room), None)
        super().basic_leave_room(sid, namespace, room)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        """Like upstream's emit; the frame is built once for every recipient."""
        room = to or room
        if callback is not None or namespace not in self.rooms:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback)
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        packet: Callable[[], Any]
        body = _json_array([event, *args]) if namespace == "/" else None
        if body is not None:
            frame = event_frame(body)
            packet = functools.cache(functools.partial(_message, body))
        else:
            encoded = self.server.packet_class(
                sio_packet.EVENT, namespace=namespace, data=[event, *args]
            ).encode()
            if isinstance(encoded, list):  # binary attachments: several packets, upstream's path
                await super().emit(event, data, namespace, room=room, skip_sid=skip_sid)
                return
            pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
            frame = engineio_frame(pkt)
            packet = functools.partial(_same, pkt)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        for sid, sock in self._recipients_of(namespace, room):
            if sid not in skip and not sock.closed:
                sock.queue.send_frame(frame, packet)

    def _recipients_of(self, namespace: str, room: Any) -> tuple[tuple[str, Any], ...]:
        """(sid, engine.io socket) of each socket in `room` on this server."""
        key = (namespace, room)
        found = self._recipients.get(key)
        if found is not None:
            return found
        sockets = self.server.eio.sockets
        if isinstance(room, str):
            # A socket's own room (a direct emit, e.g. a reply): its one member is itself.
            rooms = self.rooms[namespace]
            own = rooms[None].get(room)
            if own is not None and room in rooms.get(room, ()):
                sock = sockets.get(own)
                return () if sock is None else ((room, sock),)
        pairs = [(sid, sockets.get(eio_sid)) for sid, eio_sid in self.get_participants(namespace, room)]
        found = tuple(pair for pair in pairs if pair[1] is not None)
        # Kept only when every member has its socket (a vanished one leaves the room soon,
        # and must not be left out for good), and not for a socket's own room.
        if len(found) == len(pairs) and isinstance(room, str) and not self.is_sid_room(namespace, room):
            self._recipients[key] = found
        return found


class EdgeSocketServer(RecoveringConnect, socketio.AsyncServer):  # type: ignore[misc]
    """The Socket.IO server of the edge: EdgeManager over an EdgeEngineServer, orjson codec;
    its CONNECT answer carries a recovery pid (edge_gateway.connect)."""

    def __init__(
        self, *args: Any, max_buffered_bytes: int, on_drop: Callable[[], None], **kwargs: Any
    ) -> None:
        # Read by _engineio_server_class, which the base constructor calls.
        self._max_buffered_bytes = max_buffered_bytes
        self._on_drop = on_drop
        super().__init__(
            *args, client_manager=EdgeManager(), serializer=EdgePacket, json=OrjsonCodec, **kwargs
        )

    def _engineio_server_class(self) -> Any:
        return functools.partial(
            EdgeEngineServer, max_buffered_bytes=self._max_buffered_bytes, on_drop=self._on_drop
        )

    def flush(self, sid: str) -> None:
        """Writes what was emitted to one socket so far at once, instead of with the rest of
        this loop iteration's writes: for a reply its client is waiting for."""
        eio_sid = self.manager.eio_sid_from_sid(sid, "/")
        sock = self.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if sock is not None and isinstance(sock.queue, Outbox):
            sock.queue.flush()

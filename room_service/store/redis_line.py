"""One connection to one Redis server on which this replica's room changes are pipelined:
each call writes its commands and waits for its replies, which come back in the order
the calls were written.

Why not the client's pipeline: every room change (a join is a script and four plain
commands) paid for a pipeline object, a checkout from the pool (a condition, a timeout,
a probe read), a timed read and a response callback per command, telemetry hooks and the
return to the pool: most of a join's Python time on the Redis store, and more than Redis
takes to run it. Here a call is one write and one future; one reader matches replies to
calls in order.

Why not the connection's own send and read either: its send runs under `wait_for` (a
task per write) and its read under a timeout per reply, and its packing encodes each
argument through several checks: together most of what was left of a join's Python time.
So the line packs its commands with hiredis's packer, a call on a connected line writes them at once
from the caller (the transport buffers; no task is woken to write), and one reader task,
alive as long as the connection, parses replies with its own `hiredis` reader (pinned,
redis-py's C parser) as bytes arrive. Each call is bounded by its operation's deadline
(`redis_deadline`); the connection's socket timeout (`BACKSTOP` deadlines) remains the
backstop against a half-open connection: one timer per connection, armed while calls
wait, fails them all when nothing was read for that long while the loop ran freely (a
timer that fires late, after a stall of this loop, gives the reader another period).

What it relies on in redis-py (`redis.asyncio.connection.AbstractConnection`): `connect`
(which also authenticates and selects the database), its `_reader`/`_writer` streams once
connected, its `encoder`'s settings and `socket_timeout`, `BaseParser.parse_error` (error
replies as redis-py's exception classes) and `disconnect`. The connection is made by the
pool's `make_connection`, so it has the pool's settings (address, credentials, TLS,
timeouts) and class.

Failures: an error reply is that command's reply (the caller decides). A broken
connection, a backstop that expires, or a failed connect fails every call waiting on the
connection with that error; the next call connects again. A caller that stops waiting
(its deadline, a cancelled RPC) leaves its replies to be read and dropped, so the calls
behind it still get theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis._parsers import BaseParser
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError

Words = Sequence[Any]
"""One command: its name, then its arguments (str, bytes, int or float)."""

# The reader's answer when a reply is not all in yet.
_MORE = object()
# Bytes asked of the socket per read.
_READ_SIZE = 65536
# A backstop timer this late (as a part of its period) means this loop stalled.
_LATE = 0.1


def pack(commands: Sequence[Words], encoding: str, errors: str) -> bytes:
    """`commands` in the Redis protocol, as redis-py would send them, by hiredis's packer
    (str as `encoding`, int and float as their repr); anything else (bool included) is
    refused (DataError)."""
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8") and errors == "strict"
    out: list[bytes] = []
    for words in commands:
        # hiredis encodes str as UTF-8 itself; another encoding is applied here first.
        args: Any = (
            tuple(words)
            if utf8
            else tuple(w.encode(encoding, errors) if isinstance(w, str) else w for w in words)
        )
        try:
            out.append(hiredis.pack_command(args))
        except TypeError as exc:
            raise DataError(f"Invalid input: {exc}") from None
    return b"".join(out)


class _Call:
    """Commands written together and the future their replies resolve."""

    __slots__ = ("expected", "future", "replies")

    def __init__(self, expected: int, future: asyncio.Future[list[Any]]) -> None:
        self.expected = expected
        self.future = future
        self.replies: list[Any] = []


class _Link:
    """One connection and the calls made on it; once broken, never used again (its
    tasks touch nothing but their own link, so a late one cannot disturb the next)."""

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self.loop = asyncio.get_running_loop()
        encoder = connection.encoder
        self.encoding, self.errors = encoder.encoding, encoder.encoding_errors
        decoding: dict[str, Any] = {}
        if encoder.decode_responses:
            decoding = {"encoding": encoder.encoding, "errors": encoder.encoding_errors}
        self.parser = hiredis.Reader(
            protocolError=InvalidResponse, replyError=BaseParser.parse_error, notEnoughData=_MORE, **decoding
        )
        timeout = connection.socket_timeout
        self.backstop = float(timeout) if timeout else 0.0
        # Calls written (or about to be, in this order) whose replies are not all read.
        self.waiting: deque[_Call] = deque()
        # Packed commands not yet written (only while connecting), in call order.
        self.outbox: list[bytes] = []
        self.stream: asyncio.StreamWriter | None = None  # once connected
        self.connecting: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        self.due = 0.0
        self.heard = 0.0  # when bytes last came, or the first waiting call was written
        self.broken = False

    def add(self, commands: Sequence[Words]) -> asyncio.Future[list[Any]]:
        packed = pack(commands, self.encoding, self.errors)  # first: it may refuse an argument
        future: asyncio.Future[list[Any]] = self.loop.create_future()
        waiting = self.waiting
        if not waiting:
            self.heard = self.loop.time()
        waiting.append(_Call(len(commands), future))
        stream = self.stream
        if stream is not None:
            if stream.transport.is_closing():
                self.fail(RedisConnectionError("the connection to Redis was lost"))
            else:
                stream.write(packed)
                if self.watchdog is None and self.backstop:
                    self.arm(self.heard + self.backstop)
        else:
            self.outbox.append(packed)
            if self.connecting is None:
                self.connecting = self.loop.create_task(self._connect(), name="redis-line-connect")
        return future

    async def _connect(self) -> None:
        """Connects, starts the reader and writes what was asked meanwhile."""
        connection = self.connection
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            if self.broken:
                return
            reader, stream = connection._reader, connection._writer
            if reader is None or stream is None:
                raise RedisConnectionError("the connection to Redis was lost")
            self.reader = self.loop.create_task(self._read(reader), name="redis-line-reader")
            self.stream = stream
            packed, self.outbox = self.outbox, []
            stream.write(b"".join(packed))
            if self.backstop:
                self.heard = self.loop.time()
                self.arm(self.heard + self.backstop)
        except Exception as exc:
            self.fail(exc)
        finally:
            self.connecting = None

    async def _read(self, stream: asyncio.StreamReader) -> None:
        """Parses replies as they come, resolving each call when its last reply is in."""
        waiting, parser, loop = self.waiting, self.parser, self.loop
        try:
            while not self.broken:
                reply = parser.gets()
                if reply is _MORE:
                    data = await stream.read(_READ_SIZE)
                    if not data:
                        raise RedisConnectionError("Redis closed the connection")
                    parser.feed(data)
                    self.heard = loop.time()
                    continue
                if not waiting:
                    raise InvalidResponse("a reply no call waits for")
                call = waiting[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    waiting.popleft()
                    if not call.future.done():
                        call.future.set_result(call.replies)
        except Exception as exc:
            self.fail(exc)

    def arm(self, due: float) -> None:
        self.due = due
        self.watchdog = self.loop.call_at(due, self._check)

    def _check(self) -> None:
        """The backstop: fails the link when calls waited a whole period for any byte
        while this loop ran freely."""
        self.watchdog = None
        if self.broken or not self.waiting:
            return
        now = self.loop.time()
        if now - self.due > self.backstop * _LATE:  # the loop stalled: bytes may be unread
            self.arm(now + self.backstop)
        elif now - self.heard < self.backstop:
            self.arm(self.heard + self.backstop)
        else:
            self.fail(RedisTimeoutError("Redis sent nothing within the socket timeout"))

    def fail(self, exc: BaseException) -> None:
        """Fails every call on this link and stops its tasks."""
        if not self.broken and self.stream is not None:
            self.stream.transport.abort()
        self.broken = True
        self.outbox = []
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiting:
            call = self.waiting.popleft()
            if not call.future.done():
                call.future.set_exception(exc)
        current = asyncio.current_task()
        for task in (self.connecting, self.reader):
            if task is not None and task is not current:
                task.cancel()

    async def close(self) -> None:
        """Stops its tasks and closes the connection."""
        self.fail(RedisConnectionError("the connection to Redis was closed"))
        for task in (self.connecting, self.reader):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            await self.connection.disconnect()


class RedisLine:
    """Pipelined calls on one connection made by `make` (see the module docstring)."""

    def __init__(self, make: Callable[[], AbstractConnection]) -> None:
        self._make = make
        self._link: _Link | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def call(self, commands: Sequence[Words]) -> list[Any]:
        """The replies to `commands`, written together; an error reply is a ResponseError
        in its place. Raises what broke the connection, if it broke meanwhile."""
        if self._closed:
            raise RedisConnectionError("the connection to Redis is closed")
        link = self._link
        if link is None or link.broken:
            if link is not None:
                self._retire(link)
            link = self._link = _Link(self._make())
        return await link.add(commands)

    def _retire(self, link: _Link) -> None:
        closing = asyncio.get_running_loop().create_task(link.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Fails what is waiting and closes the connection."""
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        for closing in list(self._closing):
            with contextlib.suppress(Exception):
                await closing

"""One connection to one Redis server on which this replica's room changes are pipelined:
each call writes its commands and waits for its replies, which come back in the order
the calls were written.

Why not the client's pipeline: every room change (a join is a script and four plain
commands) paid for a pipeline object, a checkout from the pool (a condition, a timeout,
a probe read), a timed read and a response callback per command, telemetry hooks and the
return to the pool: most of a join's Python time on the Redis store, and more than Redis
takes to run it. Here a call is one write and one future; calls made together leave in
one write, and one reader matches replies to calls in order.

What it relies on in redis-py (`redis.asyncio.connection.AbstractConnection`): `connect`
(which also authenticates and selects the database), `send_packed_command`,
`read_response` (which disconnects on any error but an error reply), `pack_commands`,
`disconnect` and `is_connected`. The connection is made by the pool's `make_connection`,
so it has the pool's settings (address, credentials, TLS, timeouts) and class.

Failures: an error reply is that command's reply (the caller decides). A broken
connection, a read that outlasts the connection's socket timeout, or a failed connect
fails every call waiting on the connection with that error; the next call connects
again. A caller that stops waiting (its deadline, a cancelled RPC) leaves its replies to
be read and dropped, so the calls behind it still get theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

Words = Sequence[Any]
"""One command: its name, then its arguments (str, bytes, int or float)."""


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
        # Calls written (or about to be, in this order) whose replies are not all read.
        self.waiting: deque[_Call] = deque()
        # Packed commands not yet handed to the connection, in call order.
        self.outbox: list[bytes] = []
        self.writer: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.broken = False

    def add(self, commands: Sequence[Words]) -> asyncio.Future[list[Any]]:
        packed = self.connection.pack_commands(commands)  # first: it may refuse an argument
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiting.append(_Call(len(commands), future))
        self.outbox.extend(packed)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write(), name="redis-line-writer")
        return future

    async def _write(self) -> None:
        """Hands the outbox to the connection until it is empty (calls made meanwhile go
        in the next write), connecting first."""
        connection = self.connection
        try:
            while self.outbox and not self.broken:
                if not connection.is_connected:
                    await connection.connect()  # type: ignore[no-untyped-call]
                packed, self.outbox = self.outbox, []
                await connection.send_packed_command(packed, check_health=False)
                if self.reader is None:
                    self.reader = asyncio.create_task(self._read(), name="redis-line-reader")
        except Exception as exc:
            self.fail(exc)
        finally:
            self.writer = None

    async def _read(self) -> None:
        """Reads replies while calls wait for them, resolving each call when its last
        reply is in."""
        waiting = self.waiting
        try:
            while waiting and not self.broken:
                call = waiting[0]
                try:
                    reply = await self.connection.read_response()
                except ResponseError as exc:
                    reply = exc
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    waiting.popleft()
                    if not call.future.done():
                        call.future.set_result(call.replies)
        except Exception as exc:
            self.fail(exc)
        finally:
            self.reader = None

    def fail(self, exc: BaseException) -> None:
        """Fails every call on this link and stops its tasks."""
        self.broken = True
        self.outbox = []
        while self.waiting:
            call = self.waiting.popleft()
            if not call.future.done():
                call.future.set_exception(exc)
        current = asyncio.current_task()
        for task in (self.writer, self.reader):
            if task is not None and task is not current:
                task.cancel()

    async def close(self) -> None:
        """Stops its tasks and closes the connection."""
        self.fail(RedisConnectionError("the connection to Redis was closed"))
        for task in (self.writer, self.reader):
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

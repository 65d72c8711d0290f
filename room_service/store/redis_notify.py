"""Wakes this replica's room watchers when any replica changes their room.

Each change script publishes one message on its room's channel. A replica holds one
pub/sub connection, subscribed only to the rooms it has watchers for: the work per
event is one message to each replica watching that room, whatever the number of rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from room_service.store.redis_base import RedisClient

log = logging.getLogger("room_service.store")

# A channel without waiters this long is unsubscribed; kept meanwhile so a watcher that
# re-waits after each event does not resubscribe every time.
_IDLE_SECONDS = 30.0
# Always subscribed, so the connection exists before any room is watched.
_HELLO = "{meta}:hello"


class RoomNotifier:
    """Channel subscriptions shared by all the waiters of this process."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub()
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._idle_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        # Set once the listener holds its connection: subscribing before that would
        # race the listener into opening a second one.
        self._connected = asyncio.Event()

    def start(self) -> None:
        """Starts listening (reconnecting by itself while Redis is away)."""
        self._task = asyncio.create_task(self._listen(), name="redis-notifier")

    async def close(self) -> None:
        """Stops listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    async def wait(self, channel: str, moved: Callable[[], Awaitable[bool]], at_most: float) -> None:
        """Returns once `channel` gets a message, `moved()` is true, or `at_most` seconds passed.

        `moved` is checked after the subscription is confirmed, so a change made between
        the caller's last read and the subscription is never missed."""
        if self._task is None:
            self.start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, set()).add(future)
        self._idle_since.pop(channel, None)
        try:
            async with asyncio.timeout(at_most):
                await self._subscribed(channel)
                if await moved():
                    return
                await future
        except TimeoutError:
            return
        finally:
            waiters = self._waiters.get(channel)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._waiters[channel]
                    self._idle_since[channel] = time.monotonic()

    async def _subscribed(self, channel: str) -> None:
        await self._connected.wait()
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.Event()
            try:
                await self._pubsub.subscribe(channel)
            except BaseException:
                del self._confirmed[channel]
                raise
        await confirmed.wait()

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub.connection is None:
                    if isinstance(self._redis, RedisCluster):
                        await self._redis.initialize()  # the slot map, before any subscription
                    await self._pubsub.subscribe(_HELLO)
                    self._connected.set()
                message = await self._pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._handle(message)
                await self._drop_idle()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis away (or anything else): subscriptions are renewed on reconnect;
                # meanwhile every waiter re-reads. This loop never dies.
                if not isinstance(exc, RedisError | OSError):
                    log.exception("room notifications failed; retrying")
                else:
                    log.warning("room notifications interrupted", extra={"error": type(exc).__name__})
                self._wake_all()
                await asyncio.sleep(0.5)

    def _handle(self, message: dict[str, object]) -> None:
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        kind = message["type"]
        if kind == "subscribe":
            event = self._confirmed.get(name)
            if event is not None:
                event.set()
        elif kind == "message":
            for future in self._waiters.get(name, ()):
                if not future.done():
                    future.set_result(None)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    async def _drop_idle(self) -> None:
        now = time.monotonic()
        idle = [c for c, since in self._idle_since.items() if now - since > _IDLE_SECONDS]
        for channel in idle:
            del self._idle_since[channel]
            self._confirmed.pop(channel, None)
        if idle:
            # Sent in order on the one connection: a waiter that subscribes again after
            # this point is subscribed after the unsubscribe takes effect.
            await self._pubsub.unsubscribe(*idle)

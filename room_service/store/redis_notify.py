"""Wakes this replica's room watchers when any replica changes their room.

Each change script publishes one message on its room's channel: the room's new head,
`<epoch>:<sequence>`. A replica holds one pub/sub connection, subscribed only to the
rooms it has watchers for: the work per event is one message to each replica watching
that room, whatever the number of rooms. A waiter waits beyond a position and is woken
only by news beyond it. The replica making a change wakes its own waiters itself once
the change's reply is in (`wrote`), its waiters then reading the entries the reply
brought; messages for a room it is changing meanwhile wake nobody until then (they
might otherwise make its waiters read from Redis what the reply is bringing).

A `Mark`, taken before a Redis read of a subscribed room, lets the reader trust what the
read said later on: every change made after the read is heard since the mark (unless the
connection broke, which invalidates every mark), so "nothing beyond the head the read
saw, and no news since" means nothing beyond, without asking Redis again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from meeting_common.tasks import cancel_and_wait
from room_service.domain.models import Position
from room_service.store.redis_base import RedisClient

log = logging.getLogger("room_service.store")

# A channel without waiters this long is unsubscribed; kept meanwhile so a watcher that
# re-waits after each event does not resubscribe every time.
_IDLE_SECONDS = 30.0
# A mark is trusted this long: a pub/sub connection that went silent without breaking
# costs a watcher at most this much delay before it asks Redis again.
_MARK_SECONDS = 10.0
# Always subscribed, so the connection exists before any room is watched.
_HELLO = "{meta}:hello"


@dataclass(frozen=True, slots=True)
class Mark:
    """This replica's hearing of one room's channel at one moment."""

    session: int
    confirmed: asyncio.Event
    heard: int
    taken_at: float


def head_message(position: Position) -> str:
    """The message a change publishes (the scripts build the same in Lua)."""
    return f"{position.epoch}:{position.sequence}"


def _beyond(message: str, position: Position) -> bool:
    """Whether `message` tells of a change beyond `position` (anything unparsable does)."""
    epoch, colon, sequence = message.rpartition(":")
    if not colon or epoch != position.epoch or not sequence.isdigit():
        return True
    return int(sequence) > position.sequence


class RoomNotifier:
    """Channel subscriptions shared by all the waiters of this process."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._pubsub: PubSub = redis.pubsub()
        self._waiters: dict[str, dict[asyncio.Future[None], Position]] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        # Per subscribed channel: messages heard since it was confirmed, and the last one.
        self._heard: dict[str, tuple[int, str]] = {}
        # Bumped whenever the connection breaks: messages may have been lost.
        self._session = 0
        # Changes this replica has under way, per channel.
        self._writing: dict[str, int] = {}
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
        await cancel_and_wait(self._task)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def mark(self, channel: str) -> Mark | None:
        """Taken before a read of `channel`'s room; None while it is not subscribed."""
        confirmed = self._confirmed.get(channel)
        if confirmed is None or not confirmed.is_set():
            return None
        return Mark(self._session, confirmed, self._heard.get(channel, (0, ""))[0], time.monotonic())

    def news_since(self, channel: str, mark: Mark, position: Position) -> bool | None:
        """Whether a change beyond `position` was heard since `mark`; None when the mark
        no longer tells (the connection broke, the channel was dropped, or it is old)."""
        if mark.session != self._session or self._confirmed.get(channel) is not mark.confirmed:
            return None
        if time.monotonic() - mark.taken_at > _MARK_SECONDS:
            return None
        heard, last = self._heard.get(channel, (0, ""))
        # Messages come in the order Redis ran the changes: the last one is the newest.
        return heard != mark.heard and _beyond(last, position)

    def writing(self, channel: str) -> None:
        """This replica starts a change of `channel`'s room; `wrote` must follow."""
        self._writing[channel] = self._writing.get(channel, 0) + 1

    def wrote(self, channel: str, head: Position | None) -> None:
        """The change ended (at `head`, None: nothing appended): wakes the waiters behind
        it, or behind what was heard meanwhile."""
        left = self._writing.pop(channel) - 1
        if left:
            self._writing[channel] = left
        if head is not None:
            self._wake(channel, head_message(head))
        heard = self._heard.get(channel)
        if heard is not None:
            self._wake(channel, heard[1])

    async def wait(
        self,
        channel: str,
        moved: Callable[[], Awaitable[bool]],
        at_most: float,
        position: Position,
        mark: Mark | None = None,
    ) -> None:
        """Returns once `channel` tells of a change beyond `position`, `moved()` is true,
        or `at_most` seconds passed.

        `moved` is checked after the subscription is confirmed, so a change made between
        the caller's last read and the subscription is never missed; it is skipped when
        `mark` (taken before that read) still tells that nothing was heard since."""
        if self._task is None:
            self.start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, {})[future] = position
        self._idle_since.pop(channel, None)
        news = self.news_since(channel, mark, position) if mark is not None else None
        try:
            if news:
                return
            async with asyncio.timeout(at_most):
                if news is None:
                    await self._subscribed(channel)
                    if await moved():
                        return
                await future
        except TimeoutError:
            return
        finally:
            waiters = self._waiters.get(channel)
            if waiters is not None:
                waiters.pop(future, None)
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
                self._forget_hearing()
                self._wake_all()
                await asyncio.sleep(0.5)

    def _handle(self, message: dict[str, object]) -> None:
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        kind = message["type"]
        if kind == "subscribe":
            event = self._confirmed.get(name)
            if event is not None and not event.is_set():
                self._heard.pop(name, None)
                event.set()
        elif kind == "message":
            data = message["data"]
            text = data.decode() if isinstance(data, bytes) else str(data)
            if name in self._confirmed:
                self._heard[name] = (self._heard.get(name, (0, ""))[0] + 1, text)
            if name not in self._writing:
                self._wake(name, text)

    def _wake(self, channel: str, message: str) -> None:
        for future, position in self._waiters.get(channel, {}).items():
            if not future.done() and _beyond(message, position):
                future.set_result(None)

    def _forget_hearing(self) -> None:
        """After a break no mark holds, and a channel counts as confirmed again only once
        the client's resubscription on reconnecting is (those already waiting for a
        confirmation go on to ask Redis)."""
        self._session += 1
        self._heard.clear()
        for channel, event in self._confirmed.items():
            event.set()
            self._confirmed[channel] = asyncio.Event()

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
            self._heard.pop(channel, None)
        if idle:
            # Sent in order on the one connection: a waiter that subscribes again after
            # this point is subscribed after the unsubscribe takes effect.
            await self._pubsub.unsubscribe(*idle)

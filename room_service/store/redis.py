"""The Redis store: any number of room-service replicas share one Redis (a server, a
managed service, a primary found through Sentinel, or a Cluster); every key of a room
carries the room's hash tag, so each room change is one single-slot script.

The parts by role: `redis_rooms` (meeting directory, rooms and their logs),
`redis_log` (running a room's changes, waiting for them), `redis_line` (the connection
room changes take to one server), `redis_tails` (what this replica knows of each log),
`redis_rosters` (what it knows of each room's participants), `redis_edges` (leases,
reaping, re-announcements, signals), `redis_seats` (joins, binding recovery ids),
`redis_holds` (held sessions for connection-state recovery), `redis_notify` (waking
watchers on any replica), `redis_attempts` (wrong-password counts), `redis_bans`,
`redis_scripts` and `redis_holds_scripts` (the Lua), `redis_codec` (the JSON),
`redis_deadline` (each operation's deadline).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.event import EventDispatcher
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from room_service.store.base import StoreOptions
from room_service.store.redis_attempts import RedisPasswordAttempts
from room_service.store.redis_bans import RedisMeetingBans
from room_service.store.redis_base import INCARNATION, Observer, RedisClient
from room_service.store.redis_deadline import BACKSTOP
from room_service.store.redis_edges import RedisEdges
from room_service.store.redis_notify import RoomNotifier
from room_service.store.redis_url import cluster_node_url, sentinel_target

MAX_CONNECTIONS = 128
"""Connections a replica keeps to Redis at most (see `connect`)."""


def _ignore(_: str, __: float, ___: bool) -> None:
    return None


def connect(url: str, timeout: float) -> RedisClient:
    """A client for `url` (see `redis_url`: one server, or a primary found through Sentinel).

    Every store operation times out after `timeout` (see `redis_deadline`: a stall of this
    event loop does not count); the client's own socket timeouts are only a backstop
    beyond that. A broken connection (e.g. to a Redis that restarted, or a primary that
    Sentinel replaced) is retried once, at once; a timeout is not, so a caller learns that
    Redis is away within about the timeout.

    Connections: up to `MAX_CONNECTIONS` per replica (per node on a Cluster). redis-py's
    pool fails a command at once (MaxConnectionsError) when as many are in use, 100 by
    default: a join storm of 150 on one replica had its surplus refused UNAVAILABLE. On
    one server a command beyond the cap waits for a connection, within its operation's
    deadline; through Sentinel and on a Cluster (whose pools cannot wait) the cap is only
    raised."""
    common: dict[str, Any] = {
        "decode_responses": True,
        "max_connections": MAX_CONNECTIONS,
        "socket_timeout": timeout * BACKSTOP,
        "socket_connect_timeout": timeout * BACKSTOP,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": 15,
    }
    scheme = urlsplit(url).scheme
    if scheme.endswith("+cluster"):
        # Every key of a room shares one slot, so each script runs on the room's shard.
        cluster: RedisCluster = RedisCluster.from_url(cluster_node_url(url), **common)
        return cluster
    if not scheme.endswith("+sentinel"):
        # Waiting for a free connection is bounded by the operation's deadline, not here.
        # A new connection costs no more than its connect: no CLIENT SETINFO (two more
        # round trips, and a package-metadata read each time) and one event dispatcher
        # for the pool, not one built per connection (a storm opens a hundred at once).
        pool = BlockingConnectionPool.from_url(
            url, timeout=None, driver_info=None, event_dispatcher=EventDispatcher(), **common
        )
        client: Redis = Redis.from_pool(pool)
        return client
    target = sentinel_target(url)
    auth = {"username": target.username, "password": target.password}
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        target.sentinels,
        sentinel_kwargs={**auth, "socket_timeout": timeout, "socket_connect_timeout": timeout},
        **auth,
        ssl=target.tls,
        db=target.db,
        **common,
    )
    primary: Redis = sentinel.master_for(target.primary)
    return primary


class RedisStore(RedisEdges, RedisPasswordAttempts, RedisMeetingBans):
    """The RoomStore on Redis."""

    def __init__(
        self,
        redis: RedisClient,
        options: StoreOptions | None = None,
        observe: Observer = _ignore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(redis, options or StoreOptions(), observe, clock)
        self._notifier = RoomNotifier(redis)
        self._init_rooms(self._notifier)
        self._init_holds()
        self._init_edges()
        self._init_attempts()

    async def instance_id(self) -> str:
        async def current() -> str:
            value: Any = await self._redis.get(INCARNATION)
            if value is None:
                # The first replica to notice an empty Redis names the new dataset.
                await self._redis.set(INCARNATION, uuid.uuid4().hex, nx=True)
                value = await self._redis.get(INCARNATION)
            return str(value or "")

        return await self._op("instance_id", current)

    async def ready(self) -> bool:
        try:
            return bool(await self._op("ping", self._redis.ping))
        except Exception:
            return False

    async def close(self) -> None:
        await self._notifier.close()
        if self._line is not None:
            await self._line.close()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

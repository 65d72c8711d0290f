"""What every part of the Redis store shares: the client, key names, the time, and one
wrapper that measures each store operation, gives it a deadline that a stalled event loop
does not use up (`redis_deadline`), and turns Redis failures into UNAVAILABLE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from room_service.store.base import StoreOptions, StoreUnavailableError
from room_service.store.redis_deadline import BACKSTOP, within
from room_service.store.redis_line import RedisLine

T = TypeVar("T")

# Failures after which the caller may retry: Redis away, slow, loading, or read-only
# during a failover. Anything else is a bug and stays an INTERNAL error.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
_TRANSIENT_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")

# Every operation name the store measures (the `operation` label of its metrics).
OPERATIONS = (
    "upsert_meeting", "get_meeting", "end_meeting", "password_blocked", "password_failed",
    "join", "index_edge", "leave", "update_media", "append_chat", "get_participant",
    "snapshot", "list_rooms", "participant_count", "read_after", "wait_beyond",
    "touch_edge", "expired_edges", "drop_edge", "edge_count", "restore",
    "publish_signal", "next_signal", "instance_id", "ping", "rejoin", "drop_ended_rooms",
)  # fmt: skip

RedisClient = Redis | RedisCluster
"""One server (or a Sentinel-found primary), or a Cluster."""

Observer = Callable[[str, float, bool], None]
"""Called after each store operation with its name, seconds taken and success."""


def operation_timeout(redis: RedisClient) -> float:
    """Each store operation's deadline: the timeout `connect` was given (it sets the
    client's own socket timeouts to `BACKSTOP` times that); 0 for a client without one."""
    if isinstance(redis, RedisCluster):
        kwargs = redis.connection_kwargs
    else:
        kwargs = redis.connection_pool.connection_kwargs
    timeout = kwargs.get("socket_timeout")
    return float(timeout) / BACKSTOP if timeout else 0.0


def line_for(redis: RedisClient) -> RedisLine | None:
    """The line room changes take (see `redis_line`) to one server; None for a Cluster or
    a primary found through Sentinel (their clients route each command themselves)."""
    if isinstance(redis, Redis) and type(redis.connection_pool) in (ConnectionPool, BlockingConnectionPool):
        return RedisLine(redis.connection_pool.make_connection)
    return None


def room_tag(meeting_id: str) -> str:
    """The hash tag every key of one room shares (one Cluster slot per room)."""
    return f"{{room:{meeting_id}}}"


def room_keys(meeting_id: str) -> list[str]:
    """The keys the room scripts take, in their order: state, members, people, log, meeting."""
    tag = room_tag(meeting_id)
    return [f"{tag}:state", f"{tag}:members", f"{tag}:people", f"{tag}:log", f"{tag}:meeting"]


def edge_rooms_key(edge_id: str) -> str:
    """The rooms an edge has (or had) participants in: where reaping it looks."""
    return f"{{edge:{edge_id}}}:rooms"


def edge_signals_key(edge_id: str) -> str:
    """The edge's queue of undelivered signals."""
    return f"{{edge:{edge_id}}}:signals"


# Leases, edges being reaped and reaped edges: one slot, so a claim is one script.
LEASES = "{edges}:leases"
REAPING = "{edges}:reaping"
REAPED = "{edges}:reaped"
# Every meeting id, for listing rooms.
DIRECTORY = "{directory}:meetings"
# Ended meetings whose rooms are still kept, by when to drop them.
ENDED = "{directory}:ended"
# Set once per Redis dataset; a different (or missing) value means the data was lost.
INCARNATION = "{meta}:incarnation"


class RedisPart:
    """Shared state of the store's role classes."""

    def __init__(
        self, redis: RedisClient, options: StoreOptions, observe: Observer, clock: Callable[[], float]
    ) -> None:
        self._redis = redis
        self._options = options
        self._observe = observe
        self._clock = clock
        self._timeout = operation_timeout(redis)
        self._line = line_for(redis)
        # A Cluster client learns the slot map on first use; many first uses at once race
        # each other in the client, so the first one learns it for all.
        self._cluster_ready = not isinstance(redis, RedisCluster)
        self._cluster_lock = asyncio.Lock()

    def _now(self) -> str:
        """The time stamped on events (epoch seconds)."""
        return f"{time.time():.6f}"

    def _script(self, source: str) -> AsyncScript:
        return self._redis.register_script(source)

    async def _learn_slots(self) -> None:
        async with self._cluster_lock:
            if not self._cluster_ready and isinstance(self._redis, RedisCluster):
                await self._redis.initialize()
            self._cluster_ready = True

    async def _op(self, name: str, make: Callable[[], Awaitable[T]]) -> T:
        """Runs one store operation, measured; Redis failures become UNAVAILABLE."""
        started = time.perf_counter()
        ok = False
        try:
            if not self._cluster_ready:
                await self._learn_slots()
            result = await within(self._timeout, make)
            ok = True
            return result
        except _UNAVAILABLE as exc:
            raise self._unavailable(name, exc, started) from exc
        except ResponseError as exc:
            if str(exc).startswith(_TRANSIENT_REPLIES):
                raise self._unavailable(name, exc, started) from exc
            raise
        finally:
            self._observe(name, time.perf_counter() - started, ok)

    @staticmethod
    def _unavailable(name: str, exc: Exception, started: float) -> StoreUnavailableError:
        # The error's type and the reply's first word only: a Redis error's text may
        # name the server's address.
        what = type(exc).__name__
        if isinstance(exc, ResponseError):
            what = f"{what} {str(exc).split(' ', 1)[0]}"
        took = time.perf_counter() - started
        return StoreUnavailableError(cause=f"redis {what} in {name} after {took:.3f} s")


def run_script(script: AsyncScript, keys: list[str], args: list[Any]) -> Awaitable[Any]:
    """A script call (EVALSHA, loading the script again after a Redis restart)."""
    result: Awaitable[Any] = script(keys=keys, args=args)
    return result

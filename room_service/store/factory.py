"""Chooses the store implementation from settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from room_service.store.base import RoomStore, StoreOptions
from room_service.store.memory import MemoryStore
from room_service.store.redis import RedisStore, connect
from room_service.store.redis_base import Observer

STORES = ("memory", "redis")


def create_store(
    kind: str,
    options: StoreOptions,
    *,
    redis_url: str = "",
    redis_timeout: float = 1.0,
    observe: Observer | None = None,
) -> RoomStore:
    """The store named by `kind`: "memory" (this process only) or "redis" (shared)."""
    if kind == "memory":
        return MemoryStore(options)
    if kind == "redis":
        client = connect(redis_url, redis_timeout)
        if observe is None:
            return RedisStore(client, options, clock=time.time)
        return RedisStore(client, options, observe, time.time)
    raise ValueError(f"unknown store {kind!r}")


def store_clock(kind: str) -> Callable[[], float]:
    """The clock lease deadlines use: shared by replicas for a shared store."""
    return time.time if kind == "redis" else time.monotonic

"""Stores for the conformance suite: the same tests against every RoomStore.

`StoreFactory` makes stores with given options, each starting empty with the meeting
MEETING registered; `replica()` gives a second store on the same data, the way a second
room-service replica sees it (for the memory store: the same object). Kinds: "memory",
"redis" (one server) and "redis-cluster" (three primaries).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import redis.asyncio as aioredis

from room_service.domain.events import RoomEvent
from room_service.domain.models import MediaState, Meeting, MeetingStatus, Position
from room_service.domain.requests import JoinSpec, RecoverSpec
from room_service.store.base import RoomStore, StoreOptions
from room_service.store.memory import MemoryStore
from room_service.store.redis import RedisStore, connect

MEETING = "m-1"


def meeting(meeting_id: str = MEETING, **changes: object) -> Meeting:
    """A live meeting."""
    fields: dict[str, object] = {
        "id": meeting_id,
        "meeting_name": "Team",
        "status": MeetingStatus.LIVE,
        "creator_id": "creator",
        "created_at": datetime.now(UTC),
    }
    fields.update(changes)
    return Meeting(**fields)  # type: ignore[arg-type]


def spec(
    user: str, *, socket: str | None = None, edge: str = "edge-a", meeting_id: str = MEETING
) -> JoinSpec:
    """A join of `user` through `edge`."""
    return JoinSpec(
        meeting_id=meeting_id,
        user_id=user,
        user_name=f"Name {user}",
        media=MediaState(),
        edge_id=edge,
        socket_id=socket or f"sock-{user}",
    )


def claim(
    recovery_id: str,
    after: Position | None,
    *,
    edge: str = "edge-b",
    user: str = "",
    take_over: bool = False,
) -> RecoverSpec:
    """A reconnecting client's claim of `recovery_id` through `edge`."""
    return RecoverSpec(
        recovery_id=recovery_id,
        after=after,
        edge_id=edge,
        user_id=user,
        fresh_recovery_id="fresh-id",
        take_over=take_over,
    )


async def observed_store(url: str) -> tuple[RedisStore, list[str]]:
    """A Redis store on `url`, emptied first, and the operations it runs (their names, in
    order; the caller clears the list as it likes)."""
    raw = aioredis.Redis.from_url(url)
    await raw.flushall()
    await raw.aclose()
    operations: list[str] = []
    store = RedisStore(connect(url, 0.5), StoreOptions(), lambda op, _s, _ok: operations.append(op))
    return store, operations


class RedisStores:
    """Redis stores and plain clients on one server for one test, all closed by `close`
    (the tests' `redis_stores` fixture), so a test needs no clean-up of its own."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened = contextlib.AsyncExitStack()

    async def store(self, operations: list[str] | None = None, **options: object) -> RedisStore:
        """A store (a replica's view) with `options` and MEETING registered; the names of
        the operations it runs are appended to `operations` when given."""

        def observe(operation: str, _seconds: float, _ok: bool) -> None:
            if operations is not None:
                operations.append(operation)

        store = RedisStore(connect(self.url, 0.5), StoreOptions(**options), observe)  # type: ignore[arg-type]
        self._opened.push_async_callback(store.close)
        await store.upsert_meeting(meeting())
        return store

    def raw(self) -> aioredis.Redis:
        """A plain client (replies decoded) for looking at what the stores wrote."""
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        self._opened.push_async_callback(client.aclose)
        return client

    async def close(self) -> None:
        """Closes every store and client made, the last first."""
        await self._opened.aclose()


async def events_after(store: RoomStore, after: Position, limit: int = 10_000) -> list[RoomEvent]:
    """MEETING's events after `after` (at most `limit`), which the replay buffer must still reach."""
    batch = await store.read_after(MEETING, after, limit)
    assert isinstance(batch, list)
    return batch


class StoreFactory:
    """Makes stores of one kind ("memory" or "redis") and closes them afterwards."""

    def __init__(self, kind: str, redis_url: str = "") -> None:
        # A Cluster has one database: a `separate` store there starts from a flush.
        self.kind = kind
        self._redis_url = redis_url
        self._stores: list[RoomStore] = []
        self._last: dict[int, RoomStore] = {}

    async def __call__(self, *, separate: bool = False, **options: object) -> RoomStore:
        """A store with `options` and MEETING registered; `separate`: on other, empty data."""
        db = 1 if separate else 0
        if separate and self.kind == "redis-cluster":
            await self.flush()
            db = 0
        store = self._make(db, StoreOptions(**options))  # type: ignore[arg-type]
        self._last[db] = store
        await store.upsert_meeting(meeting())
        return store

    async def replica(self, **options: object) -> RoomStore:
        """Another process's view of the data of the last store made."""
        if self.kind == "memory":
            return self._last[0]
        return self._make(0, StoreOptions(**options))  # type: ignore[arg-type]

    def _make(self, db: int, options: StoreOptions) -> RoomStore:
        store: RoomStore
        if self.kind == "memory":
            store = MemoryStore(options)
        else:
            store = RedisStore(connect(self._url(db), 2.0), options)
        self._stores.append(store)
        return store

    def _url(self, db: int) -> str:
        return self._redis_url.rsplit("/", 1)[0] + f"/{db}"

    async def count_keys(self, pattern: str) -> int:
        """Redis keys matching `pattern` (every primary of a Cluster); 0 for memory."""
        if self.kind == "memory":
            return 0
        client = connect(self._url(0), 2.0)
        try:
            return len([key async for key in client.scan_iter(match=pattern)])
        finally:
            await client.aclose()

    async def flush(self) -> None:
        """Empties the Redis databases the stores use (every primary of a Cluster)."""
        if self.kind != "memory":
            client = connect(self._url(0), 2.0)
            try:
                await client.flushall()
            finally:
                await client.aclose()

    async def close(self) -> None:
        """Closes every store made."""
        for store in self._stores:
            await store.close()

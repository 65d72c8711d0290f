"""A busy replica does not refuse joins: not when its own event loop stalls (Redis
answered in time, and the answer read late is still the answer), nor when a join storm
has more commands in flight than the Redis client's pool has connections.

The trigger, made deterministic: right after a command is written to Redis, the replica's
loop is blocked (as by a join storm's work on a busy machine, or the process being
descheduled) for longer than the Redis timeout. Redis answers meanwhile; when the loop
runs again, the reply and the expired timer are handled in the same turn. Before the
store's stall-aware deadline (`redis_deadline`), the timer won and the join was refused
UNAVAILABLE (the load test's Redis-replica storm beside a CPU-heavy test).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from redis.asyncio.connection import Connection

from room_service.domain.requests import MediaChange
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions, StoreUnavailableError
from room_service.store.redis import RedisStore, connect
from tests.support.redis_server import SessionRedis
from tests.support.stores import MEETING, meeting, spec

_TIMEOUT = 0.2
# Longer than the timeout and than the client's own backstop would need to be noticed.
_STALL = 3 * _TIMEOUT


class _Stalls:
    """How many of the next commands block the loop right after they are written."""

    pending = 0


def _stall_if_asked() -> None:
    if _Stalls.pending > 0:
        _Stalls.pending -= 1
        # Runs once the writer waits for the reply: the whole loop stops, as in a stall.
        asyncio.get_running_loop().call_soon(time.sleep, _STALL)


class _StallingWriter(asyncio.StreamWriter):
    """The stream the store's line writes room changes to directly (see `redis_line`)."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        super().write(data)
        _stall_if_asked()


class StallingConnection(Connection):
    """A connection after whose next writes (while `_Stalls.pending`) the event loop is
    blocked for `_STALL` seconds, with the reply on its way."""

    async def _connect(self) -> None:
        await super()._connect()  # type: ignore[no-untyped-call]
        if self._writer is not None:
            self._writer.__class__ = _StallingWriter

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        await super().send_packed_command(command, check_health)
        _stall_if_asked()


@pytest.fixture
async def store(session_redis: SessionRedis) -> AsyncIterator[RedisStore]:
    raw = aioredis.Redis.from_url(session_redis.url)
    await raw.flushall()
    await raw.aclose()
    client = connect(session_redis.url, _TIMEOUT)
    assert isinstance(client, aioredis.Redis)
    client.connection_pool.connection_class = StallingConnection
    store = RedisStore(client, StoreOptions())
    await store.upsert_meeting(meeting())
    _Stalls.pending = 0
    try:
        yield store
    finally:
        _Stalls.pending = 0
        await store.close()


async def test_a_join_whose_reply_is_read_after_a_stall_succeeds(store: RedisStore) -> None:
    for i in range(3):
        _Stalls.pending = 1
        outcome = await store.join_open(spec(f"user-{i}"))
        assert outcome is not None
        assert outcome.participant.user_id == f"user-{i}"
    assert _Stalls.pending == 0  # the stall did happen
    snapshot = await store.snapshot(MEETING)
    assert sorted(p.user_id for p in snapshot.participants) == ["user-0", "user-1", "user-2"]


async def test_a_join_through_the_manager_in_a_stalled_loop_is_not_refused(store: RedisStore) -> None:
    manager = RoomManager(store, ManagerOptions(), RoomMetrics(CollectorRegistry()))
    _Stalls.pending = 1
    outcome = await manager.join(spec("alice"), "")
    assert outcome.participant.user_id == "alice"
    assert _Stalls.pending == 0


async def test_other_operations_read_late_still_succeed(store: RedisStore) -> None:
    joined = await store.join_open(spec("bob"))
    assert joined is not None
    pid = joined.participant.participant_id
    checks: list[Any] = []
    for make in (
        store.ready,
        lambda: store.get_participant(MEETING, pid),
        lambda: store.update_media(MediaChange(MEETING, pid, pid, audio=False)),
        lambda: store.snapshot(MEETING),
    ):
        _Stalls.pending = 1
        checks.append(await make())
    assert checks[0] is True
    assert checks[1].participant_id == pid
    assert checks[2][0].media.audio is False


async def test_a_redis_that_does_not_answer_still_fails_the_operation(
    store: RedisStore, session_redis: SessionRedis
) -> None:
    # The stall-aware deadline must not wait forever: a Redis that never answers (here:
    # stopped with CLIENT PAUSE) still fails the operation, as UNAVAILABLE.
    admin = aioredis.Redis.from_url(session_redis.url)
    try:
        await admin.client_pause(int(_TIMEOUT * 20 * 1000), all=False)
        with pytest.raises(StoreUnavailableError) as refused:
            await store.join_open(spec("carol"))
        assert "TimeoutError" in refused.value.cause
    finally:
        await admin.client_unpause()
        await admin.aclose()


async def test_a_join_storm_beyond_the_client_pools_default_size_is_not_refused(
    session_redis: SessionRedis,
) -> None:
    # redis-py's pool refuses a command at once (MaxConnectionsError) beyond 100 in use;
    # 150 joins at once on one replica (each replica's share of the load test's storm)
    # each hold one. The replica's own timeout, as it runs.
    client = connect(session_redis.url, 1.0)
    await client.flushall()
    store = RedisStore(client, StoreOptions())
    try:
        await store.upsert_meeting(meeting())
        outcomes = await asyncio.gather(
            *(store.join_open(spec(f"storm-{i}")) for i in range(150)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, BaseException)]
        assert refused == [], [getattr(o, "cause", o) for o in refused[:3]]
        assert len((await store.snapshot(MEETING)).participants) == 150
    finally:
        await store.close()

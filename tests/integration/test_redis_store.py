"""What only the Redis store has to show: one hash tag per room, a bounded log, a Redis
that lost its data, a Redis that is away and comes back, and a password in the URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from room_service.config import load_settings, redacted_url
from room_service.domain.errors import ErrorCode
from room_service.domain.events import RoomEvent
from room_service.domain.models import Position, Signal, SignalType, Snapshot
from room_service.domain.requests import MediaChange
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions, StoreUnavailableError
from room_service.store.redis import RedisStore, connect
from tests.support.processes import start_room_service
from tests.support.redis_server import RedisServer, SentinelServer, SessionRedis, start_redis
from tests.support.room import room_stub, truth
from tests.support.stores import MEETING, RedisStores, meeting, spec
from tests.support.timing import wait_until


@pytest.fixture
async def server() -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own (it is killed and restarted)."""
    proc = await start_redis(password="s3cret-pass")
    try:
        yield proc
    finally:
        await proc.terminate()


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    """A Redis store on this test's own `server`, closed afterwards."""
    opened = await _store(server.url)
    yield opened
    await opened.close()


@pytest.fixture
async def redis_stores(session_redis: SessionRedis) -> AsyncIterator[RedisStores]:
    """Stores and plain clients on the session's redis-server, emptied first."""
    stores = RedisStores(session_redis.url)
    await stores.raw().flushall()
    try:
        yield stores
    finally:
        await stores.close()


async def _store(url: str, **options: object) -> RedisStore:
    store = RedisStore(connect(url, 0.5), StoreOptions(**options))  # type: ignore[arg-type]
    await store.upsert_meeting(meeting())
    return store


async def test_every_key_of_a_room_shares_its_hash_tag_and_the_log_stays_bounded(
    redis_stores: RedisStores,
) -> None:
    raw = redis_stores.raw()
    store = await redis_stores.store(replay_buffer=5)
    joined = await store.join(spec("u1"))
    for i in range(20):
        await store.append_chat(MEETING, joined.participant.participant_id, f"m{i}")
    keys = cast("list[str]", await raw.keys("*"))  # text: decode_responses
    room_keys = [k for k in keys if MEETING in k and not k.startswith("{edge:")]
    assert room_keys, "the room's keys were not found"
    assert all(k.startswith(f"{{room:{MEETING}}}:") for k in room_keys), room_keys
    assert await raw.xlen(f"{{room:{MEETING}}}:log") == 5
    # The bound is the replay buffer: older positions get a snapshot, newer ones replay.
    assert isinstance(await store.read_after(MEETING, Position(15, joined.position.epoch), 100), Snapshot)
    replay = await store.read_after(MEETING, Position(16, joined.position.epoch), 100)
    assert isinstance(replay, list)
    assert [e.position.sequence for e in replay] == [17, 18, 19, 20, 21]


async def test_a_watcher_gets_each_change_once_whether_its_replica_or_another_made_it(
    redis_stores: RedisStores,
) -> None:
    # A change made through the watcher's own replica reaches it twice over: the replica
    # wakes it with the entries the script returned, and the change's pub/sub message
    # arrives later; changes through another replica come by pub/sub and a Redis read.
    operations: list[str] = []
    local = await redis_stores.store(operations)
    remote = await redis_stores.store()
    manager = RoomManager(local, ManagerOptions(), RoomMetrics(CollectorRegistry()))
    first = await local.join(spec("u0"))
    seen: list[RoomEvent] = []

    async def tail() -> None:
        async for item in manager.watch(MEETING, first.position):
            assert isinstance(item, list), item  # a batch of events, never a snapshot here
            seen.extend(item)

    watcher = asyncio.create_task(tail())
    try:
        await asyncio.gather(*(((local, remote)[i % 2]).join(spec(f"u{i}")) for i in range(1, 41)))
        await wait_until(lambda: len(seen) >= 40, within=10.0, what="every join reached the watcher")
        # Quiet now: a change through the watcher's replica reaches it without a read.
        await wait_until(lambda: local._notifier.mark(f"{{room:{MEETING}}}:state") is not None, within=5.0)
        operations.clear()
        await local.join(spec("u41"))
        await wait_until(lambda: len(seen) >= 41, within=10.0, what="the local join reached the watcher")
        assert "read_after" not in operations and "wait_beyond" not in operations, operations
        await remote.join(spec("u42"))  # anything delivered twice would come before it
        await wait_until(lambda: len(seen) >= 42, within=10.0, what="the remote join reached the watcher")
        assert [e.position.sequence for e in seen] == list(range(2, 44))
        assert {e.position.epoch for e in seen} == {first.position.epoch}
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_a_quiet_signal_reader_outlasts_the_command_timeout(redis_stores: RedisStores) -> None:
    # A quiet WatchEdge stream is one blocking pop after another: each must return within
    # the client's command timeout (0.5 s here), or every pop fails as a timeout and the
    # edge's stream ends, again and again, as though the edge had gone.
    store = await redis_stores.store()
    reader = asyncio.create_task(store.next_signal("edge-quiet"))
    done, _ = await asyncio.wait({reader}, timeout=2.5)  # five command timeouts
    assert not done, f"the reader ended: {reader.exception()!r}"
    signal = Signal(SignalType.OFFER, MEETING, "participant-a", "participant-b", '"late"', "sock-b")
    await store.publish_signal("edge-quiet", signal)
    assert await asyncio.wait_for(reader, 5.0) == signal


async def test_a_redis_that_lost_its_data_starts_a_new_incarnation_and_new_epochs(
    server: RedisServer, store: RedisStore
) -> None:
    before = await store.instance_id()
    joined = await store.join(spec("u1"))
    await server.restart_empty()
    # Redis is back, empty: the first operations may meet a closed connection once.
    await wait_until(store.ready, within=15.0, what="Redis answers again")
    assert await store.instance_id() != before
    await store.upsert_meeting(meeting())
    stale = await store.read_after(MEETING, joined.position, 100)
    assert isinstance(stale, Snapshot) and stale.participants == ()
    again = await store.join(spec("u1"))
    assert again.position.sequence == 1
    assert again.position.epoch != joined.position.epoch
    assert await store.touch_edge("edge-a", 1e12) is False  # the edge must re-announce


async def test_an_unreachable_redis_is_unavailable_promptly_and_recovers_by_itself(
    server: RedisServer, store: RedisStore
) -> None:
    try:
        await store.join(spec("u1"))
        server.freeze()  # frozen: connections stay open, nothing answers
        with pytest.raises(StoreUnavailableError) as refused:
            await asyncio.wait_for(store.join(spec("u2")), 10.0)
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert not await asyncio.wait_for(store.ready(), 10.0)
        server.thaw()
        await wait_until(store.ready, within=15.0, what="Redis answers again")
        outcome = await store.join(spec("u2"))
        assert outcome.position.sequence == 2
    finally:
        server.thaw()


async def test_the_password_in_the_url_is_used_and_never_shown(server: RedisServer) -> None:
    wrong = RedisStore(connect(server.url.replace("s3cret-pass", "nope"), 0.5), StoreOptions())
    try:
        assert not await wrong.ready()
    finally:
        await wrong.close()
    store = await _store(server.url)
    await store.close()
    settings = load_settings(["--store", "redis"], {"ROOM_SERVICE_REDIS_URL": server.url})
    assert settings.redis_url.get_secret_value() == server.url
    assert "s3cret-pass" not in repr(settings)
    assert "s3cret-pass" not in redacted_url(settings.redis_url.get_secret_value())
    assert redacted_url(settings.redis_url.get_secret_value()) == f"redis://127.0.0.1:{server.port}/0"
    # A real room service at DEBUG level: it works with the password and never prints it.
    async with await start_room_service(
        "--store", "redis", "--log-level", "DEBUG", env={"ROOM_SERVICE_REDIS_URL": server.url}
    ) as proc:
        assert proc.ready is not None
        assert proc.ready["redis"] == f"redis://127.0.0.1:{server.port}/0"
        async with room_stub(proc.grpc_address) as stub:
            assert await truth(stub) == set()
    assert all("s3cret-pass" not in line.text for line in proc.lines)


async def test_through_sentinel_the_store_follows_a_failover_to_the_new_primary(tmp_path: Path) -> None:
    primary = await start_redis(password="s3cret-pass")
    replica = await start_redis(password="s3cret-pass", replica_of=primary.port)
    sentinel = SentinelServer(tmp_path, primary.port, password="s3cret-pass")
    try:
        await sentinel.start()
        url = f"redis+sentinel://:s3cret-pass@127.0.0.1:{sentinel.port}/main/0"
        store = await _store(url)
        try:
            first = await store.join(spec("u1"))
            incarnation = await store.instance_id()
            # Let the replica catch up, then lose the primary for good.
            raw = aioredis.Redis(port=replica.port, password="s3cret-pass", decode_responses=True)
            await wait_until(lambda: _has_room(raw), within=15, what="the replica has the room")
            await primary.kill()
            await wait_until(
                lambda: _joins(store), within=60, interval=0.5, what="joins work again after the failover"
            )
            await raw.aclose()
            assert await store.instance_id() == incarnation  # the data survived: no new epoch
            snapshot = await store.snapshot(MEETING)
            assert snapshot.position.epoch == first.position.epoch
            assert first.participant.participant_id in {p.participant_id for p in snapshot.participants}
        finally:
            await store.close()
    finally:
        await sentinel.terminate()
        await replica.terminate()
        await primary.terminate()


async def _has_room(raw: aioredis.Redis) -> bool:
    return bool(await raw.exists(f"{{room:{MEETING}}}:state"))


_attempts = iter(range(10_000))


async def _joins(store: RedisStore) -> bool:
    try:
        await store.join(spec(f"after-{next(_attempts)}"))
    except StoreUnavailableError:
        return False
    return True


async def test_a_join_answers_the_store_instance_with_it(redis_stores: RedisStores) -> None:
    # The Join reply names the dataset the edge talks to; the store reads it in the
    # join's own round trip instead of a read of its own.
    store = await redis_stores.store()
    instance = await store.instance_id()
    assert instance
    assert (await store.join(spec("u1"))).instance_id == instance
    assert (await store.join(spec("u1"))).instance_id == instance  # already joined


async def test_a_media_change_through_the_replica_that_seated_the_participant_is_one_round_trip(
    redis_stores: RedisStores,
) -> None:
    # The seating replica knows the stored participant: the compare-and-set needs no read
    # first. Another replica reads it once, then knows it too.
    operations: list[str] = []
    remote_operations: list[str] = []
    local = await redis_stores.store(operations)
    remote = await redis_stores.store(remote_operations)
    await local.upsert_meeting(meeting())
    pid = (await local.join(spec("u1"))).participant.participant_id
    operations.clear()
    for audio in (False, True, False):
        assert (await local.update_media(MediaChange(MEETING, pid, pid, audio=audio)))[1] is not None
    assert operations == ["update_media"] * 3, operations
    # Through the use case too: its permission check reads nothing for this change.
    manager = RoomManager(local, ManagerOptions(), RoomMetrics(CollectorRegistry()))
    operations.clear()
    assert (await manager.update_media(MediaChange(MEETING, pid, pid, video=False)))[1] is not None
    assert operations == ["update_media"], operations
    remote_operations.clear()
    assert (await remote.update_media(MediaChange(MEETING, pid, pid, video=True)))[1] is not None
    assert (await remote.update_media(MediaChange(MEETING, pid, pid, video=False)))[1] is not None
    assert remote_operations == ["get_participant", "update_media", "update_media"], remote_operations


async def test_joins_through_the_replica_that_made_every_change_do_not_read_the_roster_back(
    redis_stores: RedisStores,
) -> None:
    # The replica knows the room's roster at its head: Redis checks that claim and sends
    # nobody back (the join script reads the roster with ZRANGE only when it must).
    store = await redis_stores.store()
    raw = redis_stores.raw()
    await store.upsert_meeting(meeting())
    await store.join(spec("u0"))
    await raw.config_resetstat()
    outcomes = [await store.join(spec(f"u{i}")) for i in range(1, 6)]
    assert [p.user_id for p in outcomes[-1].others] == ["u0", "u1", "u2", "u3", "u4"]
    stats = await raw.info("commandstats")
    assert stats.get("cmdstat_evalsha", {}).get("calls") == 5, stats
    assert "cmdstat_zrange" not in stats, stats

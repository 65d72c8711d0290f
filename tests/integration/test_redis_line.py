"""The connection room changes take to one Redis server (`redis_line`), against a real
redis-server: calls made together each get their own replies, a caller that stops waiting
disturbs nobody behind it, and a connection that breaks fails what waits on it and is
made again for the next call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from room_service.store.redis import connect
from room_service.store.redis_line import RedisLine, pack
from tests.support.redis_server import SessionRedis
from tests.support.timing import wait_until


@pytest.fixture
async def line(session_redis: SessionRedis) -> AsyncIterator[RedisLine]:
    client = connect(session_redis.url, 1.0)
    assert isinstance(client, aioredis.Redis)
    made = RedisLine(client.connection_pool.make_connection)
    try:
        yield made
    finally:
        await made.close()
        await client.aclose()


async def test_calls_made_together_each_get_their_own_replies_in_order(line: RedisLine) -> None:
    replies = await asyncio.gather(*(line.call([("ECHO", f"a{i}"), ("ECHO", i)]) for i in range(200)))
    assert replies == [[f"a{i}", str(i)] for i in range(200)]


async def test_an_error_reply_is_that_commands_reply(line: RedisLine) -> None:
    first, failed, last = await line.call([("ECHO", "x"), ("NO-SUCH-COMMAND",), ("ECHO", "y")])
    assert (first, last) == ("x", "y")
    assert isinstance(failed, ResponseError)


async def test_a_command_that_cannot_be_sent_is_refused_and_disturbs_nothing(line: RedisLine) -> None:
    with pytest.raises(DataError):
        await line.call([("ECHO", "fine"), ("ECHO", {"not": "encodable"})])
    assert await line.call([("ECHO", "after")]) == ["after"]


async def test_a_caller_that_stops_waiting_leaves_the_calls_behind_it_their_replies(
    line: RedisLine,
) -> None:
    # The first call's reply comes late (the server blocks it); its caller gives up.
    slow = asyncio.create_task(line.call([("BLPOP", "{line-test}:nothing", 0.3)]))
    behind = asyncio.create_task(line.call([("ECHO", "mine")]))
    await asyncio.sleep(0)  # both written
    slow.cancel()
    assert await asyncio.wait_for(behind, 5.0) == ["mine"]
    assert await line.call([("ECHO", "next")]) == ["next"]


async def test_a_broken_connection_fails_its_calls_and_the_next_call_connects_again(
    line: RedisLine, session_redis: SessionRedis
) -> None:
    admin = aioredis.Redis.from_url(session_redis.url, decode_responses=True)
    try:
        assert await line.call([("CLIENT", "SETNAME", "line-under-test")]) == ["OK"]
        waiting = asyncio.create_task(line.call([("BLPOP", "{line-test}:nothing", 5)]))

        async def blocked() -> bool:
            clients = await admin.client_list()
            return any(c["name"] == "line-under-test" and c["cmd"] == "blpop" for c in clients)

        await wait_until(blocked, within=5.0, what="the line's call blocked in Redis")
        (ours,) = [c["id"] for c in await admin.client_list() if c["name"] == "line-under-test"]
        assert await admin.client_kill_filter(_id=ours) == 1
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(waiting, 5.0)
        assert await line.call([("ECHO", "again")]) == ["again"]
    finally:
        await admin.aclose()


async def test_calls_that_redis_never_answers_fail_at_the_socket_timeout_and_the_line_recovers(
    session_redis: SessionRedis,
) -> None:
    # As on a half-open connection: nothing comes back. No deadline wraps these calls, so
    # only the line's backstop (the connection's socket timeout) can end them.
    client = connect(session_redis.url, 0.1)
    assert isinstance(client, aioredis.Redis)
    made = RedisLine(client.connection_pool.make_connection)
    try:
        assert await made.call([("ECHO", "first")]) == ["first"]
        silent = asyncio.create_task(made.call([("BLPOP", "{line-test}:never", 0)]))
        behind = asyncio.create_task(made.call([("ECHO", "behind")]))
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(silent, 30.0)
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(behind, 30.0)
        assert await made.call([("ECHO", "again")]) == ["again"]
    finally:
        await made.close()
        await client.aclose()


@pytest.mark.parametrize(
    "words",
    [
        ("SET", "k", "välue ✓"),
        ("ZADD", "{edges}:leases", 1733140000.123456, "edge-1"),
        ("ECHO", b"\x00\xffraw"),
        ("EVALSHA", "abc", 2, "a", "b", -7, 0.1, "", 10**20),
    ],
)
def test_commands_are_packed_as_redis_py_packs_them(words: tuple[object, ...]) -> None:
    connection = connect("redis://localhost:1/0", 1.0).connection_pool.make_connection()  # type: ignore[union-attr]
    assert pack([words, words], "utf-8", "strict") == b"".join(connection.pack_commands([words, words]))


@pytest.mark.parametrize("word", [True, None, {"a": 1}, [1]])
def test_an_argument_redis_py_would_refuse_is_refused(word: object) -> None:
    with pytest.raises(DataError):
        pack([("ECHO", word)], "utf-8", "strict")

"""The store watcher: a ping counts as missed only when the store did not answer in time,
not when this process's own loop was too busy to read the answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from room_service.store.base import StoreOptions
from room_service.store.redis import RedisStore, connect
from room_service.store_watch import StoreWatch

_TIMEOUT = 0.2


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback server that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_ping_that_fails_in_a_stalled_loop_is_not_counted() -> None:
    # As a client reads it when the loop was blocked (a join storm's work) past the
    # timeout: the reply may have been in time, so nothing is known about the store.
    async def timed_out_in_a_stall() -> bool:
        time.sleep(3 * _TIMEOUT)  # noqa: ASYNC251 - the stall itself
        return False

    watch = StoreWatch(timed_out_in_a_stall, _TIMEOUT, misses=3)
    try:
        for _ in range(5):
            assert await watch.check()
        assert watch.misses == 0 and not watch.answered
    finally:
        await watch.close()


async def test_a_store_that_does_not_answer_is_down_after_three_misses_and_back_on_one_answer(
    silent_port: int,
) -> None:
    store = RedisStore(connect(f"redis://127.0.0.1:{silent_port}", _TIMEOUT), StoreOptions())
    answering = False

    async def ping() -> bool:
        return True if answering else await store.ready()

    watch = StoreWatch(ping, _TIMEOUT, misses=3)
    try:
        assert [await watch.check() for _ in range(3)] == [True, True, False]
        assert watch.misses == 3
        answering = True
        assert await watch.check() and watch.misses == 0
    finally:
        await watch.close()
        await store.close()

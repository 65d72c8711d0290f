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
# Enough for three counted misses even when a few pings are excused by a late loop.
_MAX_CHECKS = 15


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
        # On a busy machine a ping may fail while this loop also ran late: that one is
        # excused (the test above), so count checks until the watch gives up, not to three.
        seen: list[tuple[bool, int]] = []
        for _ in range(_MAX_CHECKS):
            seen.append((await watch.check(), watch.misses))
            if not seen[-1][0]:
                break
        assert seen[-1] == (False, 3), seen
        assert all(up == (misses < 3) for up, misses in seen), seen
        assert not watch.answered
        answering = True
        assert await watch.check() and watch.misses == 0
    finally:
        await watch.close()
        await store.close()


def _sampling() -> bool:
    return any(t.get_name() == "loop-lag" and not t.done() for t in asyncio.all_tasks())


async def test_the_loop_is_sampled_only_while_a_check_runs() -> None:
    during: list[bool] = []

    async def ping() -> bool:
        during.append(_sampling())
        return len(during) != 2  # the second ping fails: sampled up to the end of its check

    watch = StoreWatch(ping, _TIMEOUT, misses=3)
    try:
        for _ in range(3):
            await watch.check()
            await asyncio.sleep(0)  # the sampler's cancellation is delivered
            assert not _sampling()
        assert during == [True, True, True]
    finally:
        await watch.close()

"""Fixtures of these tests: the in-process edge stack (tests.support.edge_stack) and the
WatchRoom streams a test opens (tests.support.room_watch)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.edge_stack import Client, Connect, Stack, start_stack, stop_stack
from tests.support.room_watch import Watch

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, LoopFactory]:
    """Each test's event loop: asyncio's, or the one its module names in LOOP_FACTORY."""
    factory: LoopFactory = getattr(getattr(item, "module", None), "LOOP_FACTORY", asyncio.new_event_loop)
    return {factory.__module__.partition(".")[0]: factory}


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    running = await start_stack()
    try:
        yield running
    finally:
        await stop_stack(running)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(name: str) -> Client:
        made.append(client := Client(name))
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            await client.sio.disconnect()


@pytest.fixture
def connected(stack: Stack, clients: Callable[[str], Client]) -> Connect:
    """Makes a client per name and connects each, in order, to the stack's edge."""

    async def connect(*names: str) -> list[Client]:
        made = [clients(name) for name in names]
        for client in made:
            await client.connect(stack.url)
        return made

    return connect


@pytest.fixture
async def watches() -> AsyncIterator[list[Watch]]:
    """WatchRoom streams a test opens; closed after it."""
    opened: list[Watch] = []
    yield opened
    for watch in opened:
        await watch.close()

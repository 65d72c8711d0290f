"""Fixtures of the in-process edge stack (tests.support.edge_stack) for these tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.edge_stack import Client, Stack, start_stack, stop_stack


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

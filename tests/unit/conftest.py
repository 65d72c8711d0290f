"""The store conformance fixture: every test using `new_store` runs once per store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.redis_server import SessionRedis
from tests.support.stores import StoreFactory


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Makes stores of one kind; the Redis ones on this session's redis-server, flushed."""
    url = ""
    if request.param == "redis":
        server: SessionRedis = request.getfixturevalue("session_redis")
        url = server.url
    factory = StoreFactory(request.param, url)
    await factory.flush()
    yield factory
    await factory.close()
    await factory.flush()

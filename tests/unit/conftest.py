"""The store conformance fixture: every test using `new_store` runs once per store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.redis_cluster import SessionRedisCluster
from tests.support.redis_server import SessionRedis
from tests.support.stores import StoreFactory


@pytest.fixture(scope="session")
def session_redis_cluster() -> Iterator[SessionRedisCluster]:
    """A three-node Redis Cluster for the whole session (tests flush it)."""
    with SessionRedisCluster() as cluster:
        yield cluster


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Makes stores of one kind; the Redis ones on this session's redis-server (or Redis
    Cluster), flushed before and after."""
    url = ""
    if request.param == "redis":
        server: SessionRedis = request.getfixturevalue("session_redis")
        url = server.url
    elif request.param == "redis-cluster":
        cluster: SessionRedisCluster = request.getfixturevalue("session_redis_cluster")
        url = cluster.url
    factory = StoreFactory(request.param, url)
    await factory.flush()
    yield factory
    await factory.close()
    await factory.flush()

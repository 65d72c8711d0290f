"""Room-service replicas sharing one redis-server, started the way `make run` starts a
room service (`python -m room_service --store redis`), and the edge target naming them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tests.support.processes import RoomServiceProcess, start_room_service, start_together, terminate_all
from tests.support.redis_server import RedisServer, start_redis

# Short leases and grace, as for the single room service of the other fault tests.
REPLICA_ARGS = ("--store", "redis", "--edge-lease-seconds", "3", "--restore-grace-seconds", "1")


class Replicas:
    """N replicas on one Redis; each keeps its gRPC port across restarts."""

    def __init__(self, redis: RedisServer, extra: Sequence[str]) -> None:
        self.redis = redis
        self.extra = tuple(extra)
        self.procs: list[RoomServiceProcess] = []
        self.addresses: list[str] = []

    async def start(self, count: int) -> None:
        """Starts `count` replicas on free ports, together."""
        self.procs = await start_together(*(self._start(i, "127.0.0.1:0") for i in range(count)))
        self.addresses = [proc.grpc_address for proc in self.procs]

    async def _start(self, index: int, address: str) -> RoomServiceProcess:
        return await start_room_service(
            *REPLICA_ARGS,
            *self.extra,
            "--grpc-address",
            address,
            env={"ROOM_SERVICE_REDIS_URL": self.redis.url},
            name=f"replica-{index}",
        )

    @property
    def target(self) -> str:
        """One gRPC target naming every replica (what an edge is given)."""
        return "ipv4:" + ",".join(self.addresses)

    async def kill(self, index: int) -> None:
        """SIGKILL one replica (no goodbye to anyone)."""
        await self.procs[index].kill()

    async def restart(self, index: int, *, graceful: bool = True) -> None:
        """Stops one replica (SIGTERM, or SIGKILL) and starts it again on its port."""
        if graceful:
            await self.procs[index].terminate()
        else:
            await self.procs[index].kill()
        self.procs[index] = await self._start(index, self.addresses[index])

    async def stop(self) -> None:
        """Stops every replica."""
        await terminate_all(self.procs)


@asynccontextmanager
async def replicas_on_redis(count: int = 2, *extra: str) -> AsyncIterator[Replicas]:
    """A fresh redis-server and `count` replicas on it; all stopped on exit."""
    redis = await start_redis()
    replicas = Replicas(redis, extra)
    try:
        await replicas.start(count)
        yield replicas
    finally:
        await replicas.stop()
        await redis.terminate()

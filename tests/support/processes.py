"""Start the real entry points (``python -m room_service`` / ``python -m edge_gateway``)
as subprocesses, the way ``make run`` does, and read their ready lines.

Each tier writes JSON log lines to stderr; one of them is the ready line (``"msg": "room
service ready"`` with ``grpc_address``/``metrics_address``, ``"msg": "edge gateway
ready"`` with ``http_address``). The processes are
:class:`~tests.support.managed.ManagedProcess` es: their lines are kept for assertions and
printed when a test using one as a context manager fails.

Usage::

    async with await start_room_service() as rs:
        async with await start_edge(rs.grpc_address) as edge:
            ... edge.url ...

or, in a fixture, ``proc = await start_room_service()`` then ``await proc.terminate()``
in the finaliser. ``msg_is`` is exported here too: a test that starts the tiers looks
for their log lines with it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar

import aiohttp

from tests.support.managed import ManagedProcess
from tests.support.process_log import ProcessError, msg_is
from tests.support.timing import wait_until

__all__ = [
    "EDGE_READY",
    "QUICK_STOP",
    "ROOM_SERVICE_READY",
    "EdgeProcess",
    "RoomServiceProcess",
    "edge_argv",
    "msg_is",
    "room_service_argv",
    "split_address",
    "start_edge",
    "start_room_service",
    "start_together",
    "terminate_all",
]

ROOM_SERVICE_READY = "room service ready"
EDGE_READY = "edge gateway ready"

QUICK_STOP = ("--shutdown-grace-seconds", "0.2")
"""Room-service flags for one that the test stops only once it is done with it. At the
shipped grace (5 s) every stop first waits out a 0.5 s drain (``_DRAIN_SECONDS`` in
room_service/app.py: half the grace, at most 0.5 s) for edges still sending calls; at a
test's end no edge is left, so the drain only costs half a second per test. Not for a
room service a test stops gracefully mid-test (a restart): that one relies on the drain."""


def split_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:PORT"`` -> ``("127.0.0.1", PORT)``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class RoomServiceProcess(ManagedProcess):
    @property
    def grpc_address(self) -> str:
        return self._ready_field("grpc_address")

    @property
    def metrics_address(self) -> str:
        return self._ready_field("metrics_address")

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    def _ready_field(self, key: str) -> str:
        if self.ready is None or key not in self.ready:
            raise ProcessError(f"{self.name}: ready line has no {key!r}: {self.ready!r}")
        return str(self.ready[key])


class EdgeProcess(ManagedProcess):
    @property
    def http_address(self) -> str:
        if self.ready is None or "http_address" not in self.ready:
            raise ProcessError(f"{self.name}: ready line has no 'http_address': {self.ready!r}")
        return str(self.ready["http_address"])

    @property
    def url(self) -> str:
        """Base URL for socket.io-client / HTTP (``http://127.0.0.1:PORT``)."""
        return f"http://{self.http_address}"

    async def readyz(self) -> int:
        """The status code of ``/readyz``."""
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/readyz") as response:
            return response.status

    async def wait_ready(self, *, within: float) -> float:
        """Polls ``/readyz`` until it answers 200; returns the seconds it took."""

        async def ready() -> bool:
            return await self.readyz() == 200

        return await wait_until(ready, within=within, what=f"{self.name} ready")


def _tier_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, "--log-format", "json", *args]


def room_service_argv(*args: str) -> list[str]:
    """``python -m room_service`` on free loopback ports, logging JSON; then ``args``."""
    return _tier_argv(
        "room_service", "--grpc-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", *args
    )


def edge_argv(room_service_address: str, *args: str) -> list[str]:
    """``python -m edge_gateway`` on a free loopback port, logging JSON; then ``args``."""
    return _tier_argv(
        "edge_gateway", "--http-address", "127.0.0.1:0", "--room-service-address", room_service_address, *args
    )


async def start_room_service(
    *args: str,
    env: Mapping[str, str] | None = None,
    name: str = "room_service",
    ready_timeout: float = 20.0,
    echo: bool = False,
) -> RoomServiceProcess:
    """Start ``python -m room_service`` on ephemeral loopback ports and wait until ready.
    Later flags in ``args`` override the defaults (e.g. a fixed ``--grpc-address`` for a
    restart on the same port)."""
    proc = RoomServiceProcess(
        name,
        room_service_argv(*args),
        ready_msg=ROOM_SERVICE_READY,
        env=env,
        ready_timeout=ready_timeout,
        echo=echo,
    )
    await proc.start()
    return proc


async def start_edge(
    room_service_address: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    name: str = "edge_gateway",
    ready_timeout: float = 20.0,
    echo: bool = False,
) -> EdgeProcess:
    """Start ``python -m edge_gateway`` on an ephemeral loopback port against the given
    room service and wait until ready."""
    argv = edge_argv(room_service_address, *args)
    proc = EdgeProcess(name, argv, ready_msg=EDGE_READY, env=env, ready_timeout=ready_timeout, echo=echo)
    await proc.start()
    return proc


Started = TypeVar("Started", bound=ManagedProcess)


async def start_together(*starts: Awaitable[Started]) -> list[Started]:
    """Awaits several process starts at once (``start_edge(...)`` calls, say), in order.
    A start is mostly the interpreter importing its tier: one after the other, the waits
    only add up. When one fails, those that started are terminated and its error raised."""
    results = await asyncio.gather(*starts, return_exceptions=True)
    started = [proc for proc in results if isinstance(proc, ManagedProcess)]
    for failed in results:
        if isinstance(failed, BaseException):
            await terminate_all(started)
            raise failed
    return started


async def terminate_all(procs: Sequence[ManagedProcess], grace: float = 5.0) -> None:
    """Terminate several processes concurrently (for fixture finalisers)."""
    await asyncio.gather(*(p.terminate(grace) for p in procs), return_exceptions=True)

"""A loopback TCP proxy a test can cut: put it between an edge and the room service to
break gRPC connections for real (``sever``), refuse new ones (``block``) or make them
go silent without closing (``freeze``, a stalled network); between the official client
and an edge it cuts a browser's TCP connection, and ``retarget`` plays the load balancer
that sends the reconnecting client to another edge.

Usage::

    async with TcpProxy(room_service.grpc_address) as proxy:
        edge = await start_edge(proxy.address)
        ...
        proxy.block()      # sever every connection and refuse new ones
        proxy.unblock()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from tests.support.processes import split_address

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()
        for task in self.pumps:
            task.cancel()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target`` ("host:port")."""

    def __init__(self, target: str) -> None:
        self.target = split_address(target)
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._blocked = False
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def address(self) -> str:
        """Where to connect instead of the target."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.sever()
        self._flowing.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- faults -----------------------------------------------------------------------

    @property
    def open_links(self) -> int:
        return len(self._links)

    def sever(self) -> int:
        """Resets every open connection (both sides see it at once); returns how many."""
        links = list(self._links)
        self._links.clear()
        for link in links:
            link.abort()
        return len(links)

    def block(self) -> None:
        """Severs everything and refuses new connections until :meth:`unblock`."""
        self._blocked = True
        self.sever()

    def unblock(self) -> None:
        self._blocked = False

    def retarget(self, target: str) -> None:
        """New connections go to ``target`` from now on (a load balancer sending a client
        that reconnects to another backend); open ones are left alone."""
        self.target = split_address(target)

    def freeze(self) -> None:
        """Stops forwarding in both directions without closing anything (silent cut)."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    # -- plumbing ---------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._blocked:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        link.pumps = [
            asyncio.create_task(self._pump(reader, up_writer, link)),
            asyncio.create_task(self._pump(up_reader, writer, link)),
        ]
        self._links.add(link)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if link in self._links:
                self._links.discard(link)
                link.abort()

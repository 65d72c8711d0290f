"""A bare EdgeSocketServer on loopback whose sockets all join one room, and a raw
WebSocket client that keeps frames exactly as they arrived: the write-path tests' parts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiohttp import web

from edge_gateway.engine import EdgeSocketServer
from meeting_common.net import bound_port

ROOM = "room"


@dataclass
class Served:
    sio: EdgeSocketServer
    url: str
    drops: list[int] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)  # sid -> disconnect reason
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    runner: web.AppRunner | None = None

    async def wait_left(self, sid: str, timeout: float) -> str:
        """The reason `sid` disconnected with, once it has."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: sid in self.left)
        return self.left[sid]


@contextlib.asynccontextmanager
async def serve(max_buffered_bytes: int = 1 << 20, **options: Any) -> AsyncIterator[Served]:
    """An EdgeSocketServer whose sockets join ROOM on connect."""
    drops: list[int] = []
    sio = EdgeSocketServer(
        async_mode="aiohttp",
        max_buffered_bytes=max_buffered_bytes,
        on_drop=lambda: drops.append(1),
        **options,
    )
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served = Served(sio, f"http://127.0.0.1:{bound_port(site)}", drops, runner=runner)

    async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, ROOM)

    async def on_disconnect(sid: str, reason: Any = None) -> None:
        served.left[sid] = str(reason)
        async with served.changed:
            served.changed.notify_all()

    sio.on("connect", on_connect)
    sio.on("disconnect", on_disconnect)
    try:
        yield served
    finally:
        if sio.eio.sockets:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sio.eio.disconnect(), 3)  # every socket told to close
        await sio.shutdown()
        await runner.cleanup()


class RawSocket:
    """Socket.IO over a plain WebSocket, frames kept exactly as they arrived."""

    def __init__(self, ws: Any, eio_sid: str, sid: str) -> None:
        self.ws, self.eio_sid, self.sid = ws, eio_sid, sid

    @classmethod
    async def open(cls, url: str, *, rcvbuf: int | None = None) -> RawSocket:
        sock = None
        if rcvbuf is not None:  # a small window, so that a paused reader backs up quickly
            host, port = url.removeprefix("http://").split(":")
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect((host, int(port)))
            sock.setblocking(False)
        ws = await websockets.connect(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            max_size=None,
            sock=sock,
        )
        opened = str(await asyncio.wait_for(ws.recv(), 5))
        assert opened.startswith("0{"), opened
        await ws.send("40")
        connected = str(await asyncio.wait_for(ws.recv(), 5))
        assert connected.startswith("40"), connected
        return cls(ws, json.loads(opened[1:])["sid"], json.loads(connected[2:])["sid"])

    async def frames_until(self, last: str, limit: int = 100_000) -> list[str]:
        """Every frame up to and including `last` (server pings answered, not returned)."""
        frames: list[str] = []
        async with asyncio.timeout(30):
            while len(frames) < limit:
                frame = str(await self.ws.recv())
                if frame == "2":
                    await self.ws.send("3")
                    continue
                frames.append(frame)
                if frame == last:
                    return frames
        raise AssertionError(f"no {last!r} in {len(frames)} frames")


def numbers(frames: list[str], event: str) -> list[int]:
    """The `n` of every `event` frame, in arrival order."""
    out = []
    for frame in frames:
        if frame.startswith("42["):
            name, *data = json.loads(frame[2:])
            if name == event:
                out.append(data[0]["n"])
    return out


class CountingTransport:
    """A transport that counts the writes given to it (frames per write), passing them on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(1)
        self.inner.write(data)

    def writelines(self, frames: Any) -> None:
        frames = list(frames)
        self.writes.append(len(frames))
        self.inner.writelines(frames)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @classmethod
    def around(cls, sio: EdgeSocketServer, raw: RawSocket) -> CountingTransport:
        """Counts the writes to `raw`'s connection from now on."""
        outbox = sio.eio.sockets[raw.eio_sid].queue
        counting = cls(outbox.transport)
        outbox._transport = counting
        return counting


def on_burst(sio: EdgeSocketServer, after_each: Callable[[str, int], Any] | None = None) -> None:
    """Answers `burst` (count) with events `n` numbered 0..count-1, every third emitted to
    the asking socket alone and the others to ROOM, then the ack `count`; `after_each`
    (sid, n), if given, is awaited after each emit."""

    async def burst(sid: str, count: int) -> int:
        for n in range(count):
            if n % 3 == 0:
                await sio.emit("n", {"n": n}, to=sid)
            else:
                await sio.emit("n", {"n": n}, room=ROOM)
            if after_each is not None:
                await after_each(sid, n)
        return count

    sio.on("burst", burst)

"""The edge's WebSocket connection after the hand-over (edge_gateway/engine_ws.py), spoken
to frame by frame over loopback: masking, fragments, control frames, size and protocol
errors, the closing handshake in both directions, and what is left of aiohttp's request.
Over 300 lines: it mirrors engine_ws.py, one module of upstream extensions, and its cases
share the raw-frame client below."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import uvloop

from edge_gateway import engine_ws
from edge_gateway.engine_ws import EngineConnection
from tests.support.timing import wait_until
from tests.support.write_path import Served, serve

LOOP_FACTORY = uvloop.new_event_loop
"""The edge runs on uvloop; read by tests/integration/conftest.py."""

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """One client frame (masked, as RFC 6455 requires of clients, unless told otherwise)."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawPeer:
    """A WebSocket client at the frame level: what it sends is exactly what the test wrote."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sid = ""
        self.eio_sid = ""

    @classmethod
    async def open(cls, url: str, *, tail: bytes = b"") -> RawPeer:
        """The upgrade (with `tail` sent in the same write), then the Engine.IO OPEN and a
        Socket.IO CONNECT to the default namespace."""
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            + tail
        )
        async with asyncio.timeout(5):
            status = await reader.readuntil(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        peer = cls(reader, writer)
        opcode, opened = await peer.read()
        assert opcode == TEXT and opened.startswith(b"0{"), opened
        peer.eio_sid = str(json.loads(opened[1:])["sid"])
        return peer

    async def connect(self) -> str:
        """Socket.IO CONNECT; the Socket.IO sid."""
        self.send(frame(TEXT, b"40"))
        opcode, data = await self.read_data()
        assert opcode == TEXT and data.startswith(b"40"), data
        self.sid = str(json.loads(data[2:])["sid"])
        return self.sid

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self) -> tuple[int, bytes]:
        """The next server frame (opcode, payload); server frames are never masked."""
        async with asyncio.timeout(10):
            first, second = await self.reader.readexactly(2)
            assert not second & 0x80, "a server frame was masked"
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(size)

    async def read_data(self) -> tuple[int, bytes]:
        """The next frame that is not an Engine.IO PING (those are answered)."""
        while True:
            opcode, data = await self.read()
            if opcode == TEXT and data == b"2":
                self.send(frame(TEXT, b"3"))
                continue
            return opcode, data

    async def read_close(self) -> int:
        """Frames up to the server's CLOSE; its status code."""
        while True:
            opcode, data = await self.read_data()
            if opcode == CLOSE:
                return int(struct.unpack("!H", data[:2])[0])

    async def ended(self) -> bool:
        """True once the server closed the TCP connection."""
        async with asyncio.timeout(10):
            while await self.reader.read(4096):
                pass
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@contextlib.asynccontextmanager
async def raw_peer(url: str, *, tail: bytes = b"") -> AsyncIterator[RawPeer]:
    """A RawPeer, upgraded and connected, closed on the way out."""
    peer = await RawPeer.open(url, tail=tail)
    try:
        yield peer
    finally:
        peer.close()


@contextlib.asynccontextmanager
async def echo_server(**options: Any) -> AsyncIterator[Served]:
    """serve() with an `echo` event that sends its data back as `echoed`."""
    async with serve(**options) as served:

        async def echo(sid: str, data: Any) -> None:
            await served.sio.emit("echoed", data, to=sid)

        served.sio.on("echo", echo)
        yield served


async def test_after_the_upgrade_the_connection_is_ours_and_aiohttp_forgets_the_request() -> None:
    async with echo_server() as served, raw_peer(served.url) as peer:
        await peer.connect()
        sock = next(iter(served.sio.eio.sockets.values()))
        transport = sock.queue.transport
        assert isinstance(transport.get_protocol(), EngineConnection)
        # aiohttp's request handler and its task are gone (its server tracks no connection).
        assert served.runner is not None
        runner_server = served.runner.server
        assert runner_server is not None
        assert not runner_server.connections


async def test_frames_sent_with_the_upgrade_request_are_read() -> None:
    async with echo_server() as served, raw_peer(served.url, tail=frame(TEXT, b"40")) as peer:
        opcode, data = await peer.read_data()
        assert opcode == TEXT and data.startswith(b"40{")


async def test_a_fragmented_message_with_a_ping_between_its_fragments_and_frames_cut_anywhere() -> None:
    async with echo_server() as served, raw_peer(served.url) as peer:
        await peer.connect()
        message = b'42["echo",{"text":"' + "é".encode() * 200 + b'"}]'
        wire = (
            frame(TEXT, message[:10], fin=False)
            + frame(PING, b"are you there")
            + frame(0x0, message[10:300], fin=False)
            + frame(0x0, message[300:])
        )
        for i in range(0, len(wire), 7):  # seven bytes a write: every frame cut somewhere
            peer.send(wire[i : i + 7])
            await peer.writer.drain()
        assert await peer.read_data() == (PONG, b"are you there")
        opcode, echoed = await peer.read_data()
        assert opcode == TEXT
        assert json.loads(echoed[2:]) == ["echoed", {"text": "é" * 200}]
        # Two messages in one write, the first with a 16-bit length.
        big = b'42["echo",{"n":"' + b"x" * 300 + b'"}]'
        peer.send(frame(TEXT, big) + frame(TEXT, b'42["echo",{"n":2}]'))
        assert json.loads((await peer.read_data())[1][2:]) == ["echoed", {"n": "x" * 300}]
        assert json.loads((await peer.read_data())[1][2:]) == ["echoed", {"n": 2}]


async def test_a_binary_attachment_arrives_in_a_binary_frame() -> None:
    async with serve() as served:
        got: list[Any] = []
        arrived = asyncio.Event()

        async def on_bin(sid: str, data: Any) -> None:
            got.append(data)
            arrived.set()

        served.sio.on("bin", on_bin)
        async with raw_peer(served.url) as peer:
            await peer.connect()
            peer.send(
                frame(TEXT, b'451-["bin",{"_placeholder":true,"num":0}]') + frame(BINARY, b"\x00\x01\xff")
            )
            async with asyncio.timeout(10):
                await arrived.wait()
            assert got == [b"\x00\x01\xff"]


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (frame(TEXT, b'42["echo",1]', masked=False), 1002),  # a client frame must be masked
        (frame(TEXT, b'42["echo",1]', rsv=0x40), 1002),  # no extension was negotiated
        (frame(0x0, b"orphan"), 1002),  # a continuation with no message to continue
        (frame(TEXT, b"4", fin=False) + frame(TEXT, b"2"), 1002),  # a new message inside one
        (frame(PING, b"x", fin=False), 1002),  # control frames are never fragmented
        (frame(PING, b"x" * 126), 1002),  # nor longer than 125 bytes
        (frame(0x3, b"reserved"), 1002),  # an opcode RFC 6455 does not define
        (frame(TEXT, b"4\xff\xfe"), 1007),  # text that is not UTF-8
        (struct.pack("!BBQ", 0x81, 0x80 | 127, 10 << 20), 1009),  # refused before its payload
    ],
    ids=["unmasked", "rsv", "orphan", "nested", "fragmented-ping", "long-ping", "opcode", "utf8", "too-big"],
)
async def test_a_protocol_error_closes_with_its_code_and_the_socket_leaves(wire: bytes, code: int) -> None:
    async with echo_server(max_http_buffer_size=1 << 20) as served, raw_peer(served.url) as peer:
        sid = await peer.connect()
        peer.send(wire)
        assert await peer.read_close() == code
        assert await peer.ended()
        assert await served.wait_left(sid, 10) == "transport close"


async def test_a_message_over_the_limit_in_fragments_is_refused() -> None:
    async with echo_server(max_http_buffer_size=1000) as served, raw_peer(served.url) as peer:
        sid = await peer.connect()
        peer.send(frame(TEXT, b"4" + b"x" * 600, fin=False) + frame(0x0, b"x" * 600))
        assert await peer.read_close() == 1009
        assert await served.wait_left(sid, 10) == "transport close"


async def test_the_clients_close_is_answered_with_its_code() -> None:
    async with echo_server() as served, raw_peer(served.url) as peer:
        sid = await peer.connect()
        peer.send(frame(CLOSE, struct.pack("!H", 4001) + b"bye"))
        assert await peer.read_close() == 4001
        assert await peer.ended()
        assert await served.wait_left(sid, 10) == "transport close"


async def test_a_server_disconnect_closes_and_cuts_a_peer_that_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_ws, "CLOSE_SECONDS", 0.5)
    async with echo_server() as served, raw_peer(served.url) as answering, raw_peer(served.url) as silent:
        for peer in (answering, silent):
            await peer.connect()
            await served.sio.eio.disconnect(peer.eio_sid)
            frames = []
            while (got := await peer.read_data())[0] != CLOSE:
                frames.append(got)
            assert frames == [(TEXT, b"1")]  # Engine.IO's goodbye before the WebSocket's
            assert struct.unpack("!H", got[1][:2])[0] == 1000
        answering.send(frame(CLOSE, struct.pack("!H", 1000)))
        assert await answering.ended()
        assert await silent.ended()  # cut once CLOSE_SECONDS passed without its answer


async def test_a_malformed_engineio_packet_closes_the_socket() -> None:
    async with echo_server() as served, raw_peer(served.url) as peer:
        sid = await peer.connect()
        peer.send(frame(TEXT, b""))  # no packet type at all
        assert await peer.read_close() == 1000
        assert await served.wait_left(sid, 10) == "transport close"


async def test_a_failed_upgrade_probe_closes_the_websocket_and_the_socket_goes_on_polling() -> None:
    async with echo_server() as served, aiohttp.ClientSession() as http:
        base = served.url + "/socket.io/?EIO=4&transport=polling"
        async with http.get(base) as reply:
            opened = await reply.text()
        eio_sid = json.loads(opened[1:])["sid"]
        polling = f"{base}&sid={eio_sid}"
        async with http.post(polling, data="40") as reply:
            assert reply.status == 200
        async with http.get(polling) as reply:
            assert (await reply.text()).startswith("40{")
        ws = await http.ws_connect(polling.replace("http://", "ws://").replace("polling", "websocket"))
        await ws.send_str("2notaprobe")
        closing = await asyncio.wait_for(ws.receive(), 10)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        await ws.close()
        sock = served.sio.eio.sockets[eio_sid]
        await wait_until(lambda: not sock.upgrading, within=10, what="the upgrade given up")
        assert not sock.upgraded and not sock.closed
        async with http.post(polling, data='42["echo",{"still":"polling"}]') as reply:
            assert reply.status == 200
        async with http.get(polling) as reply:
            assert '42["echoed",{"still":"polling"}]' in await reply.text()


async def test_a_pong_is_taken_alone_cut_in_two_or_glued_to_another_frame() -> None:
    """An Engine.IO PONG however TCP delivers it: each PING here follows only once the
    previous one's PONG was taken (the next PING is scheduled by the PONG)."""
    async with echo_server(ping_interval=0.1, ping_timeout=5) as served, raw_peer(served.url) as peer:
        await peer.connect()
        conn = served.sio.eio.sockets[peer.eio_sid].queue.transport.get_protocol()
        pong = frame(TEXT, b"3")
        others: list[bytes] = []

        async def next_ping() -> None:
            while (got := await peer.read()) != (TEXT, b"2"):
                others.append(got[1])

        await next_ping()
        peer.send(pong)  # alone
        await next_ping()
        peer.send(pong[:3])  # cut in two, each part read on its own
        await wait_until(lambda: conn._buffer == pong[:3], within=10, what="the first part read")
        peer.send(pong[3:])
        await next_ping()
        peer.send(pong + frame(TEXT, b'42["echo",1]'))  # glued to another frame
        await next_ping()
        assert others == [b'42["echoed",1]']


async def test_a_pong_inside_a_fragmented_message_is_a_protocol_error() -> None:
    async with echo_server() as served, raw_peer(served.url) as peer:
        sid = await peer.connect()
        conn = served.sio.eio.sockets[peer.eio_sid].queue.transport.get_protocol()
        peer.send(frame(TEXT, b'42["ec', fin=False))
        await wait_until(lambda: conn._fragments is not None, within=10, what="the first fragment read")
        peer.send(frame(TEXT, b"3"))  # a frame of its own, alone in its read
        assert await peer.read_close() == 1002
        assert await served.wait_left(sid, 10) == "transport close"

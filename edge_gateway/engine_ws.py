"""The edge's WebSocket connections after the upgrade: aiohttp answers the handshake, then
the connection is handed to `EngineConnection`, a slotted asyncio protocol of our own that
reads the client's frames and closes the connection; what the edge writes goes through
the socket's Outbox (edge_gateway.engine). Over 300 lines: one state machine (frame
parsing, the upgrade probe, the closing handshake) that reads best in one place, plus
the hand-over from aiohttp.

Why a hand-over: served by aiohttp's WebSocketResponse to its end, an idle socket keeps the
whole upgrade request alive: aiohttp's RequestHandler and its two tasks, the Request and
its headers, the response with its writer, reader, parser and message queue, engine.io's
driver, and about ten suspended coroutines from aiohttp's handler down to the `receive`
that waits for the next message (about 12 KB of resident memory a socket, measured at
1,000 joined sockets). After the hand-over an idle socket is its transport, this object
and engine.io's socket; the request's objects are garbage once the handler returns.

RFC 6455, server side, as aiohttp's reader enforced it: client frames must be masked and
carry no RSV bits (no extension is negotiated), else the connection is closed with 1002;
a fragmented message is reassembled (control frames may come between its fragments);
a message over the server's `max_http_buffer_size` closes with 1009, text that is not
UTF-8 with 1007; a PING is answered with a PONG; a CLOSE is answered and the connection
closed. A closing handshake the peer does not finish within 5 s is cut.

Engine.IO on top: a PONG ("3") is taken as it is read (it only schedules the socket's next
PING: nothing else runs for an idle socket); every other packet goes, in order, to
engine.io's `receive`, from a task that exists only while packets wait for it. A socket
upgrading from long-polling first exchanges the probe ("2probe", "3probe", "5").

Upstream members relied on (aiohttp 3.14.5, python-engineio 4.15.1, pinned in
pyproject.toml; tests/integration/test_engine_ws.py covers them): aiohttp
`WebSocketResponse.prepare` with `_post_start` replaced (no reader or parser is built),
`_ws_protocol`, `_writer`, `_eof_sent`; `web_protocol.RequestHandler.transport`,
`_message_tail` (bytes read after the upgrade request), `keep_alive`, `connection_lost`
(the handler is released as if its connection had closed: its task ends and its server
forgets it); uvloop's/asyncio's `Transport.set_protocol`. engineio: the aiohttp driver
class `WebSocket` (`handler.__self__` is the socket, `server`), `packet.Packet`,
`exceptions.UnknownPacketError` and `SocketIsClosedError`, and the socket members
edge_gateway.engine lists.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import Any, Protocol

from aiohttp import web
from aiohttp._websocket.helpers import websocket_mask
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as aiohttp_driver

from edge_gateway import eager
from edge_gateway.frames import ws_frame

log = logging.getLogger("edge_gateway.engine")

CLOSE_SECONDS = 5.0
"""A closing handshake that takes longer is cut (the peer is gone)."""
READ_PAUSE_BYTES = 1 << 16
"""Bytes of packets waiting for engine.io past which the connection stops reading (as
aiohttp's reader did): a client that sends faster than its packets are handled waits."""

_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_OK, CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_TOO_BIG = 1000, 1002, 1007, 1009
_FIN = 0x80
_RSV = 0x70
_MASKED = 0x80
_ENGINE_PONG = "3"
_ENGINE_PONG_BYTE = ord(_ENGINE_PONG)
_PONG_FRAME_SIZE = 7  # two header bytes, the mask key, one payload byte
_PROBE, _PROBE_ANSWER, _UPGRADE = "2probe", "3probe", "5"

# Where a connection is: the upgrade probe (from long-polling), open, closing, closed.
_PROBING, _UPGRADING, _OPEN, _CLOSING, _CLOSED = range(5)

_running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
_READING = object()  # the inbox's reader runs, started eagerly and not waiting (yet)


def _is_event(pkt: Any) -> bool:
    """A Socket.IO event: its reading (decode it, start its handler's task) never waits."""
    return (
        pkt is not None
        and pkt.packet_type == eio_packet.MESSAGE
        and isinstance(pkt.data, str)
        and pkt.data.startswith("2")
    )


class SocketOutbox(Protocol):
    """What the connection needs of the socket's Outbox (edge_gateway.engine)."""

    def attach(self, conn: EngineConnection, transport: asyncio.WriteTransport) -> None:
        """Everything the socket is sent goes to `transport` from now on."""

    def detach(self) -> None:
        """The connection ended: nothing more is written."""

    def flush(self) -> None:
        """What was gathered since the last write goes to the transport now."""

    def put_nowait(self, item: Any) -> None:
        """An Engine.IO packet for the socket."""


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One unmasked control frame (payload at most 125 bytes)."""
    return bytes((_FIN | opcode, len(payload))) + payload


def close_frame(code: int) -> bytes:
    """The CLOSE frame with a status code."""
    return control_frame(_CLOSE, struct.pack("!H", code))


class EngineConnection(asyncio.Protocol):
    """One upgraded WebSocket connection: the transport's protocol from the hand-over on."""

    __slots__ = (
        "_attached",
        "_buffer",
        "_closer",
        "_fragments",
        "_fragments_opcode",
        "_fragments_size",
        "_inbox",
        "_inbox_bytes",
        "_limit",
        "_reader",
        "_stage",
        "outbox",
        "server",
        "sock",
        "transport",
    )

    def __init__(self, sock: Any, server: Any, transport: asyncio.Transport) -> None:
        self.sock = sock
        self.server = server
        self.outbox: SocketOutbox = sock.queue
        self.transport = transport
        self._limit: int = server.max_http_buffer_size
        self._buffer = b""  # the start of a frame not yet complete
        self._fragments: list[bytearray] | None = None  # a fragmented message so far
        self._fragments_opcode = _TEXT
        self._fragments_size = 0
        self._inbox: deque[tuple[Any, int]] | None = None  # packets waiting for engine.io
        self._inbox_bytes = 0
        self._reader: asyncio.Task[None] | object | None = None  # None: nobody reads the inbox
        self._closer: asyncio.TimerHandle | None = None
        self._attached = False
        self._stage = _OPEN
        if sock.connected:  # upgrading from long-polling: the probe exchange first
            sock.upgrading = True
            self._stage = _PROBING
        else:
            sock.connected = True
            sock.upgraded = True
            self._attach()

    @property
    def closing(self) -> bool:
        """True once a CLOSE was sent or the connection ended."""
        return self._stage >= _CLOSING

    def _attach(self) -> None:
        self._attached = True
        self.outbox.attach(self, self.transport)

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        """Parses every complete frame; keeps the start of an incomplete one."""
        if (
            len(data) == _PONG_FRAME_SIZE
            and data[0] == _FIN | _TEXT
            and data[1] == _MASKED | 1
            and data[6] ^ data[2] == _ENGINE_PONG_BYTE
            and not self._buffer
            and self._fragments is None
            and self._stage < _CLOSING
        ):
            # A PONG alone, what an idle socket sends every ping interval: taken without
            # building the frame (what _frame and _message would do with it, in short).
            self.sock.schedule_ping()
            return
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        size = len(data)
        pos = 0
        while size - pos >= 2 and self._stage != _CLOSED:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            head = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if first & _RSV or not second & _MASKED:
                self._fail(CLOSE_PROTOCOL_ERROR)
                return
            if length > self._limit:  # refused before it is buffered
                self._fail(CLOSE_TOO_BIG)
                return
            end = head + 4 + length
            if end > size:
                break
            payload = bytearray(data[head + 4 : end])
            websocket_mask(data[head : head + 4], payload)
            pos = end
            self._frame(first & _FIN, first & 0x0F, payload)
        if pos < size and self._stage != _CLOSED:
            self._buffer = data[pos:]

    def eof_received(self) -> bool:
        """The peer shut its side: the transport closes (connection_lost follows)."""
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection ended: the socket closes after the packets it already sent."""
        self._stage = _CLOSED
        self._buffer = b""
        self._fragments = None
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        if self._attached:
            self._end_socket()
        else:  # a failed upgrade: the socket goes on polling
            self.sock.upgrading = False

    # frames and messages

    def _frame(self, fin: int, opcode: int, payload: bytearray) -> None:
        if opcode >= _CLOSE:
            if not fin or len(payload) > 125:
                self._fail(CLOSE_PROTOCOL_ERROR)
            elif opcode == _CLOSE:
                self._closed_by_peer(payload)
            elif opcode == _PING:
                if not self.transport.is_closing():
                    self.transport.write(control_frame(_PONG, bytes(payload)))
            elif opcode != _PONG:
                self._fail(CLOSE_PROTOCOL_ERROR)
            return
        if opcode == _CONTINUATION:
            fragments = self._fragments
            if fragments is None:
                self._fail(CLOSE_PROTOCOL_ERROR)
                return
            fragments.append(payload)
            self._fragments_size += len(payload)
            if self._fragments_size > self._limit:
                self._fail(CLOSE_TOO_BIG)
                return
            if not fin:
                return
            opcode = self._fragments_opcode
            self._fragments = None
            payload = bytearray().join(fragments)
        elif opcode in (_TEXT, _BINARY):
            if self._fragments is not None:  # a new message inside a fragmented one
                self._fail(CLOSE_PROTOCOL_ERROR)
                return
            if not fin:
                self._fragments = [payload]
                self._fragments_opcode = opcode
                self._fragments_size = len(payload)
                return
        else:
            self._fail(CLOSE_PROTOCOL_ERROR)
            return
        if self._stage >= _CLOSING:
            return  # what comes after our CLOSE is not read
        if opcode == _TEXT:
            try:
                text = payload.decode()
            except UnicodeDecodeError:
                self._fail(CLOSE_INVALID_DATA)
                return
            self._message(text)
        else:
            self._message(bytes(payload))

    def _message(self, data: str | bytes) -> None:
        if data == _ENGINE_PONG:  # taken as read: an idle socket wakes nothing
            self.sock.schedule_ping()
            return
        if self._stage != _OPEN:
            self._upgrade_step(data)
            return
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except (ValueError, TypeError, IndexError):
            log.info("malformed Engine.IO frame; closing the socket", extra={"eio_sid": self.sock.sid})
            self._fail(CLOSE_OK)
            return
        self._receive(pkt, len(data))

    def _upgrade_step(self, data: str | bytes) -> None:
        if self._stage == _PROBING and data == _PROBE:
            self.transport.write(ws_frame(_PROBE_ANSWER.encode()))
            self.outbox.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the client's open poll
            self._stage = _UPGRADING
        elif self._stage == _UPGRADING and data == _UPGRADE:
            self.sock.upgraded = True
            self.sock.upgrading = False
            self._stage = _OPEN
            self._attach()
        else:  # not the exchange: the upgrade fails, the socket goes on polling
            self.sock.upgrading = False
            self.close()

    def _receive(self, pkt: Any, size: int) -> None:
        """Hands a packet (None: the connection ended) to engine.io, after those before it."""
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append((pkt, size))
        self._inbox_bytes += size
        if self._reader is None:
            if _is_event(pkt):
                # Nothing before it: read now, not a loop turn later (edge_gateway.eager).
                self._reader = _READING  # a packet that comes meanwhile joins the inbox
                self._reader = eager.start(self._read_inbox())
                return
            task = asyncio.ensure_future(self._read_inbox())
            self._reader = task
            _running.add(task)
            task.add_done_callback(_running.discard)
        if self._inbox_bytes > READ_PAUSE_BYTES and self._stage == _OPEN:
            self.transport.pause_reading()

    async def _read_inbox(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        sock, server = self.sock, self.server
        try:
            while inbox:
                pkt, size = inbox[0]
                if pkt is None:  # the connection ended: the socket with it
                    inbox.clear()
                    try:
                        await sock.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
                    except Exception:
                        log.exception("closing the socket failed", extra={"eio_sid": sock.sid})
                    break
                try:
                    await sock.receive(pkt)
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    self._fail(CLOSE_OK)
                except Exception:  # as upstream: log it, keep the connection
                    server.logger.exception("Unknown receive error")
                inbox.popleft()
                self._inbox_bytes -= size
                if self._inbox_bytes <= READ_PAUSE_BYTES // 2 and self._stage == _OPEN:
                    self.transport.resume_reading()
        finally:
            self._reader = None
            if not inbox:
                self._inbox = None  # an idle socket keeps no deque

    # closing

    def close(self, code: int = CLOSE_OK) -> None:
        """Starts the closing handshake: CLOSE now, the connection cut if no answer comes."""
        if self._stage >= _CLOSING:
            return
        self._stage = _CLOSING
        transport = self.transport
        if transport.is_closing():
            return
        if self._attached:
            self.outbox.flush()  # what was written before the goodbye goes first
        transport.write(close_frame(code))
        self._closer = asyncio.get_running_loop().call_later(CLOSE_SECONDS, transport.abort)

    def _closed_by_peer(self, payload: bytearray) -> None:
        # The peer's CLOSE first: answered with its code. An answer to ours: done.
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else CLOSE_OK
        self._fail(code if 1000 <= code < 5000 else CLOSE_PROTOCOL_ERROR)

    def _fail(self, code: int) -> None:
        """Reading ends: CLOSE with `code` (unless sent already), the connection closed
        after what is buffered, and the socket closed after the packets read before."""
        self.close(code)
        self._stage = _CLOSED  # nothing more is parsed
        self._buffer = b""
        self._fragments = None
        self.transport.close()
        self._end_socket()

    def _end_socket(self) -> None:
        if self._attached:
            self._attached = False
            self.outbox.detach()
            self._receive(None, 0)


class _HandshakeOnly(web.WebSocketResponse):
    """aiohttp's WebSocket response up to the handshake: no reader or parser is built."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer
        request.protocol.keep_alive(False)


class EdgeWebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]
    """engine.io's aiohttp WebSocket driver: aiohttp answers the upgrade, `EngineConnection`
    serves the connection from then on. Without per-message deflate: compressing every
    broadcast per socket costs more CPU than the bytes it saves on small room events."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        request = environ["aiohttp.request"]
        sock = self.handler.__self__
        response = _HandshakeOnly(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await response.prepare(request)
        response._eof_sent = True  # aiohttp's finish: nothing more to write or close
        handler = request.protocol
        transport = handler.transport
        if transport is None or transport.is_closing():  # the peer left during the handshake
            if not sock.connected:
                await sock.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
            return response
        hand_over(handler, transport, EngineConnection(sock, self.server, transport))
        return response


def hand_over(handler: Any, transport: asyncio.Transport, connection: EngineConnection) -> None:
    """Makes `connection` the transport's protocol and releases aiohttp's request handler."""
    tail = handler._message_tail  # what the client sent right after its upgrade request
    handler._message_tail = b""
    transport.set_protocol(connection)
    handler.transport = None  # aiohttp no longer closes what it does not own
    handler.connection_lost(None)  # its task ends with the handler; its server forgets it
    transport.resume_reading()  # aiohttp may have paused it (its buffer of requests full)
    if tail:
        connection.data_received(tail)

"""Bytes on the wire: the Socket.IO JSON codec (orjson) and server-to-client WebSocket frames.

A broadcast is serialised, prefixed as an Engine.IO message and framed here once; the
resulting bytes are what every recipient's transport is given.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import orjson

_FIN_TEXT = 0x81  # FIN + opcode 1 (text); frames from a server are never masked (RFC 6455 5.1)
_FIN_BINARY = 0x82


class OrjsonCodec:
    """The `json` module python-socketio and python-engineio use for every packet.

    orjson on the way everything the frontend exchanges takes; the standard library for
    what orjson refuses, so that odd input behaves exactly as before: NaN, Infinity and
    1e400 from a client, integers beyond 64 bits or non-text keys on the way out. The
    keyword arguments upstream passes (`separators`) ask for the compact form, which
    orjson always writes. NaN and infinities are written as `null` (a browser's
    JSON.parse rejects the bare words the standard library would write).
    """

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        """Compact JSON text."""
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"))

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        """Parses JSON; raises ValueError on bad input."""
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return json.loads(text)


def _header(first: int, size: int) -> bytes:
    if size < 126:
        return bytes((first, size))
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def ws_frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unfragmented, unmasked WebSocket frame carrying `payload`."""
    return _header(_FIN_BINARY if binary else _FIN_TEXT, len(payload)) + payload


# An Engine.IO MESSAGE ("4") carrying a Socket.IO EVENT ("2") of the default namespace.
_EVENT_PREFIX = b"42"


def event_frame(body: bytes) -> bytes:
    """The WebSocket frame of a Socket.IO event of the default namespace (no ack id) whose
    JSON array is `body`: what encoding the packet upstream's way and then framing it
    gives, byte for byte, in one copy of `body` instead of several (a `meeting-joined`
    lists the whole room)."""
    return b"".join((_header(_FIN_TEXT, len(body) + len(_EVENT_PREFIX)), _EVENT_PREFIX, body))


def engineio_frame(pkt: Any) -> bytes:
    """The WebSocket frame of one Engine.IO packet: binary data raw in a binary frame, else
    the packet's text. Binary data is never put through `Packet.encode()`, which caches
    its result: the same packet object may also go to a long-polling socket, whose payload
    needs it base64-encoded."""
    if pkt.binary:
        return ws_frame(bytes(pkt.data), binary=True)
    return ws_frame(pkt.encode().encode())

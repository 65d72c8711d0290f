"""Bytes on the wire: the Socket.IO JSON codec (orjson) and server-to-client WebSocket frames.

A broadcast is serialised, prefixed as an Engine.IO message and framed here once; the
resulting bytes are what every recipient's transport is given.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

_FIN_TEXT = 0x81  # FIN + opcode 1 (text); frames from a server are never masked (RFC 6455 5.1)
_FIN_BINARY = 0x82


class OrjsonCodec:
    """The `json` module python-socketio and python-engineio use for every packet.

    Same contract as the standard library's `dumps`/`loads` for what Socket.IO carries;
    the keyword arguments upstream passes (`separators`) only ask for the compact form,
    which orjson always writes. NaN and infinities become `null` (a browser's JSON.parse
    rejects the bare words the standard library would write).
    """

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        """Compact JSON text."""
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        """Parses JSON; raises ValueError (orjson.JSONDecodeError) on bad input."""
        return orjson.loads(text)


def ws_frame(payload: bytes, *, binary: bool = False) -> bytes:
    """One unfragmented, unmasked WebSocket frame carrying `payload`."""
    first = _FIN_BINARY if binary else _FIN_TEXT
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload


def engineio_frame(encoded: str | bytes) -> bytes:
    """The frame of one Engine.IO packet as `Packet.encode()` gives it (text, or raw binary)."""
    if isinstance(encoded, bytes | bytearray):
        return ws_frame(bytes(encoded), binary=True)
    return ws_frame(encoded.encode())

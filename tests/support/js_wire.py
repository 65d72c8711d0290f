"""What the asyncio side of the JavaScript client harness and the node driver
(`tests/e2e/js/driver.js`) exchange: the errors a command ends with and how binary values
cross the JSON lines."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

DropMode = Literal["reset", "blackhole"]
RawLevel = Literal["engine", "transport"]


class JsHarnessError(RuntimeError):
    """The node driver is missing, failed to start or died."""


class JsCommandError(RuntimeError):
    """The driver answered a command with ``ok: false``."""

    def __init__(self, cmd: str, code: str, message: str) -> None:
        super().__init__(f"{cmd}: {code}: {message}")
        self.cmd = cmd
        self.code = code
        self.message = message


class AckTimeoutError(TimeoutError):
    """The server did not call the acknowledgement callback in time."""


def encode_value(value: Any) -> Any:
    """Python value -> JSON value for the driver (bytes -> {"$binary": b64})."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """JSON value from the driver -> Python value ({"$binary": b64} -> bytes)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$binary"), str):
            return base64.b64decode(value["$binary"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value

"""What the asyncio side of the JavaScript client harness and the node driver
(`tests/e2e/js/driver.js`) exchange: the errors a command or a wait ends with, how binary
values cross the JSON lines, and the events a client records."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


class EventTimeoutError(TimeoutError):
    """An awaited event did not arrive in time."""


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


@dataclass(frozen=True)
class JsEvent:
    """One event a client received (or a lifecycle event: connect, disconnect, ...).

    ``data`` is the first argument (``None`` without arguments), ``args`` all of them.
    Lifecycle payloads: ``connect`` {id, transport}; ``disconnect`` {reason, description};
    ``connect_error`` {message, data, type}; ``$open`` {transport} (engine.io connection
    opened, before ``connect``); ``$upgrade`` {transport} (e.g. polling -> websocket,
    which may happen before or after ``connect``).
    ``ts`` is the node wall clock in ms, ``hr`` node's monotonic ms, ``received`` this
    process's :func:`time.monotonic` when the line was read, ``index`` the position in
    the client's event list.
    """

    client: str
    event: str
    data: Any
    args: list[Any]
    ts: float
    hr: float
    received: float
    index: int


EventPredicate = Callable[[JsEvent], bool]
DataPredicate = Callable[[Any], bool]


def describe(events: Sequence[JsEvent], limit: int = 30) -> str:
    """The last `limit` events, a line each, for failure messages."""
    shown = events[-limit:]
    lines = [f"  #{e.index} {e.event} {json.dumps(e.args, default=repr)[:300]}" for e in shown]
    if len(events) > limit:
        lines.insert(0, f"  ... {len(events) - limit} earlier events")
    return "\n".join(lines) if lines else "  (no events)"

"""Structured logging: one JSON object per line, or readable key=value text.

Call sites log a human message (the seed's console lines) and put every variable part
in `extra`, so the same record reads well on a terminal and parses in a log pipeline.

Records logged on the event loop are formatted and written after the callback that logged
them, not inside it: a join's two console lines cost the room service about 0.2 ms, which
its Join reply waited for (measured in a join200 run), and now do not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from meeting_common.text import printable

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # JSON escapes C0 controls itself; the bidi and zero-width format characters it
        # would keep are escaped too, so a line reads the same on a terminal as parsed.
        return printable(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Formats a record as `time level logger message key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        # Client-given values are escaped: no value can end the line or restyle it.
        extras = " ".join(f"{k}={printable(str(v))}" for k, v in _fields(record).items())
        line = f"{when} {record.levelname:<5} {record.name}: {printable(record.getMessage())}"
        if extras:
            line += "  " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class DeferredStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, on a thread running an event loop, writes after the current
    callback: the records one callback logs are formatted and written together, by one
    callback scheduled for them, in the order they were logged. Elsewhere (start-up,
    shutdown, other threads) it writes at once, after anything still pending."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Called under the handler's lock (Handler.handle)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending()
            super().emit(record)
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append(record)

    def flush(self) -> None:
        """Writes what is pending, then flushes the stream (also at exit: logging.shutdown)."""
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
        super().flush()

    def _write_pending(self) -> None:
        records, self._pending = self._pending, []
        for record in records:
            super().emit(record)


def configure_logging(level: str, fmt: str) -> None:
    """Sends every log record to stderr in the chosen format ("json" or "text")."""
    # What no formatter here prints is not gathered for each record (the logging HOWTO's
    # "Optimization"): the caller's file, line and function (a walk up the stack), the
    # thread and the process. A join's console lines cost its reply that, cold.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = DeferredStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log and engineio's chatter drown the domain lines at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("engineio").setLevel(logging.WARNING)
    logging.getLogger("socketio").setLevel(logging.WARNING)


def plural(count: int, word: str) -> str:
    """`1 participant`, `2 participants`: counts in the console lines."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"

"""Structured logging: one JSON object per line, or readable key=value text.

Call sites log a human message (the seed's console lines) and put every variable part
in `extra`, so the same record reads well on a terminal and parses in a log pipeline.
"""

from __future__ import annotations

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


def configure_logging(level: str, fmt: str) -> None:
    """Sends every log record to stderr in the chosen format ("json" or "text")."""
    handler = logging.StreamHandler(sys.stderr)
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

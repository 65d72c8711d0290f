"""What a process a test starts writes: its output lines, kept in memory, parsed as JSON
where they are JSON, matched against predicates and waited for.

The tiers log one JSON object per line on stderr; a line that is not a JSON object is
kept as ``{"msg": text, "unparsed": True}``. :class:`ProcessLog` is the half of
:class:`~tests.support.managed.ManagedProcess` that reads and searches those lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.support.timing import condition_met

STREAM_LIMIT = 16 * 1024 * 1024
"""The longest line read as one; a longer one is read in pieces of this size."""


class ProcessError(RuntimeError):
    """A managed process failed to start, exited early or a wait timed out."""


@dataclass(frozen=True)
class LogLine:
    """One output line. ``record`` is the parsed JSON object, or ``{"msg": text,
    "unparsed": True}`` for a line that is not a JSON object."""

    stream: str  # "stderr" | "stdout"
    text: str
    record: dict[str, Any]
    received: float  # time.monotonic()
    index: int

    @property
    def msg(self) -> str:
        return str(self.record.get("msg", ""))

    @property
    def level(self) -> str:
        return str(self.record.get("level", ""))


LogPredicate = Callable[[dict[str, Any]], bool]
LineHandler = Callable[[LogLine | None], Awaitable[None]]


def msg_is(message: str, **fields: Any) -> LogPredicate:
    """Predicate: ``record["msg"] == message`` and every given field equals its value."""

    def check(record: dict[str, Any]) -> bool:
        return record.get("msg") == message and all(record.get(k) == v for k, v in fields.items())

    return check


def _safe(predicate: LogPredicate, record: dict[str, Any]) -> bool:
    try:
        return bool(predicate(record))
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def _record(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"msg": text, "unparsed": True}


class ProcessLog:
    """The lines of one process, in arrival order, with waits on them.

    A process driven over stdout (the JavaScript clients' driver) passes ``on_stdout``,
    which takes its stdout lines instead of the log (``None`` once stdout closed).
    Subclasses say when the process is gone for good (:meth:`_exited`), its exit status
    and how to name it in a report (:meth:`_describe`).
    """

    def __init__(self, name: str, *, echo: bool = False, on_stdout: LineHandler | None = None) -> None:
        self.name = name
        self.echo = echo
        self.lines: list[LogLine] = []
        self._cond = asyncio.Condition()
        self._on_stdout = on_stdout

    def _exited(self) -> bool:
        """Whether no more lines can come."""
        return False

    @property
    def returncode(self) -> int | None:
        """The exit status, once exited."""
        return None

    def _describe(self) -> str:
        """The process, for reports."""
        return self.name

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def _read(self, stream: asyncio.StreamReader, label: str) -> None:
        try:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # line longer than the limit
                    raw = await stream.read(STREAM_LIMIT)
                if not raw:
                    break
                text = raw.decode(errors="replace").rstrip("\r\n")
                line = LogLine(label, text, _record(text), time.monotonic(), len(self.lines))
                if label == "stdout" and self._on_stdout is not None:
                    await self._on_stdout(line)
                    continue
                self.lines.append(line)
                if self.echo:
                    print(f"[{self.name}:{label}] {text}", file=sys.stderr)
                await self._notify()
        finally:
            if label == "stdout" and self._on_stdout is not None:
                await self._on_stdout(None)
            await self._notify()

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every parsed log record so far (non-JSON lines as ``{"msg", "unparsed"}``)."""
        return [line.record for line in self.lines]

    def logs_matching(self, predicate: LogPredicate, *, start: int = 0) -> list[LogLine]:
        return [line for line in self.lines[start:] if _safe(predicate, line.record)]

    def mark(self) -> int:
        """Current end of the log; pass as ``start=`` to only see later lines."""
        return len(self.lines)

    async def wait_for_log(
        self,
        predicate: LogPredicate,
        *,
        timeout: float = 10.0,
        start: int = 0,
    ) -> LogLine:
        """First line at index >= ``start`` whose record satisfies ``predicate``. Raises
        :class:`ProcessError` on timeout or when the process exits without it."""
        found: list[LogLine] = []

        def ready() -> bool:
            found[:] = self.logs_matching(predicate, start=start)
            return bool(found) or self._exited()

        if not await condition_met(self._cond, ready, within=timeout):
            raise ProcessError(f"{self.name}: no matching log line within {timeout}s\n{self.dump(60)}")
        if not found:
            raise ProcessError(
                f"{self.name} exited (returncode {self.returncode}) "
                f"without a matching log line\n{self.dump(60)}"
            )
        return found[0]

    def dump(self, last: int | None = None) -> str:
        lines = self.lines if last is None else self.lines[-last:]
        body = "\n".join(f"[{line.stream}] {line.text}" for line in lines)
        return f"----- {self._describe()}\n{body or '(no output)'}\n----- end {self.name}"

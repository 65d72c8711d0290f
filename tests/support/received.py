"""What a test's Socket.IO client received, and the waits on it.

Both test clients, the official JS client's handle (`js_socket.JsClient`) and the
in-process python-socketio client (`edge_stack.Client`), are a `RecordingClient`: each
says how it connects and emits, and keeps what arrives here, as `ClientEvent`s. So a
test reads events the same way whichever client it drives, and the helpers of
`tests.support.room` (`join`, `refused`, ...) take either.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tests.support.timing import condition_met, nothing_arrives

DataPredicate = Callable[[Any], bool]
"""A condition on an event's `data`."""


class EventTimeoutError(TimeoutError):
    """An awaited event did not arrive in time."""


@dataclass(frozen=True)
class ClientEvent:
    """One event a client received (or, from the JS client, a lifecycle event: connect,
    disconnect, ...).

    ``data`` is the first argument (``None`` without arguments), ``args`` all of them.
    The JS client's lifecycle payloads: ``connect`` {id, transport}; ``disconnect``
    {reason, description}; ``connect_error`` {message, data, type}; ``$open`` {transport}
    (engine.io connection opened, before ``connect``); ``$upgrade`` {transport} (e.g.
    polling -> websocket, which may happen before or after ``connect``).
    ``ts`` is the receiving client's wall clock in ms, ``hr`` its monotonic clock in ms
    (node's for the JS client), ``received`` this process's :func:`time.monotonic` when
    the event reached it, ``index`` the position in the client's event list.
    """

    client: str
    event: str
    data: Any
    args: list[Any]
    ts: float
    hr: float
    received: float
    index: int


def describe(events: Sequence[ClientEvent], limit: int = 30) -> str:
    """The last `limit` events, a line each, for failure messages."""
    shown = events[-limit:]
    lines = [f"  #{e.index} {e.event} {json.dumps(e.args, default=repr)[:300]}" for e in shown]
    if len(events) > limit:
        lines.insert(0, f"  ... {len(events) - limit} earlier events")
    return "\n".join(lines) if lines else "  (no events)"


class RecordingClient(ABC):
    """A Socket.IO client in a test that records every event it receives, in order.

    Subclasses connect and emit; they hand each event that arrives to `_add` and then
    wake the waits with `notify`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[ClientEvent] = []
        self._changed = asyncio.Condition()

    # -- what each client does its own way --------------------------------------------

    @property
    @abstractmethod
    def connected(self) -> bool:
        """Whether the socket is connected now."""

    @abstractmethod
    async def connect(self, url: str, **options: Any) -> Any:
        """Connects to `url` (options as the client takes them)."""

    @abstractmethod
    async def emit(self, event: str, *args: Any) -> None:
        """Sends `event` without an acknowledgement."""

    @abstractmethod
    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        """Sends `event` and returns the first argument of its acknowledgement."""

    def _lost(self, waiting_for: str) -> Exception | None:
        """The error that ends a wait early because nothing more can arrive (the process
        holding the socket died); None while events may still come."""
        return None

    # -- recording ----------------------------------------------------------------------

    def _add(self, event: str, args: list[Any], *, ts: float, hr: float, received: float) -> ClientEvent:
        """Appends an event that arrived (`notify` then wakes the waits)."""
        item = ClientEvent(
            client=self.name,
            event=event,
            data=args[0] if args else None,
            args=args,
            ts=ts,
            hr=hr,
            received=received,
            index=len(self.events),
        )
        self.events.append(item)
        return item

    async def notify(self) -> None:
        """Wakes the waits, after an event or when nothing more can arrive."""
        async with self._changed:
            self._changed.notify_all()

    # -- reading and waiting ------------------------------------------------------------

    def mark(self) -> int:
        """Current end of the event list; pass as ``start=`` to only see later events."""
        return len(self.events)

    def events_named(self, name: str, *, start: int = 0) -> list[ClientEvent]:
        """Every event called ``name`` at index >= ``start``."""
        return [e for e in self.events[start:] if e.event == name]

    def payloads(self, name: str, *, start: int = 0) -> list[Any]:
        """The ``data`` of every event called ``name`` at index >= ``start``."""
        return [e.data for e in self.events_named(name, start=start)]

    def clear_events(self) -> None:
        """Forgets every event received so far."""
        self.events.clear()

    def _matches(self, name: str | None, predicate: DataPredicate | None, start: int) -> list[ClientEvent]:
        return [
            e
            for e in self.events[start:]
            if (name is None or e.event == name) and (predicate is None or predicate(e.data))
        ]

    async def wait_for_event(
        self,
        name: str | None,
        predicate: DataPredicate | None = None,
        *,
        timeout: float = 5.0,
        start: int = 0,
    ) -> ClientEvent:
        """First event called ``name`` (any event if None) at index >= ``start`` whose
        ``data`` satisfies ``predicate``; already received events count."""
        events = await self.wait_for_events(name, 1, predicate, timeout=timeout, start=start)
        return events[0]

    async def wait_for_events(
        self,
        name: str | None,
        count: int,
        predicate: DataPredicate | None = None,
        *,
        timeout: float = 5.0,
        start: int = 0,
    ) -> list[ClientEvent]:
        """Wait until at least ``count`` matching events exist; returns all matches."""
        found: list[ClientEvent] = []
        what = f"{count} x {name!r} (from #{start})"

        def ready() -> bool:
            nonlocal found
            found = self._matches(name, predicate, start)
            return len(found) >= count or self._lost(what) is not None

        if not await condition_met(self._changed, ready, within=timeout):
            raise EventTimeoutError(
                f"{self.name}: waited {timeout}s for {what}, got {len(found)}; "
                f"events:\n{describe(self.events)}"
            )
        lost = self._lost(what) if len(found) < count else None
        if lost is not None:
            raise lost
        return found

    async def expect_no_event(
        self,
        name: str | None,
        predicate: DataPredicate | None = None,
        *,
        within: float = 0.5,
        start: int = 0,
    ) -> None:
        """Assert that no matching event arrives (or has arrived) during ``within`` s."""
        try:
            await nothing_arrives(
                lambda: self.wait_for_event(name, predicate, timeout=within + 1, start=start), within=within
            )
        except AssertionError as exc:
            raise AssertionError(f"{self.name}: {exc}\n{describe(self.events)}") from None

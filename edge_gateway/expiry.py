"""Token expiry while connected (as Centrifugo does it): each socket's JWT expiry is known;
the client is warned ahead of it (`token-expiring`), may send a new token for the same
subject (`refresh-token`), and is disconnected when none came by the expiry plus a grace.

Timers, not tasks: one `loop.call_later` handle per socket and phase; a task runs only
for the moment a warning is emitted or a socket is closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

Clock = Callable[[], float]
Action = Callable[[str, float], Awaitable[None]]


def iso_time(seconds: float) -> str:
    """RFC 3339 UTC text of a time in seconds since the epoch (as `sentAt`, `joinedAt`)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _Deadline:
    expires_at: float
    warning: asyncio.TimerHandle | None
    expiry: asyncio.TimerHandle


class TokenDeadlines:
    """Per-socket token deadlines of one edge."""

    def __init__(
        self,
        *,
        warn_before: float,
        grace: float,
        on_warning: Action,
        on_expiry: Action,
        clock: Clock = time.time,
    ) -> None:
        self._warn_before = warn_before
        self._grace = grace
        self._on_warning = on_warning
        self._on_expiry = on_expiry
        self._clock = clock  # token expiries are wall-clock times (the `exp` claim)
        self._deadlines: dict[str, _Deadline] = {}
        self._running: set[asyncio.Task[None]] = set()

    def track(self, sid: str, expires_at: float) -> None:
        """(Re)arms the socket's warning and expiry for a token valid until `expires_at`."""
        self.forget(sid)
        loop = asyncio.get_running_loop()
        left = expires_at - self._clock()
        warning = None
        if self._warn_before > 0:
            warning = loop.call_later(
                max(left - self._warn_before, 0), self._run, self._on_warning, sid, expires_at
            )
        expiry = loop.call_later(max(left + self._grace, 0), self._run, self._on_expiry, sid, expires_at)
        self._deadlines[sid] = _Deadline(expires_at, warning, expiry)

    def forget(self, sid: str) -> None:
        """Disarms a socket's timers (idempotent)."""
        deadline = self._deadlines.pop(sid, None)
        if deadline is not None:
            if deadline.warning is not None:
                deadline.warning.cancel()
            deadline.expiry.cancel()

    def expires_at(self, sid: str) -> float | None:
        """When the socket's current token expires (None: not tracked)."""
        deadline = self._deadlines.get(sid)
        return deadline.expires_at if deadline else None

    def __len__(self) -> int:
        return len(self._deadlines)

    def _run(self, action: Action, sid: str, expires_at: float) -> None:
        deadline = self._deadlines.get(sid)
        if deadline is None or deadline.expires_at != expires_at:
            return  # refreshed or gone meanwhile
        if action is self._on_expiry:
            del self._deadlines[sid]
        task = asyncio.ensure_future(action(sid, expires_at))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

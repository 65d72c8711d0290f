"""Why the room service answered UNAVAILABLE, or answered too late: one structured warning
per occurrence, bounded under abuse.

An edge turns both an UNAVAILABLE status and a passed deadline into the client's
`UNAVAILABLE`, and logs neither: this log is where an operator learns which it was and
why (the store known down, a Redis failure and in which operation, a compare-and-set that
kept losing). At most `burst` lines per `window` seconds for each kind; the occurrences
beyond are counted, and the count is reported on the next line that is logged. The
lines carry the method, the cause and the message the caller got, never a request's
content or the store's address.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from room_service.domain.errors import DomainError

log = logging.getLogger("room_service.api")

_BURST = 20
_WINDOW_SECONDS = 10.0


class _Budget:
    """Lines left in the current window, and occurrences not logged."""

    __slots__ = ("left", "resets_at", "suppressed")

    def __init__(self) -> None:
        self.left = 0
        self.resets_at = float("-inf")
        self.suppressed = 0


class RefusalLog:
    """Logs refusals the client sees as UNAVAILABLE, at most `burst` per `window` per kind."""

    def __init__(
        self,
        burst: int = _BURST,
        window: float = _WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._window = window
        self._clock = clock
        self._budgets: dict[str, _Budget] = {}

    def refused(self, method: str, error: DomainError) -> None:
        """`method` answered `error` (an UNAVAILABLE DomainError)."""
        cause = getattr(error, "cause", "") or type(error).__name__
        self._log(
            "unavailable",
            "answered UNAVAILABLE",
            {"method": method, "cause": cause, "error_message": error.message},
        )

    def late(self, method: str, overrun: float) -> None:
        """`method` finished `overrun` seconds after its caller's deadline (the caller has
        given up and reports the service unavailable, whatever the answer was)."""
        self._log(
            "late",
            "answered after the caller's deadline",
            {"method": method, "overrun_seconds": round(overrun, 3)},
        )

    def _log(self, kind: str, message: str, fields: dict[str, object]) -> None:
        budget = self._budgets.get(kind)
        if budget is None:
            budget = self._budgets[kind] = _Budget()
        now = self._clock()
        if now >= budget.resets_at:
            budget.left, budget.resets_at = self._burst, now + self._window
        if budget.left <= 0:
            budget.suppressed += 1
            return
        budget.left -= 1
        suppressed, budget.suppressed = budget.suppressed, 0
        log.warning(message, extra={**fields, "suppressed_before": suppressed})

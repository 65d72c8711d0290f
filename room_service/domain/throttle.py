"""A keyed failure counter: at most `limit` failures per key in any `window` seconds.

Used to throttle wrong meeting passwords per socket. Pure and in-memory; the clock is
injected. Memory stays bounded: empty keys are dropped and at most `max_keys` are kept
(the stalest go first, which only ever forgives an old attacker early).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureThrottle:
    """Sliding-window failure counts per key."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _current(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        cutoff = self._clock() - self._window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def blocked(self, key: str) -> bool:
        """True while `key` has `limit` failures inside the window."""
        failures = self._current(key)
        return failures is not None and len(failures) >= self._limit

    def forgive(self, key: str) -> None:
        """Takes back the latest failure of `key` (an attempt counted ahead that succeeded)."""
        failures = self._current(key)
        if failures is not None:
            failures.pop()
            if not failures:
                del self._failures[key]

    def fail(self, key: str) -> None:
        """Records one failure for `key`."""
        failures = self._current(key)
        if failures is None:
            failures = self._failures[key] = deque()
        failures.append(self._clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

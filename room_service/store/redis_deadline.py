"""A deadline for one store operation that a stalled event loop does not use up.

Why not the client's own read timeout: it is measured on the wall clock and checked by a
timer of this event loop. When the loop stalls (a join storm on a busy machine, the
process descheduled, a long collection), Redis's reply arrives in time and waits unread
in the socket; when the loop runs again, the expired timer and the readable socket are
handled in the same turn, the timer first, and the operation fails as "Redis did not
answer" although Redis did. Every join caught in such a stall was refused UNAVAILABLE.

So the store gives each operation its own deadline, and the client's socket timeouts are
only a backstop well beyond it (`BACKSTOP` times). When the deadline's timer fires late,
the loop was stalled and any answer may be waiting unread: the operation gets one more
period and the check repeats. Only a timer that fires on time, with the loop running
freely, proves that Redis (or the network) is slow. A loop that stays busy extends an
operation until `BACKSTOP` periods have passed (where the client's own timeouts would end
it anyway); beyond that, only `STALLS` separate stalls extend it, however long each was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

BACKSTOP = 5.0
"""The client's own socket timeouts, in operation deadlines: only reached if this fails."""


STALLS = 3
"""Stalls after which an operation past `BACKSTOP` periods still gets one more period."""

# A timer this late (as a part of the deadline) means the loop stalled: in a loop that
# runs freely a timer fires within a millisecond or two.
_LATE = 0.1


class _Deadline:
    """The timer of one operation; cancels the operation's task when it truly expires."""

    __slots__ = ("_due", "_handle", "_last", "_loop", "_period", "_stalls", "_task", "expired")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[object], period: float) -> None:
        self._loop = loop
        self._task = task
        self._period = period
        now = loop.time()
        self._due = now + period
        self._last = now + period * BACKSTOP
        self._stalls = 0
        self._handle = loop.call_at(self._due, self._fire)
        self.expired = False

    def _fire(self) -> None:
        now = self._loop.time()
        if now - self._due > self._period * _LATE and (now < self._last or self._stalls < STALLS):
            # The loop stalled past the deadline: the answer may be here, unread.
            self._stalls += 1
            self._due = now + self._period
            self._handle = self._loop.call_at(self._due, self._fire)
            return
        self.expired = True
        self._task.cancel()

    def disarm(self) -> None:
        self._handle.cancel()


async def within(seconds: float, make: Callable[[], Awaitable[T]]) -> T:
    """`await make()`, raising TimeoutError once `seconds` passed while this loop was free
    to read the answer (see the module docstring); `seconds` <= 0: no deadline."""
    task = asyncio.current_task()
    if seconds <= 0 or task is None:
        return await make()
    cancelling = task.cancelling()
    deadline = _Deadline(asyncio.get_running_loop(), task, seconds)
    try:
        return await make()
    except asyncio.CancelledError:
        if deadline.expired:
            deadline.expired = False
            # Ours only if nobody else cancelled the task meanwhile (as asyncio.timeout).
            if task.uncancel() <= cancelling:
                raise TimeoutError from None
        raise
    finally:
        deadline.disarm()
        if deadline.expired:
            task.uncancel()  # the operation swallowed our cancellation: take it back

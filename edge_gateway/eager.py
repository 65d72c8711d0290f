"""Starting a coroutine at once, in the callback that has its input, rather than as a task
that runs one loop iteration later: Python 3.12's eager tasks, for 3.11.

Why: a client's Socket.IO event reaches its handler through two tasks, the connection's
reader (engine_ws) and the handler's own (python-socketio's `async_handlers`). The
reader's part for an event (decode it, start the handler's task) never waits, so its task
and loop hop only delayed every event (by 90 µs at the median of a join200 run). Started
here, what the coroutine does before its first real wait runs at once; if it does wait,
the rest runs in a task exactly as before (the same coroutine, resumed by the same futures), so nothing
the coroutine does may tell the difference, but for `asyncio.current_task()` being None
before that first wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Generator
from typing import Any

log = logging.getLogger("edge_gateway.engine")

_running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Runs `coro` up to its first wait; returns the task that runs the rest, or None
    when it finished (its exception logged, as a task's that nobody awaits would be)."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    except Exception:
        log.exception("eagerly started coroutine failed")
        return None
    task: asyncio.Task[None] = asyncio.ensure_future(_Resumed(coro, waiting))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task


class _Resumed(Coroutine[Any, Any, None]):
    """`coro`, already started and now waiting on `waiting`, for a task to run on: the
    task's first step is handed that same wait (a future, or None for a bare yield),
    every later step goes to the coroutine. So the task treats it exactly as the coroutine
    it would have started: it resumes it when the future is done, and a cancellation
    (even before its first step) cancels that future or reaches the coroutine."""

    __slots__ = ("_coro", "_waiting")

    _FRESH: Any = object()

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def send(self, value: Any) -> Any:
        """The task's steps: the pending wait first, then the coroutine's own."""
        waiting, self._waiting = self._waiting, self._FRESH
        if waiting is not self._FRESH:
            return waiting
        return self._coro.send(value)

    def throw(self, *exc: Any) -> Any:
        """A cancellation, at whatever step: into the coroutine, where it waits."""
        self._waiting = self._FRESH
        return self._coro.throw(*exc)

    def close(self) -> None:
        """As the coroutine's."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, None]:
        return self._coro.__await__()

"""Whether the room store answers, as the room service's readiness and its joins see it.

A ping that fails counts as a miss only when the store is to blame. While this process's
event loop is stalled (a join storm on a busy machine), a reply that came in time is read
late and times out all the same: a failed ping during which the loop ran late proves
nothing, and is neither a miss nor an answer. After a few misses in a row the store is
down; one answer brings it back at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from meeting_common.tasks import cancel_and_wait

# How often the loop's lateness is sampled.
_TICK_SECONDS = 0.05


class LoopLag:
    """How late this event loop ran lately, sampled by a task sleeping a tick at a time."""

    def __init__(self, tick: float = _TICK_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.tick = tick
        self._clock = clock
        self._worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts sampling (on the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._sample(), name="loop-lag")

    async def stop(self) -> None:
        """Stops sampling."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def pause(self) -> None:
        """Stops sampling until the next start(): nothing wakes the loop meanwhile."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    def sampled(self, lag: float) -> None:
        """One sample: the loop woke a sleeper `lag` seconds late."""
        self._worst = max(self._worst, lag)

    def take_worst(self) -> float:
        """The worst lateness since the last call."""
        worst, self._worst = self._worst, 0.0
        return worst

    async def _sample(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self.tick)
            self.sampled(self._clock() - before - self.tick)


class StoreWatch:
    """Pings the store and keeps count of the misses it is to blame for."""

    def __init__(
        self,
        ping: Callable[[], Awaitable[bool]],
        timeout: float,
        misses: int = 3,
        lag: LoopLag | None = None,
    ) -> None:
        self._ping = ping
        self._limit = misses
        # A loop this late may have read a reply in time too late: the ping proves nothing.
        self._tolerance = timeout / 2
        self.lag = lag or LoopLag()
        self.misses = 0
        self.answered = True
        """Whether the last ping was answered."""

    async def check(self) -> bool:
        """Pings once; whether the store counts as answering afterwards. The loop is
        sampled only while a check runs: lateness between two pings excuses neither, and
        a sampler left running woke an idle process twenty times a second."""
        self.lag.start()
        try:
            await asyncio.sleep(0)  # the sampler is asleep before the ping goes out
            self.lag.take_worst()
            answered = self.answered = await self._ping()
            if answered:
                self.misses = 0
                return True
            # A stall that ended just now is sampled once the sampler gets its turn.
            await asyncio.sleep(self.lag.tick)
            self.observe_miss(self.lag.take_worst())
            return self.misses < self._limit
        finally:
            self.lag.pause()

    def observe_miss(self, lag: float) -> None:
        """A failed ping during which the loop ran up to `lag` seconds late."""
        if lag < self._tolerance:
            self.misses += 1

    async def close(self) -> None:
        """Stops sampling the loop."""
        await self.lag.stop()

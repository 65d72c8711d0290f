"""The write coalescer's timing rule (edge_gateway/engine.py): an idle edge flushes on the
next loop iteration, a busy one at most once per window."""

from __future__ import annotations

import asyncio
from typing import cast

from edge_gateway.engine import Coalescer, Outbox


class Dirty:
    """Stands in for an outbox: counts its flushes."""

    def __init__(self) -> None:
        self.flushes = 0
        self.flushed = asyncio.Event()

    def flush(self) -> None:
        self.flushes += 1
        self.flushed.set()


def outbox(dirty: Dirty) -> Outbox:
    return cast(Outbox, dirty)


async def iterations(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_an_idle_edge_flushes_at_the_next_loop_iteration_whatever_the_window() -> None:
    coalescer = Coalescer(window=3600.0)
    first = Dirty()
    coalescer.add(outbox(first))
    await iterations(2)
    assert first.flushes == 1


async def test_a_busy_edge_holds_frames_until_the_window_after_the_last_flush() -> None:
    coalescer = Coalescer(window=3600.0)
    first, second = Dirty(), Dirty()
    coalescer.add(outbox(first))
    await iterations(2)
    coalescer.add(outbox(second))  # the previous flush was just now: wait for the window
    await iterations(20)
    assert second.flushes == 0
    coalescer.flush()  # what the window's timer runs
    assert second.flushes == 1 and first.flushes == 1


async def test_the_window_flushes_by_itself_when_traffic_stops() -> None:
    coalescer = Coalescer(window=0.05)
    first, second, third = Dirty(), Dirty(), Dirty()
    coalescer.add(outbox(first))
    await iterations(2)
    coalescer.add(outbox(second))
    coalescer.add(outbox(third))  # nothing else is written after these
    async with asyncio.timeout(10):
        await second.flushed.wait()
        await third.flushed.wait()
    assert (first.flushes, second.flushes, third.flushes) == (1, 1, 1)


async def test_without_a_window_every_iteration_flushes() -> None:
    coalescer = Coalescer(window=0.0)
    dirty = [Dirty() for _ in range(3)]
    for each in dirty:
        coalescer.add(outbox(each))
        await iterations(2)
        assert each.flushes == 1

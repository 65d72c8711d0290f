"""JoinQueue: at most `depth` holders per meeting, first come first served, meetings
independent, entries gone when unused, and a waiter cancelled in the queue leaves it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from edge_gateway.join_queue import JoinQueue


async def _hold(
    queue: JoinQueue, meeting: str, entered: list[str], name: str, release: asyncio.Event
) -> None:
    async with queue.turn(meeting):
        entered.append(name)
        await release.wait()


async def _settle() -> None:
    """Lets every runnable task reach its next wait (bounded: a fixed number of passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_at_most_depth_in_a_meeting_and_the_rest_in_order() -> None:
    queue = JoinQueue(2)
    entered: list[str] = []
    releases = {name: asyncio.Event() for name in "abcde"}
    tasks = [asyncio.create_task(_hold(queue, "m", entered, n, releases[n])) for n in "abcde"]
    await _settle()
    assert entered == ["a", "b"]
    assert queue.waiting("m") == 3
    releases["b"].set()
    await _settle()
    assert entered == ["a", "b", "c"]
    for name in "acde":
        releases[name].set()
    await asyncio.gather(*tasks)
    assert entered == list("abcde")
    assert queue.meetings() == 0  # nothing held once the meeting's calls are done


async def test_a_full_meeting_never_holds_back_another() -> None:
    queue = JoinQueue(1)
    entered: list[str] = []
    release = asyncio.Event()
    busy = [asyncio.create_task(_hold(queue, "big", entered, f"big{i}", release)) for i in range(3)]
    await _settle()
    async with queue.turn("small"):
        entered.append("small")
    assert entered == ["big0", "small"]
    release.set()
    await asyncio.gather(*busy)
    assert queue.meetings() == 0


async def test_a_waiter_cancelled_in_the_queue_leaves_it() -> None:
    queue = JoinQueue(1)
    entered: list[str] = []
    release = asyncio.Event()
    first = asyncio.create_task(_hold(queue, "m", entered, "first", release))
    second = asyncio.create_task(_hold(queue, "m", entered, "second", release))
    await _settle()
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second
    assert queue.waiting("m") == 0
    release.set()
    await first
    assert entered == ["first"]
    assert queue.meetings() == 0
    async with queue.turn("m"):  # the slot the cancelled waiter never took is free
        pass


async def test_an_error_in_the_block_frees_the_slot() -> None:
    queue = JoinQueue(1)
    with pytest.raises(RuntimeError):
        async with queue.turn("m"):
            raise RuntimeError("refused")
    assert queue.meetings() == 0
    async with queue.turn("m"):
        pass


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        JoinQueue(0)

"""Time in tests: wait for a condition, assert that nothing (more) arrives, and a clock
moved by hand. Every wait is bounded; none stands in for a condition by sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Check = Callable[[], Awaitable[bool] | bool]


async def wait_until(
    check: Check,
    *,
    within: float,
    interval: float = 0.1,
    what: str = "condition",
    retry_on: tuple[type[BaseException], ...] = (grpc.aio.AioRpcError,),
) -> float:
    """Polls `check` (sync or async) until it is true; returns the seconds it took.

    Fails after `within` seconds. Errors in `retry_on` (by default a failed RPC: the
    service may be coming back) count as "not yet". For conditions with no event to
    wait on (a counter, another process's state).
    """
    started = time.monotonic()
    deadline = started + within
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return time.monotonic() - started
        except retry_on:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(interval)


async def condition_met(condition: asyncio.Condition, ready: Callable[[], bool], *, within: float) -> bool:
    """Waits on `condition` until `ready()` holds; False when `within` seconds pass first.
    For state that its owner changes under `condition` and notifies about."""
    try:
        async with asyncio.timeout(within):
            async with condition:
                await condition.wait_for(ready)
    except TimeoutError:
        return False
    return True


async def nothing_arrives(
    next_item: Callable[[], Awaitable[Any]], *, within: float = 0.5, what: str = ""
) -> None:
    """Asserts that `next_item()` (a wait for the next matching item) finds nothing
    within `within` seconds: the quiet period stragglers would need to show up."""
    try:
        async with asyncio.timeout(within):
            item = await next_item()
    except TimeoutError:
        return
    raise AssertionError(f"unexpected {what + ': ' if what else ''}{item!r}")


def report(label: str, seconds: float) -> None:
    """Prints a measured recovery time (for the report; `pytest -s` shows it)."""
    print(f"[recovery] {label}: {seconds:.2f}s")


class FakeClock:
    """A monotonic clock the test moves by hand (`clock.now += 5`)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

"""The store operations' deadline: a stall of the event loop does not use it up, a store
that does not answer still ends the operation, and a cancellation from elsewhere stays one."""

from __future__ import annotations

import asyncio
import time

import pytest

from room_service.store.redis_deadline import within

_DEADLINE = 0.1


async def test_an_answer_that_came_during_a_stall_past_the_deadline_is_returned() -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    loop.call_later(0.01, time.sleep, 3 * _DEADLINE)  # the loop stops...
    loop.call_later(0.02, answer.set_result, "pong")  # ...while the answer comes in
    assert await within(_DEADLINE, lambda: answer) == "pong"


async def test_an_answer_that_never_comes_ends_the_operation() -> None:
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await within(_DEADLINE, lambda: never)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_loop_that_keeps_stalling_still_ends_the_operation() -> None:
    loop = asyncio.get_running_loop()

    left = [200]  # bounded: 200 stalls of a fifth of the deadline, one per loop turn

    def stall() -> None:
        time.sleep(_DEADLINE / 5)
        left[0] -= 1
        if left[0] > 0:
            handles[0] = loop.call_soon(stall)

    handles = [loop.call_soon(stall)]
    never: asyncio.Future[str] = loop.create_future()
    try:
        with pytest.raises(TimeoutError):
            await within(_DEADLINE, lambda: never)
    finally:
        handles[0].cancel()


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(within(10.0, lambda: never))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_deadline_when_none_is_set() -> None:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    loop.call_later(0.05, answer.set_result, "late but fine")
    assert await within(0, lambda: answer) == "late but fine"

"""A coroutine started eagerly runs at once up to its first wait, and from there on as a
task would run it: results, exceptions, bare yields and cancellation all reach it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge_gateway import eager


async def test_what_never_waits_is_done_before_start_returns() -> None:
    seen: list[str] = []

    async def quick() -> None:
        seen.append("ran")

    assert eager.start(quick()) is None
    assert seen == ["ran"]


async def test_after_a_wait_it_goes_on_in_a_task_with_the_result_or_the_exception() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    seen: list[object] = []

    async def waits() -> None:
        seen.append("started")
        seen.append(await first)
        await asyncio.sleep(0)  # a bare yield
        try:
            await second
        except KeyError as exc:
            seen.append(exc.args[0])
        seen.append(asyncio.current_task() is not None)

    task = eager.start(waits())
    assert seen == ["started"] and task is not None
    first.set_result("result")
    second.set_exception(KeyError("exception"))
    await task
    assert seen == ["started", "result", "exception", True]


async def test_cancelling_it_cancels_what_it_waits_on() -> None:
    waiting = asyncio.get_running_loop().create_future()
    cleaned: list[bool] = []

    async def stuck() -> None:
        try:
            await waiting
        finally:
            cleaned.append(True)

    task = eager.start(stuck())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waiting.cancelled() and cleaned == [True]


async def test_cancelling_it_during_a_bare_yield_throws_the_cancellation_into_it() -> None:
    seen: list[str] = []

    async def yields() -> None:
        try:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    task = eager.start(yields())
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_a_failure_before_any_wait_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="edge_gateway.engine"):
        assert eager.start(fails()) is None
    assert "eagerly started coroutine failed" in caplog.text

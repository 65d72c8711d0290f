"""Stopping a background task (meeting_common/tasks.py): the task ends, its cancellation
stays behind, and a cancellation of the caller still reaches the caller."""

from __future__ import annotations

import asyncio

import pytest

from meeting_common.tasks import cancel_and_wait


async def test_nothing_to_stop() -> None:
    await cancel_and_wait(None)


async def test_the_task_has_finished_when_it_returns() -> None:
    started = asyncio.Event()

    async def runs_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(runs_forever())
    await started.wait()
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_task_that_already_ended_with_an_error_reports_it() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails())
    with pytest.raises(ValueError, match="broken"):
        await task
    with pytest.raises(ValueError, match="broken"):
        await cancel_and_wait(task)


async def test_a_cancelled_caller_stays_cancelled() -> None:
    running = asyncio.Event()
    cleaning_up = asyncio.Event()
    may_finish = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            running.set()
            await asyncio.Event().wait()
        finally:
            cleaning_up.set()
            await may_finish.wait()

    worker = asyncio.create_task(slow_to_stop())
    await running.wait()  # the cancel must land inside the try
    caller = asyncio.create_task(cancel_and_wait(worker))
    await cleaning_up.wait()
    caller.cancel()
    may_finish.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    assert worker.cancelled()

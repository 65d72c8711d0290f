"""Stopping a background task: cancel it and wait until it has finished, without
swallowing a cancellation of the caller itself."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (None: there is nothing to stop) and returns once it has finished,
    so nothing it was doing outlives the caller's stop. The task's own CancelledError ends
    here; one meant for the caller (cancelled while it waits) still propagates, which a
    bare `suppress(CancelledError)` around the await would swallow."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        caller = asyncio.current_task()
        if caller is not None and caller.cancelling():
            raise

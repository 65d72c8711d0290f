"""The tiers' log handler: on the event loop a record is written after the callback that
logged it (in order, nothing lost); off the loop, and at exit, at once."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import pytest

from meeting_common.logs import DeferredStreamHandler, TextFormatter


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, DeferredStreamHandler]]:
    stream = io.StringIO()
    handler = DeferredStreamHandler(stream)
    handler.setFormatter(TextFormatter())
    log = logging.getLogger(f"test-deferred-{id(stream)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    yield log, stream, handler
    log.removeHandler(handler)


def _messages(stream: io.StringIO) -> list[str]:
    return [line.split(": ", 1)[1].split("  ")[0] for line in stream.getvalue().splitlines()]


async def test_on_the_loop_lines_follow_the_callback_in_order(
    logged: tuple[logging.Logger, io.StringIO, DeferredStreamHandler],
) -> None:
    log, stream, _ = logged
    log.info("first", extra={"n": 1})
    log.info("second")
    assert stream.getvalue() == ""  # the callback that logged them has not ended
    await asyncio.sleep(0)  # one loop iteration: the handler's callback runs
    assert _messages(stream) == ["first", "second"]
    log.info("third")
    await asyncio.sleep(0)
    assert _messages(stream) == ["first", "second", "third"]


async def test_another_thread_writes_at_once_after_what_is_pending(
    logged: tuple[logging.Logger, io.StringIO, DeferredStreamHandler],
) -> None:
    log, stream, _ = logged
    log.info("on the loop")
    thread = threading.Thread(target=log.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert _messages(stream) == ["on the loop", "from a thread"]
    await asyncio.sleep(0)
    assert _messages(stream) == ["on the loop", "from a thread"]  # nothing twice


def test_off_the_loop_a_line_is_written_at_once(
    logged: tuple[logging.Logger, io.StringIO, DeferredStreamHandler],
) -> None:
    log, stream, _ = logged
    log.info("no loop here")
    assert _messages(stream) == ["no loop here"]


def test_a_loop_that_stops_first_loses_nothing_at_exit(
    logged: tuple[logging.Logger, io.StringIO, DeferredStreamHandler],
) -> None:
    log, stream, handler = logged
    loop = asyncio.new_event_loop()

    def last_callback() -> None:
        log.info("last words")
        loop.stop()  # the loop ends with this iteration: the handler's callback never runs

    try:
        loop.call_soon(last_callback)
        loop.run_forever()
    finally:
        loop.close()
    assert stream.getvalue() == ""
    handler.flush()  # what logging.shutdown does at exit
    assert _messages(stream) == ["last words"]

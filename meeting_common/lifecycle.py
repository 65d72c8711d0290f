"""How both entry points run: settings, logging, serve until SIGTERM/SIGINT (handing freed
heap memory back meanwhile), stop gracefully."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

import uvloop

from meeting_common.heap import HeapTrimmer
from meeting_common.logs import configure_logging
from meeting_common.settings import SettingsError


class Service(Protocol):
    """A tier's app object."""

    async def start(self) -> None:
        """Starts serving; logs the ready line."""
        ...

    async def stop(self) -> None:
        """Stops gracefully within its configured grace."""
        ...


class LoggingSettings(Protocol):
    """The settings every tier has for its logs."""

    @property
    def log_level(self) -> str:
        """Level name."""
        ...

    @property
    def log_format(self) -> str:
        """ "text" or "json"."""
        ...


S = TypeVar("S", bound=LoggingSettings)


async def run_until_signalled(make_service: Callable[[], Service]) -> None:
    """Builds the service inside the running loop (it creates loop-bound objects), starts
    it, waits for SIGTERM or SIGINT, then stops it gracefully."""
    service = make_service()
    await service.start()
    # What start-up built (modules, settings, servers) lives as long as the process: out
    # of the collector's reach, a full collection under load no longer walks it each time.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    trimmer = asyncio.create_task(HeapTrimmer().run())  # memory returns to idle after a burst
    try:
        await stop.wait()
    finally:
        trimmer.cancel()
    await service.stop()


def main(load_settings: Callable[[], S], make_service: Callable[[S], Service]) -> int:
    """The body of `python -m <tier>`: exit code 2 with every problem on bad settings."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # uvloop: the edge's writes and reads, and both tiers' gRPC, cost less on libuv's loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_until_signalled(lambda: make_service(settings)))
    return 0

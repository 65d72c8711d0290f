"""An aiohttp application served on 127.0.0.1 at a free port, for in-process test servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from meeting_common.net import bound_port


@asynccontextmanager
async def serve_on_loopback(app: web.Application) -> AsyncIterator[str]:
    """Serves `app` until exit; yields its base URL, `http://127.0.0.1:<port>`."""
    runner = web.AppRunner(app, shutdown_timeout=0.25)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{bound_port(site)}"
    finally:
        await runner.cleanup()

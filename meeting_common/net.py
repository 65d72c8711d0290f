"""Small network helpers."""

from __future__ import annotations

from aiohttp import web


def bound_port(site: web.TCPSite) -> int:
    """The port a started site listens on (the real one when asked for port 0)."""
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("site is not listening")
    return int(sockets[0].getsockname()[1])

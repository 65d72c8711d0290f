"""Small network helpers."""

from __future__ import annotations

import ipaddress

from aiohttp import web


def bound_port(site: web.TCPSite) -> int:
    """The port a started site listens on (the real one when asked for port 0)."""
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("site is not listening")
    return int(sockets[0].getsockname()[1])


def is_loopback(host: str) -> bool:
    """True when `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost);
    an empty host or 0.0.0.0 listens everywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def insecure_listen_problem(option: str, host: str, what: str, flag: str) -> str | None:
    """The start-up refusal for serving `what` without authentication beyond loopback."""
    if is_loopback(host):
        return None
    return (
        f"{option}: {host or '(all addresses)'} is not a loopback address and {what}; "
        f"turn authentication on, or pass {flag} to accept that (development only)"
    )

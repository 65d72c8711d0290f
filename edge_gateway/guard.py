"""Engine.IO-level guards: the client's address behind trusted proxies, sessions counted
per address from the first handshake, and malformed frames counted, summarised in at
most two log lines per socket, and answered by dropping a socket that keeps sending them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from edge_gateway.engine import EdgeSocketServer
from edge_gateway.limits import EdgeLimits
from meeting_common.settings import from_text

log = logging.getLogger("edge_gateway.guard")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MALFORMED_LIMIT = 10
"""Malformed frames a socket may send before it is dropped (a client bug sends one or
two; a socket that keeps going is broken or hostile)."""

KEPT_AFTER_CONNECT = ("HTTP_AUTHORIZATION", "REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "edge.client_address")
"""What a connected socket's environ keeps of its handshake request."""

_MAX_FORWARDED_HOPS = 32
# What python-socketio raises while decoding a frame it cannot make sense of (bad packet
# type, truncated or invalid JSON, a binary packet out of place). Anything else is a
# real bug and keeps its traceback.
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDRs ('' = trust no proxy)."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


TrustedProxies = Annotated[tuple[Network, ...], from_text(parse_trusted_proxies)]
"""A setting's trusted proxies, given as the text `parse_trusted_proxies` reads."""


class ClientAddresses:
    """The client address of a request: the peer, or behind trusted proxies the right-most
    `X-Forwarded-For` hop that is not itself a trusted proxy (as uvicorn and gunicorn do).
    Hops left of it were written by the client and prove nothing."""

    def __init__(self, trusted: Sequence[Network] = ()) -> None:
        self._trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, environ: dict[str, Any]) -> str:
        """The address that per-address limits count."""
        request = environ.get("aiohttp.request")
        peer = str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR") or "unknown")
        if not self._trusted or not self._is_trusted(peer):
            return peer
        forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
        hops = [hop.strip() for hop in forwarded.split(",")[-_MAX_FORWARDED_HOPS:] if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop[:64]  # bounded: it becomes a dictionary key
        return hops[0] if hops else peer


class GuardedSocketServer(EdgeSocketServer):
    """The edge's Socket.IO server with the Engine.IO-level guards."""

    def __init__(
        self,
        *args: Any,
        limits: EdgeLimits,
        addresses: ClientAddresses,
        on_malformed: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.addresses = addresses
        self._on_malformed = on_malformed
        self._malformed: dict[str, int] = {}

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool | None:
        address = self.addresses.of(environ)
        if not self.limits.open_engine(eio_sid, address):
            log.info("handshake refused: too many sessions from one address", extra={"eio_sid": eio_sid})
            return False  # Engine.IO answers 401; nothing is kept
        environ["edge.client_address"] = address
        await super()._handle_eio_connect(eio_sid, environ)
        return None

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        environ = self.environ.get(eio_sid)
        if environ is not None and self.manager.sid_from_eio_sid(eio_sid, namespace or "/") is not None:
            # Connected: of the handshake's request only what a later CONNECT on this
            # socket would authenticate with is kept (the rest is 2 KB a socket).
            kept = {key: environ[key] for key in KEPT_AFTER_CONNECT if key in environ}
            environ.clear()
            environ.update(kept)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self.limits.close_engine(eio_sid)
            self._malformed.pop(eio_sid, None)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except _DECODE_ERRORS as exc:
            await self._malformed_frame(eio_sid, exc)

    async def _malformed_frame(self, eio_sid: str, exc: Exception) -> None:
        self._on_malformed()
        if not self.limits.engine_open(eio_sid):
            return  # already closing: counted, not logged
        count = self._malformed.get(eio_sid, 0) + 1
        self._malformed[eio_sid] = count
        if count == 1:
            # The frame itself is never logged: it is the client's text.
            log.warning(
                "malformed frame; further ones from this socket are only counted",
                extra={"eio_sid": eio_sid, "error": type(exc).__name__},
            )
        elif count == MALFORMED_LIMIT:
            log.warning(
                "socket keeps sending malformed frames; dropping it",
                extra={"eio_sid": eio_sid, "malformed": count},
            )
            await self.eio.drop_socket(eio_sid)

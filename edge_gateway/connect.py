"""The Socket.IO CONNECT answer for connection-state recovery: a `pid`, and the old `sid`
for a recovered socket.

The official client (v4.6+) keeps a session when the server's CONNECT answer carries a
`pid`; on reconnection it sends `{pid, offset}` with its auth, and `socket.recovered` is
true when the answer names the same `pid` again. python-socketio has no such answer and
picks every sid itself before the connect handler runs, so this module takes over
`_handle_connect`: the connect handler may return an `Admission` naming the sid the
socket is to have (the recovered session's) and its pid, plus work that must follow the
CONNECT answer (the replay of missed events, which the client must receive after it).

A goodbye is a Socket.IO DISCONNECT (`socket.disconnect()`), never a bare Engine.IO close:
a long-polling client whose poll failed closes its Engine.IO session on its way to
reconnecting, which upstream reports as "client disconnect" like a goodbye. Here it is a
"transport close" (as the JavaScript server names it), so that session is held too.

Upstream members relied on (python-socketio 5.18.1, pinned in pyproject.toml; covered by
tests/e2e/test_recovery.py): AsyncServer `_handle_connect` (replaced), `_trigger_event`,
`_send_packet`, `packet_class`, `handlers`, `environ`, `_handle_eio_disconnect` (its
reason rewritten), `reason`; AsyncManager `pre_connect`,
`connect`, `disconnect`, `is_connected`, `pending_connect`, `basic_enter_room`,
`basic_leave_room`; `socketio.exceptions.ConnectionRefusedError.error_args`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from socketio import exceptions
from socketio import packet as sio_packet

log = logging.getLogger("edge_gateway.connect")


@dataclass(frozen=True, slots=True)
class Admission:
    """A connect handler's yes, with what the CONNECT answer must say."""

    sid: str
    """The socket's sid: the one picked for it, or the recovered session's."""
    pid: str
    """The recovery id the client keeps (and presents when it reconnects)."""
    then: Callable[[], Awaitable[None]] | None = None
    """Runs once the CONNECT answer is queued (what the client must get after it)."""


class RecoveringConnect:
    """Mixin for socketio.AsyncServer: a CONNECT answer with `pid`, under a chosen sid."""

    manager: Any
    handlers: Any
    environ: Any
    packet_class: Any

    reason: Any

    _trigger_event: Callable[..., Awaitable[Any]]
    _send_packet: Callable[..., Awaitable[None]]

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        if reason == self.reason.CLIENT_DISCONNECT:
            reason = self.reason.TRANSPORT_CLOSE  # no Socket.IO goodbye came first
        await super()._handle_eio_disconnect(eio_sid, reason)  # type: ignore[misc]

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        namespace = namespace or "/"
        sid = await self.manager.pre_connect(eio_sid, namespace) if namespace in self.handlers else None
        if sid is None:
            await self._send(eio_sid, sio_packet.CONNECT_ERROR, "Unable to connect", namespace)
            return
        fail_reason = exceptions.ConnectionRefusedError().error_args
        try:
            result = await self._trigger_event("connect", namespace, sid, self.environ[eio_sid], data or None)
        except exceptions.ConnectionRefusedError as exc:
            fail_reason, result = exc.error_args, False
        if result is False:
            await self._send(eio_sid, sio_packet.CONNECT_ERROR, fail_reason, namespace)
            await self.manager.disconnect(sid, namespace, ignore_queue=True)
            return
        answer: dict[str, str] = {}
        if isinstance(result, Admission):
            if result.sid != sid:
                self._rename(sid, result.sid, namespace, eio_sid)
                sid = result.sid
            answer["pid"] = result.pid
        answer["sid"] = sid
        await self._send(eio_sid, sio_packet.CONNECT, answer, namespace)
        await self.manager.connect(sid, namespace)
        if isinstance(result, Admission) and result.then is not None:
            try:
                await result.then()
            except Exception:
                log.exception("work after a CONNECT answer failed", extra={"sid": sid})

    def sid_free(self, sid: str, namespace: str = "/") -> bool:
        """No socket here holds `sid` (a recovered socket may take it)."""
        return not self.manager.is_connected(sid, namespace) and sid not in self.manager.rooms.get(
            namespace, {}
        ).get(None, {})

    def _rename(self, old: str, new: str, namespace: str, eio_sid: str) -> None:
        """Gives a pre-connected socket another sid (as upstream's pre_connect files one)."""
        manager = self.manager
        manager.basic_leave_room(old, namespace, old)
        manager.basic_leave_room(old, namespace, None)
        pending = manager.pending_connect.setdefault(namespace, [])
        if old in pending:
            pending.remove(old)
        manager.basic_enter_room(new, namespace, None, eio_sid=eio_sid)
        manager.basic_enter_room(new, namespace, new, eio_sid=eio_sid)
        pending.append(new)

    async def _send(self, eio_sid: str, kind: int, data: Any, namespace: str) -> None:
        await self._send_packet(eio_sid, self.packet_class(kind, data=data, namespace=namespace))

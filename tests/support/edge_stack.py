"""The edge tier in this process for integration tests: a real EdgeApp in front of a real
RoomServiceApp (`start_stack`), and a python-socketio client that records what it
receives as the official JS client's handle does (`Client`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio

from edge_gateway.app import EdgeApp
from edge_gateway.config import load_settings as edge_settings
from room_service.app import RoomServiceApp
from room_service.config import load_settings as room_settings
from tests.support.received import RecordingClient

OPEN = "test-meeting-123"
LOCKED = "test-meeting-locked"

GOOD_JOIN = {"meetingId": OPEN, "userId": "user-x", "userName": "X"}
"""A join-meeting payload the edge accepts."""


@dataclass
class Stack:
    """A room service and an edge in this process."""

    room: RoomServiceApp
    edge: EdgeApp

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.edge.port}"

    async def participants(self, meeting_id: str = OPEN) -> list[str]:
        """The truth: participant ids in the room, per the room service."""
        snapshot = await self.room.manager.list_participants(meeting_id)
        return [p.participant_id for p in snapshot.participants]


ROOM_ARGS = "--grpc-address 127.0.0.1:0 --metrics-address 127.0.0.1:0 --restore-grace-seconds 0"
EDGE_ARGS = "--http-address 127.0.0.1:0 --heartbeat-interval-seconds 0.2 --rpc-timeout-seconds 2"


async def start_stack(*edge_flags: str) -> Stack:
    """A room service and an edge in front of it (`edge_flags` on top of EDGE_ARGS)."""
    # A short grace: stopping waits out a drain of half of it (at most 0.5 s), and the
    # stack is stopped when its test is done, with no calls left to drain.
    room = RoomServiceApp(room_settings([*ROOM_ARGS.split(), "--shutdown-grace-seconds", "0.2"], {}))
    await room.start()
    target = f"127.0.0.1:{room.grpc_port}"
    edge = EdgeApp(edge_settings([*EDGE_ARGS.split(), "--room-service-address", target, *edge_flags], {}))
    await edge.start()
    return Stack(room, edge)


async def stop_stack(stack: Stack) -> None:
    await stack.edge.stop()
    await stack.room.stop()


class Client(RecordingClient):
    """A python-socketio client (WebSocket only) that records every event it receives."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", self._record)

    async def _record(self, event: str, *args: Any) -> None:
        now = time.monotonic()
        self._add(event, list(args), ts=time.time() * 1000, hr=now * 1000, received=now)
        await self.notify()

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def connect(self, url: str, **_: Any) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=5)

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, args[0] if args else None)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, args[0] if args else None, timeout=timeout)


def sockets_connected(stack: Stack) -> float | None:
    """Sockets the edge counts as connected (its own gauge)."""
    return stack.edge.registry.get_sample_value("edge_gateway_sockets_connected")


Connect = Callable[..., Awaitable[list[Client]]]
"""The `connected` fixture: clients by name, each connected to the stack's edge."""

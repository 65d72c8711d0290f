"""What a room relay may use of its edge: the Hub provides it, and a relay reaches no
further into the edge than this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from edge_gateway.metrics import EdgeMetrics
from edge_gateway.sessions import SessionRegistry
from meeting.v1 import room_service_pb2 as pb

Payload = dict[str, Any] | tuple[Any, ...]
"""An event's data: one argument, or a tuple of several."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """An emit's target when it is a whole Socket.IO room, but for `skip_sid` if given."""

    room: str
    skip_sid: str | None = None


class RelayHost(Protocol):
    """The part of the edge a relay works through (the Hub provides it); a relay never
    reaches further into the edge than this."""

    @property
    def sessions(self) -> SessionRegistry:
        """The edge's sessions (read only, to address a participant's local socket)."""
        ...

    @property
    def metrics(self) -> EdgeMetrics:
        """Stream count and relay lag."""
        ...

    def watch_room(self, meeting_id: str, position: pb.StreamPosition) -> Any:
        """Opens the room's event stream after `position` (a grpc.aio stream call)."""
        ...

    async def emit(self, event: str, data: Payload, *, to: str | Broadcast) -> None:
        """Emits to one socket (its sid) or to a room (a Broadcast)."""
        ...

    async def enter_room(self, sid: str, room: str) -> None:
        """Puts a socket in a Socket.IO room: it receives the room's broadcasts from now on."""
        ...

    async def joiner_told(self, participant: pb.Participant) -> None:
        """Returns once the participant's socket, if it is joining on this edge, has its
        `meeting-joined` (bounded)."""
        ...

    async def local_participant_left(self, participant_id: str, reason: pb.LeaveReason.ValueType) -> None:
        """A participant left; its socket, if here, is told and detached."""
        ...

    async def drop_session(self, sid: str) -> None:
        """The room closed under the socket: forget it locally."""
        ...

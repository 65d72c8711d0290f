"""RoomManager: the room service's operations over a RoomStore, in parts: the use cases
(`use_cases`), held sessions (`holds`), the edge leases and reaping (`leases`) and the
streams (`streams`), sharing their state through `manager_core`. No protobuf here: the
API layer converts.
"""

from __future__ import annotations

from room_service.holds import SessionHolds
from room_service.leases import EdgeLeases
from room_service.manager_core import ManagerOptions
from room_service.streams import RoomStreams
from room_service.use_cases import UseCases

__all__ = ["ManagerOptions", "RoomManager"]


class RoomManager(UseCases, SessionHolds, RoomStreams, EdgeLeases):
    """The room service's operations; every public method may raise DomainError."""

"""Held sessions on the Redis store: not implemented yet. Every claim is refused and no
session is ever held, so a transport that closes without a goodbye leaves at once, as
before recovery existed (the room service's `hold` falls back to a DISCONNECTED leave)."""

from __future__ import annotations

from room_service.domain import errors
from room_service.domain.models import Recovered, RecoverSpec, RoomEvent


class RedisHoldsUnsupported:
    """SessionHolds for the Redis store, without recovery (see the module docstring)."""

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, until: float) -> bool:
        return False

    async def recover(self, spec: RecoverSpec) -> Recovered:
        raise errors.not_in_meeting("Session cannot be recovered")

    async def recovery_pending(self, recovery_id: str) -> bool:
        return False

    async def expire_holds(self, now: float) -> list[RoomEvent]:
        return []

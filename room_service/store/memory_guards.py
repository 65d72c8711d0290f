"""In-process store, guard role: bans and password attempts."""

from __future__ import annotations

from room_service.domain.throttle import FailureThrottle
from room_service.store.memory_state import MemoryState


class MemoryGuards(MemoryState):
    """Meeting bans and wrong-password throttles."""

    async def ban_user(self, meeting_id: str, user_id: str) -> None:
        self._bans.setdefault(meeting_id, set()).add(user_id)

    async def is_banned(self, meeting_id: str, user_id: str) -> bool:
        return user_id in self._bans.get(meeting_id, ())

    async def clear_bans(self, meeting_id: str) -> None:
        self._bans.pop(meeting_id, None)

    async def take_password_attempt(self, meeting_id: str, key: str, limit: int, window: float) -> bool:
        throttle = self._attempts.get((limit, window))
        if throttle is None:
            throttle = self._attempts[(limit, window)] = FailureThrottle(limit, window)
        scoped = f"{meeting_id}\x00{key}"  # ids never hold control characters
        if throttle.blocked(scoped):
            return False
        throttle.fail(scoped)
        return True

    async def return_password_attempt(self, meeting_id: str, key: str) -> None:
        for throttle in self._attempts.values():
            throttle.forgive(f"{meeting_id}\x00{key}")

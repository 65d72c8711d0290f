"""Bans in Redis: the user ids kept out of a meeting, one set under the room's hash tag."""

from __future__ import annotations

from room_service.store.redis_base import RedisPart, room_tag


def bans_key(meeting_id: str) -> str:
    """The set of user ids banned from one meeting."""
    return f"{room_tag(meeting_id)}:banned"


class RedisMeetingBans(RedisPart):
    """The MeetingBans role on Redis."""

    async def ban_user(self, meeting_id: str, user_id: str) -> None:
        await self._op("ban_user", lambda: self._redis.sadd(bans_key(meeting_id), user_id))

    async def is_banned(self, meeting_id: str, user_id: str) -> bool:
        found = await self._op("is_banned", lambda: self._redis.sismember(bans_key(meeting_id), user_id))
        return bool(found)

    async def clear_bans(self, meeting_id: str) -> None:
        await self._op("clear_bans", lambda: self._redis.delete(bans_key(meeting_id)))

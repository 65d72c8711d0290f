"""Wrong-password attempts in Redis: one counter per socket and meeting, under the
room's hash tag, expiring a window after its first attempt (every replica sees it)."""

from __future__ import annotations

from room_service.store.redis_base import RedisPart, room_tag, run_script

# KEYS[1] the counter; ARGV limit, window (ms). Counts unless the limit is reached.
_TAKE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
if n == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# Takes one attempt back; the counter goes when it reaches zero.
_RETURN = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 0
"""


def attempts_key(meeting_id: str, key: str) -> str:
    """The counter of one socket's attempts at one meeting's password."""
    return f"{room_tag(meeting_id)}:attempts:{key}"


class RedisPasswordAttempts(RedisPart):
    """The PasswordAttempts role on Redis (a fixed window from the first attempt)."""

    def _init_attempts(self) -> None:
        self._take_attempt = self._script(_TAKE)
        self._return_attempt = self._script(_RETURN)

    async def take_password_attempt(self, meeting_id: str, key: str, limit: int, window: float) -> bool:
        keys = [attempts_key(meeting_id, key)]
        args = [limit, max(1, int(window * 1000))]
        counted = await self._op("password_attempt", lambda: run_script(self._take_attempt, keys, args))
        return bool(counted)

    async def return_password_attempt(self, meeting_id: str, key: str) -> None:
        keys = [attempts_key(meeting_id, key)]
        await self._op("password_attempt_return", lambda: run_script(self._return_attempt, keys, []))

"""The Redis store's edge leases, exactly-once reaping, re-announcements and signals."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from room_service.domain import rules
from room_service.domain.models import RoomEvent, Signal, SignalType
from room_service.store.base import RestoreRecord
from room_service.store.redis_base import (
    LEASES,
    REAPED,
    REAPING,
    edge_rooms_key,
    edge_signals_key,
    run_script,
)
from room_service.store.redis_codec import event_from, participant_json
from room_service.store.redis_rooms import RedisRooms

# Claims an expired edge for reaping: only the first caller after expiry gets 1. An edge
# whose reaper died mid-way stays in the reaping set, and any caller may finish it (each
# room script removes a participant at most once, so nobody is reported gone twice).
# KEYS: leases, reaping, reaped. ARGV: edge, now, reaped kept, reaped seconds.
_CLAIM = """
local leases, reaping, reaped = KEYS[1], KEYS[2], KEYS[3]
local edge, now = ARGV[1], tonumber(ARGV[2])
local deadline = redis.call('ZSCORE', leases, edge)
if deadline and tonumber(deadline) <= now then
  redis.call('ZREM', leases, edge)
  redis.call('SADD', reaping, edge)
  redis.call('ZADD', reaped, now, edge)
  redis.call('ZREMRANGEBYSCORE', reaped, '-inf', now - tonumber(ARGV[4]))
  local extra = redis.call('ZCARD', reaped) - tonumber(ARGV[3])
  if extra > 0 then redis.call('ZREMRANGEBYRANK', reaped, 0, extra - 1) end
  return 1
end
return redis.call('SISMEMBER', reaping, edge)
"""
# Signals for an edge that never comes back expire with their queue.
_SIGNAL_TTL_SECONDS = 3600
# A blocking pop returns this often without news, so a closed stream is noticed.
_SIGNAL_POLL_SECONDS = 1


class RedisEdges(RedisRooms):
    """EdgeLeases and SignalRouter on Redis (reaping and re-announcing use the room scripts)."""

    def _init_edges(self) -> None:
        self._claim = self._script(_CLAIM)

    async def touch_edge(self, edge_id: str, expires_at: float) -> bool:
        added: Any = await self._op("touch_edge", lambda: self._redis.zadd(LEASES, {edge_id: expires_at}))
        return int(added) == 0

    async def expired_edges(self, now: float) -> list[str]:
        async def expired() -> list[str]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(LEASES, "-inf", now)
                pipe.smembers(REAPING)
                late, unfinished = await pipe.execute()
            return sorted(set(late) | set(unfinished))

        return await self._op("expired_edges", expired)

    async def drop_edge(self, edge_id: str, now: float) -> list[RoomEvent] | None:
        args = [edge_id, now, self._options.reaped_edges_kept, self._options.reaped_edge_seconds]
        claimed = await self._op(
            "drop_edge", lambda: run_script(self._claim, [LEASES, REAPING, REAPED], args)
        )
        if not int(claimed):
            return None
        rooms_key = edge_rooms_key(edge_id)
        events: list[RoomEvent] = []
        found: Any = await self._op("drop_edge", lambda: self._redis.smembers(rooms_key))
        for meeting_id in sorted(str(m) for m in found):
            # One script per room: each participant is removed (and reported) at most once.
            reply = await self._change_room("drop_edge", meeting_id, [edge_id])
            events.extend(event_from(meeting_id, reply[1], entry) for entry in reply[2])

        async def forget() -> None:
            await self._redis.delete(rooms_key, edge_signals_key(edge_id))
            await self._redis.srem(REAPING, edge_id)

        await self._op("drop_edge", forget)
        return events

    async def edge_count(self) -> int:
        count: Any = await self._op("edge_count", lambda: self._redis.zcard(LEASES))
        return int(count)

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        reaped = await self._op("restore", lambda: self._redis.zscore(REAPED, edge_id))
        if reaped is not None:
            return [r.participant.participant_id for r in records]
        by_room: dict[str, list[Any]] = {}
        for record in records:
            # The re-announcing edge holds the participant now.
            participant = dataclasses.replace(record.participant, edge_id=edge_id)
            by_room.setdefault(record.meeting_id, []).extend(
                [participant.participant_id, participant_json(participant)]
            )
        if by_room:
            rooms = list(by_room)
            await self._op("restore", lambda: self._redis.sadd(edge_rooms_key(edge_id), *rooms))
        refused: set[str] = set()
        for meeting_id, pairs in by_room.items():
            reply = await self._change_room("restore", meeting_id, [rules.new_epoch(), *pairs])
            if reply[0] == "REJECTED":
                refused.add(meeting_id)
        return [r.participant.participant_id for r in records if r.meeting_id in refused]

    async def publish_signal(self, edge_id: str, signal: Signal) -> None:
        key = edge_signals_key(edge_id)
        body = json.dumps(
            {
                "type": signal.type.value,
                "meeting_id": signal.meeting_id,
                "from": signal.from_participant_id,
                "target": signal.target_participant_id,
                "payload": signal.payload_json,
                "socket": signal.target_socket_id,
            }
        )

        async def push() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, body)
                # A stale offer is worth less than the newest candidate: drop the oldest.
                pipe.ltrim(key, -self._options.signal_queue, -1)
                pipe.expire(key, _SIGNAL_TTL_SECONDS)
                await pipe.execute()

        await self._op("publish_signal", push)

    async def next_signal(self, edge_id: str) -> Signal:
        key = edge_signals_key(edge_id)
        while True:
            popped = await self._op(
                "next_signal", lambda: self._redis.blpop([key], timeout=_SIGNAL_POLL_SECONDS)
            )
            if popped is not None:
                d = json.loads(popped[1])
                return Signal(
                    type=SignalType(d["type"]),
                    meeting_id=d["meeting_id"],
                    from_participant_id=d["from"],
                    target_participant_id=d["target"],
                    payload_json=d["payload"],
                    target_socket_id=d["socket"],
                )

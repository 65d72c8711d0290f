"""The Redis store's edge leases, exactly-once reaping, re-announcements and signals."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

from room_service.domain import rules
from room_service.domain.errors import DomainError
from room_service.domain.events import RoomEvent
from room_service.domain.models import Signal, SignalType
from room_service.store.base_edges import RestoreRecord
from room_service.store.redis_base import (
    LEASES,
    REAPED,
    REAPING,
    edge_rooms_key,
    edge_signals_key,
    run_script,
)
from room_service.store.redis_codec import participant_json
from room_service.store.redis_holds import RedisHolds

log = logging.getLogger("room_service.store")

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
# Sets a lease deadline; with ARGV[3] "0" only for a known edge. Answers 1 when known.
_TOUCH = """
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if known or ARGV[3] == '1' then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
if known then return 1 end
return 0
"""
# Signals for an edge that never comes back expire with their queue.
_SIGNAL_TTL_SECONDS = 3600
# A blocking pop returns this often without news, so a closed stream is noticed; and
# always well within the client's command timeout, or every quiet pop would fail as a
# timeout (ending the edge's WatchEdge stream, which the edge then reopens).
_SIGNAL_POLL_SECONDS = 1.0
_READER_TTL_SECONDS = 30


def _pop_seconds(timeout: float) -> float:
    """How long one blocking pop waits: half the operation timeout, at most the poll."""
    return _SIGNAL_POLL_SECONDS if timeout <= 0 else min(_SIGNAL_POLL_SECONDS, timeout / 2)


def _readers_key(edge_id: str) -> str:
    """How many WatchEdge readers of the edge wait on any replica (keeps its mailbox)."""
    return f"{{edge:{edge_id}}}:readers"


class RedisEdges(RedisHolds):
    """EdgeLeases and SignalRouter on Redis (reaping holds recoverable sessions; re-announcing
    uses the room scripts)."""

    def _left(self, task: asyncio.Task[None]) -> None:
        self._leaving.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a signal reader's goodbye did not reach Redis (its count expires)")

    def _init_edges(self) -> None:
        self._leaving: set[asyncio.Task[None]] = set()
        self._claim = self._script(_CLAIM)
        self._touch = self._script(_TOUCH)
        self._pop_seconds = _pop_seconds(self._timeout)

    async def touch_edge(self, edge_id: str, expires_at: float, *, create: bool = True) -> bool:
        args = [edge_id, repr(expires_at), "1" if create else "0"]
        known: Any = await self._op("touch_edge", lambda: run_script(self._touch, [LEASES], args))
        return bool(int(known))

    async def expired_edges(self, now: float) -> list[str]:
        async def expired() -> list[str]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(LEASES, "-inf", now)
                pipe.smembers(REAPING)
                late, unfinished = await pipe.execute()
            return sorted(set(late) | set(unfinished))

        return await self._op("expired_edges", expired)

    async def drop_edge(
        self, edge_id: str, now: float, hold_until: float | None = None
    ) -> list[RoomEvent] | None:
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
            events.extend(await self._drop_edge_in_room(meeting_id, edge_id, hold_until))

        async def forget() -> None:
            await self._redis.delete(rooms_key, edge_signals_key(edge_id))
            await self._redis.srem(REAPING, edge_id)

        await self._op("drop_edge", forget)
        return events

    async def _reading(self, key: str, delta: int) -> None:
        await self._redis.incrby(key, delta)
        await self._redis.expire(key, _READER_TTL_SECONDS)

    async def edge_count(self) -> int:
        count: Any = await self._op("edge_count", lambda: self._redis.zcard(LEASES))
        return int(count)

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        reaped = await self._op("restore", lambda: self._redis.zscore(REAPED, edge_id))
        if reaped is not None:
            return [r.participant.participant_id for r in records]
        by_room: dict[str, list[RestoreRecord]] = {}
        for record in records:
            by_room.setdefault(record.meeting_id, []).append(record)
        if by_room:
            rooms = list(by_room)
            await self._op("restore", lambda: self._redis.sadd(edge_rooms_key(edge_id), *rooms))
        refused: set[tuple[str, str]] = set()
        for meeting_id, room_records in by_room.items():
            try:
                meeting = await self.get_meeting(meeting_id)
            except DomainError:
                refused.update((meeting_id, r.participant.participant_id) for r in room_records)
                continue
            args: list[Any] = [rules.new_epoch(), edge_id]
            for record in room_records:
                claimed = record.participant
                # Held by the re-announcing edge, with the meeting's permissions (never
                # the record's); rules.may_restore is applied by the script.
                stored = dataclasses.replace(
                    claimed, edge_id=edge_id, permissions=rules.permissions_for(meeting, claimed.user_id)
                )
                args += [claimed.participant_id, participant_json(stored), claimed.edge_id, claimed.socket_id]
            reply = await self._change_room("restore", meeting_id, args)
            if reply[0] == "REJECTED":
                refused.update((meeting_id, r.participant.participant_id) for r in room_records)
            else:
                refused.update((meeting_id, str(pid)) for pid in reply[3])
        return [
            r.participant.participant_id
            for r in records
            if (r.meeting_id, r.participant.participant_id) in refused
        ]

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
            # Nobody could read a signal for an edge with neither a lease nor a reader.
            leased = await self._redis.zscore(LEASES, edge_id)
            if leased is None and int(await self._redis.get(_readers_key(edge_id)) or 0) <= 0:
                return
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, body)
                # A stale offer is worth less than the newest candidate: drop the oldest.
                pipe.ltrim(key, -self._options.signal_queue, -1)
                pipe.expire(key, _SIGNAL_TTL_SECONDS)
                await pipe.execute()

        await self._op("publish_signal", push)

    async def next_signal(self, edge_id: str) -> Signal:
        key = edge_signals_key(edge_id)
        readers = _readers_key(edge_id)
        try:
            # Counted and uncounted in one try: a reader cancelled at any point leaves
            # the count where it found it (or below, which also means nobody).
            await self._op("next_signal", lambda: self._reading(readers, 1))
            popped = None
            task = asyncio.current_task()
            while popped is None:
                # The client can swallow a cancellation that lands while it connects;
                # a cancelled reader must stop all the same.
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                popped = await self._op(
                    "next_signal", lambda: self._redis.blpop([key], timeout=self._pop_seconds)
                )
                # A reader that died without a goodbye stops counting after this long.
                await self._op("next_signal", lambda: self._redis.expire(readers, _READER_TTL_SECONDS))
        finally:
            # In a task of its own: a cancelled reader must not wait on Redis to leave.
            done = asyncio.get_running_loop().create_task(self._reading(readers, -1))
            self._leaving.add(done)
            done.add_done_callback(self._left)
        d = json.loads(popped[1])
        return Signal(
            type=SignalType(d["type"]),
            meeting_id=d["meeting_id"],
            from_participant_id=d["from"],
            target_participant_id=d["target"],
            payload_json=d["payload"],
            target_socket_id=d["socket"],
        )

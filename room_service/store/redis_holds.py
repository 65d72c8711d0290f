"""Held sessions (connection-state recovery) on the Redis store.

Where things live:
- the binding, participant id -> recovery id, and the held participants with their
  deadlines, under the room's hash tag (`redis_holds_scripts`): holding, recovering and
  expiring are each one script on the room, and an expiry appends its `left` entry with
  the room's next sequence in that same step, so it happens exactly once whichever
  replica runs it;
- a pointer per recovery id, `{recovery:<id>}` -> [meeting, participant] (its own slot):
  a reconnecting client presents only the id, so this is how its room is found. The room's
  binding stays the authority: a pointer whose binding is gone recovers nothing;
- one index of held sessions by deadline, `{holds}:due` (member [meeting, participant]),
  so expiry reads only what is due, never every room. It is written before the hold it
  announces (a replica that dies in between leaves an entry that expires into nothing),
  and an entry is moved or removed only if nobody changed it since it was read.

Pointers and bindings of participants that left are swept when a room's bindings outnumber
its participants twice over (see `BIND`), and deleted on expiry and refusal; the rest of a
room that closed for good is bounded by the room's size.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from room_service.domain import errors
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import RoomEvent
from room_service.domain.models import Participant, Position
from room_service.domain.requests import Recovered, RecoverSpec
from room_service.store import redis_holds_scripts as lua
from room_service.store.redis_base import (
    edge_rooms_key,
    run_script,
)
from room_service.store.redis_codec import event_from, participant_from, participant_json
from room_service.store.redis_seats import RedisSeats, hold_keys, recovery_pointer_key, session_entry

# Held sessions by deadline, across every room (a slot of its own).
HOLDS_DUE = "{holds}:due"
# Recovering is compare-and-set on the participant; concurrent changes to it retry.
_RECOVER_ATTEMPTS = 8
# Held sessions expired per call at most (the rest on the next tick).
_EXPIRE_BATCH = 1000


class RedisHolds(RedisSeats):
    """SessionHolds on Redis (see the module docstring); reaps an edge's rooms holding its
    recoverable sessions."""

    def _init_holds(self) -> None:
        self._init_seats()
        # By the operation name each is measured under. These append nothing to the log;
        # those that do are room changes, so this replica's watchers learn their entries.
        self._holds = {"hold": self._script(lua.HOLD), "recover": self._script(lua.RECOVER)}
        self._add_changes(hold_keys, {"expire_holds": lua.EXPIRE, "drop_edge": lua.DROP_EDGE})
        self._settle = self._script(lua.SETTLE)

    async def _hold_script(self, op: str, meeting_id: str, args: list[Any]) -> list[Any]:
        """Runs one of the scripts above on a room (the event time and log bound first)."""
        script, keys = self._holds[op], hold_keys(meeting_id)
        timed = [self._now(), self._options.replay_buffer, *args]
        reply: list[Any] = await self._op(op, lambda: run_script(script, keys, timed))
        return reply

    async def _index(self, meeting_id: str, participant_id: str, until: float, *, lower_only: bool) -> None:
        mapping = {session_entry(meeting_id, participant_id): until}
        await self._op("hold_index", lambda: self._redis.zadd(HOLDS_DUE, mapping, lt=lower_only))

    # -- SessionHolds -----------------------------------------------------------------------

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, until: float) -> bool:
        # Indexed before it is held: expiry must find every hold (an extra entry is harmless).
        await self._index(meeting_id, participant_id, until, lower_only=False)
        reply = await self._hold_script("hold", meeting_id, [participant_id, edge_id, repr(until)])
        if reply[0] == "OK":
            return True
        if reply[1]:  # still held with its own deadline: the index must not be later than it
            await self._index(meeting_id, participant_id, float(reply[1]), lower_only=True)
        return False

    async def recover(self, spec: RecoverSpec) -> Recovered:
        key = recovery_pointer_key(spec.recovery_id)
        pointer: Any = await self._op("recover", lambda: self._redis.get(key))
        if pointer is None:
            raise errors.not_in_meeting("Session cannot be recovered")
        meeting_id, participant_id = json.loads(pointer)
        after = spec.after or Position(0, "")
        # Before it is bound there, so that reaping the claiming edge always finds the room.
        rooms = edge_rooms_key(spec.edge_id)
        await self._op("index_edge", lambda: self._redis.sadd(rooms, meeting_id))
        for _ in range(_RECOVER_ATTEMPTS):
            try:
                raw = await self._participant_json(meeting_id, participant_id)
            except DomainError:
                await self._forget_pointer(spec.recovery_id, meeting_id, participant_id)
                raise errors.not_in_meeting("Session cannot be recovered") from None
            moved = dataclasses.replace(participant_from(raw), edge_id=spec.edge_id)
            reply = await self._hold_script(
                "recover",
                meeting_id,
                [
                    participant_id,
                    spec.recovery_id,
                    spec.user_id,
                    raw,
                    participant_json(moved),
                    after.sequence,
                    after.epoch,
                    "1" if spec.after is not None else "0",
                    spec.fresh_recovery_id,
                    "1" if spec.take_over else "0",
                ],
            )
            status = reply[0]
            if status == "CONFLICT":
                continue
            if status == "FORBIDDEN":
                raise errors.forbidden("Session belongs to another user")
            if status not in {"OK", "RESYNCED"}:
                if status == "GONE":
                    await self._forget_pointer(spec.recovery_id, meeting_id, participant_id)
                raise errors.not_in_meeting("Session cannot be recovered")
            return await self._recovered(spec, meeting_id, moved, reply)
        raise DomainError(ErrorCode.UNAVAILABLE, "Session changed concurrently, try again")

    async def _recovered(
        self, spec: RecoverSpec, meeting_id: str, participant: Participant, reply: list[Any]
    ) -> Recovered:
        epoch, entries, others, head, moved_from = reply[1], reply[2], reply[3], reply[4], reply[5]
        meeting = await self.get_meeting(meeting_id)
        resynced = reply[0] == "RESYNCED"
        if resynced:
            pid = participant.participant_id
            if spec.fresh_recovery_id:
                await self._set_pointer(spec.fresh_recovery_id, meeting_id, pid)
            await self._forget_pointer(spec.recovery_id, meeting_id, pid)
        return Recovered(
            meeting,
            participant,
            tuple(participant_from(raw) for raw in others),
            Position(int(head), epoch),
            tuple(event_from(meeting_id, epoch, entry) for entry in entries),
            resynced=resynced,
            moved_from=str(moved_from or ""),
        )

    async def expire_holds(self, now: float) -> list[RoomEvent]:
        due: Any = await self._op(
            "expire_holds",
            lambda: self._redis.zrangebyscore(
                HOLDS_DUE, "-inf", now, start=0, num=_EXPIRE_BATCH, withscores=True
            ),
        )
        events: list[RoomEvent] = []
        for member, score in due:
            meeting_id, participant_id = json.loads(member)
            reply = await self._change_room("expire_holds", meeting_id, [participant_id, repr(now)])
            later = ""
            if reply[0] == "OK":
                events.extend(self._events(reply))
                if reply[3]:
                    await self._forget_pointer(str(reply[3]), meeting_id, participant_id)
            elif reply[0] == "LATER":
                later = str(reply[3])  # held again: the index follows its new deadline
            await self._settle_index(member, float(score), later)
        return events

    async def _settle_index(self, member: str, seen: float, later: str) -> None:
        """Moves an index entry to `later` (or removes it) unless a hold changed it since."""
        args = [member, repr(seen), later]
        await self._op("expire_holds", lambda: run_script(self._settle, [HOLDS_DUE], args))

    async def _drop_edge_in_room(
        self, meeting_id: str, edge_id: str, hold_until: float | None
    ) -> list[RoomEvent]:
        """Reaps an edge in one room; its recoverable participants are held until
        `hold_until` (when given) and indexed, the others leave (disconnected)."""
        until = repr(hold_until) if hold_until is not None else ""
        reply = await self._change_room("drop_edge", meeting_id, [edge_id, until])
        for participant_id, deadline in reply[3]:
            # Also for those held before (a reap finished by another replica re-indexes them).
            await self._index(meeting_id, str(participant_id), float(deadline), lower_only=True)
        return self._events(reply)

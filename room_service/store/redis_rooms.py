"""The Redis store's meeting directory and rooms: each change one Lua script."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from room_service.domain import errors, rules
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import RoomEvent
from room_service.domain.models import LeaveReason, Meeting, Participant, Position, RoomSummary, Snapshot
from room_service.domain.requests import JoinOutcome, JoinSpec, MediaChange
from room_service.store import redis_scripts as lua
from room_service.store.redis_base import (
    DIRECTORY,
    ENDED,
    room_keys,
    room_tag,
    run_script,
)
from room_service.store.redis_codec import (
    chat_json,
    event_from,
    meeting_from,
    meeting_json,
    participant_json,
    participant_of,
)
from room_service.store.redis_log import RedisLog
from room_service.store.redis_notify import RoomNotifier
from room_service.store.redis_tails import KnownParticipants

# Media updates are compare-and-set; concurrent changes to one participant retry.
_UPDATE_ATTEMPTS = 8


def refusal(status: str) -> DomainError:
    if status == ErrorCode.NOT_IN_MEETING:
        return errors.not_in_meeting()
    if status == ErrorCode.MEETING_NOT_FOUND:
        return errors.meeting_not_found()
    if status == ErrorCode.MEETING_NOT_ACTIVE:
        return DomainError(ErrorCode.MEETING_NOT_ACTIVE, "Meeting is not active")
    if status == ErrorCode.ROOM_FULL:
        return DomainError(ErrorCode.ROOM_FULL, "Meeting is full")
    raise RuntimeError(f"unexpected store reply {status!r}")


def already_joined(meeting: Meeting, reply: list[Any]) -> JoinOutcome:
    """A join's outcome from a script's {"ALREADY", epoch, {}, own JSON, others, head}."""
    others = tuple(participant_of(raw) for raw in reply[4])
    position = Position(int(reply[5]), reply[1])
    return JoinOutcome(meeting, participant_of(reply[3]), others, position, already_joined=True)


class RedisRooms(RedisLog):
    """MeetingDirectory and RoomLog on Redis."""

    def _init_rooms(self, notifier: RoomNotifier) -> None:
        self._init_log(notifier)
        self._read_after = self._script(lua.READ_AFTER)
        self._snapshot = self._script(lua.SNAPSHOT)
        self._participants = KnownParticipants()

    # -- meetings ---------------------------------------------------------------------

    async def upsert_meeting(self, meeting: Meeting) -> Meeting:
        tag = room_tag(meeting.id)

        async def upsert() -> Any:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(f"{tag}:created", meeting.created_at.isoformat(), nx=True)
                pipe.set(f"{tag}:meeting", meeting_json(meeting))
                pipe.get(f"{tag}:created")
                replies = await pipe.execute()
            await self._redis.sadd(DIRECTORY, meeting.id)
            return replies[2]

        created = await self._op("upsert_meeting", upsert)
        return dataclasses.replace(meeting, created_at=datetime.fromisoformat(created))

    async def get_meeting(self, meeting_id: str) -> Meeting:
        tag = room_tag(meeting_id)
        raw, created = await self._op(
            "get_meeting", lambda: self._redis.mget(f"{tag}:meeting", f"{tag}:created")
        )
        if raw is None:
            raise errors.meeting_not_found()
        return meeting_from(raw, created or datetime.now(UTC).isoformat())

    async def end_meeting(
        self, meeting_id: str, ended_by: str, drop_at: float
    ) -> tuple[Meeting, RoomEvent | None]:
        meeting = (await self.get_meeting(meeting_id)).as_ended()
        when = repr(drop_at)
        reply = await self._change_room("end_meeting", meeting_id, [meeting_json(meeting), ended_by, when])
        if reply[0] != "OK":
            raise refusal(reply[0])
        events = self._events(reply)
        if events:
            await self._op("end_meeting", lambda: self._redis.zadd(ENDED, {meeting_id: drop_at}))
        return meeting, events[0] if events else None

    async def drop_ended_rooms(self, now: float) -> int:
        due: Any = await self._op(
            "drop_ended_rooms", lambda: self._redis.zrangebyscore(ENDED, "-inf", now, withscores=True)
        )
        dropped = 0
        for meeting_id, drop_at in due:
            reply = await self._change_room("drop_ended_rooms", meeting_id, [repr(float(drop_at))])
            dropped += reply[0] == "OK"
            await self._forget_ended(meeting_id)
        return dropped

    # -- participants -----------------------------------------------------------------

    async def _forget_ended(self, meeting_id: str) -> None:
        await self._op("drop_ended_rooms", lambda: self._redis.zrem(ENDED, meeting_id))

    async def rejoin(self, spec: JoinSpec) -> JoinOutcome | None:
        meeting = await self.get_meeting(spec.meeting_id)
        reply = await self._change_room("rejoin", spec.meeting_id, [spec.edge_id, spec.socket_id])
        if reply[0] != "ALREADY":
            return None
        return already_joined(meeting, reply)

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        reply = await self._change_room("leave", meeting_id, [participant_id, reason.value])
        if reply[0] != "OK":
            raise refusal(reply[0])
        return self._events(reply)[0]

    async def update_media(self, change: MediaChange) -> tuple[Participant, RoomEvent | None]:
        # One round trip when this replica knows the participant's stored JSON (it seated
        # or last changed it): the compare-and-set starts from that, and a stale guess
        # fails the compare, whose reply carries the current JSON for the next attempt.
        meeting_id, pid = change.meeting_id, change.participant_id
        raw = self._participants.get(meeting_id, pid)
        fresh = raw is None
        if raw is None:
            raw = await self._participant_json(meeting_id, pid)
        for _ in range(_UPDATE_ATTEMPTS):
            participant = participant_of(raw)
            media = change.applied_to(participant.media)
            if media == participant.media and fresh:
                return participant, None
            updated = participant_json(dataclasses.replace(participant, media=media))
            reply = await self._change_room(
                "update_media", meeting_id, [pid, raw, updated, change.changed_by]
            )
            if reply[0] == "SAME":  # the guess was right, and asked for no change
                return participant, None
            if reply[0] == "OK":
                self._participants.saw(meeting_id, pid, updated)
                return participant_of(updated), self._events(reply)[0]
            if reply[0] != "CONFLICT":
                self._participants.forget(meeting_id, pid)
                raise refusal(reply[0])
            raw, fresh = str(reply[1]), True
            self._participants.saw(meeting_id, pid, raw)
        raise DomainError(ErrorCode.UNAVAILABLE, "Participant changed concurrently, try again")

    async def append_chat(self, meeting_id: str, participant_id: str, text: str) -> RoomEvent:
        sender = await self.get_participant(meeting_id, participant_id)
        message = rules.new_chat_message(sender, text, datetime.now(UTC))
        reply = await self._change_room("append_chat", meeting_id, [participant_id, chat_json(message)])
        if reply[0] != "OK":
            raise refusal(reply[0])
        return self._events(reply)[0]

    async def _participant_json(self, meeting_id: str, participant_id: str) -> str:
        people = room_keys(meeting_id)[2]
        raw: Any = await self._op("get_participant", lambda: self._redis.hget(people, participant_id))
        if raw is None:
            raise errors.not_in_meeting()
        return str(raw)

    async def get_participant(self, meeting_id: str, participant_id: str) -> Participant:
        return participant_of(await self._participant_json(meeting_id, participant_id))

    async def snapshot(self, meeting_id: str) -> Snapshot:
        state, members, people, _, meeting_key = room_keys(meeting_id)
        keys = [state, members, people, meeting_key, f"{room_tag(meeting_id)}:created"]
        raw, created, epoch, head, found = await self._op(
            "snapshot", lambda: run_script(self._snapshot, keys, [])
        )
        if raw is None:
            raise errors.meeting_not_found()
        ended = meeting_from(raw, created or datetime.now(UTC).isoformat()).ended
        if not epoch:
            return Snapshot(meeting_id, (), Position(0, ""), ended)
        participants = tuple(participant_of(p) for p in found)
        return Snapshot(meeting_id, participants, Position(int(head), epoch), ended)

    async def list_rooms(self) -> list[RoomSummary]:
        # O(meetings), for listings and scrapes only; no hot path reads it.
        found: Any = await self._op("list_rooms", lambda: self._redis.smembers(DIRECTORY))
        meeting_ids = sorted(str(m) for m in found)

        async def heads() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for meeting_id in meeting_ids:
                    state, members = room_keys(meeting_id)[:2]
                    pipe.hmget(state, "epoch", "head")
                    pipe.zcard(members)
                return list(await pipe.execute())

        replies = await self._op("list_rooms", heads)
        rooms: list[RoomSummary] = []
        for i, meeting_id in enumerate(meeting_ids):
            (epoch, head), count = replies[2 * i], int(replies[2 * i + 1])
            if count and epoch:
                meeting = await self.get_meeting(meeting_id)
                rooms.append(RoomSummary(meeting, count, Position(int(head), epoch)))
        return rooms

    async def participant_count(self, meeting_id: str) -> int:
        members = room_keys(meeting_id)[1]
        count: Any = await self._op("participant_count", lambda: self._redis.zcard(members))
        return int(count)

    # -- the log ----------------------------------------------------------------------

    async def read_after(self, meeting_id: str, after: Position, limit: int) -> list[RoomEvent] | Snapshot:
        state, _, _, log, _ = room_keys(meeting_id)
        known = self._tails.after(meeting_id, after, limit)
        if known:
            return known
        mark = self._tails.mark_at(meeting_id, after)
        if mark is not None and self._notifier.news_since(state, mark, after) is False:
            return []  # `after` was the head, and nothing was heard since
        mark = self._notifier.mark(state)
        reply = await self._op(
            "read_after",
            lambda: run_script(self._read_after, [state, log], [after.sequence, after.epoch, limit]),
        )
        if reply[0] == "CLOSED" and after.epoch == "" and after.sequence == 0:
            return []
        if reply[0] != "OK":
            return await self.snapshot(meeting_id)
        events = [event_from(meeting_id, reply[1], entry) for entry in reply[2]]
        self._tails.learned(meeting_id, events, Position(int(reply[3]), reply[1]), mark)
        self._rosters.apply(meeting_id, events)
        return events

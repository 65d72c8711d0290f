"""Seating a participant on the Redis store: the join script with everything sent along
in its pipeline, and the binding of the participant to its recovery id (the pointer
`{recovery:<id>}` -> [meeting, participant], see `redis_holds` for what it serves).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from datetime import UTC, datetime

from room_service.domain import rules
from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import ParticipantJoined, ParticipantLeft
from room_service.domain.models import Meeting, MeetingStatus, Position
from room_service.domain.requests import JoinOutcome, JoinSpec
from room_service.store import redis_holds_scripts as lua
from room_service.store.redis_base import INCARNATION, LEASES, edge_rooms_key, room_keys, room_tag, run_script
from room_service.store.redis_codec import meeting_from, participant_json, participant_of
from room_service.store.redis_log import Along, Command
from room_service.store.redis_rooms import RedisRooms, already_joined, refusal

# Every open join answers the meeting as stored, the same JSON until the meeting changes.
meeting_of = functools.lru_cache(maxsize=1024)(meeting_from)
# Bindings a room may carry beyond twice its participants before they are swept.
_SWEEP_SLACK = 16


def recovery_pointer_key(recovery_id: str) -> str:
    """Where a recovery id's room and participant are found."""
    return f"{{recovery:{recovery_id}}}"


def session_entry(meeting_id: str, participant_id: str) -> str:
    """A held session as named by its pointer and in the deadline index."""
    return json.dumps([meeting_id, participant_id], separators=(",", ":"), ensure_ascii=False)


def hold_keys(meeting_id: str) -> list[str]:
    """The keys the join and hold scripts take, in their order."""
    tag = room_tag(meeting_id)
    return [*room_keys(meeting_id), f"{tag}:recovery", f"{tag}:held", f"{tag}:created"]


class RedisSeats(RedisRooms):
    """Joins on Redis, binding recovery ids."""

    def _init_seats(self) -> None:
        self._add_changes(hold_keys, {"join": lua.JOIN})
        self._delete_if = self._script(lua.DELETE_IF)

    async def _forget_pointer(self, recovery_id: str, meeting_id: str, participant_id: str) -> None:
        key, value = recovery_pointer_key(recovery_id), session_entry(meeting_id, participant_id)
        await self._op("recovery_pointer", lambda: run_script(self._delete_if, [key], [value]))

    async def _set_pointer(self, recovery_id: str, meeting_id: str, participant_id: str) -> None:
        key, value = recovery_pointer_key(recovery_id), session_entry(meeting_id, participant_id)
        await self._op("recovery_pointer", lambda: self._redis.set(key, value))

    async def join(
        self, spec: JoinSpec, meeting: Meeting | None = None, lease_until: float | None = None
    ) -> JoinOutcome:
        if meeting is None:
            meeting = await self.get_meeting(spec.meeting_id)
        if not meeting.joinable:
            raise DomainError(ErrorCode.MEETING_NOT_ACTIVE, "Meeting is not active")
        outcome = await self._seat(spec, meeting, lease_until)
        assert outcome is not None  # only an open join answers None
        return outcome

    async def join_open(self, spec: JoinSpec, lease_until: float | None = None) -> JoinOutcome | None:
        # The script reads the meeting: a join without a password is one round trip.
        stand_in = Meeting(spec.meeting_id, "", MeetingStatus.LIVE, "", datetime.now(UTC))
        return await self._seat(spec, stand_in, lease_until, read_meeting=True)

    async def _seat(
        self, spec: JoinSpec, meeting: Meeting, lease_until: float | None, *, read_meeting: bool = False
    ) -> JoinOutcome | None:
        """The JOIN script with its pipeline. `read_meeting`: the script reads the meeting
        (`meeting` only stands in for it) and a meeting with a password answers None."""
        participant = rules.new_participant(meeting, spec, datetime.now(UTC))
        pid = participant.participant_id
        # Along with the script: the edge's lease renewed, the room indexed under the edge
        # (so that reaping it always finds the room), the recovery id's pointer (a pointer
        # whose binding never came recovers nothing, and is deleted below), and the store's
        # instance id read.
        before = [Command("index_edge", ("SADD", edge_rooms_key(spec.edge_id), spec.meeting_id))]
        if lease_until is not None:
            before.insert(0, Command("touch_edge", ("ZADD", LEASES, lease_until, spec.edge_id)))
        if spec.recovery_id:
            pointer = (recovery_pointer_key(spec.recovery_id), session_entry(spec.meeting_id, pid))
            before.append(Command("recovery_pointer", ("SET", *pointer)))
        known = self._rosters.known(spec.meeting_id)
        claim = [known.position.epoch, known.position.sequence, known.version] if known else ["", "", ""]
        reply, (incarnation,) = await self._change_room_with(
            "join",
            spec.meeting_id,
            [
                rules.new_epoch(),
                pid,
                participant_json(participant),
                spec.user_id,
                spec.edge_id,
                spec.socket_id,
                "1" if self._options.multiple_sessions else "0",
                rules.room_capacity(meeting, self._options.default_capacity),
                spec.recovery_id,
                _SWEEP_SLACK,
                "1" if read_meeting else "0",
                *claim,
            ],
            Along(before, [Command("instance_id", ("GET", INCARNATION))]),
        )
        status = reply[0]
        if read_meeting and status in {"ALREADY", "OK"}:
            meeting = meeting_of(reply[6], reply[7] or datetime.now(UTC).isoformat())
        if status == "ALREADY":
            outcome = dataclasses.replace(already_joined(meeting, reply), instance_id=incarnation or "")
            if spec.recovery_id:  # it named the unseated id a moment: the seated one again
                seated = outcome.participant.participant_id
                await self._set_pointer(spec.recovery_id, spec.meeting_id, seated)
            return outcome
        if status != "OK":
            if spec.recovery_id:
                await self._forget_pointer(spec.recovery_id, spec.meeting_id, pid)
            if status == "PASSWORD":
                return None
            raise refusal(status)
        events = self._events(reply)
        own = events[-1]
        assert isinstance(own.payload, ParticipantJoined)
        if read_meeting:  # the script set its permissions: the joined entry has it as stored
            participant = own.payload.participant
        self._participants.saw(spec.meeting_id, pid, str(reply[5]))  # as stored
        for gone, recovery_id in reply[4]:
            await self._forget_pointer(str(recovery_id), spec.meeting_id, str(gone))
        replaced = tuple(e.payload.participant for e in events if isinstance(e.payload, ParticipantLeft))
        if reply[3] is None:  # the room was where `known` was: its roster, less the replaced
            assert known is not None
            others = known.participants
            if replaced:
                left = {p.participant_id for p in replaced}
                others = tuple(p for p in others if p.participant_id not in left)
        else:
            others = tuple(participant_of(raw) for raw in reply[3])
            at = Position(own.position.sequence - 1, own.position.epoch)
            self._rosters.reset(spec.meeting_id, at, str(reply[8]), others)
            self._rosters.apply(spec.meeting_id, [own])
        return JoinOutcome(
            meeting,
            participant,
            others,
            events[-1].position,
            replaced=replaced,
            instance_id=incarnation or "",
        )

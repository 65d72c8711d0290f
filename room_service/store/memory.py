"""In-process store: the embedded default. Every method runs without awaiting in the
middle of a change, so each is atomic on the event loop."""

from __future__ import annotations

import dataclasses

from room_service.domain import errors, rules
from room_service.domain.events import (
    ChatSent,
    MeetingEnded,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RoomEvent,
)
from room_service.domain.models import LeaveReason, Meeting, Participant, Position, RoomSummary, Snapshot
from room_service.domain.requests import JoinOutcome, JoinSpec, MediaChange
from room_service.store.memory_edges import MemoryEdges
from room_service.store.memory_guards import MemoryGuards
from room_service.store.memory_holds import MemoryHolds
from room_service.store.memory_state import utc_now


class MemoryStore(MemoryEdges, MemoryHolds, MemoryGuards):
    """The in-memory RoomStore, composed of its roles (memory_*.py)."""

    # -- meetings ---------------------------------------------------------------------

    async def upsert_meeting(self, meeting: Meeting) -> Meeting:
        existing = self._meetings.get(meeting.id)
        if existing is not None:
            meeting = dataclasses.replace(meeting, created_at=existing.created_at)
        self._meetings[meeting.id] = meeting
        return meeting

    async def get_meeting(self, meeting_id: str) -> Meeting:
        return self._meeting(meeting_id)

    async def end_meeting(
        self, meeting_id: str, ended_by: str, drop_at: float
    ) -> tuple[Meeting, RoomEvent | None]:
        previous = self._meeting(meeting_id)
        meeting = previous.as_ended()
        self._meetings[meeting_id] = meeting
        room = self._rooms.get(meeting_id)
        if room is None or previous.ended:
            return meeting, None  # ending twice tells nobody anything new
        for participant in room.participants.values():
            self._unindex(participant, meeting_id)
        room.participants.clear()
        # The room stays (empty, never listed, never joinable again while ended) instead of
        # closing: watchers then read MeetingEnded itself, in order after what they have,
        # rather than an empty snapshot that would look like everyone disconnected.
        event = self._append(room, MeetingEnded(ended_by=ended_by))
        room.drop_at = drop_at
        self._ended.append((drop_at, room))
        return meeting, event

    async def drop_ended_rooms(self, now: float) -> int:
        dropped = 0
        while self._ended and self._ended[0][0] <= now:
            drop_at, room = self._ended.popleft()
            meeting = self._meetings.get(room.meeting_id)
            still_ended = meeting is None or meeting.ended
            # A meeting registered again and rejoined keeps its room.
            if room.drop_at == drop_at and still_ended and not room.participants:
                self._close(room)
                room.log.clear()
                dropped += 1
        return dropped

    # -- participants -----------------------------------------------------------------

    async def join_open(self, spec: JoinSpec, lease_until: float | None = None) -> JoinOutcome | None:
        meeting = self._meeting(spec.meeting_id)
        rules.require_joinable(meeting)
        if meeting.password_hash is not None:
            return None
        return await self.join(spec, meeting, lease_until)

    async def join(
        self, spec: JoinSpec, meeting: Meeting | None = None, lease_until: float | None = None
    ) -> JoinOutcome:
        if lease_until is not None:
            await self.touch_edge(spec.edge_id, lease_until)
        meeting = self._meeting(spec.meeting_id)  # as it is now: reading costs nothing here
        rules.require_joinable(meeting)
        again = self._rejoin(meeting, spec)
        if again is not None:
            return again
        room = self._rooms.get(spec.meeting_id)
        replaced: list[Participant] = []
        if room is not None and not self._options.multiple_sessions:
            replaced = room.participants.of_user(spec.user_id)
        current = len(room.participants) if room is not None else 0
        if current - len(replaced) >= rules.room_capacity(meeting, self._options.default_capacity):
            raise errors.room_full()
        if room is None:
            room = self._open(spec.meeting_id)
        for old in replaced:
            del room.participants[old.participant_id]
            self._unindex(old, spec.meeting_id)
            self._append(room, ParticipantLeft(old, LeaveReason.REPLACED))
        participant = rules.new_participant(meeting, spec, utc_now())
        others = tuple(room.participants.values())
        room.participants[participant.participant_id] = participant
        self._index(participant, spec.meeting_id)
        if spec.recovery_id and spec.recovery_id not in self._recovery:
            key = (spec.meeting_id, participant.participant_id)
            self._recovery[spec.recovery_id] = key
            self._recovery_of[key] = spec.recovery_id
        event = self._append(room, ParticipantJoined(participant))
        return JoinOutcome(meeting, participant, others, event.position, replaced=tuple(replaced))

    async def rejoin(self, spec: JoinSpec) -> JoinOutcome | None:
        return self._rejoin(self._meeting(spec.meeting_id), spec)

    def _rejoin(self, meeting: Meeting, spec: JoinSpec) -> JoinOutcome | None:
        room = self._rooms.get(spec.meeting_id)
        if room is None or not meeting.joinable:
            return None
        participant = room.participants.at_socket(spec.edge_id, spec.socket_id)
        if participant is None:
            return None
        others = tuple(p for p in room.participants.values() if p is not participant)
        return JoinOutcome(meeting, participant, others, room.position, already_joined=True)

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        room = self._rooms.get(meeting_id)
        if room is None or participant_id not in room.participants:
            raise errors.not_in_meeting()
        participant = room.participants.pop(participant_id)
        self._unindex(participant, meeting_id)
        event = self._append(room, ParticipantLeft(participant, reason))
        if not room.participants:
            self._close(room)
        return event

    async def update_media(self, change: MediaChange) -> tuple[Participant, RoomEvent | None]:
        room, participant = self._find(change.meeting_id, change.participant_id)
        media = change.applied_to(participant.media)
        if media == participant.media:
            return participant, None
        updated = dataclasses.replace(participant, media=media)
        room.participants[change.participant_id] = updated
        return updated, self._append(room, ParticipantUpdated(updated, change.changed_by))

    async def append_chat(self, meeting_id: str, participant_id: str, text: str) -> RoomEvent:
        room, sender = self._find(meeting_id, participant_id)
        return self._append(room, ChatSent(rules.new_chat_message(sender, text, utc_now())))

    async def get_participant(self, meeting_id: str, participant_id: str) -> Participant:
        return self._find(meeting_id, participant_id)[1]

    async def snapshot(self, meeting_id: str) -> Snapshot:
        meeting = self._meeting(meeting_id)
        room = self._rooms.get(meeting_id)
        ended = meeting.ended
        if room is None:
            return Snapshot(meeting_id, (), Position(0, ""), ended)
        return Snapshot(meeting_id, tuple(room.participants.values()), room.position, ended)

    async def list_rooms(self) -> list[RoomSummary]:
        return [
            RoomSummary(self._meetings[r.meeting_id], len(r.participants), r.position)
            for r in self._rooms.values()
            if r.participants
        ]

    # -- the log ----------------------------------------------------------------------

    async def read_after(self, meeting_id: str, after: Position, limit: int) -> list[RoomEvent] | Snapshot:
        room = self._rooms.get(meeting_id)
        if room is None:
            if after.epoch == "" and after.sequence == 0:
                return []
            return await self.snapshot(meeting_id)
        if after.epoch != room.epoch:
            return await self.snapshot(meeting_id)
        if after.sequence >= room.head:
            return []
        oldest = room.log[0].position.sequence if room.log else room.head + 1
        if after.sequence + 1 < oldest:
            return await self.snapshot(meeting_id)
        start = after.sequence + 1 - oldest
        end = min(len(room.log), start + limit)
        return [room.log[i] for i in range(start, end)]

    async def wait_beyond(self, meeting_id: str, position: Position) -> None:
        room = self._rooms.get(meeting_id)
        if room is None:
            if position.epoch == "":
                await self._room_opened(meeting_id)
            return
        if room.epoch != position.epoch or room.head > position.sequence:
            return
        await room.changed.wait()

    async def participant_count(self, meeting_id: str) -> int:
        room = self._rooms.get(meeting_id)
        return len(room.participants) if room is not None else 0

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None

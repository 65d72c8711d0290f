"""In-process store, hold role: connection-state recovery of held sessions."""

from __future__ import annotations

import dataclasses
import heapq

from room_service.domain import errors
from room_service.domain.events import ParticipantLeft, RoomEvent
from room_service.domain.models import LeaveReason
from room_service.domain.requests import Recovered, RecoverSpec
from room_service.store.memory_state import MemoryState


class MemoryHolds(MemoryState):
    """Sessions held for recovery, recovered through any edge, or expired."""

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, until: float) -> bool:
        room = self._rooms.get(meeting_id)
        participant = room.participants.get(participant_id) if room is not None else None
        key = (meeting_id, participant_id)
        if participant is None or participant.edge_id != edge_id or key not in self._recovery_of:
            return False
        self._unindex_edge(participant, meeting_id)
        self._hold(key, until)
        return True

    async def recover(self, spec: RecoverSpec) -> Recovered:
        key = self._recovery.get(spec.recovery_id)
        held = key is not None and key in self._holds
        if key is None or not (held or spec.take_over):
            raise errors.not_in_meeting("Session cannot be recovered")
        meeting_id, participant_id = key
        room, participant = self._find(meeting_id, participant_id)
        if spec.user_id and spec.user_id != participant.user_id:
            raise errors.forbidden("Session belongs to another user")
        moved_from = ""
        if held:
            del self._holds[key]
        else:
            moved_from = participant.edge_id  # taken from a socket its edge still has
            self._unindex_edge(participant, meeting_id)
        participant = dataclasses.replace(participant, edge_id=spec.edge_id)
        room.participants[participant_id] = participant
        self._index(participant, meeting_id)
        meeting = self._meeting(meeting_id)
        others = tuple(p for p in room.participants.values() if p.participant_id != participant_id)
        missed = self._events_after(room, spec.after)
        if missed is not None:
            return Recovered(
                meeting, participant, others, room.position, tuple(missed), moved_from=moved_from
            )
        # The log no longer reaches back: the session goes on under a fresh id.
        self._forget_recovery(key)
        if spec.fresh_recovery_id:
            self._recovery[spec.fresh_recovery_id] = key
            self._recovery_of[key] = spec.fresh_recovery_id
        return Recovered(meeting, participant, others, room.position, resynced=True, moved_from=moved_from)

    async def expire_holds(self, now: float) -> list[RoomEvent]:
        events: list[RoomEvent] = []
        while self._hold_heap and self._hold_heap[0][0] <= now:
            deadline, meeting_id, participant_id = heapq.heappop(self._hold_heap)
            key = (meeting_id, participant_id)
            if self._holds.get(key) != deadline:
                continue  # recovered, removed, or held again with another deadline
            room = self._rooms.get(meeting_id)
            participant = room.participants.pop(participant_id, None) if room is not None else None
            self._forget_recovery(key)
            if room is None or participant is None:
                continue
            events.append(self._append(room, ParticipantLeft(participant, LeaveReason.DISCONNECTED)))
            if not room.participants:
                self._close(room)
        return events

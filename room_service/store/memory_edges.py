"""In-process store, edge role: leases, reaping, RestoreSessions and signals."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from room_service.domain import rules
from room_service.domain.events import ParticipantJoined, ParticipantLeft, RoomEvent
from room_service.domain.models import LeaveReason, Signal
from room_service.store.base_edges import RestoreRecord
from room_service.store.memory_state import MemoryState


class MemoryEdges(MemoryState):
    """Edge leases (renewing, reaping an expired edge, restoring its sessions) and each
    edge's signal mailbox."""

    async def touch_edge(self, edge_id: str, expires_at: float, *, create: bool = True) -> bool:
        known = edge_id in self._edges
        if known or create:
            self._edges[edge_id] = expires_at
        return known

    async def instance_id(self) -> str:
        return self._instance

    async def expired_edges(self, now: float) -> list[str]:
        return [edge for edge, deadline in self._edges.items() if deadline <= now]

    async def drop_edge(
        self, edge_id: str, now: float, hold_until: float | None = None
    ) -> list[RoomEvent] | None:
        deadline = self._edges.get(edge_id)
        if deadline is None or deadline > now:
            return None  # renewed meanwhile, or already reaped
        del self._edges[edge_id]
        self._remember_reaped(edge_id, now)
        self._mailboxes.discard(edge_id)
        events: list[RoomEvent] = []
        for meeting_id, participant_id in sorted(self._edge_participants.pop(edge_id, set())):
            room = self._rooms.get(meeting_id)
            if room is None or participant_id not in room.participants:
                continue
            key = (meeting_id, participant_id)
            if hold_until is not None and key in self._recovery_of:
                self._hold(key, hold_until)  # recoverable through another edge
                continue
            participant = room.participants.pop(participant_id)
            self._forget_recovery(key)
            events.append(self._append(room, ParticipantLeft(participant, LeaveReason.DISCONNECTED)))
            if not room.participants:
                self._close(room)
        return events

    async def edge_count(self) -> int:
        return len(self._edges)

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        if edge_id in self._reaped:
            return [r.participant.participant_id for r in records]
        rejected: list[str] = []
        for record in records:
            claimed = record.participant
            meeting = self._meetings.get(record.meeting_id)
            room = self._rooms.get(record.meeting_id)
            held = room.participants.get(claimed.participant_id) if room is not None else None
            if meeting is None or not meeting.joinable or not rules.may_restore(edge_id, claimed, held):
                rejected.append(claimed.participant_id)
                continue
            if held is not None:
                continue  # already back (a repeated restore, or it joined again meanwhile)
            if room is None:
                room = self._open(record.meeting_id)
            participant = dataclasses.replace(
                claimed, edge_id=edge_id, permissions=rules.permissions_for(meeting, claimed.user_id)
            )
            room.participants[participant.participant_id] = participant
            self._index(participant, record.meeting_id)
            self._append(room, ParticipantJoined(participant))
        return rejected

    async def publish_signal(self, edge_id: str, signal: Signal) -> None:
        self._mailboxes.post(edge_id, signal)

    async def next_signal(self, edge_id: str) -> Signal:
        return await self._mailboxes.take(edge_id)

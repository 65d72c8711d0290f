"""Held sessions (Socket.IO connection-state recovery): holding a participant whose socket's
transport closed without a goodbye, and resuming it for the client that reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.models import LeaveReason, Recovered, RecoverSpec, RoomEvent
from room_service.manager_core import ManagerCore

log = logging.getLogger("room_service")

# How long past an edge's disconnect grace a recovery claim waits for a still-bound session
# to be held (the reaper's tick and the edge's RPC fit well within), and how often it looks.
_RECOVERY_PATIENCE_SECONDS = 1.5
_RECOVERY_POLL_SECONDS = 0.1


class SessionHolds(ManagerCore):
    """HoldSession and RecoverSession; expiry runs in the reaper (leases.housekeeping)."""

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        raise NotImplementedError  # provided by UseCases

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, silent_seconds: float) -> bool:
        """A socket's transport closed without a goodbye: holds its participant until the
        window after its client was last heard, or removes it (DISCONNECTED) when that
        already passed or it cannot be recovered. True when held."""
        window = self._options.recovery_window_seconds - max(0.0, silent_seconds)
        if window > 0 and await self._store.hold(meeting_id, participant_id, edge_id, self._clock() + window):
            self._metrics.recoveries.labels(outcome="held").inc()
            log.info(
                "session held for recovery",
                extra={
                    "meeting_id": meeting_id,
                    "participant_id": participant_id,
                    "seconds": round(window, 3),
                },
            )
            return True
        try:
            current = await self._store.get_participant(meeting_id, participant_id)
        except DomainError:
            return False
        if current.edge_id == edge_id:  # not recovered elsewhere meanwhile
            with contextlib.suppress(DomainError):
                await self.leave(meeting_id, participant_id, LeaveReason.DISCONNECTED)
        return False

    async def recover(self, spec: RecoverSpec) -> Recovered:
        """Resumes a held session on the caller's edge (see the store's `recover`).

        A client often reconnects before its old edge let go of the session (a dead edge
        is reaped after its disconnect grace; a long-poll lingers until its ping
        timeout): while the session is still bound, the claim waits a bounded while for
        it to be held instead of being refused at once."""
        deadline = self._clock() + self._options.edge_disconnect_grace_seconds + _RECOVERY_PATIENCE_SECONDS
        while True:
            try:
                recovered = await self._store.recover(spec)
                break
            except DomainError as exc:
                waiting = exc.code is ErrorCode.NOT_IN_MEETING and self._clock() < deadline
                if not waiting or not await self._store.recovery_pending(spec.recovery_id):
                    self._metrics.recoveries.labels(outcome="refused").inc()
                    raise
            await asyncio.sleep(_RECOVERY_POLL_SECONDS)
        self._metrics.recoveries.labels(outcome="resynced" if recovered.resynced else "recovered").inc()
        log.info(
            "session resumed without the missed events" if recovered.resynced else "session recovered",
            extra={
                "meeting_id": recovered.meeting.id,
                "participant_id": recovered.participant.participant_id,
                "edge_id": spec.edge_id,
                "missed": len(recovered.missed),
            },
        )
        return recovered

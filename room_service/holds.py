"""Held sessions (Socket.IO connection-state recovery): holding a participant whose socket's
transport closed without a goodbye, and resuming it for the client that reconnects."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

from room_service.domain.errors import DomainError, ErrorCode
from room_service.domain.events import RoomEvent
from room_service.domain.models import LeaveReason, Signal, SignalType
from room_service.domain.requests import Recovered, RecoverSpec
from room_service.manager_core import ManagerCore

log = logging.getLogger("room_service")


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    """Swallows NOT_IN_MEETING (someone else removed the participant first)."""
    try:
        yield
    except DomainError as exc:
        if exc.code is not ErrorCode.NOT_IN_MEETING:
            raise


class SessionHolds(ManagerCore):
    """HoldSession and RecoverSession; expiry runs in the reaper (leases.housekeeping)."""

    async def leave(self, meeting_id: str, participant_id: str, reason: LeaveReason) -> RoomEvent:
        raise NotImplementedError  # provided by UseCases

    async def hold(self, meeting_id: str, participant_id: str, edge_id: str, silent_seconds: float) -> bool:
        """A socket's transport closed without a goodbye: holds its participant until the
        window after its client was last heard, or removes it (DISCONNECTED) when that
        already passed or it cannot be recovered. True when held; False when the caller
        has nothing more to do (it left, was gone already, or is on another edge now)."""
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
        # Not held: it leaves, unless it is gone already or was taken over by another edge
        # (recovered there meanwhile). A store failure is the caller's error, so that the
        # edge leaves (and retries) itself.
        with _unless_gone():
            current = await self._store.get_participant(meeting_id, participant_id)
            if current.edge_id == edge_id:
                await self.leave(meeting_id, participant_id, LeaveReason.DISCONNECTED)
        return False

    async def recover(self, spec: RecoverSpec) -> Recovered:
        """Resumes a held session on the caller's edge (see the store's `recover`).

        A client often reconnects before its old edge let go of the session (a dead edge
        is reaped after its disconnect grace; a long-poll lingers until its ping
        timeout): the claim takes the session over at once. The pid is the client's
        secret and the client only presents it once it gave up its old connection, so
        that socket is dead; its edge is told to close it, and lets it go without a
        leave (its HoldSession finds the session moved)."""
        try:
            recovered = await self._store.recover(dataclasses.replace(spec, take_over=True))
        except DomainError:
            self._metrics.recoveries.labels(outcome="refused").inc()
            raise
        self._metrics.recoveries.labels(outcome="resynced" if recovered.resynced else "recovered").inc()
        log.info(
            "session resumed without the missed events" if recovered.resynced else "session recovered",
            extra={
                "meeting_id": recovered.meeting.id,
                "participant_id": recovered.participant.participant_id,
                "edge_id": spec.edge_id,
                "missed": len(recovered.missed),
                "taken_over_from": recovered.moved_from,
            },
        )
        if recovered.moved_from and recovered.moved_from != spec.edge_id:
            await self._tell_moved(recovered)
        return recovered

    async def _tell_moved(self, recovered: Recovered) -> None:
        """Tells the edge a session was taken from that its socket is dead (or at least no
        longer the session's): it closes it without a leave, so one connection at a time
        holds a session. Best effort: unheard, the edge lets the socket go at its ping
        timeout all the same, and never as a leave."""
        participant = recovered.participant
        notice = Signal(
            type=SignalType.SESSION_MOVED,
            meeting_id=recovered.meeting.id,
            from_participant_id=participant.participant_id,
            target_participant_id=participant.participant_id,
            payload_json="",
            target_socket_id=participant.socket_id,
        )
        try:
            await self._store.publish_signal(recovered.moved_from, notice)
        except DomainError:
            log.warning("the edge a session was taken from could not be told", exc_info=True)

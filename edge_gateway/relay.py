"""Room relays: one WatchRoom stream per room with local sockets, fanned out to them.

Delivery rules (DESIGN.md) and how they hold here:
- A socket joins the Socket.IO room only once the stream has reached its own join
  sequence S, and after its `meeting-joined` was queued; so it gets exactly the events
  after S, in order, each once. Events the stream passed before the socket registered
  are replayed to it from a small ring, or, if the ring no longer reaches, the socket is
  brought up to date by a diff of its roster against the relay's view.
- A broadcast is one emit to the room: engine.py encodes and frames it once and writes
  it to every socket of the room in place, in emit order with that socket's direct emits.
- The relay keeps the room's participant view. An event about a participant already in
  (or already out of) the view is not re-broadcast, and a snapshot (after a gap, an epoch
  change or a room service restart) is turned into the joined/left/updated events that
  bring every socket's view back to the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

import grpc

from edge_gateway import events, wire
from edge_gateway.relay_host import RelayHost
from edge_gateway.relay_view import RelayView
from edge_gateway.sessions import Session, owned, room_name
from meeting.v1 import room_service_pb2 as pb

log = logging.getLogger("edge_gateway.relay")

_RING = 256
_MAX_BACKOFF = 2.0


class _ResyncError(Exception):
    """The stream skipped or repeated a sequence: reconnect from the last good position."""


class RoomRelay(RelayView):
    """Relays one room's stream to this edge's sockets in that room."""

    def __init__(
        self, hub: RelayHost, meeting_id: str, position: tuple[int, str], view: dict[str, pb.Participant]
    ) -> None:
        self._hub = hub
        self.meeting_id = meeting_id
        self.room = room_name(meeting_id)
        self.position = position
        self.view = view
        self._ring: deque[pb.RoomEvent] = deque(maxlen=_RING)
        # Epochs the stream has left behind: a socket that joined in one of them is
        # behind the relay; one that joined in an epoch not seen yet is ahead of it.
        self._past_epochs: set[str] = set()
        self._fragments = {}
        self._roster = ((), b"[]")
        self.members: dict[str, Session] = {}
        self.pending: dict[str, Session] = {}
        # Held while the stream applies one item and while a socket is brought into step:
        # emits yield, and an event broadcast while a socket is still being caught up
        # (not yet in the Socket.IO room) would otherwise never reach it.
        self._step = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._call: Any = None
        self.closed = False

    # -- membership -------------------------------------------------------------------

    def start(self) -> None:
        """Opens the stream at the relay's position."""
        self._task = asyncio.create_task(self._run(), name=f"relay:{self.meeting_id}")

    async def close(self) -> None:
        """Stops the stream."""
        self.closed = True
        if self._call is not None:
            self._call.cancel()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def streaming(self) -> bool:
        """The stream runs (or resumes) and the view follows it: not closed, and not given
        up because the meeting is gone (the view is emptied then, the position kept)."""
        return not self.closed and self._task is not None and not self._task.done()

    @property
    def empty(self) -> bool:
        """No local socket uses this relay any more."""
        return not self.members and not self.pending

    async def register(self, session: Session, missed: Sequence[pb.RoomEvent] = ()) -> None:
        """Brings a socket that just got `meeting-joined` into step with the stream; a
        recovered socket first gets the events it `missed` (from the room log, up to its
        session's position), each once, in order, before anything newer."""
        async with self._step:
            for event in missed:
                await self._deliver(event, only=session.sid)
            await self._register(session)

    async def _register(self, session: Session) -> None:
        seq, epoch = session.position
        if epoch != self.position[1] and epoch not in self._past_epochs:
            # Joined in a log incarnation the stream has not reached yet (e.g. the room
            # service restarted and this relay still waits for its resync snapshot):
            # diffing against the stale view now would invent joins and leaves.
            self.pending[session.sid] = session
            return
        if epoch == self.position[1] and seq >= self.position[0]:
            self.pending[session.sid] = session  # the stream has not reached its join yet
            if seq == self.position[0]:
                await self._activate_ready()
            return
        if session.participant_id not in self.view:
            # The stream passed this participant's removal (a kick, a newer session of
            # the same user) between its join reply and now: it must hear that, as the
            # participant itself, and never enter the room's fan-out.
            await self._left_locally(session.participant_id)
            return
        if epoch == self.position[1]:
            missed = [e for e in self._ring if e.sequence > seq]
            if missed and missed[0].sequence == seq + 1:
                for event in missed:
                    await self._deliver(event, only=session.sid)
                await self._activate(session, diff=False)
                return
        await self._activate(session, diff=True)

    def unregister(self, sid: str) -> None:
        """Removes a socket (it left or disconnected)."""
        self.members.pop(sid, None)
        self.pending.pop(sid, None)

    async def _activate_ready(self) -> None:
        seq, epoch = self.position
        for sid, session in list(self.pending.items()):
            joined_seq, joined_epoch = session.position
            behind = joined_epoch in self._past_epochs
            reached = joined_epoch == epoch and joined_seq <= seq
            if not (behind or reached):
                continue
            del self.pending[sid]
            if session.participant_id not in self.view:
                # Its participant is no longer in the room (reaped, replaced, or lost in
                # a restart): tell the socket, do not let it think it is still in.
                await self._left_locally(session.participant_id)
                continue
            # In step exactly when the stream stopped at its own join; else diff.
            await self._activate(session, diff=session.position != self.position)

    async def _left_locally(self, participant_id: str) -> None:
        """Tells a local socket its participant is out, with the reason the stream gave
        when the ring still holds it (so a kicked socket gets `kicked`)."""
        reason: pb.LeaveReason.ValueType = pb.LEAVE_REASON_DISCONNECTED
        for event in reversed(self._ring):
            if (
                event.WhichOneof("payload") == "participant_left"
                and event.participant_left.participant.participant_id == participant_id
            ):
                reason = event.participant_left.reason
                break
        await self._hub.local_participant_left(participant_id, reason)

    async def _activate(self, session: Session, *, diff: bool) -> None:
        if diff:
            await self._send_diff(session)
        session.roster = ()
        # One copy of a participant per edge: its session shares the view's.
        session.participant = self.view.get(session.participant_id, session.participant)
        self.members[session.sid] = session
        await self._hub.enter_room(session.sid, self.room)

    # -- the stream -------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        while not self.closed:
            seq, epoch = self.position
            try:
                self._call = self._hub.watch_room(
                    self.meeting_id, pb.StreamPosition(sequence=seq, epoch=epoch)
                )
                self._hub.metrics.room_streams.inc()
                try:
                    async for item in self._call:
                        backoff = 0.05
                        async with self._step:
                            kind = item.WhichOneof("item")
                            if kind == "events":
                                # One pass: the sockets' writes of the whole batch leave
                                # together (engine.py gathers them until its next write).
                                for event in item.events.events:
                                    await self._apply(event)
                            elif kind == "event":
                                await self._apply(item.event)
                            else:
                                await self._reset(item.snapshot)
                        if self.closed:
                            return
                finally:
                    self._hub.metrics.room_streams.dec()
            except _ResyncError:
                continue
            except grpc.aio.AioRpcError as exc:
                if self.closed:
                    return
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    log.warning("room's meeting is gone", extra={"meeting_id": self.meeting_id})
                    ended = {"meetingId": self.meeting_id, "endedBy": None}
                    for sid in list(self.members) + list(self.pending):
                        await self._hub.emit(events.MEETING_ENDED, ended, to=sid)
                    await self._meeting_gone()
                    return
                log.info(
                    "room stream broken; resuming",
                    extra={"meeting_id": self.meeting_id, "status": exc.code().name, "after": seq},
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room relay failed; resuming", extra={"meeting_id": self.meeting_id})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _apply(self, event: pb.RoomEvent) -> None:
        seq, epoch = self.position
        if event.epoch != epoch or event.sequence != seq + 1:
            if event.epoch == epoch and event.sequence <= seq:
                return  # already relayed (a resumed stream never repeats, but be safe)
            raise _ResyncError
        self.position = (event.sequence, event.epoch)
        self._ring.append(event)
        await self._deliver(event, only=None)
        self._hub.metrics.observe_lag(event.time)
        if self.pending:
            await self._activate_ready()

    async def _deliver(self, event: pb.RoomEvent, only: str | None) -> None:
        """Applies an event to the view (when broadcasting) and emits it, with its position
        as the recovery offset."""
        kind = event.WhichOneof("payload")
        broadcast = only is None
        at = wire.offset((event.sequence, event.epoch))
        if kind == "participant_joined":
            p = event.participant_joined.participant
            if broadcast:
                if p.participant_id in self.view:
                    return
                # Owned: an entry taken out of the event would keep the whole event alive
                # for as long as the participant stays (long after the ring let it go).
                p = self.view[p.participant_id] = owned(p)
            # Converted before waiting below: when the stream outruns the Join reply, the
            # joiner's own entry in its `meeting-joined` is then made already.
            joined = wire.participant(p)
            if broadcast:
                # A local joiner hears it is in before the others hear of it (the seed's
                # order), even when the stream outruns the Join reply.
                await self._hub.joiner_told(p)
            await self._emit(events.PARTICIPANT_JOINED, joined, only, skip=p.participant_id, offset=at)
        elif kind == "participant_left":
            p, reason = event.participant_left.participant, event.participant_left.reason
            if broadcast:
                if self.view.pop(p.participant_id, None) is None:
                    return
                await self._hub.local_participant_left(p.participant_id, reason)
            await self._emit(events.PARTICIPANT_LEFT, wire.participant_left(p, reason), only, offset=at)
        elif kind == "participant_updated":
            p = event.participant_updated.participant
            if broadcast:
                p = self.view[p.participant_id] = owned(p)
                local = self._hub.sessions.by_participant(p.participant_id)
                if local is not None:
                    local.participant = p  # re-announced as it is now after a restart
            changed_by = event.participant_updated.changed_by
            update = wire.participant_updated(p, changed_by)
            # Only the participant's own change is not echoed; a moderator's mute must reach it.
            own = p.participant_id if changed_by == p.participant_id else ""
            await self._emit(events.PARTICIPANT_UPDATED, update, only, skip=own, offset=at)
        elif kind == "chat_message":
            await self._emit(events.CHAT_MESSAGE, wire.chat(event.chat_message), only, offset=at)
        elif kind == "meeting_ended":
            ended = {"meetingId": self.meeting_id, "endedBy": event.meeting_ended.ended_by or None}
            await self._emit(events.MEETING_ENDED, ended, only, offset=at)
            if broadcast:
                await self._meeting_gone()

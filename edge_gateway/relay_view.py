"""A room relay's participant view and how it is repaired: a diff for one socket whose
roster is behind, a snapshot turned into the joined/left/updated events that bring every
socket back to the truth, the emit every relayed event goes through, and the view as a
joiner's roster (each participant's JSON made once, not once per joiner)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson

from edge_gateway import events, wire
from edge_gateway.relay_host import Broadcast, RelayHost
from edge_gateway.sessions import Session, owned
from meeting.v1 import room_service_pb2 as pb

log = logging.getLogger("edge_gateway.relay")


class RelayView:
    """The view-keeping half of RoomRelay (relay.py), which provides its state."""

    _hub: RelayHost
    meeting_id: str
    room: str
    position: tuple[int, str]
    view: dict[str, pb.Participant]
    members: dict[str, Session]
    pending: dict[str, Session]
    _ring: deque[pb.RoomEvent]
    _past_epochs: set[str]
    # participant_id → (the view's participant, its `participants[]` entry as JSON).
    _fragments: dict[str, tuple[pb.Participant, bytes]]
    # The last roster made: its participants, and it as a JSON array.
    _roster: tuple[tuple[pb.Participant, ...], bytes]

    @property
    def streaming(self) -> bool:
        """The room stream is open and the view follows it (RoomRelay's)."""
        raise NotImplementedError

    async def _activate_ready(self) -> None:
        """Lets the sockets the relay now stands in step with into the room (RoomRelay's)."""
        raise NotImplementedError

    async def _send_diff(self, session: Session) -> None:
        """Tells one socket what changed between its roster and the relay's view (each
        with the relay's position as offset: the socket stands there afterwards)."""
        known = {p.participant_id: p for p in session.roster}
        current = {pid: p for pid, p in self.view.items() if pid != session.participant_id}
        for pid in known.keys() - current.keys():
            left = wire.participant_left(known[pid], pb.LEAVE_REASON_DISCONNECTED)
            await self._emit(events.PARTICIPANT_LEFT, left, session.sid)
        for pid, p in current.items():
            if pid not in known:
                await self._emit(events.PARTICIPANT_JOINED, wire.participant(p), session.sid)
            elif known[pid].media != p.media:
                await self._emit(events.PARTICIPANT_UPDATED, wire.participant_updated(p, ""), session.sid)

    def roster_json(self, position: tuple[int, str], me: str, *, own_join: bool) -> bytes | None:
        """A `meeting-joined`'s `participants` (everyone but `me`) as of `position`, as JSON,
        taken from the view when it stands exactly there; None when it stands elsewhere.

        The view at a position is the room's roster at that position (the stream applies
        the log in order, a snapshot resets both together), so it is the Join reply's
        roster without its per-participant conversion: each entry's JSON is kept from
        the first joiner that needed it. `own_join`: the event at `position` is `me`
        joining, so the view one event before it is the roster too."""
        sequence, epoch = position
        at, view_epoch = self.position
        if not self.streaming or epoch != view_epoch:
            return None
        if at != sequence and not (own_join and at == sequence - 1 and me not in self.view):
            return None
        others = tuple(self.view.values())
        if me in self.view:
            if next(reversed(self.view)) != me:
                return self._entries(p for p in others if p.participant_id != me)
            others = others[:-1]  # the joiner came last: its own join is the latest event
        # The view grows by joins at its end: the last roster made (normally the previous
        # joiner's) is reused when this one starts with it (one comparison of two tuples,
        # in C, identity first), and only the newcomers are added: a byte copy, not a
        # Python step per participant in the room.
        kept, encoded = self._roster
        if len(others) >= len(kept) and others[: len(kept)] == kept:
            if len(others) > len(kept):
                more = self._entries(others[len(kept) :])
                comma = b"," if kept else b""
                encoded = b"".join((memoryview(encoded)[:-1], comma, memoryview(more)[1:]))
        else:
            encoded = self._entries(others)
        self._roster = (others, encoded)
        return encoded

    def _entries(self, participants: Iterable[pb.Participant]) -> bytes:
        """The participants as a JSON array, each entry's JSON kept while its participant
        stays as it is in the view."""
        fragments = self._fragments
        if len(fragments) > 2 * len(self.view) + 64:  # those who left go, now and then
            self._fragments = fragments = {pid: f for pid, f in fragments.items() if pid in self.view}
        out = []
        for p in participants:
            pid = p.participant_id
            entry = fragments.get(pid)
            if entry is None or entry[0] is not p:
                entry = fragments[pid] = (p, orjson.dumps(wire.participant(p)))
            out.append(entry[1])
        return b"[" + b",".join(out) + b"]"

    # -- emitting, and repairing the view ----------------------------------------------

    async def _emit(
        self, name: str, data: dict[str, Any], only: str | None, skip: str = "", *, offset: str = ""
    ) -> None:
        # The room position goes last (the client's recovery offset): one value for every
        # recipient, so a broadcast is still encoded once. Events made up from a snapshot
        # or a diff carry the relay's position, where the socket then stands.
        args = (data, offset or wire.offset(self.position))
        if only is not None:
            session = self._hub.sessions.by_sid(only)
            if session is None or session.participant_id != skip:
                await self._hub.emit(name, args, to=only)
            return
        local = self._hub.sessions.by_participant(skip) if skip else None
        await self._hub.emit(name, args, to=Broadcast(self.room, local.sid if local else None))

    async def _reset(self, snapshot: pb.RoomSnapshot) -> None:
        """Brings every in-step socket to the snapshot's truth, then continues after it."""
        if snapshot.ended:
            # The meeting ended while the stream was away: that, not a participant-left for
            # everyone, is what each local socket (in step or not yet) must hear.
            ended = {"meetingId": self.meeting_id, "endedBy": None}
            await self._emit(events.MEETING_ENDED, ended, None)
            for sid in list(self.pending):
                await self._hub.emit(events.MEETING_ENDED, ended, to=sid)
            await self._meeting_gone()
            return
        new_view = {p.participant_id: p for p in snapshot.participants}
        old_view = self.view
        self.view = new_view
        if snapshot.position.epoch != self.position[1]:
            self._past_epochs.add(self.position[1])
        self.position = (snapshot.position.sequence, snapshot.position.epoch)
        self._ring.clear()
        log.info(
            "room resynchronised from a snapshot",
            extra={
                "meeting_id": self.meeting_id,
                "sequence": self.position[0],
                "joined": len(new_view.keys() - old_view.keys()),
                "left": len(old_view.keys() - new_view.keys()),
            },
        )
        for pid in old_view.keys() - new_view.keys():
            await self._hub.local_participant_left(pid, pb.LEAVE_REASON_DISCONNECTED)
            await self._emit(
                events.PARTICIPANT_LEFT,
                wire.participant_left(old_view[pid], pb.LEAVE_REASON_DISCONNECTED),
                None,
            )
        for pid, p in new_view.items():
            old = old_view.get(pid)
            if old is None:
                await self._emit(events.PARTICIPANT_JOINED, wire.participant(p), None, skip=pid)
            elif old.media != p.media:
                await self._emit(events.PARTICIPANT_UPDATED, wire.participant_updated(p, ""), None, skip=pid)
        await self._activate_ready()

    async def _meeting_gone(self) -> None:
        """The room closed: its local sockets are no longer in a meeting."""
        for sid in list(self.members) + list(self.pending):
            await self._hub.drop_session(sid)
        self.view.clear()


def views_from(participants: Iterable[pb.Participant], me: pb.Participant) -> dict[str, pb.Participant]:
    """The initial view of a relay opened by a joining socket: its roster plus itself."""
    # Owned copies: the relay outlives the Join reply these were taken from.
    view = {p.participant_id: owned(p) for p in participants}
    view[me.participant_id] = owned(me)
    return view

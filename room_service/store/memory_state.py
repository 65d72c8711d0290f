"""In-process store state: the rooms, edges, holds and guards the MemoryStore roles share,
and the helpers that keep them consistent."""

from __future__ import annotations

import asyncio
import heapq
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from room_service.domain import errors, rules
from room_service.domain.events import EventPayload, RoomEvent
from room_service.domain.models import Meeting, Participant, Position
from room_service.domain.throttle import FailureThrottle
from room_service.store.base import StoreOptions
from room_service.store.mailboxes import Mailboxes


def utc_now() -> datetime:
    """Now, in UTC: every event and chat message is stamped with it."""
    return datetime.now(UTC)


_MISSING: Any = object()


class Seats(dict[str, Participant]):
    """A room's participants by id, in join order, that also know who sits at each socket
    and each user's seats: a join finds the socket's own seat (a repeat join) and the
    user's older sessions (to replace) without a Python step per participant in the room.

    Kept by every change a dict takes here (set, del, pop, clear); the lookups answer
    exactly what a scan in join order would, scanning only when several seats share the
    key (a case the rules otherwise keep from arising). An index entry is the one
    participant id itself, a set only while several share the key: a set per seat made
    an idle room's participants about 0.8 KB larger each."""

    __slots__ = ("_by_socket", "_by_user")

    def __init__(self) -> None:
        super().__init__()
        # socket id → participant id(s); the edge is checked on lookup (socket ids are
        # random per edge, so seats from two edges rarely share one).
        self._by_socket: dict[str, str | set[str]] = {}
        self._by_user: dict[str, str | set[str]] = {}

    def __setitem__(self, participant_id: str, participant: Participant) -> None:
        old = super().get(participant_id)
        if old is not None:
            self._forget(old)
        super().__setitem__(participant_id, participant)
        _add(self._by_socket, participant.socket_id, participant_id)
        _add(self._by_user, participant.user_id, participant_id)

    def __delitem__(self, participant_id: str) -> None:
        self._forget(self[participant_id])
        super().__delitem__(participant_id)

    def pop(self, participant_id: str, default: Any = _MISSING) -> Any:
        """As dict's."""
        participant = super().get(participant_id)
        if participant is None:
            if default is _MISSING:
                raise KeyError(participant_id)
            return default
        del self[participant_id]
        return participant

    def clear(self) -> None:
        """As dict's."""
        super().clear()
        self._by_socket.clear()
        self._by_user.clear()

    def at_socket(self, edge_id: str, socket_id: str) -> Participant | None:
        """The first seat (in join order) held by that socket, if any."""
        ids = self._by_socket.get(socket_id)
        if ids is None:
            return None
        if isinstance(ids, str):
            only = self[ids]
            return only if only.edge_id == edge_id else None
        return next((p for p in self.values() if p.participant_id in ids and p.edge_id == edge_id), None)

    def of_user(self, user_id: str) -> list[Participant]:
        """The user's seats, in join order."""
        ids = self._by_user.get(user_id)
        if ids is None:
            return []
        if isinstance(ids, str):
            return [self[ids]]
        return [p for p in self.values() if p.participant_id in ids]

    def _forget(self, participant: Participant) -> None:
        _discard(self._by_socket, participant.socket_id, participant.participant_id)
        _discard(self._by_user, participant.user_id, participant.participant_id)


def _add(index: dict[str, str | set[str]], key: str, participant_id: str) -> None:
    ids = index.get(key)
    if ids is None:
        index[key] = participant_id
    elif isinstance(ids, str):
        if ids != participant_id:
            index[key] = {ids, participant_id}
    else:
        ids.add(participant_id)


def _discard(index: dict[str, str | set[str]], key: str, participant_id: str) -> None:
    ids = index.get(key)
    if ids is None:
        return
    if isinstance(ids, str):
        if ids == participant_id:
            del index[key]
        return
    ids.discard(participant_id)
    if len(ids) == 1:
        index[key] = next(iter(ids))
    elif not ids:
        del index[key]


@dataclass(slots=True)
class _Room:
    """One open room: its participants (join order) and its log."""

    meeting_id: str
    epoch: str
    log: deque[RoomEvent]
    head: int = 0
    participants: Seats = field(default_factory=Seats)
    drop_at: float | None = None
    """Set when its meeting ended: the deadline after which the room is forgotten."""
    # Set and replaced on every append: waiters hold the old one, so one append wakes
    # exactly the watchers of this room.
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def position(self) -> Position:
        return Position(self.head, self.epoch)

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(frozen=True, slots=True)
class Footprint:
    """What the store holds now, for tests and diagnostics."""

    meetings: int
    """Meetings in the directory."""
    rooms: int
    """Rooms, open or ended."""
    events: int
    """Events held in all replay logs."""
    edges: int
    """Edges holding a lease."""
    mailboxes: int
    """Signal mailboxes."""


class MemoryState:
    """The in-memory store's state and the helpers every role of it shares."""

    def __init__(self, options: StoreOptions | None = None) -> None:
        self._options = options or StoreOptions()
        self._instance = uuid.uuid4().hex
        # Reaped edges and when: a late RestoreSessions must not resurrect participants
        # everyone was already told had left. Bounded by count and age.
        self._reaped: OrderedDict[str, float] = OrderedDict()
        self._meetings: dict[str, Meeting] = {}
        self._rooms: dict[str, _Room] = {}
        self._edges: dict[str, float] = {}
        self._edge_participants: dict[str, set[tuple[str, str]]] = {}
        self._mailboxes = Mailboxes(self._options.signal_queue, self._edges.__contains__)
        # Ended rooms by deadline; one retention for all, so appends keep it sorted.
        self._ended: deque[tuple[float, _Room]] = deque()
        # Watchers of a room that is not open wait here for its next opening.
        self._openers: dict[str, asyncio.Event] = {}
        # Connection-state recovery: id -> (meeting, participant) and back; held
        # participants' deadlines, and a heap of them (stale entries skipped on pop).
        self._recovery: dict[str, tuple[str, str]] = {}
        self._recovery_of: dict[tuple[str, str], str] = {}
        self._holds: dict[tuple[str, str], float] = {}
        self._hold_heap: list[tuple[float, str, str]] = []
        # Wrong-password attempts per (meeting, socket key); bounded inside each throttle.
        self._attempts: dict[tuple[int, float], FailureThrottle] = {}
        # Banned user ids per meeting (only written with the ban setting on).
        self._bans: dict[str, set[str]] = {}

    def _hold(self, key: tuple[str, str], until: float) -> None:
        self._holds[key] = until
        heapq.heappush(self._hold_heap, (until, *key))

    def _events_after(self, room: _Room, after: Position | None) -> list[RoomEvent] | None:
        """Every event after `after` still in the room's log; None when it does not reach."""
        if after is None or after.epoch != room.epoch or after.sequence > room.head:
            return None
        oldest = room.log[0].position.sequence if room.log else room.head + 1
        if after.sequence + 1 < oldest:
            return None
        return [e for e in room.log if e.position.sequence > after.sequence]

    def _forget_recovery(self, key: tuple[str, str]) -> None:
        self._holds.pop(key, None)
        recovery_id = self._recovery_of.pop(key, None)
        if recovery_id is not None:
            self._recovery.pop(recovery_id, None)

    def _remember_reaped(self, edge_id: str, now: float) -> None:
        self._reaped[edge_id] = now
        self._reaped.move_to_end(edge_id)
        while self._reaped:
            oldest, when = next(iter(self._reaped.items()))
            kept = len(self._reaped) <= self._options.reaped_edges_kept
            if kept and now - when < self._options.reaped_edge_seconds:
                break
            del self._reaped[oldest]

    def footprint(self) -> Footprint:
        """Counts of what the store holds (not part of the RoomStore contract)."""
        return Footprint(
            meetings=len(self._meetings),
            rooms=len(self._rooms),
            events=sum(len(r.log) for r in self._rooms.values()),
            edges=len(self._edges),
            mailboxes=len(self._mailboxes),
        )

    # -- internals --------------------------------------------------------------------

    def _meeting(self, meeting_id: str) -> Meeting:
        meeting = self._meetings.get(meeting_id)
        if meeting is None:
            raise errors.meeting_not_found()
        return meeting

    def _find(self, meeting_id: str, participant_id: str) -> tuple[_Room, Participant]:
        room = self._rooms.get(meeting_id)
        participant = room.participants.get(participant_id) if room is not None else None
        if room is None or participant is None:
            raise errors.not_in_meeting()
        return room, participant

    def _open(self, meeting_id: str) -> _Room:
        room = _Room(meeting_id, rules.new_epoch(), deque(maxlen=self._options.replay_buffer))
        previous = self._rooms.get(meeting_id)
        self._rooms[meeting_id] = room
        if previous is not None:
            previous.wake()
        waiter = self._openers.pop(meeting_id, None)
        if waiter is not None:
            waiter.set()
        return room

    def _close(self, room: _Room) -> None:
        # An empty room is forgotten; the next join opens a new epoch. Watchers wake,
        # find the epoch gone and get a snapshot.
        if self._rooms.get(room.meeting_id) is room:
            del self._rooms[room.meeting_id]
        room.wake()

    async def _room_opened(self, meeting_id: str) -> None:
        event = self._openers.setdefault(meeting_id, asyncio.Event())
        await event.wait()

    def _append(self, room: _Room, payload: EventPayload) -> RoomEvent:
        room.head += 1
        event = RoomEvent(room.meeting_id, room.position, utc_now(), payload)
        room.log.append(event)
        room.wake()
        return event

    def _index(self, participant: Participant, meeting_id: str) -> None:
        key = (meeting_id, participant.participant_id)
        self._edge_participants.setdefault(participant.edge_id, set()).add(key)

    def _unindex(self, participant: Participant, meeting_id: str) -> None:
        """The participant left the room: its edge forgets it, and its recovery id dies."""
        self._unindex_edge(participant, meeting_id)
        self._forget_recovery((meeting_id, participant.participant_id))

    def _unindex_edge(self, participant: Participant, meeting_id: str) -> None:
        keys = self._edge_participants.get(participant.edge_id)
        if keys is not None:
            keys.discard((meeting_id, participant.participant_id))

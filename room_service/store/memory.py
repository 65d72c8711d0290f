"""In-process store: the embedded default. Every method runs without awaiting in the
middle of a change, so each is atomic on the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from room_service.domain import errors, rules
from room_service.domain.models import (
    ChatMessage,
    ChatSent,
    EventPayload,
    JoinOutcome,
    JoinSpec,
    LeaveReason,
    Meeting,
    MeetingEnded,
    MeetingStatus,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    Position,
    Recovered,
    RecoverSpec,
    RoomEvent,
    RoomSummary,
    Signal,
    Snapshot,
)
from room_service.domain.throttle import FailureThrottle
from room_service.store.base import RestoreRecord, StoreOptions
from room_service.store.mailboxes import Mailboxes


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Room:
    """One open room: its participants (join order) and its log."""

    meeting_id: str
    epoch: str
    log: deque[RoomEvent]
    head: int = 0
    participants: dict[str, Participant] = field(default_factory=dict)
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


class MemoryStore:
    """The in-memory RoomStore."""

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
        meeting = dataclasses.replace(previous, status=MeetingStatus.ENDED)
        self._meetings[meeting_id] = meeting
        room = self._rooms.get(meeting_id)
        if room is None or previous.status is MeetingStatus.ENDED:
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
            still_ended = meeting is None or meeting.status is MeetingStatus.ENDED
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
            replaced = [p for p in room.participants.values() if p.user_id == spec.user_id]
        current = len(room.participants) if room is not None else 0
        if current - len(replaced) >= rules.room_capacity(meeting, self._options.default_capacity):
            raise errors.room_full()
        if room is None:
            room = self._open(spec.meeting_id)
        for old in replaced:
            del room.participants[old.participant_id]
            self._unindex(old, spec.meeting_id)
            self._append(room, ParticipantLeft(old, LeaveReason.REPLACED))
        participant = rules.new_participant(meeting, spec, _now())
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
        for participant in room.participants.values():
            if participant.edge_id == spec.edge_id and participant.socket_id == spec.socket_id:
                others = tuple(p for p in room.participants.values() if p is not participant)
                return JoinOutcome(meeting, participant, others, room.position, already_joined=True)
        return None

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

    async def update_media(
        self,
        meeting_id: str,
        participant_id: str,
        changes: dict[str, bool],
        changed_by: str,
    ) -> tuple[Participant, RoomEvent | None]:
        room, participant = self._find(meeting_id, participant_id)
        media = dataclasses.replace(participant.media, **changes)
        if media == participant.media:
            return participant, None
        updated = dataclasses.replace(participant, media=media)
        room.participants[participant_id] = updated
        return updated, self._append(room, ParticipantUpdated(updated, changed_by))

    async def append_chat(self, meeting_id: str, participant_id: str, text: str) -> RoomEvent:
        room, participant = self._find(meeting_id, participant_id)
        message = ChatMessage(
            message_id=rules.new_message_id(),
            participant_id=participant_id,
            user_name=participant.user_name,
            text=text,
            sent_at=_now(),
        )
        return self._append(room, ChatSent(message))

    async def get_participant(self, meeting_id: str, participant_id: str) -> Participant:
        return self._find(meeting_id, participant_id)[1]

    async def snapshot(self, meeting_id: str) -> Snapshot:
        meeting = self._meeting(meeting_id)
        room = self._rooms.get(meeting_id)
        ended = meeting.status is MeetingStatus.ENDED
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

    # -- edges ------------------------------------------------------------------------

    async def touch_edge(self, edge_id: str, expires_at: float, *, create: bool = True) -> bool:
        known = edge_id in self._edges
        if known or create:
            self._edges[edge_id] = expires_at
        return known

    async def ban_user(self, meeting_id: str, user_id: str) -> None:
        self._bans.setdefault(meeting_id, set()).add(user_id)

    async def is_banned(self, meeting_id: str, user_id: str) -> bool:
        return user_id in self._bans.get(meeting_id, ())

    async def clear_bans(self, meeting_id: str) -> None:
        self._bans.pop(meeting_id, None)

    async def take_password_attempt(self, meeting_id: str, key: str, limit: int, window: float) -> bool:
        throttle = self._attempts.get((limit, window))
        if throttle is None:
            throttle = self._attempts[(limit, window)] = FailureThrottle(limit, window)
        scoped = f"{meeting_id}\x00{key}"  # ids never hold control characters
        if throttle.blocked(scoped):
            return False
        throttle.fail(scoped)
        return True

    async def return_password_attempt(self, meeting_id: str, key: str) -> None:
        for throttle in self._attempts.values():
            throttle.forgive(f"{meeting_id}\x00{key}")

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

    async def participant_count(self, meeting_id: str) -> int:
        room = self._rooms.get(meeting_id)
        return len(room.participants) if room is not None else 0

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

    # -- held sessions ----------------------------------------------------------------

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
                meeting, participant, tuple(missed), room.position, others=others, moved_from=moved_from
            )
        # The log no longer reaches back: the session goes on under a fresh id.
        self._forget_recovery(key)
        if spec.fresh_recovery_id:
            self._recovery[spec.fresh_recovery_id] = key
            self._recovery_of[key] = spec.fresh_recovery_id
        return Recovered(
            meeting, participant, (), room.position, resynced=True, others=others, moved_from=moved_from
        )

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

    async def publish_signal(self, edge_id: str, signal: Signal) -> None:
        self._mailboxes.post(edge_id, signal)

    async def next_signal(self, edge_id: str) -> Signal:
        return await self._mailboxes.take(edge_id)

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        return None

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
        event = RoomEvent(room.meeting_id, room.position, _now(), payload)
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

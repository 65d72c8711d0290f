"""What this replica knows of each room's roster, so that a join need not bring it back
from Redis: the participants in join order at a position of the room's log and a roster
version.

Every join answers with everyone else in the room; read from Redis, that was the bulk of
the join script's work and of its reply (a few hundred bytes per participant). The join
script is given the epoch, head and roster version this replica knows a roster at, and
sends the roster back only when the room is elsewhere: Redis checks the claim in the same
atomic step as the join, so a stale roster here costs one full reply, never a wrong one.

Why the claim holds: every change of a room's participants appends a log entry saying
what changed (joined, left, updated, ended) in the same script, except a recovery, which
moves a participant to another socket without an entry and so bumps the roster version
(`rv` in the room's state) instead. A roster known at (epoch, head, version) and the
entry after that head, applied, is the roster at (epoch, head + 1, version) if the room
ever was there; if it never was (a recovery came between), no later state matches, as
heads and versions only grow within an epoch and a new epoch has a new name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from room_service.domain import events
from room_service.domain.events import RoomEvent
from room_service.domain.models import Participant, Position

# Rooms whose roster is kept (the least recently used forgotten first).
_ROOMS = 1024


@dataclass(frozen=True, slots=True)
class KnownRoster:
    """A room's participants at one point of its history."""

    position: Position
    """The head of the room's log there."""
    version: str
    """The room's roster version there (as Redis keeps it)."""
    participants: tuple[Participant, ...]
    """In join order."""


@dataclass(slots=True)
class _Roster:
    position: Position
    version: str
    participants: dict[str, Participant]


class RoomRosters:
    """The rosters of the rooms this replica changed or read lately."""

    def __init__(self, rooms: int = _ROOMS) -> None:
        self._rooms = rooms
        self._known: OrderedDict[str, _Roster] = OrderedDict()

    def known(self, meeting_id: str) -> KnownRoster | None:
        """The room's roster, if known (a copy: later changes leave it as it is)."""
        roster = self._known.get(meeting_id)
        if roster is None:
            return None
        self._known.move_to_end(meeting_id)
        return KnownRoster(roster.position, roster.version, tuple(roster.participants.values()))

    def reset(
        self, meeting_id: str, position: Position, version: str, participants: Iterable[Participant]
    ) -> None:
        """The room's roster as Redis answered it at `position` and `version`; kept unless
        what is known is of the same epoch and version and not older."""
        roster = self._known.get(meeting_id)
        if (
            roster is not None
            and roster.position.epoch == position.epoch
            and roster.version == version
            and roster.position.sequence >= position.sequence
        ):
            return
        self._known[meeting_id] = _Roster(position, version, {p.participant_id: p for p in participants})
        self._known.move_to_end(meeting_id)
        if len(self._known) > self._rooms:
            self._known.popitem(last=False)

    def apply(self, meeting_id: str, entries: Sequence[RoomEvent]) -> None:
        """Entries of the room's log (in order): each one right after the known head
        changes the roster; those at or before it are known already; a gap or another
        epoch leaves nothing to trust."""
        roster = self._known.get(meeting_id)
        if roster is None:
            return
        for entry in entries:
            at, known = entry.position, roster.position
            if at.epoch == known.epoch and at.sequence <= known.sequence:
                continue
            if at.epoch != known.epoch or at.sequence != known.sequence + 1:
                del self._known[meeting_id]
                return
            _change(roster.participants, entry.payload)
            roster.position = at

    def forget(self, meeting_id: str) -> None:
        """Drops what is known of a room."""
        self._known.pop(meeting_id, None)


def _change(participants: dict[str, Participant], payload: events.EventPayload) -> None:
    if isinstance(payload, events.ParticipantJoined | events.ParticipantUpdated):
        p = payload.participant
        participants[p.participant_id] = p  # a join comes last; an update keeps its place
    elif isinstance(payload, events.ParticipantLeft):
        participants.pop(payload.participant.participant_id, None)
    elif isinstance(payload, events.MeetingEnded):
        participants.clear()

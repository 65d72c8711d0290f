"""What this replica knows of each room's log without asking Redis: the entries it last
wrote or read (contiguous, one epoch), and the head a read or write saw under a notifier
`Mark`. A watcher's next read is answered from here when it can be: from the entries
when they reach past its position, or "nothing yet" when its position is that head and
nothing was heard since. Entries of a log never change, so an answer from here is the
answer Redis would give; a watcher reads strictly after its position, so an entry that
both this replica's write and its pub/sub message announce is still delivered once.

Also the stored JSON it last saw of each participant (`KnownParticipants`), a guess that
a compare-and-set checks.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from room_service.domain.events import RoomEvent
from room_service.domain.models import Position
from room_service.store.redis_notify import Mark

# Entries kept per room: enough for every watcher here to catch up after a burst (and
# never more than the log keeps, so that no older position is replayed from here than
# from Redis).
_RECENT = 64
# Rooms remembered (least recently used forgotten first).
_ROOMS = 4096


@dataclass(slots=True)
class _Tail:
    recent: deque[RoomEvent]
    head: Position | None = None
    mark: Mark | None = None


class RoomTails:
    """The known tails of the rooms this replica wrote or read lately."""

    def __init__(self, log_length: int) -> None:
        self._keep = max(1, min(_RECENT, log_length))
        self._tails: OrderedDict[str, _Tail] = OrderedDict()

    def learned(
        self, meeting_id: str, events: Sequence[RoomEvent], head: Position | None, mark: Mark | None
    ) -> None:
        """Entries just written or read, and the head seen (None: none to trust)."""
        tail = self._tails.get(meeting_id)
        if tail is None:
            tail = self._tails[meeting_id] = _Tail(deque(maxlen=self._keep))
            if len(self._tails) > _ROOMS:
                self._tails.popitem(last=False)
        else:
            self._tails.move_to_end(meeting_id)
        recent = tail.recent
        for event in events:
            last = recent[-1].position if recent else None
            if (
                last is None
                or last.epoch != event.position.epoch
                or event.position.sequence > last.sequence + 1
            ):
                recent.clear()  # a gap or another epoch: start afresh from this entry
            elif event.position.sequence <= last.sequence:
                continue  # already kept
            recent.append(event)
        if mark is not None and head is not None:
            tail.head, tail.mark = head, mark

    def after(self, meeting_id: str, position: Position, limit: int) -> list[RoomEvent]:
        """The kept entries right after `position` (empty when they do not reach there)."""
        tail = self._tails.get(meeting_id)
        if tail is None or not tail.recent:
            return []
        first = tail.recent[0].position
        start = position.sequence + 1 - first.sequence
        if first.epoch != position.epoch or start < 0 or start >= len(tail.recent):
            return []
        return list(islice(tail.recent, start, start + limit))

    def mark_at(self, meeting_id: str, position: Position) -> Mark | None:
        """The mark under which the room's head was seen at `position`, if it was."""
        tail = self._tails.get(meeting_id)
        if tail is None or tail.head != position:
            return None
        return tail.mark

    def forget(self, meeting_id: str) -> None:
        """Drops what is known of a room whose log may have been dropped."""
        self._tails.pop(meeting_id, None)


# Participants whose stored JSON is remembered (the oldest forgotten first).
_PARTICIPANTS = 65536


class KnownParticipants:
    """The stored JSON this replica last wrote or read of each participant: a media
    update's compare-and-set starts from it instead of reading it from Redis first. Only
    a guess: a stale one fails the compare, whose reply carries the current JSON."""

    def __init__(self, size: int = _PARTICIPANTS) -> None:
        self._size = size
        self._raw: dict[tuple[str, str], str] = {}

    def get(self, meeting_id: str, participant_id: str) -> str | None:
        """The JSON last seen, if any."""
        return self._raw.get((meeting_id, participant_id))

    def saw(self, meeting_id: str, participant_id: str, raw: str) -> None:
        """`raw` is what Redis holds for the participant now."""
        key = (meeting_id, participant_id)
        self._raw.pop(key, None)
        self._raw[key] = raw
        if len(self._raw) > self._size:
            del self._raw[next(iter(self._raw))]

    def forget(self, meeting_id: str, participant_id: str) -> None:
        """The participant is gone (or its JSON unknown)."""
        self._raw.pop((meeting_id, participant_id), None)

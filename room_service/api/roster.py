"""A room's roster encoded for a reply: each participant's protobuf encoding is made once
per participant state and reused by every later reply that lists it.

Every Join reply lists everyone else in the room, so a join into a room of n costs n
participant encodings: building n messages and copying them into the reply took about a
millisecond per join at 400 participants (CPU that every joiner waits for). Protobuf lets a
repeated message field be written as the concatenation of its elements' encodings, and a
message parsed from two concatenated encodings is their merge: so the roster is the join of
cached byte strings, merged into the reply in C.

A room's roster also grows by one at the end with each join (a store lists the others
in join order), so the last roster encoded for each room is kept whole: when the next
reply's roster starts with the same participants (one comparison of two tuples, in C,
identity first), only the newcomers are looked up, and the rest is one byte copy. The
roster a join waits for then costs no Python step per participant.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

from google.protobuf.message import Message

from room_service.api.convert import participant_to_pb
from room_service.domain.models import Participant

M = TypeVar("M", bound=Message)

DEFAULT_CAPACITY = 1 << 13
"""Participants whose encoding is kept (the oldest goes first); a room larger than this
still gets correct replies, only re-encoded in part."""

ROOMS_KEPT = 1 << 10
"""Rooms whose last roster is kept whole (the least recently listed goes first)."""


class RosterEncoder(Generic[M]):
    """Fills the repeated participant field `field` of `message` replies from cached encodings."""

    def __init__(
        self, message: type[M], field: str = "participants", capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self._message = message
        self._field = field
        self._capacity = capacity
        # participant_id → (the participant as encoded, its element of `field` encoded).
        # Participant is frozen: the same object always encodes the same; an equal one
        # (a store that decodes anew on every read) too.
        self._chunks: dict[str, tuple[Participant, bytes]] = {}
        # room → (the last roster listed for it, its encoding), most recently listed last.
        self._rooms: dict[str, tuple[tuple[Participant, ...], bytes]] = {}

    def __len__(self) -> int:
        return len(self._chunks)

    def encode(self, participants: Iterable[Participant], room: str | None = None) -> bytes:
        """The participants as the encoding of `field` (in order), ready to merge into a reply;
        `room`: the room they are the roster of, whose last roster encoded is reused."""
        if room is None:
            return self._encode_each(participants)
        roster = tuple(participants)
        kept = self._rooms.pop(room, None)
        if kept is not None and len(roster) >= len(kept[0]) and roster[: len(kept[0])] == kept[0]:
            # Frozen participants, equal in every field: an equal entry encodes the same.
            encoded = kept[1] + self._encode_each(roster[len(kept[0]) :])
        else:
            encoded = self._encode_each(roster)
        if len(self._rooms) >= ROOMS_KEPT:
            del self._rooms[next(iter(self._rooms))]
        self._rooms[room] = (roster, encoded)
        return encoded

    def fill(self, reply: M, participants: Iterable[Participant], room: str | None = None) -> M:
        """Appends the participants to the reply's `field` and returns the reply."""
        reply.MergeFromString(self.encode(participants, room))
        return reply

    def _encode_each(self, participants: Iterable[Participant]) -> bytes:
        chunks = self._chunks
        out = []
        for p in participants:
            entry = chunks.get(p.participant_id)
            if entry is None or (entry[0] is not p and entry[0] != p):
                out.append(self._encode_one(p))
            else:
                out.append(entry[1])
        return b"".join(out)

    def _encode_one(self, p: Participant) -> bytes:
        chunk = self._message(**{self._field: [participant_to_pb(p)]}).SerializeToString()
        chunks = self._chunks
        chunks.pop(p.participant_id, None)  # re-inserted last: the eviction order stays by age
        if len(chunks) >= self._capacity:
            del chunks[next(iter(chunks))]
        chunks[p.participant_id] = (p, chunk)
        return chunk

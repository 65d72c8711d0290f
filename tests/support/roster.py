"""Rebuild what a client believes about its room from the events it received.

A frontend keeps its participant list from three events only: `meeting-joined` (its own
participant id and the participants already there), then `participant-joined` and
`participant-left`. :func:`replay` does exactly that over a client's event history, and
records every breach of the delivery rules (DESIGN.md, "no duplicates, no ghosts") that
the history shows:

- ``joined-twice``: a `participant-joined` for an id already in the roster;
- ``left-unknown``: a `participant-left` for an id not in the roster;
- ``self-announced``: a `participant-joined` for the client's own participant;
- ``before-joined``: a room event (`participant-*`, `chat-message`, `meeting-ended`)
  before the client's `meeting-joined`, or after it left its meeting.

Typical use (the event list of any test client, `tests.support.received.RecordingClient`)::

    view = replay(client.events)
    assert view.violations == []
    assert view.ids == truth  # e.g. the ids from ListParticipants, minus the client's own

Compare against the truth only once the system is quiet (every expected event arrived);
the rebuilt roster is the client's view at the end of the history it was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.received import ClientEvent

# Events that only make sense for a socket that is in a meeting.
ROOM_EVENTS = frozenset(
    {"participant-joined", "participant-left", "participant-updated", "chat-message", "meeting-ended"}
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One breach of the delivery rules seen in a client's history."""

    kind: str
    """``joined-twice``, ``left-unknown``, ``self-announced`` or ``before-joined``."""
    index: int
    """Position of the offending event in the history."""
    event: str
    """Its name."""
    participant_id: str | None
    """The participant it was about, when it names one."""

    def __str__(self) -> str:
        return f"#{self.index} {self.event} {self.participant_id}: {self.kind}"


@dataclass(slots=True)
class RosterView:
    """A client's view of its room after replaying its history."""

    participant_id: str | None = None
    """The client's own participant id from its last `meeting-joined` (None before)."""
    in_meeting: bool = False
    """Whether, by the history, the client is still in its meeting."""
    roster: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The other participants, by participant id, as last announced (join order)."""
    violations: list[Violation] = field(default_factory=list)
    """Every breach found, in history order."""
    joins_seen: int = 0
    """How many `meeting-joined` the client received."""

    @property
    def ids(self) -> set[str]:
        """The participant ids of the roster."""
        return set(self.roster)

    @property
    def user_names(self) -> list[str]:
        """The roster's display names, in join order."""
        return [str(p.get("userName")) for p in self.roster.values()]


def _pid(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("participantId"), str):
        return str(data["participantId"])
    return None


def replay(history: Iterable[ClientEvent]) -> RosterView:
    """Replays a client's received events (oldest first) into its roster view.

    Events other than the room events above are ignored.
    """
    view = RosterView()
    for index, item in enumerate(history):
        name, data = item.event, item.data
        if name == "meeting-joined":
            view.joins_seen += 1
            view.in_meeting = True
            view.participant_id = _pid(data)
            listed = data.get("participants", []) if isinstance(data, dict) else []
            view.roster = {str(p["participantId"]): p for p in listed}
            continue
        if name not in ROOM_EVENTS:
            continue
        pid = _pid(data)
        if not view.in_meeting:
            view.violations.append(Violation("before-joined", index, name, pid))
            continue
        if name == "participant-joined":
            if pid == view.participant_id:
                view.violations.append(Violation("self-announced", index, name, pid))
            elif pid in view.roster:
                view.violations.append(Violation("joined-twice", index, name, pid))
            elif pid is not None:
                view.roster[pid] = data
        elif name == "participant-left":
            if pid is not None and pid == view.participant_id:
                view.in_meeting = False  # told that its own session ended (e.g. replaced)
                view.roster = {}
            elif pid not in view.roster:
                view.violations.append(Violation("left-unknown", index, name, pid))
            else:
                del view.roster[pid]
        elif name == "participant-updated" and pid in view.roster:
            view.roster[pid] = {**view.roster[pid], **data}
        elif name == "meeting-ended":
            view.in_meeting = False
            view.roster = {}
    return view

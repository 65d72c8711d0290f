"""The edge's sockets that are in a meeting. Ephemeral: the room service is the truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meeting.v1 import room_service_pb2 as pb


def room_name(meeting_id: str) -> str:
    """The Socket.IO room of a meeting's in-step local sockets (the one definition)."""
    return f"meeting:{meeting_id}"


@dataclass(slots=True)
class Session:
    """One socket's membership of one meeting."""

    sid: str
    """Socket.IO session id."""
    meeting_id: str
    """The meeting."""
    participant: pb.Participant
    """The socket's participant, as the room service stored it."""
    position: tuple[int, str]
    """(sequence, epoch) of its join: it is owed only events after this."""
    roster: Sequence[pb.Participant] = ()
    """What its `meeting-joined` listed, kept until it is in step with the room stream
    (as the reply carried it: indexed only if a diff is ever needed)."""

    @property
    def participant_id(self) -> str:
        """The socket's participant id."""
        return self.participant.participant_id


class SessionRegistry:
    """Sessions by socket id and by participant id."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Session] = {}
        self._by_pid: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        """Registers a session (replacing the socket's previous one)."""
        self.remove(session.sid)
        self._by_sid[session.sid] = session
        self._by_pid[session.participant_id] = session

    def remove(self, sid: str) -> Session | None:
        """Forgets a socket's session and returns it."""
        session = self._by_sid.pop(sid, None)
        if session is not None and self._by_pid.get(session.participant_id) is session:
            del self._by_pid[session.participant_id]
        return session

    def by_sid(self, sid: str) -> Session | None:
        """The socket's session."""
        return self._by_sid.get(sid)

    def by_participant(self, participant_id: str) -> Session | None:
        """The local session of a participant, if its socket is on this edge."""
        return self._by_pid.get(participant_id)

    def all(self) -> list[Session]:
        """Every session."""
        return list(self._by_sid.values())

    def __len__(self) -> int:
        return len(self._by_sid)

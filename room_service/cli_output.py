"""How the operator CLI (`room_service.cli`) prints the service's replies without `--json`:
plain left-aligned tables, and `key  value` lines for one meeting."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from meeting.v1 import room_service_pb2 as pb

Render = Callable[[Message], str]
"""Turns one reply into the text printed for it."""

_STATUS_NAMES = {
    pb.MEETING_STATUS_SCHEDULED: "scheduled",
    pb.MEETING_STATUS_LIVE: "live",
    pb.MEETING_STATUS_ENDED: "ended",
}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, headers first."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _meeting_lines(m: pb.Meeting) -> str:
    fields = [
        ("id", m.id),
        ("name", m.meeting_name),
        ("status", _STATUS_NAMES.get(m.status, "unspecified")),
        ("creator", m.creator_id or "-"),
        ("password", _yes(m.has_password)),
        ("max participants", str(m.max_participants) if m.max_participants else "service default"),
        ("created", m.created_at.ToJsonString() if m.created_at.seconds else "-"),
    ]
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in fields)


def _participant_rows(participants: Sequence[pb.Participant]) -> list[list[str]]:
    return [
        [
            p.participant_id,
            p.user_id,
            p.user_name,
            _on(p.media.audio),
            _on(p.media.video),
            _on(p.media.screen),
            _yes(p.permissions.is_host),
            p.edge_id,
            p.joined_at.ToJsonString(),
        ]
        for p in participants
    ]


_PARTICIPANT_HEADERS = ("PARTICIPANT", "USER", "NAME", "AUDIO", "VIDEO", "SCREEN", "HOST", "EDGE", "JOINED")


def render_rooms(reply: Message) -> str:
    """ListRooms as a table."""
    assert isinstance(reply, pb.ListRoomsResponse)
    if not reply.rooms:
        return "no open rooms"
    rows = [
        [
            r.meeting.id,
            r.meeting.meeting_name,
            _STATUS_NAMES.get(r.meeting.status, "?"),
            str(r.participant_count),
            str(r.position.sequence),
        ]
        for r in sorted(reply.rooms, key=lambda r: r.meeting.id)
    ]
    return table(("MEETING", "NAME", "STATUS", "PARTICIPANTS", "SEQUENCE"), rows)


def render_participants(reply: Message) -> str:
    """ListParticipants as a table."""
    assert isinstance(reply, pb.ListParticipantsResponse)
    snapshot = reply.snapshot
    if not snapshot.participants:
        return f"no participants in {snapshot.meeting_id}" + (" (meeting ended)" if snapshot.ended else "")
    return table(_PARTICIPANT_HEADERS, _participant_rows(snapshot.participants))


def render_meeting(reply: Message) -> str:
    """A reply holding `meeting`, as `key  value` lines."""
    meeting = getattr(reply, "meeting", None)
    assert isinstance(meeting, pb.Meeting)
    return _meeting_lines(meeting)


def render_removed(reply: Message) -> str:
    """RemoveParticipant's answer."""
    assert isinstance(reply, pb.RemoveParticipantResponse)
    p = reply.participant
    return f"removed {p.participant_id} ({p.user_name}, user {p.user_id})"


def render_media(reply: Message) -> str:
    """UpdateMediaState's answer."""
    assert isinstance(reply, pb.UpdateMediaStateResponse)
    return table(_PARTICIPANT_HEADERS, _participant_rows([reply.participant]))

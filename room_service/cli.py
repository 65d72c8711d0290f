"""`python -m room_service.cli`: a small operator CLI on the RoomService gRPC API.

List rooms and participants, read, create and end meetings, kick and mute participants.
Output is a readable table, or the API's own messages as JSON with `--json`. Exit codes:
0 success, 1 the service refused or could not be reached, 2 bad usage.

Over 300 lines on purpose: it is one command surface read top to bottom (how a reply is
printed, the one call each command makes, the flags that feed it), and each part is a
flat list with one small entry per command; split, a command's call, output and flags
would sit in three files for no gain in what any one of them holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.rpc_status import error_code_from

ADDRESS_ENV = "ROOM_SERVICE_CLI_ADDRESS"
TOKEN_ENV = "ROOM_SERVICE_CLI_TOKEN"
DEFAULT_ADDRESS = "127.0.0.1:50051"

_STATUS_NAMES = {
    pb.MEETING_STATUS_SCHEDULED: "scheduled",
    pb.MEETING_STATUS_LIVE: "live",
    pb.MEETING_STATUS_ENDED: "ended",
}

Command = Callable[[pb_grpc.RoomServiceStub, argparse.Namespace], Message]
Render = Callable[[Message], str]


# -- output -------------------------------------------------------------------------------


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


# -- commands -----------------------------------------------------------------------------


def _call(rpc: str, request: Callable[[argparse.Namespace], Message]) -> Command:
    """A command that sends the request built from its arguments to one RPC."""

    def run(stub: pb_grpc.RoomServiceStub, args: argparse.Namespace) -> Message:
        reply: Message = getattr(stub, rpc)(request(args), **args.call)
        return reply

    return run


def _meeting_create(args: argparse.Namespace) -> pb.UpsertMeetingRequest:
    meeting = pb.Meeting(
        id=args.id,
        meeting_name=args.name or args.id,
        creator_id=args.creator,
        status=pb.MEETING_STATUS_SCHEDULED if args.scheduled else pb.MEETING_STATUS_LIVE,
        max_participants=args.max_participants,
    )
    return pb.UpsertMeetingRequest(meeting=meeting, password=args.password or "")


def _mute(args: argparse.Namespace) -> pb.UpdateMediaStateRequest:
    # An empty requested_by is the internal caller: the participant's sockets and
    # everyone else's see a participant-updated with changedBy null.
    request = pb.UpdateMediaStateRequest(
        meeting_id=args.meeting, participant_id=args.participant, audio=False
    )
    if args.video:
        request.video = False  # setting an optional field marks it present, even to false
    if args.screen:
        request.screen = False
    return request


_rooms = _call("ListRooms", lambda args: pb.ListRoomsRequest())
_participants = _call("ListParticipants", lambda args: pb.ListParticipantsRequest(meeting_id=args.meeting))
_meeting_get = _call("GetMeeting", lambda args: pb.GetMeetingRequest(meeting_id=args.meeting))
_meeting_end = _call("EndMeeting", lambda args: pb.EndMeetingRequest(meeting_id=args.meeting))
_kick = _call(
    "RemoveParticipant",
    lambda args: pb.RemoveParticipantRequest(meeting_id=args.meeting, participant_id=args.participant),
)


# -- parsing ------------------------------------------------------------------------------


_POSITIONAL_HELP = {
    "meeting": "meeting id",
    "id": "meeting id (the Socket.IO meetingId)",
    "participant": "participant id (see `participants`)",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command; each has its own --help."""
    parser = argparse.ArgumentParser(
        prog="python -m room_service.cli",
        description="Operator commands on a running RoomService (gRPC).",
        epilog="Exit codes: 0 ok, 1 refused or unreachable (the error code is printed), 2 bad usage.",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get(ADDRESS_ENV, DEFAULT_ADDRESS),
        help=f"room service gRPC address [env {ADDRESS_ENV}, default: {DEFAULT_ADDRESS}]",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV, ""),
        help=f"bearer token if the service requires one; prefer the variable [env {TOKEN_ENV}]",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="deadline of the call in seconds (default: 10)"
    )
    # On every command too, so `rooms --json` works as well as `--json rooms`.
    json_flag: dict[str, Any] = {"action": "store_true", "help": "print the API's reply as JSON"}
    parser.add_argument("--json", **json_flag)
    sub_json = {**json_flag, "default": argparse.SUPPRESS}
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: Any, name: str, helptext: str, run: Command, render: Render, *positionals: str
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=helptext, description=helptext)
        sub.add_argument("--json", **sub_json)
        for positional in positionals:
            sub.add_argument(positional, metavar=positional.upper(), help=_POSITIONAL_HELP[positional])
        sub.set_defaults(run=run, render=render)
        return sub

    command(commands, "rooms", "list the open rooms with their participant counts", _rooms, render_rooms)
    command(
        commands,
        "participants",
        "list the participants of a meeting's room",
        _participants,
        render_participants,
        "meeting",
    )

    meeting = commands.add_parser("meeting", help="read, create or end a meeting", description="Meetings.")
    meeting_commands = meeting.add_subparsers(dest="meeting_command", required=True, metavar="ACTION")
    command(meeting_commands, "get", "show a meeting", _meeting_get, render_meeting, "meeting")
    sub = command(
        meeting_commands,
        "create",
        "create (or replace) a meeting; it is live, hence joinable, unless --scheduled",
        _call("UpsertMeeting", _meeting_create),
        render_meeting,
        "id",
    )
    sub.add_argument("--name", default="", help="display name (default: the id)")
    sub.add_argument("--creator", default="", help="user id of the creator, who is the host")
    sub.add_argument("--password", default="", help="join password (stored only as a slow hash)")
    sub.add_argument("--max-participants", type=_positive_int, default=0, help="room capacity (0: default)")
    sub.add_argument("--scheduled", action="store_true", help="register as scheduled rather than live")
    command(
        meeting_commands,
        "end",
        "end a meeting: every socket gets meeting-ended, the room closes, later joins are refused",
        _meeting_end,
        render_meeting,
        "meeting",
    )

    command(
        commands,
        "kick",
        "remove a participant (its socket gets kicked, the others participant-left)",
        _kick,
        render_removed,
        "meeting",
        "participant",
    )
    sub = command(
        commands,
        "mute",
        "turn a participant's microphone off, as a moderator",
        _call("UpdateMediaState", _mute),
        render_media,
        "meeting",
        "participant",
    )
    sub.add_argument("--video", action="store_true", help="turn its camera off too")
    sub.add_argument("--screen", action="store_true", help="stop its screen share too")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parses, calls, prints; returns the exit code."""
    args = build_parser().parse_args(argv)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    args.call = {"timeout": args.timeout, "metadata": metadata}
    try:
        with grpc.insecure_channel(args.address) as channel:
            reply = args.run(pb_grpc.RoomServiceStub(channel), args)
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        reason = error_code_from(exc)
        code = reason.value if reason is not None else exc.code().name
        print(f"error: {code}: {exc.details()}", file=sys.stderr)
        return 1
    if args.json:
        # Fields at their defaults (audio false, count 0) are printed too: absent would mislead.
        data = MessageToDict(
            reply, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
        )
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(args.render(reply))
    return 0


def main() -> None:
    """Entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()

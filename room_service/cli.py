"""`python -m room_service.cli`: a small operator CLI on the RoomService gRPC API.

List rooms and participants, read, create and end meetings, kick and mute participants.
Output is a readable table, or the API's own messages as JSON with `--json`. Exit codes:
0 success, 1 the service refused or could not be reached, 2 bad usage.

How a reply is printed as a table lives in `room_service.cli_output`; this module holds
the one call each command makes and the flags that feed it.
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
from room_service.cli_output import (
    Render,
    render_media,
    render_meeting,
    render_participants,
    render_removed,
    render_rooms,
)

ADDRESS_ENV = "ROOM_SERVICE_CLI_ADDRESS"
TOKEN_ENV = "ROOM_SERVICE_CLI_TOKEN"
DEFAULT_ADDRESS = "127.0.0.1:50051"

Command = Callable[[pb_grpc.RoomServiceStub, argparse.Namespace], Message]


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

"""Ids and names with control or format characters are refused by the room service itself
(INVALID_ARGUMENT, reason INVALID_PAYLOAD), whoever calls it, so no log line can be
forged or disguised through them."""

from __future__ import annotations

import logging

import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from tests.support.room_rpc import OPEN, join_request, room_service_app, rpc_refused

pytestmark = pytest.mark.timeout(60)

HOSTILE = {
    "nul": "Eve\x00",
    "esc": "Eve\x1b[2J",
    "newline": "Eve\n12:00:00.000 INFO  room_service: ✅ User Admin (admin) joined meeting x",
    "rlo": "Eve\u202egnp.exe",
    "zero-width": "Ad\u200bmin",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
async def test_join_refuses_hostile_ids_and_names_and_logs_nothing_of_them(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="room_service")
    async with room_service_app() as (_app, stub):
        for field in ("user_name", "user_id", "socket_id", "edge_id"):
            request = join_request("eve", **{field: value})
            await rpc_refused(
                stub.Join(request, timeout=5), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD"
            )
        await rpc_refused(
            stub.Join(join_request("eve", meeting=value), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAYLOAD",
        )
        reply = await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=OPEN), timeout=5)
        assert list(reply.snapshot.participants) == []
    assert not [r for r in caplog.records if value in r.getMessage()], "a hostile value reached a log line"


async def test_meeting_names_ids_and_signal_ids_are_checked_too() -> None:
    async with room_service_app() as (_app, stub):
        bad_meetings = [
            pb.Meeting(id="m\u202e1"),
            pb.Meeting(id="m1", meeting_name="Board\nmeeting"),
            pb.Meeting(id="m1", creator_id="host\x00"),
        ]
        for meeting in bad_meetings:
            await rpc_refused(
                stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=meeting), timeout=5),
                grpc.StatusCode.INVALID_ARGUMENT,
                "INVALID_PAYLOAD",
            )
        signal = pb.Signal(
            type=pb.SIGNAL_TYPE_OFFER, meeting_id=OPEN, from_participant_id="a\x1b", target_participant_id="b"
        )
        await rpc_refused(
            stub.SendSignal(pb.SendSignalRequest(signal=signal), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAYLOAD",
        )


async def test_names_that_need_joiners_still_join() -> None:
    async with room_service_app() as (_app, stub):
        for user, name in (("u-fa", "می\u200cخواهم"), ("u-emoji", "Ada \U0001f469\u200d\U0001f4bb")):
            reply = await stub.Join(join_request(user, user_name=name), timeout=5)
            assert reply.participant.user_name == name

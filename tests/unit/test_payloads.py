"""Edge payload validation for the seed's events: what `join-meeting` and `leave-meeting`
accept, and that anything else is INVALID_PAYLOAD."""

from __future__ import annotations

from typing import Any

import pytest

from edge_gateway.errors import EdgeError
from edge_gateway.payloads import JoinMeeting, LeaveMeeting, parse
from meeting_common.codes import ErrorCode

GOOD_JOIN: dict[str, Any] = {"meetingId": "test-meeting-123", "userId": "user-1-id", "userName": "User One"}


def parse_refused(model: type[Any], args: tuple[Any, ...], *, optional: bool = False) -> EdgeError:
    with pytest.raises(EdgeError) as caught:
        parse(model, args, optional=optional)
    assert caught.value.code is ErrorCode.INVALID_PAYLOAD
    assert caught.value.payload() == {"code": "INVALID_PAYLOAD", "message": caught.value.message}
    return caught.value


def test_the_seeds_join_payload_is_accepted() -> None:
    request = parse(JoinMeeting, ({**GOOD_JOIN, "meeting_password": "password123"},))
    assert (request.meetingId, request.userId, request.userName) == (
        "test-meeting-123",
        "user-1-id",
        "User One",
    )
    assert request.meeting_password == "password123"
    assert request.audio is None and request.video is None


def test_numeric_user_ids_are_taken_as_their_text_and_unknown_fields_ignored() -> None:
    request = parse(JoinMeeting, ({**GOOD_JOIN, "userId": 42, "avatar": "x.png"},))
    assert request.userId == "42"


def test_names_are_trimmed() -> None:
    assert parse(JoinMeeting, ({**GOOD_JOIN, "userName": "  User One  "},)).userName == "User One"


@pytest.mark.parametrize("missing", ["meetingId", "userId", "userName"])
def test_join_without_a_required_field_is_refused_naming_it(missing: str) -> None:
    payload = {k: v for k, v in GOOD_JOIN.items() if k != missing}
    assert missing in parse_refused(JoinMeeting, (payload,)).message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("meetingId", ""),
        ("meetingId", "has space"),
        ("meetingId", "x" * 129),
        ("meetingId", None),
        ("meetingId", ["a"]),
        ("meetingId", {"id": "a"}),
        ("meetingId", True),
        ("meetingId", 1.5),
        ("userId", ""),
        ("userId", False),
        ("userName", ""),
        ("userName", "   "),
        ("userName", "n" * 101),
        ("userName", 7),
        ("meeting_password", 123),
        ("meeting_password", "p" * 257),
        ("audio", "yes"),
        ("audio", 1),
        ("video", "false"),
    ],
)
def test_join_with_a_wrong_type_or_size_is_refused(field: str, value: Any) -> None:
    parse_refused(JoinMeeting, ({**GOOD_JOIN, field: value},))


def test_huge_strings_are_refused_without_echoing_them() -> None:
    huge = "A" * 1_000_000
    error = parse_refused(JoinMeeting, ({**GOOD_JOIN, "userName": huge},))
    assert len(error.message) < 200


@pytest.mark.parametrize(
    "args",
    [
        (),
        (None,),
        ("a string",),
        (42,),
        (["meetingId"],),
        (b"\x00\x01binary",),
        (GOOD_JOIN, GOOD_JOIN),
    ],
)
def test_anything_but_a_single_object_is_refused(args: tuple[Any, ...]) -> None:
    error = parse_refused(JoinMeeting, args)
    assert error.message == "Payload must be a single JSON object"


def test_optional_payloads_may_be_absent_but_not_of_another_shape() -> None:
    assert parse(LeaveMeeting, (), optional=True).meetingId is None
    assert parse(LeaveMeeting, ({"meetingId": "m"},), optional=True).meetingId == "m"
    parse_refused(LeaveMeeting, ("m",), optional=True)
    parse_refused(LeaveMeeting, ({"meetingId": ""},), optional=True)

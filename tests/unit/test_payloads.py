"""Edge payload validation for the seed's events: what `join-meeting` and `leave-meeting`
accept, and that anything else is INVALID_PAYLOAD."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from edge_gateway.errors import EdgeError
from edge_gateway.payloads import (
    MAX_SIGNAL_DEPTH,
    ChatMessage,
    JoinMeeting,
    LeaveMeeting,
    nesting_depth,
    parse,
)
from meeting_common.codes import ErrorCode
from meeting_common.logs import JsonFormatter, TextFormatter

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


# -- control and format characters ----------------------------------------------------

FORBIDDEN_IN_NAMES = {
    "NUL": "\x00",
    "ESC": "\x1b[31m",
    "newline": "a\nb",
    "C1 control": "\x85",
    "right-to-left override": "\u202e",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "line separator": "\u2028",
}


@pytest.mark.parametrize("field", ["meetingId", "userId", "userName"])
@pytest.mark.parametrize("text", FORBIDDEN_IN_NAMES.values(), ids=FORBIDDEN_IN_NAMES.keys())
def test_ids_and_names_refuse_control_and_format_characters(field: str, text: str) -> None:
    error = parse_refused(JoinMeeting, ({**GOOD_JOIN, field: f"x{text}y"},))
    # Whitespace controls in ids already fail the ids' no-whitespace pattern.
    assert error.message.startswith(f"Invalid {field}: ")
    assert text not in error.message


def test_names_keep_the_joiners_that_scripts_and_emoji_need() -> None:
    for name in ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645"):
        assert parse(JoinMeeting, ({**GOOD_JOIN, "userName": name},)).userName == name
    parse_refused(JoinMeeting, ({**GOOD_JOIN, "userId": "a\u200db"},))  # not in ids


def test_chat_allows_newline_and_tab_but_no_other_control_or_bidi_override() -> None:
    assert parse(ChatMessage, ({"text": "line one\n\tline two \U0001f44b\u200d"},)).text.startswith("line")
    for text in ("\x00", "\x1b[2J", "\r", "\x9b", "\u202e", "\u2067", "\u2029"):
        error = parse_refused(ChatMessage, ({"text": f"hi {text} there"},))
        assert "control characters other than newline and tab" in error.message


def test_signal_nesting_depth() -> None:
    shallow: Any = {"sdp": "v=0", "candidate": {"a": [1, {"b": 2}]}}
    assert nesting_depth(shallow) == 4
    deep: Any = {}
    for _ in range(MAX_SIGNAL_DEPTH + 5):
        deep = {"x": [deep]}
    assert nesting_depth(deep) > MAX_SIGNAL_DEPTH


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_log_lines_cannot_be_forged_by_a_value(formatter: logging.Formatter) -> None:
    """A value that carries a newline, an escape sequence or a bidi override stays on its
    one line, visibly escaped."""
    forged = 'x\n12:00:00.000 INFO  edge_gateway: \x1b[32mall good\u202e"}'
    record = logging.makeLogRecord({"msg": f"User {forged} joined", "levelname": "INFO", "name": "t"})
    record.__dict__["user"] = forged
    line = formatter.format(record)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "\\u202e" in line
    if isinstance(formatter, JsonFormatter):
        assert json.loads(line)["user"] == forged

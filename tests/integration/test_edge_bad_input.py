"""Bad input of every shape at a real edge in front of a real room service (in this process,
python-socketio clients): refused with the right code, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.edge_stack import GOOD_JOIN, LOCKED, OPEN, Client, Connect, Stack
from tests.support.room import join

pytestmark = pytest.mark.timeout(60)


BAD_JOINS: list[Any] = [
    pytest.param({"userId": "u", "userName": "U"}, id="missing-meetingId"),
    pytest.param({"meetingId": OPEN, "userName": "U"}, id="missing-userId"),
    pytest.param({"meetingId": OPEN, "userId": "u"}, id="missing-userName"),
    pytest.param({**GOOD_JOIN, "meetingId": 12.5}, id="float-meetingId"),
    pytest.param({**GOOD_JOIN, "userId": None}, id="null-userId"),
    pytest.param({**GOOD_JOIN, "userName": ["a"]}, id="list-userName"),
    pytest.param({**GOOD_JOIN, "userName": {"first": "a"}}, id="object-userName"),
    pytest.param({**GOOD_JOIN, "audio": "yes"}, id="string-audio"),
    pytest.param({**GOOD_JOIN, "meeting_password": 123}, id="number-password"),
    pytest.param({**GOOD_JOIN, "userName": "N" * 50_000}, id="huge-userName"),
    pytest.param({**GOOD_JOIN, "meetingId": "M" * 50_000}, id="huge-meetingId"),
    pytest.param("join me", id="string"),
    pytest.param(42, id="number"),
    pytest.param([GOOD_JOIN], id="array"),
    pytest.param(None, id="no-payload"),
    pytest.param((GOOD_JOIN, GOOD_JOIN), id="two-arguments"),
    pytest.param(b"\x00\xffbinary", id="binary"),
    pytest.param({"bin": b"\x01\x02", **GOOD_JOIN}, id="binary-inside-object"),
    pytest.param({**GOOD_JOIN, "userId": "user\x00x"}, id="NUL-in-userId"),
    pytest.param({**GOOD_JOIN, "meetingId": OPEN + "\x1b[2J"}, id="ESC-in-meetingId"),
    pytest.param({**GOOD_JOIN, "userName": "evil\u202egnp.exe"}, id="RLO-in-userName"),
    pytest.param({**GOOD_JOIN, "userName": "in\u200bvisible"}, id="zero-width-space-in-userName"),
]


@pytest.mark.parametrize("payload", BAD_JOINS)
async def test_bad_join_input_is_refused_and_changes_nothing(
    connected: Connect, stack: Stack, payload: Any
) -> None:
    watcher, sender = await connected("watcher", "sender")
    await join(watcher, "watcher")
    before = await stack.participants()
    mark_w, mark_s = len(watcher.events), len(sender.events)

    ack = await sender.emit_with_ack("join-meeting", payload)

    if payload == {"bin": b"\x01\x02", **GOOD_JOIN}:
        # Extra fields are ignored, even binary ones: this is a valid join.
        assert ack["success"]
        return
    assert ack["success"] is False
    assert ack["error"]["code"] == "INVALID_PAYLOAD"
    assert isinstance(ack["error"]["message"], str) and 0 < len(ack["error"]["message"]) < 300
    error = (await sender.wait_for_event("error", start=mark_s)).data
    assert error == ack["error"]
    assert sender.payloads("meeting-joined", start=mark_s) == []
    assert await stack.participants() == before
    await watcher.expect_no_event("participant-joined", within=0.2, start=mark_w)
    # The socket is still usable: a proper join now works.
    joined = await join(sender, "sender")
    assert [p["participantId"] for p in joined["participants"]] == before


@pytest.mark.parametrize(
    ("event", "args"),
    [
        pytest.param("no-such-event", GOOD_JOIN, id="unknown-event"),
        pytest.param("JOIN-MEETING", GOOD_JOIN, id="wrong-case"),
        pytest.param("leave-meeting", "now", id="leave-string"),
        pytest.param("leave-meeting", {"meetingId": 5.5}, id="leave-wrong-type"),
    ],
)
async def test_unknown_events_and_bad_leave_payloads_are_refused(
    connected: Connect, stack: Stack, event: str, args: Any
) -> None:
    peer, client = await connected("peer", "client")
    await join(peer, "peer")
    await join(client, "client")
    before = await stack.participants()
    mark = len(peer.events)
    ack = await client.emit_with_ack(event, args)
    assert ack == {"success": False, "error": {"code": "INVALID_PAYLOAD", "message": ack["error"]["message"]}}
    assert (await client.wait_for_event("error")).data["code"] == "INVALID_PAYLOAD"
    assert await stack.participants() == before
    await peer.expect_no_event("participant-left", within=0.2, start=mark)


async def test_bad_input_without_an_ack_still_gets_an_error_event(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    client = clients("client")
    await client.connect(stack.url)
    await client.sio.emit("join-meeting", {"meetingId": OPEN})
    error = (await client.wait_for_event("error")).data
    assert error["code"] == "INVALID_PAYLOAD" and "userId" in error["message"]
    await join(client, "client")


async def test_chat_controls_and_deeply_nested_signals_are_refused(connected: Connect) -> None:
    """Chat keeps newlines and tabs but refuses other controls and bidi overrides; a signal
    nested deeper than the bound is refused, a real one goes through."""
    a, b = await connected("a", "b")
    await join(a, "user-a")
    target = (await join(b, "user-b"))["participantId"]
    mark = len(b.events)
    for text in ("red \x1b[31malert", "evil\u202eoverride", "nul\x00"):
        ack = await a.emit_with_ack("chat-message", {"text": text})
        assert ack["error"]["code"] == "INVALID_PAYLOAD", ack
    assert (await a.emit_with_ack("chat-message", {"text": "two\n\tlines"}))["success"]
    chat = (await b.wait_for_event("chat-message", start=mark)).data
    assert chat["text"] == "two\n\tlines" and len(b.payloads("chat-message", start=mark)) == 1
    nested: Any = "x"
    for _ in range(64):
        nested = [nested]
    ack = await a.emit_with_ack("webrtc-offer", {"targetParticipantId": target, "sdp": nested})
    assert ack["error"] == {"code": "INVALID_PAYLOAD", "message": "Signal is nested too deeply"}
    assert (
        await a.emit_with_ack(
            "webrtc-offer", {"targetParticipantId": target, "sdp": {"type": "offer", "sdp": "v=0"}}
        )
    )["success"]
    offer = (await b.wait_for_event("webrtc-offer", start=mark)).data
    assert offer["sdp"] == {"type": "offer", "sdp": "v=0"}
    assert len(b.payloads("webrtc-offer", start=mark)) == 1


async def test_leave_when_not_in_a_meeting_is_not_in_meeting(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    client = clients("client")
    await client.connect(stack.url)
    ack = await client.emit_with_ack("leave-meeting", {})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_IN_MEETING"


async def test_domain_refusals_use_the_seeds_messages(stack: Stack, clients: Callable[[str], Client]) -> None:
    client = clients("client")
    await client.connect(stack.url)
    cases = [
        ({"meetingId": "nope", "userId": "u", "userName": "U"}, "MEETING_NOT_FOUND", "Meeting not found"),
        (
            {"meetingId": LOCKED, "userId": "u", "userName": "U"},
            "INVALID_PASSWORD",
            "Invalid meeting password",
        ),
        (
            {"meetingId": LOCKED, "userId": "u", "userName": "U", "meeting_password": "x"},
            "INVALID_PASSWORD",
            "Invalid meeting password",
        ),
    ]
    for payload, code, message in cases:
        mark = len(client.events)
        ack = await client.emit_with_ack("join-meeting", payload)
        assert ack == {"success": False, "error": {"code": code, "message": message}}
        assert (await client.wait_for_event("error", start=mark)).data == {"code": code, "message": message}
    assert await stack.participants(LOCKED) == []

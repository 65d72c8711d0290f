"""Media state and chat over real processes with the official JavaScript client, with
senders and receivers on different edges, including every refusal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.conftest import FAST_EDGE_ARGS
from tests.support.jsclient import JsClientPool
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    RoomServiceProcess,
    start_edge,
    start_room_service,
)
from tests.support.room import join, refused

HOST_ONLY = "host-only-meeting"
HOST = "host-user"


# -- media state ------------------------------------------------------------------------


async def test_media_updates_reach_the_others_and_later_snapshots(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool
) -> None:
    alice, bob, carol = js.client("alice"), js.client("bob"), js.client("carol")
    # Initial media from join-meeting: the others see it in the snapshot and the broadcast.
    alice_join = await join(alice, "alice", url=edge.url, audio=False)
    alice_pid = alice_join["participantId"]
    assert (alice_join["participant"]["audio"], alice_join["participant"]["video"]) == (False, True)
    bob_join = await join(bob, "bob", url=edge2.url, video=False)
    bob_pid = bob_join["participantId"]
    (seen,) = bob_join["participants"]
    assert (seen["participantId"], seen["audio"], seen["video"], seen["screen"]) == (
        alice_pid,
        False,
        True,
        False,
    )
    joined = await alice.wait_for_event("participant-joined", lambda d: d["participantId"] == bob_pid)
    assert (joined.data["audio"], joined.data["video"]) == (True, False)
    carol_pid = (await join(carol, "carol", url=edge.url))["participantId"]
    await bob.wait_for_event("participant-joined", lambda d: d["participantId"] == carol_pid)

    marks = {c.name: c.mark() for c in (alice, bob, carol)}
    ack = await alice.emit_with_ack("update-media", {"audio": True, "screen": True})
    assert ack["success"] is True
    assert (ack["audio"], ack["video"], ack["screen"]) == (True, True, True)
    for watcher in (bob, carol):  # bob on the other edge, carol on the same one
        update = await watcher.wait_for_event(
            "participant-updated", lambda d: d["participantId"] == alice_pid, start=marks[watcher.name]
        )
        assert (update.data["audio"], update.data["video"], update.data["screen"]) == (True, True, True)
        assert update.data["changedBy"] == alice_pid
        assert update.data["userName"] == "Alice"
    # The sender has its ack; it is not echoed a broadcast of its own change.
    await alice.expect_no_event("participant-updated", within=0.5, start=marks["alice"])

    # Partial update keeps the other fields.
    await bob.emit_with_ack("update-media", {"video": True})
    update = await alice.wait_for_event("participant-updated", lambda d: d["participantId"] == bob_pid)
    assert (update.data["audio"], update.data["video"], update.data["screen"]) == (True, True, False)

    # A later joiner's snapshot holds the new state of everyone.
    dave = js.client("dave")
    roster = {p["participantId"]: p for p in (await join(dave, "dave", url=edge2.url))["participants"]}
    assert set(roster) == {alice_pid, bob_pid, carol_pid}
    assert (roster[alice_pid]["audio"], roster[alice_pid]["screen"]) == (True, True)
    assert roster[bob_pid]["video"] is True
    assert (roster[carol_pid]["audio"], roster[carol_pid]["video"]) == (True, True)


async def test_an_update_that_changes_nothing_is_not_broadcast(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool
) -> None:
    alice, bob = js.client("alice"), js.client("bob")
    await join(alice, "alice", url=edge.url)
    await join(bob, "bob", url=edge2.url)
    start = alice.mark()
    ack = await bob.emit_with_ack("update-media", {"audio": True, "video": True})
    assert ack["success"] is True
    await alice.expect_no_event("participant-updated", within=0.7, start=start)


async def test_update_media_refusals(edge: EdgeProcess, js: JsClientPool) -> None:
    loner, alice, bob = js.client("loner"), js.client("alice"), js.client("bob")
    await loner.connect(edge.url, transports=["websocket"])
    await refused(loner, "update-media", {"audio": False}, "NOT_IN_MEETING")
    await join(alice, "alice", url=edge.url)
    await join(bob, "bob", url=edge.url)
    start = bob.mark()
    for bad in ({}, {"audio": "off"}, {"video": 1}, {"screen": None, "audio": None}, ["audio"]):
        await refused(alice, "update-media", bad, "INVALID_PAYLOAD")
    await bob.expect_no_event("participant-updated", within=0.5, start=start)
    # The socket stays usable after the refusals.
    await alice.emit_with_ack("update-media", {"audio": False})
    await bob.wait_for_event("participant-updated", lambda d: d["audio"] is False, start=start)


@pytest.fixture
async def host_only_service(tmp_path: Path) -> AsyncIterator[tuple[RoomServiceProcess, EdgeProcess]]:
    """A room service whose meeting keeps screen sharing and chat to its host, and an edge."""
    meetings = tmp_path / "meetings.json"
    meetings.write_text(
        json.dumps(
            [
                {
                    "id": HOST_ONLY,
                    "meeting_name": "Webinar",
                    "status": "live",
                    "creator_id": HOST,
                    "guests_can_share": False,
                    "guests_can_chat": False,
                }
            ]
        )
    )
    service = await start_room_service("--meetings-file", str(meetings), *QUICK_STOP, name="rs-host-only")
    try:
        edge = await start_edge(service.grpc_address, *FAST_EDGE_ARGS, name="edge-host-only")
        try:
            yield service, edge
        finally:
            await edge.terminate()
    finally:
        await service.terminate()


async def test_screen_share_and_chat_refused_without_permission(
    host_only_service: tuple[RoomServiceProcess, EdgeProcess], js: JsClientPool
) -> None:
    _, edge = host_only_service
    host, guest = js.client("host"), js.client("guest")
    host_join = await join(host, HOST, HOST_ONLY, url=edge.url)
    guest_join = await join(guest, "guest-user", HOST_ONLY, url=edge.url)
    assert host_join["permissions"]["canShare"] is True and host_join["permissions"]["canChat"] is True
    assert guest_join["permissions"]["canShare"] is False and guest_join["permissions"]["canChat"] is False
    # Everyone else sees the guest's permissions too.
    joined = await host.wait_for_event("participant-joined")
    assert joined.data["permissions"]["canShare"] is False

    start = host.mark()
    await refused(guest, "update-media", {"screen": True}, "FORBIDDEN")
    await refused(guest, "update-media", {"audio": False, "screen": True}, "FORBIDDEN")
    await refused(guest, "chat-message", {"text": "may I?"}, "FORBIDDEN")
    await host.expect_no_event("participant-updated", within=0.5, start=start)
    assert host.events_named("chat-message", start=start) == []
    # The refused update changed nothing at all (not even the audio part).
    snapshot = (await join(js.client("late"), "late-user", HOST_ONLY, url=edge.url))["participants"]
    guest_now = next(p for p in snapshot if p["participantId"] == guest_join["participantId"])
    assert (guest_now["audio"], guest_now["screen"]) == (True, False)

    # What is not sharing is still allowed, and the host may share and chat.
    await guest.emit_with_ack("update-media", {"audio": False, "screen": False})
    await host.wait_for_event("participant-updated", lambda d: d["audio"] is False, start=start)
    assert (await host.emit_with_ack("update-media", {"screen": True}))["success"] is True
    await guest.wait_for_event("participant-updated", lambda d: d["screen"] is True)
    assert (await host.emit_with_ack("chat-message", {"text": "welcome"}))["success"] is True
    await guest.wait_for_event("chat-message", lambda d: d["text"] == "welcome")


# -- chat -------------------------------------------------------------------------------


async def test_chat_reaches_everyone_in_the_room_once(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    alice, bob, carol = js.client("alice"), js.client("bob"), js.client("carol")
    alice_pid = (await join(alice, "alice", url=edge.url))["participantId"]
    await join(bob, "bob", url=edge2.url)
    carol_pid = (await join(carol, "carol", url=edge.url))["participantId"]
    await bob.wait_for_event("participant-joined", lambda d: d["participantId"] == carol_pid)
    # A socket in another meeting must not hear this room's chat.
    await stub.UpsertMeeting(
        pb.UpsertMeetingRequest(meeting=pb.Meeting(id="elsewhere", status=pb.MEETING_STATUS_LIVE)), timeout=10
    )
    outsider = js.client("outsider")
    await join(outsider, "outsider", "elsewhere", url=edge2.url)

    marks = {c.name: c.mark() for c in (alice, bob, carol, outsider)}
    ack = await alice.emit_with_ack("chat-message", {"text": "  hello, everyone 👋  "})
    assert ack["success"] is True
    message = ack["message"]
    assert message["participantId"] == alice_pid
    assert message["userName"] == "Alice"
    assert message["text"] == "hello, everyone 👋"
    assert message["messageId"] and message["sentAt"].endswith("Z")

    # "To everyone in the room": the sender's own socket too (its ack also holds it).
    for client in (alice, bob, carol):
        got = await client.wait_for_event("chat-message", start=marks[client.name])
        assert got.data == message
    await outsider.expect_no_event("chat-message", within=0.5, start=marks["outsider"])
    for client in (alice, bob, carol):  # exactly once each, after that half second
        assert len(client.events_named("chat-message", start=marks[client.name])) == 1

    # Messages from one sender arrive in the order sent, with distinct ids.
    for index in range(5):
        await bob.emit("chat-message", {"text": f"message {index}"})
    received = await alice.wait_for_events(
        "chat-message", 5, lambda d: d["text"].startswith("message "), start=marks["alice"]
    )
    assert [e.data["text"] for e in received] == [f"message {i}" for i in range(5)]
    assert len({e.data["messageId"] for e in received}) == 5


async def test_chat_refusals(edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool) -> None:
    loner, alice, bob = js.client("loner"), js.client("alice"), js.client("bob")
    await loner.connect(edge.url, transports=["websocket"])
    await refused(loner, "chat-message", {"text": "anyone?"}, "NOT_IN_MEETING")
    await join(alice, "alice", url=edge.url)
    await join(bob, "bob", url=edge2.url)
    start = bob.mark()
    # The room service's limit is 2000 characters; the edge refuses far larger ones itself.
    for bad in ({"text": "x" * 2001}, {"text": "x" * 10_000}, {"text": ""}, {"text": "   "}, {}, {"text": 5}):
        await refused(alice, "chat-message", bad, "INVALID_PAYLOAD")
    await bob.expect_no_event("chat-message", within=0.5, start=start)
    ack = await alice.emit_with_ack("chat-message", {"text": "y" * 2000})
    assert ack["success"] is True
    got = await bob.wait_for_event("chat-message", start=start)
    assert got.data["text"] == "y" * 2000

"""The internal gRPC API as another service uses it, each RPC observed through real
sockets (official JavaScript client) on two edges: what a service does must reach the
sockets exactly as if a host had done it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.room import join, join_payload, refused, room_snapshot, truth
from tests.support.room_rpc import rpc_refused

MEETING = "internal-api-meeting"
CREATOR = "creator-user"

# The status each refusal travels with, and its ErrorInfo reason.
FORBIDDEN = (grpc.StatusCode.PERMISSION_DENIED, "FORBIDDEN")
NOT_IN_MEETING = (grpc.StatusCode.NOT_FOUND, "NOT_IN_MEETING")


async def _upsert(stub: pb_grpc.RoomServiceAsyncStub, meeting_id: str = MEETING, **fields: Any) -> pb.Meeting:
    password = fields.pop("password", "")
    values: dict[str, Any] = {
        "meeting_name": "Internal",
        "status": pb.MEETING_STATUS_LIVE,
        "creator_id": CREATOR,
    }
    meeting = pb.Meeting(id=meeting_id, **(values | fields))
    reply = await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=meeting, password=password), timeout=10)
    return reply.meeting


Room = tuple[dict[str, JsClient], dict[str, str]]


@pytest.fixture
async def room(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> Room:
    """A live meeting with three sockets, two on `edge` and one on `edge2`: the clients and
    their participant ids by name."""
    await _upsert(stub)
    clients = {"alice": js.client("alice"), "bob": js.client("bob"), "carol": js.client("carol")}
    pids = {}
    for (name, client), where in zip(clients.items(), (edge, edge2, edge), strict=True):
        ack = await join(client, name, MEETING, url=where.url)
        assert ack["success"] is True, ack
        pids[name] = ack["participantId"]
    await clients["alice"].wait_for_event("participant-joined", lambda d: d["participantId"] == pids["carol"])
    await clients["bob"].wait_for_event("participant-joined", lambda d: d["participantId"] == pids["carol"])
    return clients, pids


async def test_upsert_and_get_meeting(
    edge: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    created = await _upsert(stub, meeting_name="Board", password="s3cret!", max_participants=2)
    assert created.has_password is True
    got = (await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=MEETING), timeout=10)).meeting
    assert (got.id, got.meeting_name, got.creator_id, got.status) == (
        MEETING,
        "Board",
        CREATOR,
        pb.MEETING_STATUS_LIVE,
    )
    assert got.has_password and got.max_participants == 2 and got.created_at.seconds > 0
    assert "s3cret" not in str(got)

    # Sockets see the meeting as registered: its password and its capacity apply.
    a, b, c = js.client("a"), js.client("b"), js.client("c")
    await a.connect(edge.url, transports=["websocket"])
    wrong = join_payload("a-user", MEETING, meeting_password="wrong")
    await refused(a, "join-meeting", wrong, "INVALID_PASSWORD")
    joined = await join(a, "a-user", MEETING, meeting_password="s3cret!")
    assert joined["meeting"]["meeting_name"] == "Board"
    assert joined["meeting"]["has_password"] is True
    assert "password" not in joined["meeting"]
    assert (await join(b, "b-user", MEETING, url=edge.url, meeting_password="s3cret!"))["success"] is True
    await c.connect(edge.url, transports=["websocket"])
    full = join_payload("c-user", MEETING, meeting_password="s3cret!")
    await refused(c, "join-meeting", full, "ROOM_FULL")

    # Replacing keeps created_at and changes what later joiners see.
    again = await _upsert(stub, meeting_name="Board (renamed)", max_participants=3)
    assert again.created_at == got.created_at and again.has_password is False
    renamed = await join(c, "c-user", MEETING)
    assert renamed["success"] is True and renamed["meeting"]["meeting_name"] == "Board (renamed)"


@pytest.mark.parametrize(
    ("rpc", "request_", "code", "reason"),
    [
        ("GetMeeting", pb.GetMeetingRequest(meeting_id="no-such-meeting"), "NOT_FOUND", "MEETING_NOT_FOUND"),
        (
            "ListParticipants",
            pb.ListParticipantsRequest(meeting_id="no-such-meeting"),
            "NOT_FOUND",
            "MEETING_NOT_FOUND",
        ),
        ("EndMeeting", pb.EndMeetingRequest(meeting_id="no-such-meeting"), "NOT_FOUND", "MEETING_NOT_FOUND"),
        (
            "UpsertMeeting",
            pb.UpsertMeetingRequest(meeting=pb.Meeting(id="")),
            "INVALID_ARGUMENT",
            "INVALID_PAYLOAD",
        ),
    ],
    ids=["get-unknown", "list-unknown", "end-unknown", "upsert-without-id"],
)
async def test_unknown_meetings_and_malformed_requests_are_refused(
    stub: pb_grpc.RoomServiceAsyncStub, rpc: str, request_: Message, code: str, reason: str
) -> None:
    await rpc_refused(getattr(stub, rpc)(request_, timeout=10), grpc.StatusCode[code], reason)


async def test_list_rooms_and_participants_follow_the_sockets(
    room: Room, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    clients, pids = room
    rooms = {r.meeting.id: r for r in (await stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms}
    assert rooms[MEETING].participant_count == 3
    assert rooms[MEETING].meeting.meeting_name == "Internal"
    snapshot = await room_snapshot(stub, MEETING)
    listed = {p.participant_id: p for p in snapshot.participants}
    assert set(listed) == set(pids.values())
    assert listed[pids["bob"]].user_id == "bob" and listed[pids["bob"]].socket_id == clients["bob"].sid
    assert len({p.edge_id for p in snapshot.participants}) == 2  # two edges hold them
    assert snapshot.position.sequence >= 3 and snapshot.position.epoch

    await clients["bob"].disconnect()
    await clients["alice"].wait_for_event("participant-left", lambda d: d["participantId"] == pids["bob"])
    assert await truth(stub, MEETING) == {pids["alice"], pids["carol"]}
    rooms = {r.meeting.id: r for r in (await stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms}
    assert rooms[MEETING].participant_count == 2

    for client in (clients["alice"], clients["carol"]):
        await client.emit_with_ack("leave-meeting", {})
    open_rooms = {r.meeting.id for r in (await stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms}
    assert MEETING not in open_rooms  # an empty room is not listed


async def test_moderator_mute_reaches_every_socket_including_the_muted(
    room: Room, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    clients, pids = room
    marks = {name: c.mark() for name, c in clients.items()}
    reply = await stub.UpdateMediaState(
        pb.UpdateMediaStateRequest(meeting_id=MEETING, participant_id=pids["bob"], audio=False), timeout=10
    )
    assert reply.participant.media.audio is False and reply.participant.media.video is True
    for name, client in clients.items():  # bob itself must learn that it was muted
        update = await client.wait_for_event(
            "participant-updated", lambda d: d["participantId"] == pids["bob"], start=marks[name]
        )
        assert (update.data["audio"], update.data["video"]) == (False, True)
        assert update.data["changedBy"] is None
    late = await join(js.client("late"), "late", MEETING, url=edge2.url)
    assert next(p for p in late["participants"] if p["participantId"] == pids["bob"])["audio"] is False

    # A participant may not change someone else's media through the API either.
    by_alice = pb.UpdateMediaStateRequest(
        meeting_id=MEETING, participant_id=pids["bob"], video=False, requested_by_participant_id=pids["alice"]
    )
    await rpc_refused(stub.UpdateMediaState(by_alice, timeout=10), *FORBIDDEN)
    ghost = pb.UpdateMediaStateRequest(meeting_id=MEETING, participant_id="participant-ghost", audio=False)
    await rpc_refused(stub.UpdateMediaState(ghost, timeout=10), *NOT_IN_MEETING)


async def test_remove_participant_kicks_the_socket(room: Room, stub: pb_grpc.RoomServiceAsyncStub) -> None:
    clients, pids = room
    marks = {name: c.mark() for name, c in clients.items()}
    kick_bob = pb.RemoveParticipantRequest(meeting_id=MEETING, participant_id=pids["bob"])
    by_alice = pb.RemoveParticipantRequest(
        meeting_id=MEETING, participant_id=pids["bob"], requested_by_participant_id=pids["alice"]
    )
    await rpc_refused(stub.RemoveParticipant(by_alice, timeout=10), *FORBIDDEN)  # not the host

    reply = await stub.RemoveParticipant(kick_bob, timeout=10)
    assert reply.participant.participant_id == pids["bob"]
    kicked = await clients["bob"].wait_for_event("kicked", start=marks["bob"])
    assert kicked.data["participantId"] == pids["bob"]
    for name in ("alice", "carol"):
        left = await clients[name].wait_for_event(
            "participant-left", lambda d: d["participantId"] == pids["bob"], start=marks[name]
        )
        assert left.data["reason"] == "kicked"
    # The kicked socket hears nothing more from the room.
    after = clients["bob"].mark()
    await clients["alice"].emit_with_ack("chat-message", {"text": "bye bob"})
    await clients["carol"].wait_for_event("chat-message", lambda d: d["text"] == "bye bob")
    await clients["bob"].expect_no_event("chat-message", within=0.5, start=after)

    await rpc_refused(stub.RemoveParticipant(kick_bob, timeout=10), *NOT_IN_MEETING)


async def test_end_meeting_closes_the_room_on_every_edge(
    room: Room, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    clients, pids = room
    by_bob = pb.EndMeetingRequest(meeting_id=MEETING, requested_by_participant_id=pids["bob"])
    await rpc_refused(stub.EndMeeting(by_bob, timeout=10), *FORBIDDEN)
    marks = {name: c.mark() for name, c in clients.items()}

    reply = await stub.EndMeeting(pb.EndMeetingRequest(meeting_id=MEETING), timeout=10)
    assert reply.meeting.status == pb.MEETING_STATUS_ENDED
    for name, client in clients.items():
        ended = await client.wait_for_event("meeting-ended", start=marks[name])
        assert ended.data == {"meetingId": MEETING, "endedBy": None}
        assert client.events_named("participant-left", start=marks[name]) == []
    late = js.client("late")
    await late.connect(edge2.url, transports=["websocket"])
    await refused(late, "join-meeting", join_payload("late", MEETING), "MEETING_NOT_ACTIVE")
    not_in = await clients["alice"].emit_with_ack("update-media", {"audio": False})
    assert not_in["error"]["code"] == "NOT_IN_MEETING"
    assert MEETING not in {
        r.meeting.id for r in (await stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms
    }
    # Ending twice is harmless and tells the sockets nothing new.
    await stub.EndMeeting(pb.EndMeetingRequest(meeting_id=MEETING), timeout=10)
    await clients["alice"].expect_no_event("meeting-ended", within=0.5, start=marks["alice"] + 1)
    assert len(clients["alice"].events_named("meeting-ended", start=marks["alice"])) == 1


async def test_send_chat_and_signal_on_behalf_of_a_participant(
    room: Room, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    clients, pids = room
    marks = {name: c.mark() for name, c in clients.items()}
    reply = await stub.SendChat(
        pb.SendChatRequest(meeting_id=MEETING, participant_id=pids["alice"], text="from a bot"), timeout=10
    )
    for name, client in clients.items():
        got = await client.wait_for_event("chat-message", start=marks[name])
        assert got.data["messageId"] == reply.message.message_id
        assert got.data["participantId"] == pids["alice"] and got.data["text"] == "from a bot"

    signal = pb.Signal(
        type=pb.SIGNAL_TYPE_OFFER,
        meeting_id=MEETING,
        from_participant_id=pids["alice"],
        target_participant_id=pids["bob"],
        payload_json='{"sdp": {"type": "offer", "sdp": "v=0"}}',
    )
    await stub.SendSignal(pb.SendSignalRequest(signal=signal), timeout=10)
    offer = await clients["bob"].wait_for_event("webrtc-offer", start=marks["bob"])
    assert offer.data["fromParticipantId"] == pids["alice"]
    assert offer.data["sdp"] == {"type": "offer", "sdp": "v=0"}
    await clients["carol"].expect_no_event("webrtc-offer", within=0.3, start=marks["carol"])

    signal.target_participant_id = "participant-ghost"
    await rpc_refused(stub.SendSignal(pb.SendSignalRequest(signal=signal), timeout=10), *NOT_IN_MEETING)

"""Host controls over real processes with the official JavaScript client: the meeting's
creator kicks and ends, across two edges; anyone else is refused with FORBIDDEN."""

from __future__ import annotations

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.conftest import FAST_EDGE_ARGS
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess, start_edge
from tests.support.replicas import replicas_on_redis
from tests.support.room import join, room_snapshot, room_stub

MEETING = "host-controls-meeting"
HOST = "host-user"
"""The meeting's creator: the user `_seat` joins for the client named "host"."""


async def _create_meeting(stub: pb_grpc.RoomServiceAsyncStub, meeting_id: str = MEETING) -> None:
    meeting = pb.Meeting(
        id=meeting_id, meeting_name="Host controls", status=pb.MEETING_STATUS_LIVE, creator_id=HOST
    )
    await stub.UpsertMeeting(pb.UpsertMeetingRequest(meeting=meeting), timeout=10)


async def _seat(
    stub: pb_grpc.RoomServiceAsyncStub, js: JsClientPool, **edges: EdgeProcess
) -> tuple[list[JsClient], dict[str, str]]:
    """Creates the meeting and joins a client per keyword, in order, as user "<name>-user"
    through the given edge; the first has seen the last arrive. Returns the clients, and the
    participant ids by client name."""
    await _create_meeting(stub)
    pids = {
        name: (await join(js.client(name), f"{name}-user", MEETING, url=edge.url))["participantId"]
        for name, edge in edges.items()
    }
    names = list(edges)
    await js.client(names[0]).wait_for_event(
        "participant-joined", lambda d: d["participantId"] == pids[names[-1]]
    )
    return [js.client(name) for name in names], pids


async def test_host_kicks_a_participant_on_another_edge(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    (host, target, other_far, other_near), pids = await _seat(
        stub, js, host=edge, target=edge2, far=edge2, near=edge
    )
    target_pid = pids["target"]
    await target.wait_for_event("participant-joined", lambda d: d["participantId"] == pids["near"])

    marks = {c.name: c.mark() for c in (host, target, other_far, other_near)}
    ack = await host.emit_with_ack("kick-participant", {"participantId": target_pid})
    assert ack == {"success": True, "participantId": target_pid}

    kicked = await target.wait_for_event("kicked", start=marks["target"])
    assert kicked.data["participantId"] == target_pid
    assert kicked.data["meetingId"] == MEETING
    for watcher in (host, other_far, other_near):
        left = await watcher.wait_for_event(
            "participant-left", lambda d: d["participantId"] == target_pid, start=marks[watcher.name]
        )
        assert left.data["reason"] == "kicked"
        assert left.data["userName"] == "Target-User"

    # The kicked socket is out of the room: nothing more reaches it, and it may do nothing.
    after = target.mark()
    await other_far.emit_with_ack("chat-message", {"text": "is the target still here?"})
    await other_near.emit_with_ack("update-media", {"audio": False})
    late = js.client("late")
    late_pid = (await join(late, "late-user", MEETING, url=edge2.url))["participantId"]
    await other_far.wait_for_event("participant-joined", lambda d: d["participantId"] == late_pid)
    await other_far.wait_for_event("participant-updated", lambda d: d["audio"] is False)
    await target.expect_no_event(None, lambda d: True, within=0.7, start=after)
    assert target.events_named("participant-left", start=marks["target"]) == []
    refused = await target.emit_with_ack("chat-message", {"text": "let me back"})
    assert refused["error"]["code"] == "NOT_IN_MEETING"

    snapshot = await room_snapshot(stub, MEETING)
    assert target_pid not in {p.participant_id for p in snapshot.participants}
    assert len(snapshot.participants) == 4


async def test_only_the_host_may_kick(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    (host, guest, victim), pids = await _seat(stub, js, host=edge, guest=edge2, victim=edge)
    host_pid, victim_pid = pids["host"], pids["victim"]
    start = victim.mark()

    ack = await guest.emit_with_ack("kick-participant", {"participantId": victim_pid})
    assert ack["success"] is False
    assert ack["error"]["code"] == "FORBIDDEN"
    error = await guest.wait_for_event("error")
    assert error.data["code"] == "FORBIDDEN"
    ack = await guest.emit_with_ack("kick-participant", {"participantId": host_pid})
    assert ack["error"]["code"] == "FORBIDDEN"

    # The host's own mistakes: an unknown participant, itself, a malformed payload.
    for payload, code in (
        ({"participantId": "participant-nobody"}, "NOT_IN_MEETING"),
        ({"participantId": host_pid}, "INVALID_PAYLOAD"),
        ({}, "INVALID_PAYLOAD"),
    ):
        ack = await host.emit_with_ack("kick-participant", payload)
        assert ack["success"] is False and ack["error"]["code"] == code, (payload, ack)

    await victim.expect_no_event("kicked", within=0.5, start=start)
    await victim.expect_no_event("participant-left", within=0.1, start=start)
    snapshot = await room_snapshot(stub, MEETING)
    assert len(snapshot.participants) == 3


async def test_host_ends_the_meeting_on_every_edge(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    (host, near, far), pids = await _seat(stub, js, host=edge, near=edge, far=edge2)
    host_pid = pids["host"]
    marks = {c.name: c.mark() for c in (host, near, far)}

    ack = await host.emit_with_ack("end-meeting", {})
    assert ack == {"success": True, "meetingId": MEETING}
    for client in (host, near, far):
        ended = await client.wait_for_event("meeting-ended", start=marks[client.name])
        assert ended.data["meetingId"] == MEETING
        assert ended.data["endedBy"] == host_pid
        # The room closed: no one is told the others "left", once is enough.
        assert len(client.events_named("meeting-ended", start=marks[client.name])) == 1
        assert client.events_named("participant-left", start=marks[client.name]) == []

    meeting = (await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=MEETING), timeout=10)).meeting
    assert meeting.status == pb.MEETING_STATUS_ENDED
    rooms = (await stub.ListRooms(pb.ListRoomsRequest(), timeout=10)).rooms
    assert MEETING not in {r.meeting.id for r in rooms}

    # The sockets are no longer in a meeting, and nobody can join it again.
    for client in (near, far):
        refused = await client.emit_with_ack("chat-message", {"text": "hello?"})
        assert refused["error"]["code"] == "NOT_IN_MEETING"
    for client, user in ((far, "far-user"), (host, HOST)):
        rejoin = await client.emit_with_ack(
            "join-meeting", {"meetingId": MEETING, "userId": user, "userName": "Again"}
        )
        assert rejoin["success"] is False
        assert rejoin["error"]["code"] == "MEETING_NOT_ACTIVE"
    newcomer = js.client("newcomer")
    await newcomer.connect(edge2.url, transports=["websocket"])
    await newcomer.emit("join-meeting", {"meetingId": MEETING, "userId": "new-user", "userName": "New"})
    error = await newcomer.wait_for_event("error")
    assert error.data["code"] == "MEETING_NOT_ACTIVE"
    assert newcomer.events_named("meeting-joined") == []


async def test_only_the_host_may_end(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    (host, guest), _ = await _seat(stub, js, host=edge, guest=edge2)

    ack = await guest.emit_with_ack("end-meeting", {})
    assert ack["success"] is False
    assert ack["error"]["code"] == "FORBIDDEN"
    await host.expect_no_event("meeting-ended", within=0.5)
    meeting = (await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=MEETING), timeout=10)).meeting
    assert meeting.status == pb.MEETING_STATUS_LIVE
    # The meeting carries on: the guest can still talk to the host.
    await guest.emit_with_ack("chat-message", {"text": "sorry"})
    await host.wait_for_event("chat-message", lambda d: d["text"] == "sorry")


async def test_not_in_a_meeting_cannot_use_host_controls(edge: EdgeProcess, js: JsClientPool) -> None:
    loner = js.client("loner")
    await loner.connect(edge.url, transports=["websocket"])
    for event, payload in (("kick-participant", {"participantId": "p-1"}), ("end-meeting", {})):
        ack = await loner.emit_with_ack(event, payload)
        assert ack["error"]["code"] == "NOT_IN_MEETING", (event, ack)


async def test_with_the_ban_setting_a_kicked_user_stays_out_through_any_edge_and_replica(
    js: JsClientPool,
) -> None:
    # Two replicas on one Redis, two edges each given both: the ban is in the store.
    async with (
        replicas_on_redis(2, "--ban-kicked-users", "true") as replicas,
        await start_edge(replicas.target, *FAST_EDGE_ARGS, name="edge-a") as edge_a,
        await start_edge(replicas.target, *FAST_EDGE_ARGS, name="edge-b") as edge_b,
        room_stub(replicas.addresses[0]) as stub,
    ):
        await _create_meeting(stub)
        host, target = js.client("host"), js.client("target")
        await join(host, HOST, MEETING, url=edge_a.url)
        target_pid = (await join(target, "target-user", MEETING, url=edge_b.url))["participantId"]
        ack = await host.emit_with_ack("kick-participant", {"participantId": target_pid})
        assert ack["success"], ack
        await target.wait_for_event("kicked")

        payload = {"meetingId": MEETING, "userId": "target-user", "userName": "Target"}
        # The same socket, and a new socket on the other edge: both refused, several
        # times (joins are balanced over both replicas).
        again = js.client("again")
        await again.connect(edge_a.url, transports=["websocket"])
        for client in (target, again, target, again):
            reply = await client.emit_with_ack("join-meeting", payload, timeout=30)
            assert reply["success"] is False, reply
            assert reply["error"]["code"] == "FORBIDDEN", reply
            assert "removed from this meeting" in reply["error"]["message"], reply
        # Anyone else still walks in, and the host is unaffected.
        newcomer = js.client("newcomer")
        await join(newcomer, "newcomer-user", MEETING, url=edge_b.url)
        snapshot = await room_snapshot(stub, MEETING)
        assert {p.user_id for p in snapshot.participants} == {HOST, "newcomer-user"}

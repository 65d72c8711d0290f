"""WebRTC signalling relay over real processes with the official JavaScript client:
offers, answers and ICE candidates reach only their target's socket, on whichever edge
it is, and anything addressed outside the sender's meeting is refused."""

from __future__ import annotations

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.room import join, refused, room_snapshot

SIGNALS = ("webrtc-offer", "webrtc-answer", "webrtc-ice-candidate")
OFFER_SDP = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER_SDP = {"type": "answer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
CANDIDATE = {
    "candidate": "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ srflx",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def _position(stub: pb_grpc.RoomServiceAsyncStub) -> tuple[int, str]:
    position = (await room_snapshot(stub)).position
    return position.sequence, position.epoch


async def test_offer_answer_and_candidates_reach_only_the_target_across_edges(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    alice, bob, carol, dave = (js.client(n) for n in ("alice", "bob", "carol", "dave"))
    alice_pid = (await join(alice, "alice", url=edge.url))["participantId"]
    bob_pid = (await join(bob, "bob", url=edge2.url))["participantId"]
    await join(carol, "carol", url=edge2.url)  # bystander on the target's edge
    await join(dave, "dave", url=edge.url)  # bystander on the sender's edge
    marks = {c.name: c.mark() for c in (alice, bob, carol, dave)}
    before = await _position(stub)

    ack = await alice.emit_with_ack("webrtc-offer", {"targetParticipantId": bob_pid, "sdp": OFFER_SDP})
    assert ack == {"success": True, "targetParticipantId": bob_pid}
    offer = await bob.wait_for_event("webrtc-offer", start=marks["bob"])
    assert offer.data["fromParticipantId"] == alice_pid
    assert offer.data["targetParticipantId"] == bob_pid
    assert offer.data["sdp"] == OFFER_SDP

    await bob.emit_with_ack("webrtc-answer", {"targetParticipantId": alice_pid, "sdp": ANSWER_SDP})
    answer = await alice.wait_for_event("webrtc-answer", start=marks["alice"])
    assert answer.data["fromParticipantId"] == bob_pid
    assert answer.data["sdp"] == ANSWER_SDP

    # Trickled candidates, in both directions, in the order sent.
    for index in range(5):
        await alice.emit(
            "webrtc-ice-candidate", {"targetParticipantId": bob_pid, "candidate": CANDIDATE, "n": index}
        )
        await bob.emit(
            "webrtc-ice-candidate", {"targetParticipantId": alice_pid, "candidate": CANDIDATE, "n": index}
        )
    at_bob = await bob.wait_for_events("webrtc-ice-candidate", 5, start=marks["bob"])
    at_alice = await alice.wait_for_events("webrtc-ice-candidate", 5, start=marks["alice"])
    assert [e.data["n"] for e in at_bob] == list(range(5))
    assert [e.data["n"] for e in at_alice] == list(range(5))
    assert all(e.data["candidate"] == CANDIDATE and e.data["fromParticipantId"] == alice_pid for e in at_bob)
    assert all(e.data["fromParticipantId"] == bob_pid for e in at_alice)

    # Nobody else hears any of it, on either edge; and no duplicates reach the target.
    for bystander in (carol, dave):
        for name in SIGNALS:
            await bystander.expect_no_event(name, within=0.2, start=marks[bystander.name])
    assert len(bob.events_named("webrtc-offer", start=marks["bob"])) == 1
    assert len(alice.events_named("webrtc-answer", start=marks["alice"])) == 1
    assert len(bob.events_named("webrtc-ice-candidate", start=marks["bob"])) == 5
    # Signals are routed, not logged: the room's event log did not move.
    assert await _position(stub) == before


async def test_signals_between_sockets_on_the_same_edge(edge: EdgeProcess, js: JsClientPool) -> None:
    alice, bob = js.client("alice"), js.client("bob")
    alice_pid = (await join(alice, "alice", url=edge.url))["participantId"]
    bob_pid = (await join(bob, "bob", url=edge.url))["participantId"]
    await bob.emit_with_ack("webrtc-offer", {"targetParticipantId": alice_pid, "sdp": OFFER_SDP})
    offer = await alice.wait_for_event("webrtc-offer")
    assert offer.data["fromParticipantId"] == bob_pid
    await bob.expect_no_event("webrtc-offer", within=0.3)


async def test_signals_outside_the_senders_meeting_are_refused(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool, stub: pb_grpc.RoomServiceAsyncStub
) -> None:
    await stub.UpsertMeeting(
        pb.UpsertMeetingRequest(meeting=pb.Meeting(id="other-meeting", status=pb.MEETING_STATUS_LIVE)),
        timeout=10,
    )
    alice, bob, stranger, loner = (js.client(n) for n in ("alice", "bob", "stranger", "loner"))
    alice_pid = (await join(alice, "alice", url=edge.url))["participantId"]
    await join(bob, "bob", url=edge2.url)
    stranger_pid = (await join(stranger, "stranger", "other-meeting", url=edge2.url))["participantId"]
    await loner.connect(edge.url, transports=["websocket"])
    marks = {c.name: c.mark() for c in (alice, bob, stranger)}

    for name in SIGNALS:
        # A participant of another meeting, an id that never existed.
        await refused(alice, name, {"targetParticipantId": stranger_pid, "sdp": OFFER_SDP}, "NOT_IN_MEETING")
        await refused(alice, name, {"targetParticipantId": "participant-ghost"}, "NOT_IN_MEETING")
        # A sender in no meeting at all, even to a real participant.
        await refused(loner, name, {"targetParticipantId": alice_pid}, "NOT_IN_MEETING")
        # Malformed: no target, itself as target, not an id.
        await refused(alice, name, {"sdp": OFFER_SDP}, "INVALID_PAYLOAD")
        await refused(alice, name, {"targetParticipantId": alice_pid}, "INVALID_PAYLOAD")
        await refused(alice, name, {"targetParticipantId": "has space"}, "INVALID_PAYLOAD")

    for client in (alice, bob, stranger):
        for name in SIGNALS:
            await client.expect_no_event(name, within=0.2, start=marks[client.name])


async def test_a_signal_to_a_participant_that_left_reaches_no_one(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool
) -> None:
    alice, bob, bob_again, carol = (js.client(n) for n in ("alice", "bob", "bob2", "carol"))
    await join(alice, "alice", url=edge.url)
    old_bob = (await join(bob, "bob", url=edge2.url))["participantId"]
    await join(carol, "carol", url=edge2.url)

    # Bob leaves and the same socket joins again: a new participant id, the old one dead.
    assert (await bob.emit_with_ack("leave-meeting", {}))["success"] is True
    await alice.wait_for_event("participant-left", lambda d: d["participantId"] == old_bob)
    new_bob = (await join(bob, "bob", url=edge2.url))["participantId"]
    assert new_bob != old_bob
    marks = {c.name: c.mark() for c in (alice, bob, carol)}
    await refused(alice, "webrtc-offer", {"targetParticipantId": old_bob, "sdp": OFFER_SDP}, "NOT_IN_MEETING")

    # Bob's user joins from another socket, replacing its session: the replaced id is dead too.
    replacement = (await join(bob_again, "bob", url=edge.url))["participantId"]
    await alice.wait_for_event("participant-left", lambda d: d["participantId"] == new_bob)
    await refused(
        alice,
        "webrtc-ice-candidate",
        {"targetParticipantId": new_bob, "candidate": CANDIDATE},
        "NOT_IN_MEETING",
    )

    for client in (bob, carol, bob_again):
        for name in SIGNALS:
            await client.expect_no_event(name, within=0.2, start=marks.get(client.name, 0))
    # The live session still gets what is addressed to it.
    await alice.emit_with_ack("webrtc-offer", {"targetParticipantId": replacement, "sdp": OFFER_SDP})
    offer = await bob_again.wait_for_event("webrtc-offer")
    assert offer.data["targetParticipantId"] == replacement
    await bob.expect_no_event("webrtc-offer", within=0.3, start=marks["bob"])

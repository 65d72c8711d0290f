"""The traffic that makes every exported metric move: what users do, over real sockets,
with every identifier it used collected (none may appear in a metric label)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.room import LOCKED_MEETING, MEETING, join, join_payload, refused

OFFER_SDP = {"type": "offer", "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"}


@dataclass
class TrafficIds:
    """Every identifier the traffic used or was given: none may appear in a label."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and value:
                self.values.add(value)


async def _connect(client: JsClient, edge: EdgeProcess, ids: TrafficIds) -> None:
    await client.connect(edge.url, transports=["websocket"])
    ids.add(client.sid)


async def drive_traffic(js: JsClientPool, edges: Sequence[EdgeProcess], tag: str, ids: TrafficIds) -> None:
    """One round of what users do, spread over `edges`: three joins into one room, a media
    update, a chat message, a WebRTC offer, a wrong password, an unknown meeting, a bad
    payload, a leave and a disconnect. The first joiner stays in the room (so the edges
    keep their WatchRoom streams open). Every id used goes into `ids`; `tag` makes this
    round's user ids unique."""
    first, second = edges[0], edges[-1]
    alice, bob, carol, dave = (js.client(f"{name}-{tag}") for name in ("alice", "bob", "carol", "dave"))
    await _connect(alice, first, ids)
    await _connect(bob, second, ids)
    await _connect(carol, first, ids)
    await _connect(dave, second, ids)

    joins: tuple[tuple[JsClient, str, dict[str, Any]], ...] = (
        (alice, f"ops-alice-{tag}", {}),
        (bob, f"ops-bob-{tag}", {"video": False}),
        (carol, f"ops-carol-{tag}", {}),
    )
    acks = []
    for client, user, extra in joins:
        ids.add(MEETING, user)
        acks.append(ack := await join(client, user, MEETING, **extra))
        ids.add(ack["participantId"])
    alice_ack, bob_ack, carol_ack = acks
    alice_pid, bob_pid = alice_ack["participantId"], bob_ack["participantId"]
    await alice.wait_for_event(
        "participant-joined", lambda d: d["participantId"] == carol_ack["participantId"]
    )

    mark = bob.mark()
    assert (await alice.emit_with_ack("update-media", {"audio": False, "screen": True}))["success"] is True
    await bob.wait_for_event("participant-updated", lambda d: d["participantId"] == alice_pid, start=mark)

    chat = await bob.emit_with_ack("chat-message", {"text": f"hello from {tag}"})
    assert chat["success"] is True, chat
    message = await alice.wait_for_event("chat-message", lambda d: d["participantId"] == bob_pid)
    ids.add(message.data.get("messageId"))

    offer = await alice.emit_with_ack("webrtc-offer", {"targetParticipantId": bob_pid, "sdp": OFFER_SDP})
    assert offer["success"] is True, offer
    await bob.wait_for_event("webrtc-offer", lambda d: d["fromParticipantId"] == alice_pid)

    dave_id, nowhere = f"ops-dave-{tag}", f"ops-no-such-meeting-{tag}"
    ids.add(LOCKED_MEETING, dave_id, nowhere)
    wrong = join_payload(dave_id, LOCKED_MEETING, meeting_password="not-the-password")
    await refused(dave, "join-meeting", wrong, "INVALID_PASSWORD")
    await refused(dave, "join-meeting", join_payload(dave_id, nowhere), "MEETING_NOT_FOUND")
    await refused(dave, "join-meeting", {"meetingId": MEETING}, "INVALID_PAYLOAD")

    mark = alice.mark()
    left = await carol.emit_with_ack("leave-meeting", {"meetingId": MEETING})
    assert left["success"] is True, left
    await bob.disconnect()
    await alice.wait_for_events(
        "participant-left", 2, lambda d: d.get("reason") in ("left", "disconnected"), start=mark
    )
    await carol.disconnect()
    await dave.disconnect()

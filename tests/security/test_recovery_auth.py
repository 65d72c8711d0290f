"""Connection-state recovery with token authentication: a `pid` recovers only a session of
the same subject; presented with another user's token it recovers nothing, and the session
stays recoverable by its owner."""

from __future__ import annotations

import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.security import keys
from tests.security.test_auth import jwt_edge  # noqa: F401 (the fixture)
from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess
from tests.support.room import MEETING
from tests.support.room_rpc import join_request, rpc_refused

pytestmark = pytest.mark.timeout(120)


async def test_a_pid_presented_with_another_users_token_recovers_nothing(
    room_service: RoomServiceProcess,
    jwt_edge: EdgeProcess,  # noqa: F811
    js: JsClientPool,
) -> None:
    alice, bob = js.client("alice"), js.client("bob")
    alice_token = keys.token("user-1-id", name="Alice")
    await alice.connect(jwt_edge.url, transports=["websocket"], auth={"token": alice_token})
    await bob.connect(jwt_edge.url, transports=["websocket"], auth={"token": keys.token("user-3-id")})
    joined = await alice.emit_with_ack(
        "join-meeting", {"meetingId": MEETING, "userId": "user-1-id", "userName": "A"}
    )
    assert joined["success"], joined
    assert (
        await bob.emit_with_ack(
            "join-meeting", {"meetingId": MEETING, "userId": "user-3-id", "userName": "B"}
        )
    )["success"]
    await alice.wait_for_event("participant-joined", timeout=10)
    claim = await alice.status()
    await alice.drop("reset")  # held for recovery
    bob_start = bob.mark()

    mallory = js.client("mallory")
    stolen = {"token": keys.token("user-2-id"), "pid": claim["pid"], "offset": claim["offset"]}
    await mallory.connect(jwt_edge.url, transports=["websocket"], auth=stolen)
    # A fresh client's `recovered` is false whatever happens: the server's answer shows
    # whether it resumed the session (the claimed pid and the old sid) or not.
    status = await mallory.status()
    assert status["pid"] != claim["pid"] and status["id"] != claim["id"], status
    reply = await mallory.emit_with_ack("chat-message", {"text": "I am Alice now"}, timeout=10)
    assert reply["error"]["code"] == "NOT_IN_MEETING"

    # The refusal spent nothing: Alice herself still recovers her session.
    again = js.client("alice-again")
    own = {"token": alice_token, "pid": claim["pid"], "offset": claim["offset"]}
    await again.connect(jwt_edge.url, transports=["websocket"], auth=own)
    status = await again.status()
    assert status["pid"] == claim["pid"] and status["id"] == claim["id"], status
    reply = await again.emit_with_ack("chat-message", {"text": "back"}, timeout=10)
    assert reply["success"] and reply["message"]["participantId"] == joined["participantId"]
    await bob.expect_no_event("participant-left", within=0.5, start=bob_start)


async def test_no_caller_can_send_the_room_services_session_moved_notice(
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    """The notice that closes a socket without a leave comes only from the room service."""
    first = await stub.Join(join_request("user-2-id"), timeout=10)
    second = await stub.Join(join_request("user-3-id"), timeout=10)
    notice = pb.Signal(
        type=pb.SIGNAL_TYPE_SESSION_MOVED,
        meeting_id=MEETING,
        from_participant_id=first.participant.participant_id,
        target_participant_id=second.participant.participant_id,
    )
    request = pb.SendSignalRequest(signal=notice)
    await rpc_refused(
        stub.SendSignal(request, timeout=10), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PAYLOAD"
    )

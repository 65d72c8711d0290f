"""Token expiry while connected, against real processes and the official client: the
warning ahead of expiry, a refresh for the same user, the disconnect when none comes,
and TURN credentials that never outlive the token."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess, start_edge

from . import keys

pytestmark = pytest.mark.timeout(120)

MEETING = "test-meeting-123"
SHORT = 4  # seconds a short-lived token lives


@pytest.fixture
async def expiring_edge(room_service: RoomServiceProcess) -> AsyncIterator[EdgeProcess]:
    async with await start_edge(
        room_service.grpc_address,
        "--auth-mode", "jwt",
        "--jwt-leeway-seconds", "0",
        "--token-expiry-warning-seconds", "2",
        "--token-expiry-grace-seconds", "1",
        "--turn-urls", "turn:turn.example.test:3478",
        env={"EDGE_GATEWAY_JWT_SECRET": keys.HS_SECRET, "EDGE_GATEWAY_TURN_SECRET": "turn-secret-for-tests"},
        name="edge-expiry",
    ) as proc:  # fmt: skip
        yield proc


def short_token(user: str, lifetime: float = SHORT) -> str:
    return keys.token(user, expires_in=lifetime, issuer=None, audience=None)


async def joined(client: JsClient, url: str, user: str, token: str) -> dict[str, Any]:
    await client.connect(url, transports=["websocket"], auth={"token": token})
    reply: dict[str, Any] = await client.emit_with_ack(
        "join-meeting", {"meetingId": MEETING, "userId": user, "userName": user}
    )
    assert reply["success"], reply
    return reply


def turn_expiry(webrtc_config: dict[str, Any]) -> int:
    (turn,) = [s for s in webrtc_config["iceServers"] if s.get("username")]
    return int(turn["username"].split(":")[0])


async def test_a_socket_without_a_refresh_is_warned_then_disconnected(
    expiring_edge: EdgeProcess, js: JsClientPool
) -> None:
    short, other = js.client("short"), js.client("other")
    token = short_token("user-short")
    expires_at = int(time.time()) + SHORT
    reply = await joined(short, expiring_edge.url, "user-short", token)
    await joined(other, expiring_edge.url, "user-other", short_token("user-other", 300))
    # TURN credentials never outlive the token.
    assert turn_expiry(reply["webrtcConfig"]) <= expires_at

    warning = await short.wait_for_event("token-expiring", timeout=SHORT + 5)
    assert warning.data["expiresAt"].endswith("Z") and 0 <= warning.data["expiresIn"] <= SHORT
    error = await short.wait_for_event("error", lambda d: d["code"] == "UNAUTHENTICATED", timeout=10)
    assert error.data["message"] == "Token has expired"
    gone = await short.wait_for_event("disconnect", timeout=10)
    assert gone.data["reason"] == "io server disconnect"  # the client does not reconnect by itself
    left = await other.wait_for_event("participant-left", timeout=10)
    assert left.data["participantId"] == reply["participantId"] and left.data["reason"] == "disconnected"


async def test_a_refreshed_token_keeps_the_socket(expiring_edge: EdgeProcess, js: JsClientPool) -> None:
    client, other = js.client("refreshing"), js.client("other")
    await joined(client, expiring_edge.url, "user-r", short_token("user-r"))
    await joined(other, expiring_edge.url, "user-o", short_token("user-o", 300))
    await client.wait_for_event("token-expiring", timeout=SHORT + 5)

    wrong_user = await client.emit_with_ack("refresh-token", {"token": short_token("user-o", 300)})
    assert wrong_user["error"] == {"code": "FORBIDDEN", "message": "Token is for another user"}
    garbage = await client.emit_with_ack("refresh-token", {"token": "not.a.token"})
    assert garbage["error"]["code"] == "UNAUTHENTICATED"
    new_expiry = int(time.time()) + 300
    refreshed = await client.emit_with_ack("refresh-token", {"token": short_token("user-r", 300)})
    assert refreshed["success"], refreshed
    assert refreshed["expiresAt"].endswith("Z")
    assert SHORT < turn_expiry(refreshed["webrtcConfig"]) - time.time() <= 300
    assert turn_expiry(refreshed["webrtcConfig"]) <= new_expiry + 1

    # Past the old token's expiry and grace, the socket is still in the meeting.
    await client.expect_no_event("disconnect", within=SHORT + 2)
    await other.expect_no_event("participant-left", within=0.1)
    chat = await client.emit_with_ack("chat-message", {"text": "still here"})
    assert chat["success"], chat

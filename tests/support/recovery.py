"""Connection-state recovery with the official client: cutting a client's TCP connection
through a `TcpProxy`, waiting for it to reconnect by itself, presenting an old claim, and
what a fresh (not recovered) session looks like, and what a recovered one still is."""

from __future__ import annotations

from typing import Any

from tests.support.jsclient import EventTimeoutError, JsClient, JsClientPool
from tests.support.room import refused
from tests.support.tcp_proxy import TcpProxy

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"]}
"""socket.io-client `transports` by name (polling: long-polling only, never upgraded)."""


async def chat(client: JsClient, text: str) -> None:
    """Sends a chat message and checks it was accepted."""
    reply = await client.emit_with_ack("chat-message", {"text": text}, timeout=10)
    assert reply["success"], reply


def texts(client: JsClient, start: int = 0) -> list[str]:
    """The chat texts the client received, in order."""
    return [e.data["text"] for e in client.events_named("chat-message", start=start)]


async def cut(proxy: TcpProxy, client: JsClient, start: int) -> None:
    """Cuts the client's TCP connections until it notices (a long-polling client may be
    between two requests, with no connection open, at the first cut)."""
    for _ in range(40):
        proxy.sever()
        try:
            await client.wait_for_event("disconnect", start=start, timeout=0.5)
            return
        except EventTimeoutError:
            continue
    raise AssertionError(f"{client.name} never noticed its connection was cut")


async def reconnected(client: JsClient, start: int) -> dict[str, Any]:
    """The client's next `connect` after a cut (it reconnects by itself)."""
    event = await client.wait_for_event("connect", start=start, timeout=20)
    data: dict[str, Any] = event.data
    return data


async def present_claim(js: JsClientPool, url: str, claim: dict[str, Any], name: str = "again") -> JsClient:
    """A new client presenting an old client's `{pid, offset}` (from its `status()`)."""
    again = js.client(name)
    await again.connect(url, transports=["websocket"], auth={"pid": claim["pid"], "offset": claim["offset"]})
    return again


def assert_not_recovered(status: dict[str, Any], claim: dict[str, Any]) -> None:
    """A fresh client presenting an old claim: its own `recovered` is false whatever the
    server did, so the answer itself must show a fresh session (new pid, new sid)."""
    assert status["pid"] and status["pid"] != claim["pid"], (status, claim)
    assert status["id"] != claim["id"], (status, claim)


async def claim_recovers_nothing(
    js: JsClientPool, url: str, claim: dict[str, Any], name: str = "again"
) -> None:
    """A new client presenting `claim` (see `present_claim`) gets a fresh session and is in
    no meeting: the claimed session is gone."""
    again = await present_claim(js, url, claim, name)
    assert_not_recovered(await again.status(), claim)
    await refused(again, "chat-message", {"text": "still here?"}, "NOT_IN_MEETING")


async def still_the_participant(
    client: JsClient, participant_id: str, media: dict[str, bool], watcher: JsClient, start: int
) -> None:
    """The client is still `participant_id` with its permissions: its media change `media`
    is accepted and reaches `watcher` (events from `start`) under that id."""
    reply = await client.emit_with_ack("update-media", media, timeout=10)
    assert reply["success"], reply
    update = await watcher.wait_for_event("participant-updated", start=start, timeout=10)
    assert update.data["participantId"] == participant_id

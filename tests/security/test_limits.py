"""Every limit with a low setting, against real processes: event rate, wrong passwords
(per socket at the edge and at the room service), connections per address,
name and text lengths, payload size, room capacity and CORS origins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.typing import Origin

from edge_gateway.limits import TokenBucket
from room_service.domain.throttle import FailureThrottle
from tests.conftest import SHORT_RECOVERY_WINDOW
from tests.support.jsclient import JsClient, JsClientPool, JsCommandError
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    RoomServiceProcess,
    start_edge,
    start_room_service,
)
from tests.support.room import LOCKED_MEETING, MEETING, PASSWORD, join_payload
from tests.support.timing import FakeClock

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def limited_edge(room_service: RoomServiceProcess) -> AsyncIterator[EdgeProcess]:
    proc = await start_edge(
        room_service.grpc_address,
        "--events-per-second", "2",
        "--event-burst", "5",
        "--password-attempts-per-minute", "3",
        "--max-connections-per-address", "4",
        "--max-name-length", "10",
        "--max-text-length", "20",
        "--max-payload-bytes", "4096",
        name="edge-limited",
    )  # fmt: skip
    try:
        yield proc
    finally:
        await proc.terminate()


async def codes(client: JsClient, event: str, payloads: list[Any]) -> list[str]:
    """The ack error code (or "ok") of each emit, in order."""
    out = []
    for payload in payloads:
        reply = await client.emit_with_ack(event, payload)
        out.append("ok" if reply["success"] else reply["error"]["code"])
    return out


async def test_event_rate_per_socket(limited_edge: EdgeProcess, js: JsClientPool) -> None:
    noisy, quiet = js.client("noisy"), js.client("quiet")
    await noisy.connect(limited_edge.url, transports=["websocket"])
    await quiet.connect(limited_edge.url, transports=["websocket"])
    results = await codes(noisy, "update-media", [{"audio": True}] * 20)
    # The burst of 5 is served (not in a meeting yet, hence NOT_IN_MEETING), then refused.
    assert results[:5] == ["NOT_IN_MEETING"] * 5
    assert results.count("RATE_LIMITED") >= 12, results
    error = await noisy.wait_for_event("error", lambda d: d["code"] == "RATE_LIMITED")
    assert error.data["message"] == "Too many events, slow down"
    # Per socket: another socket is not affected...
    assert await codes(quiet, "update-media", [{"audio": True}]) == ["NOT_IN_MEETING"]
    # ...and the noisy one recovers as its bucket refills (2 tokens/s).
    for _ in range(40):
        if await codes(noisy, "update-media", [{"audio": True}]) == ["NOT_IN_MEETING"]:
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("the socket never recovered from RATE_LIMITED")


async def test_wrong_passwords_per_socket(limited_edge: EdgeProcess, js: JsClientPool) -> None:
    guesser, friend = js.client("guesser"), js.client("friend")
    await guesser.connect(limited_edge.url, transports=["websocket"])
    await friend.connect(limited_edge.url, transports=["websocket"])
    # Asking without a password is not a guess.
    assert (
        await codes(guesser, "join-meeting", [join_payload("u1", LOCKED_MEETING)] * 2)
        == ["INVALID_PASSWORD"] * 2
    )
    wrong = [join_payload("u1", LOCKED_MEETING, meeting_password=f"guess-{i}") for i in range(3)]
    assert await codes(guesser, "join-meeting", wrong) == ["INVALID_PASSWORD"] * 3
    # Blocked now, even with the right password: a guesser cannot tell it found it.
    right = join_payload("u1", LOCKED_MEETING, meeting_password=PASSWORD)
    assert await codes(guesser, "join-meeting", [right]) == ["RATE_LIMITED"]
    assert await codes(
        friend, "join-meeting", [join_payload("u2", LOCKED_MEETING, meeting_password=PASSWORD)]
    ) == ["ok"]


async def test_wrong_passwords_at_the_room_service_never_lock_out_the_right_one(js: JsClientPool) -> None:
    async with (
        await start_room_service("--password-attempts-per-minute", "4", *QUICK_STOP, name="rs-pw") as rs,
        await start_edge(rs.grpc_address, "--password-attempts-per-minute", "100", name="edge-pw") as edge,
    ):
        guesser = js.client("guesser")
        await guesser.connect(edge.url, transports=["websocket"])
        wrong = [join_payload("g", LOCKED_MEETING, meeting_password=f"wrong-{i}") for i in range(5)]
        # The room service counts per socket (the edge's own limit is set high here).
        assert await codes(guesser, "join-meeting", wrong) == ["INVALID_PASSWORD"] * 4 + ["RATE_LIMITED"]
        for i in range(4):
            client = js.client(f"guess-{i}")
            await client.connect(edge.url, transports=["websocket"])
            payload = join_payload(f"g{i}", LOCKED_MEETING, meeting_password=f"wrong-{i}")
            assert await codes(client, "join-meeting", [payload]) == ["INVALID_PASSWORD"]
            await client.disconnect()
        # Twelve wrong passwords for this meeting in a minute: the host still gets in.
        host = js.client("host")
        await host.connect(edge.url, transports=["websocket"])
        assert await codes(
            host, "join-meeting", [join_payload("user-1-id", LOCKED_MEETING, meeting_password=PASSWORD)]
        ) == ["ok"]


async def test_connections_per_address(limited_edge: EdgeProcess, js: JsClientPool) -> None:
    clients = [js.client(f"c{i}") for i in range(4)]
    for client in clients:
        await client.connect(limited_edge.url, transports=["websocket"])
    extra = js.client("extra")
    with pytest.raises(JsCommandError):
        await extra.connect(limited_edge.url, transports=["websocket"])
    refusal = extra.events_named("connect_error")[-1].data
    assert refusal["data"] == {"code": "RATE_LIMITED", "message": "Too many connections from this address"}
    await clients[0].disconnect()
    for attempt in range(40):
        try:
            await js.client(f"again-{attempt}").connect(limited_edge.url, transports=["websocket"])
            break
        except JsCommandError:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("a freed connection slot was never reused")


async def test_name_and_text_lengths(limited_edge: EdgeProcess, js: JsClientPool) -> None:
    client = js.client("lengths")
    await client.connect(limited_edge.url, transports=["websocket"])
    long_name = {"meetingId": MEETING, "userId": "u1", "userName": "x" * 11}
    reply = await client.emit_with_ack("join-meeting", long_name)
    assert reply["error"] == {
        "code": "INVALID_PAYLOAD",
        "message": "Invalid userName: longer than 10 characters",
    }
    assert (await client.emit_with_ack("join-meeting", {**long_name, "userName": "x" * 10}))["success"]
    reply = await client.emit_with_ack("chat-message", {"text": "y" * 21})
    assert reply["error"] == {"code": "INVALID_PAYLOAD", "message": "Invalid text: longer than 20 characters"}
    assert (await client.emit_with_ack("chat-message", {"text": "y" * 20}))["success"]


@SHORT_RECOVERY_WINDOW  # the dropped sender is reported left once its window ends
async def test_oversized_message_drops_only_its_socket(limited_edge: EdgeProcess, js: JsClientPool) -> None:
    big, other = js.client("big"), js.client("other")
    await big.connect(limited_edge.url, transports=["websocket"])
    await other.connect(limited_edge.url, transports=["websocket"])
    assert (await other.emit_with_ack("join-meeting", join_payload("u2")))["success"]
    assert (await big.emit_with_ack("join-meeting", join_payload("u1")))["success"]
    await big.emit("chat-message", {"text": "z" * 10_000})  # over the 4096-byte limit
    await big.wait_for_event("disconnect", timeout=10)
    # The rest of the room carries on: it sees the sender leave, and no chat message.
    left = await other.wait_for_event("participant-left", timeout=10)
    assert left.data["reason"] == "disconnected"
    assert not other.events_named("chat-message")
    assert (await other.emit_with_ack("chat-message", {"text": "still here"}))["success"]


async def test_room_capacity(js: JsClientPool) -> None:
    async with (
        await start_room_service("--max-participants", "2", *QUICK_STOP, name="rs-small") as rs,
        await start_edge(rs.grpc_address, name="edge-small") as edge,
    ):
        a, b, c = js.client("a"), js.client("b"), js.client("c")
        for client in (a, b, c):
            await client.connect(edge.url, transports=["websocket"])
        assert (await a.emit_with_ack("join-meeting", join_payload("u1")))["success"]
        assert (await b.emit_with_ack("join-meeting", join_payload("u2")))["success"]
        reply = await c.emit_with_ack("join-meeting", join_payload("u3"))
        assert reply["error"]["code"] == "ROOM_FULL"
        assert (await c.wait_for_event("error")).data["code"] == "ROOM_FULL"
        await a.expect_no_event("participant-joined", lambda d: d["userId"] == "u3", within=1.0)
        # A place frees up when someone leaves.
        assert (await b.emit_with_ack("leave-meeting", {}))["success"]
        assert (await c.emit_with_ack("join-meeting", join_payload("u3")))["success"]


async def test_cors_refuses_other_origins(room_service: RoomServiceProcess) -> None:
    good = Origin("http://app.example.test")
    async with await start_edge(
        room_service.grpc_address, "--cors-allowed-origins", good, name="edge-cors"
    ) as edge:
        host = edge.http_address
        ws_url = f"ws://{host}/socket.io/?EIO=4&transport=websocket"
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(ws_url, origin=Origin("http://evil.example.test"), open_timeout=5):
                pass
        assert info.value.response.status_code == 400
        async with websockets.connect(ws_url, origin=good, open_timeout=5) as ws:
            opened = await asyncio.wait_for(ws.recv(), 5)
            assert str(opened).startswith("0{")
        polling = f"http://{host}/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as session:
            async with session.get(polling, headers={"Origin": "http://evil.example.test"}) as response:
                assert response.status == 400
            async with session.get(polling, headers={"Origin": good}) as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == good


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 60  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_password_throttle_window_slides() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(limit=2, window=60, clock=clock)
    throttle.fail("m")
    throttle.fail("m")
    assert throttle.blocked("m") and not throttle.blocked("other")
    clock.now += 61
    assert not throttle.blocked("m")

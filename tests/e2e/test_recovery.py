"""A network blip is not a leave: Socket.IO connection-state recovery with the official
client, over real processes, on WebSocket and long-polling, on one edge and across two.

The client's TCP connection runs through a loopback proxy; cutting it resets both sides
at once, and the client reconnects by itself (its default reconnection, about a second
later), presenting the `pid` and last offset it was given. The proxy's `retarget` plays
the load balancer that sends the reconnecting client to the other edge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import FAST_EDGE_ARGS, SHORT_RECOVERY_WINDOW
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    RoomServiceProcess,
    start_edge,
    start_room_service,
)
from tests.support.recovery import (
    TRANSPORTS,
    chat,
    claim_recovers_nothing,
    cut,
    reconnected,
    still_the_participant,
    texts,
)
from tests.support.room import MEETING, join
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def proxy(edge: EdgeProcess) -> AsyncIterator[TcpProxy]:
    """Between one client and the edge: a TCP connection a test can cut."""
    async with TcpProxy(edge.http_address) as cut:
        yield cut


async def connected_pair(
    js: JsClientPool, proxy: TcpProxy, edge: EdgeProcess, transport: str
) -> tuple[JsClient, JsClient, dict[str, Any], dict[str, Any]]:
    """Alice through the cuttable proxy (reconnecting by itself), Bob directly; both in."""
    alice, bob = js.client("alice"), js.client("bob")
    await alice.connect(f"http://{proxy.address}", transports=TRANSPORTS[transport], reconnection=True)
    await bob.connect(edge.url, transports=["websocket"])
    joined_alice = await join(alice, "user-2-id", name="Alice")
    joined_bob = await join(bob, "user-3-id", name="Bob")
    await alice.wait_for_event("participant-joined", lambda d: d["userId"] == "user-3-id", timeout=10)
    return alice, bob, joined_alice, joined_bob


@dataclass
class TwoEdges:
    """Alice through the cuttable proxy and Bob on edge 1, Carol on edge 2, all in the
    meeting; the proxy already sends Alice's next connection to edge 2."""

    alice: JsClient
    bob: JsClient
    carol: JsClient
    alice_id: str


@pytest.fixture
async def two_edges(js: JsClientPool, proxy: TcpProxy, edge: EdgeProcess, edge2: EdgeProcess) -> TwoEdges:
    """Alice, Bob and Carol across two edges (see `TwoEdges`)."""
    alice, bob, joined, _ = await connected_pair(js, proxy, edge, "websocket")
    carol = js.client("carol")
    await join(carol, "user-4-id", url=edge2.url, name="Carol")
    proxy.retarget(edge2.http_address)  # the load balancer now sends Alice to edge 2
    return TwoEdges(alice, bob, carol, str(joined["participantId"]))


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_cut_connection_is_recovered_with_the_missed_events_once_and_in_order(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool, transport: str
) -> None:
    alice, bob, joined, _ = await connected_pair(js, proxy, edge, transport)
    await chat(bob, "before")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "before", timeout=10)
    first = await alice.status()
    assert first["pid"] and first["offset"], first  # the edge speaks the recovery protocol
    start, bob_start = alice.mark(), bob.mark()

    await cut(proxy, alice, start)
    for text in ("gap-1", "gap-2", "gap-3"):
        await chat(bob, text)  # while Alice is away
    back = await reconnected(alice, start)
    await chat(bob, "after")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "after", start=start, timeout=10)

    assert back["recovered"] is True, alice.events[start:]
    assert back["id"] == first["id"]  # same sid
    assert (await alice.status())["pid"] == first["pid"]  # same pid
    assert texts(alice) == ["before", "gap-1", "gap-2", "gap-3", "after"]  # once each, in order
    assert alice.events_named("meeting-joined", start=start) == []
    offsets = [e.args[-1] for e in alice.events_named("chat-message")]
    assert len(set(offsets)) == len(offsets) and all(isinstance(o, str) for o in offsets)
    # Still the same participant, with its permissions: its media change reaches Bob.
    await still_the_participant(alice, joined["participantId"], {"audio": False}, bob, bob_start)
    await bob.expect_no_event("participant-left", within=0.5, start=bob_start)
    await bob.expect_no_event("participant-joined", within=0.1, start=bob_start)
    assert alice.payloads("error") == [] and bob.payloads("error") == []


async def test_a_cut_connection_is_recovered_through_the_other_edge(
    two_edges: TwoEdges, proxy: TcpProxy
) -> None:
    alice, bob, carol = two_edges.alice, two_edges.bob, two_edges.carol
    first = await alice.status()
    start, bob_start = alice.mark(), bob.mark()

    await cut(proxy, alice, start)
    await chat(bob, "gap")
    await chat(carol, "gap from edge 2")
    back = await reconnected(alice, start)
    await chat(bob, "after")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "after", start=start, timeout=10)

    assert back["recovered"] is True and back["id"] == first["id"]
    assert texts(alice, start) == ["gap", "gap from edge 2", "after"]
    await still_the_participant(alice, two_edges.alice_id, {"video": False}, bob, bob_start)
    await bob.expect_no_event("participant-left", within=0.5, start=bob_start)


@SHORT_RECOVERY_WINDOW  # nobody comes back: the shipped 5 s would only be waited out
async def test_a_window_that_expires_tells_the_others_the_participant_left(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool
) -> None:
    alice, bob, joined, _ = await connected_pair(js, proxy, edge, "websocket")
    claim = await alice.status()
    await alice.pool.command("close", client=alice.name, mode="reset")  # gone for good
    left = await bob.wait_for_event("participant-left", timeout=20)
    assert left.data["participantId"] == joined["participantId"]
    assert left.data["reason"] == "disconnected"
    # Too late: the pid recovers nothing now.
    await claim_recovers_nothing(js, edge.url, claim, "late")


async def held_then(
    js: JsClientPool, proxy: TcpProxy, edge: EdgeProcess
) -> tuple[JsClient, JsClient, dict[str, Any]]:
    """Alice (the host, user-1-id) and Bob joined; Bob's connection cut, no reconnection:
    his session is held. Returns Alice, Bob and Bob's claim."""
    host, bob = js.client("host"), js.client("bob")
    await host.connect(edge.url, transports=["websocket"])
    await bob.connect(f"http://{proxy.address}", transports=["websocket"])
    await join(host, "user-1-id", name="Host")
    await join(bob, "user-3-id", name="Bob")
    await host.wait_for_event("participant-joined", timeout=10)
    claim = await bob.status()
    await bob.pool.command("close", client=bob.name, mode="reset")
    return host, bob, claim


async def test_a_kicked_session_is_not_recoverable(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool
) -> None:
    host, _bob, claim = await held_then(js, proxy, edge)
    participant_id = (await host.wait_for_event("participant-joined", timeout=10)).data["participantId"]
    reply = await host.emit_with_ack("kick-participant", {"participantId": participant_id}, timeout=10)
    assert reply["success"], reply
    await claim_recovers_nothing(js, edge.url, claim)


async def test_an_ended_meeting_is_not_recoverable(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool
) -> None:
    host, _bob, claim = await held_then(js, proxy, edge)
    reply = await host.emit_with_ack("end-meeting", {}, timeout=10)
    assert reply["success"], reply
    await claim_recovers_nothing(js, edge.url, claim)


async def test_an_explicit_leave_is_not_recoverable(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool
) -> None:
    alice, bob, _, _ = await connected_pair(js, proxy, edge, "websocket")
    reply = await alice.emit_with_ack("leave-meeting", {"meetingId": MEETING}, timeout=10)
    assert reply["success"], reply
    left = await bob.wait_for_event("participant-left", timeout=10)
    assert left.data["reason"] == "left"
    start = alice.mark()
    await cut(proxy, alice, start)
    back = await reconnected(alice, start)
    assert back["recovered"] is False
    reply = await alice.emit_with_ack("chat-message", {"text": "still here?"}, timeout=10)
    assert reply["error"]["code"] == "NOT_IN_MEETING"
    assert len(bob.events_named("participant-left")) == 1


async def test_a_dead_edges_socket_is_recovered_on_the_other_edge(
    two_edges: TwoEdges, edge: EdgeProcess
) -> None:
    alice, carol = two_edges.alice, two_edges.carol
    first = await alice.status()
    start, carol_start = alice.mark(), carol.mark()

    await edge.kill()  # Alice's edge dies; Bob's socket (on it too) is gone for good
    await alice.wait_for_event("disconnect", start=start, timeout=10)
    await chat(carol, "while edge 1 was dying")
    back = await reconnected(alice, start)
    await alice.wait_for_event(
        "chat-message", lambda d: d["text"] == "while edge 1 was dying", start=start, timeout=10
    )

    assert back["recovered"] is True and back["id"] == first["id"]
    assert texts(alice, start) == ["while edge 1 was dying"]
    await still_the_participant(alice, two_edges.alice_id, {"audio": False}, carol, carol_start)
    # Bob never came back: he is reported left, Alice never is.
    left = await carol.wait_for_event("participant-left", start=carol_start, timeout=20)
    assert left.data["userId"] == "user-3-id" and left.data["reason"] == "disconnected"
    await carol.expect_no_event("participant-left", lambda d: d["userId"] == "user-2-id", within=0.5)


async def test_a_log_that_no_longer_reaches_back_gives_a_fresh_meeting_joined_not_silence(
    js: JsClientPool,
) -> None:
    async with (
        await start_room_service(
            "--replay-buffer", "4", *QUICK_STOP, name="room-service-short-log"
        ) as service,
        await start_edge(service.grpc_address, *FAST_EDGE_ARGS, name="edge-short-log") as edge,
        TcpProxy(edge.http_address) as proxy,
    ):
        alice, bob, joined, _ = await connected_pair(js, proxy, edge, "websocket")
        first = await alice.status()
        start, bob_start = alice.mark(), bob.mark()
        await cut(proxy, alice, start)
        for n in range(6):  # more than the room log keeps
            await chat(bob, f"gap-{n}")
        back = await reconnected(alice, start)
        fresh = (await alice.wait_for_event("meeting-joined", start=start, timeout=10)).data

        assert back["recovered"] is False  # told the truth: not recovered...
        assert (await alice.status())["pid"] != first["pid"]
        # ...but still the same participant, with the room as it is now.
        assert fresh["participantId"] == joined["participantId"]
        assert [p["userName"] for p in fresh["participants"]] == ["Bob"]
        await chat(bob, "after")
        await alice.wait_for_event("chat-message", lambda d: d["text"] == "after", start=start, timeout=10)
        assert texts(alice, start) == ["after"]
        await bob.expect_no_event("participant-left", within=0.5, start=bob_start)


async def test_a_recovered_host_keeps_its_media_state_and_can_still_kick(
    room_service: RoomServiceProcess, edge: EdgeProcess, proxy: TcpProxy, js: JsClientPool
) -> None:
    host, bob = js.client("host"), js.client("bob")
    await host.connect(f"http://{proxy.address}", transports=["websocket"], reconnection=True)
    await bob.connect(edge.url, transports=["websocket"])
    await join(host, "user-1-id", name="Host")
    bob_joined = await join(bob, "user-3-id", name="Bob")
    assert (await host.emit_with_ack("update-media", {"video": False}, timeout=10))["success"]
    start = host.mark()

    await cut(proxy, host, start)
    back = await reconnected(host, start)
    assert back["recovered"] is True

    roster = await bob.emit_with_ack(
        "join-meeting", {"meetingId": MEETING, "userId": "user-3-id", "userName": "Bob"}
    )
    (seen,) = [p for p in roster["participants"] if p["userId"] == "user-1-id"]
    assert seen["video"] is False and seen["audio"] is True and seen["permissions"]["isHost"] is True
    reply = await host.emit_with_ack(
        "kick-participant", {"participantId": bob_joined["participantId"]}, timeout=10
    )
    assert reply["success"], reply
    await bob.wait_for_event("kicked", timeout=10)

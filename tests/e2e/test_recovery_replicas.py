"""Connection-state recovery across edges on the Redis store: two room-service replicas on
one redis-server (started by the test), two edges each given both replicas, the official
client cut (TCP) and reconnecting through the OTHER edge.

Edge A, the one the client first uses, declares a silent client lost only after a long
ping timeout, so over long-polling (whose failed poll the server cannot see) the client is
back through edge B long before edge A would let go: the claim takes the session over from
edge A, which the room service tells to close its dead socket without a leave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import recovery
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess, msg_is, start_edge
from tests.support.replicas import Replicas, replicas_on_redis
from tests.support.room import MEETING, join, left_payload, room_stub, truth
from tests.support.roster import replay
from tests.support.tcp_proxy import TcpProxy
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(120)

# Edge A notices a silent (long-polling) client only 1 + 8 s after it was last heard.
SLOW_TO_NOTICE = (
    "--ping-interval-seconds",
    "1",
    "--ping-timeout-seconds",
    "8",
    "--heartbeat-interval-seconds",
    "0.5",
)
FAST = ("--ping-interval-seconds", "1", "--ping-timeout-seconds", "2", "--heartbeat-interval-seconds", "0.5")


@dataclass
class Stack:
    """Two replicas on Redis, edges A and B, and a proxy to edge A a test can cut."""

    replicas: Replicas
    edge_a: EdgeProcess
    edge_b: EdgeProcess
    proxy: TcpProxy

    async def truth(self) -> set[str]:
        """Who is in the room, read through the second replica."""
        async with room_stub(self.replicas.addresses[1]) as stub:
            return await truth(stub)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with (
        replicas_on_redis(2) as replicas,
        await start_edge(replicas.target, *SLOW_TO_NOTICE, name="edge-a") as edge_a,
        await start_edge(replicas.target, *FAST, name="edge-b") as edge_b,
        TcpProxy(edge_a.http_address) as proxy,
    ):
        yield Stack(replicas, edge_a, edge_b, proxy)


async def pair(js: JsClientPool, stack: Stack, transport: str) -> tuple[JsClient, JsClient, dict[str, Any]]:
    """Alice through the proxy to edge A (reconnecting by itself), Bob on edge B; both in."""
    alice, bob = js.client("alice"), js.client("bob")
    await alice.connect(
        f"http://{stack.proxy.address}", transports=recovery.TRANSPORTS[transport], reconnection=True
    )
    await bob.connect(stack.edge_b.url, transports=["websocket"])
    joined = await join(alice, "user-2-id", name="Alice")
    await join(bob, "user-3-id", name="Bob")
    await alice.wait_for_event("participant-joined", lambda d: d["userId"] == "user-3-id", timeout=10)
    return alice, bob, joined


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_cut_client_recovers_through_the_other_edge_on_redis_replicas(
    js: JsClientPool, stack: Stack, transport: str
) -> None:
    alice, bob, joined = await pair(js, stack, transport)
    await recovery.chat(bob, "before")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "before", timeout=10)
    first = await alice.status()
    start, bob_start, edge_a_start = alice.mark(), bob.mark(), stack.edge_a.mark()

    stack.proxy.retarget(stack.edge_b.http_address)  # the load balancer now sends Alice to B
    await recovery.cut(stack.proxy, alice, start)
    for text in ("gap-1", "gap-2", "gap-3"):
        await recovery.chat(bob, text)
    back = await recovery.reconnected(alice, start)
    await recovery.chat(bob, "after")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "after", start=start, timeout=10)

    assert back["recovered"] is True, alice.events[start:]
    assert back["id"] == first["id"] and (await alice.status())["pid"] == first["pid"]
    assert recovery.texts(alice) == ["before", "gap-1", "gap-2", "gap-3", "after"]  # once each, in order
    assert alice.events_named("meeting-joined", start=start) == []
    await recovery.still_the_participant(alice, joined["participantId"], {"audio": False}, bob, bob_start)

    # Edge A lets its old socket go without a leave: over WebSocket it saw the cut at once
    # and held the session; over long-polling it had not noticed yet (its ping timeout is
    # long), the claim took the session over, and edge A was told to close that socket.
    if transport == "websocket":
        line = "socket lost its transport; session held for recovery"
    else:
        line = "socket closed: its client resumed the session elsewhere"
    await stack.edge_a.wait_for_log(msg_is(line), start=edge_a_start, timeout=20)
    assert not stack.edge_a.logs_matching(msg_is(f"👋 User Alice disconnected from meeting {MEETING}"))
    await bob.expect_no_event("participant-left", within=0.5, start=bob_start)
    assert joined["participantId"] in await stack.truth()
    await recovery.chat(bob, "still there?")
    await alice.wait_for_event("chat-message", lambda d: d["text"] == "still there?", start=start, timeout=10)
    assert alice.payloads("error") == [] and bob.payloads("error") == []


async def test_a_session_replaced_while_held_is_not_recoverable_and_leaves_no_phantom(
    js: JsClientPool, stack: Stack
) -> None:
    host, bob = js.client("host"), js.client("bob")
    await host.connect(stack.edge_b.url, transports=["websocket"])
    await bob.connect(f"http://{stack.proxy.address}", transports=["websocket"])
    await join(host, "user-1-id", name="Host")
    old = await join(bob, "user-3-id", name="Bob")
    await host.wait_for_event("participant-joined", timeout=10)
    claim = await bob.status()
    held = [r.mark() for r in stack.replicas.procs]
    await bob.pool.command("close", client=bob.name, mode="reset")  # no reconnection

    async def is_held() -> bool:
        return any(
            r.logs_matching(msg_is("session held for recovery"), start=m)
            for r, m in zip(stack.replicas.procs, held, strict=True)
        )

    await wait_until(is_held, within=10, what="Bob's session held")
    newer = js.client("bob-again")
    fresh = await join(newer, "user-3-id", url=stack.edge_b.url, name="Bob")
    await host.wait_for_event("participant-left", left_payload(old["participantId"], "replaced"), timeout=10)
    host_start = host.mark()

    await recovery.claim_recovers_nothing(js, stack.edge_b.url, claim)
    # Nobody sees a phantom: the host's roster is the truth, and stays so past the window
    # (the replaced session's hold expires into nothing).
    view = replay(host.events)
    assert view.ids == {fresh["participantId"]} and not view.violations
    assert await stack.truth() == {view.participant_id, fresh["participantId"]}
    await host.expect_no_event("participant-left", within=6, start=host_start)
    assert await stack.truth() == {view.participant_id, fresh["participantId"]}

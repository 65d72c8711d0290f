"""A room service restart (in-memory store) loses nobody that is still connected: the
edges re-announce their sockets, and no client is told that a connected participant
left, even when one edge re-announces later than the other. Meanwhile joins fail fast
with UNAVAILABLE and /readyz says not ready. A frozen room service, once it resumes,
reaps nobody whose edge is alive."""

from __future__ import annotations

import asyncio
import contextlib
import time

from edge_gateway.config import Settings as EdgeSettings
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import (
    QUICK_STOP,
    EdgeProcess,
    split_address,
    start_edge,
    start_room_service,
    start_together,
)
from tests.support.room import about, join, join_payload, join_seen, refused, room_stub, truth
from tests.support.roster import replay
from tests.support.tcp_proxy import TcpProxy
from tests.support.timing import report, wait_until

# The edge's default deadline of a unary RPC: a join refused sooner than this was refused
# by the fail-fast path (the edge knows the room service is away), not by waiting it out.
RPC_DEADLINE = float(EdgeSettings.model_fields["rpc_timeout_seconds"].default)
DOWN_FOR = 2.5  # long enough for the edges' channels to back off
B_LATE_BY = 1.5  # edge B re-announces this much later than edge A


async def test_restart_loses_nobody_and_tells_nobody_they_left(js: JsClientPool) -> None:
    rs = await start_room_service()  # default lease and restore grace
    address = rs.grpc_address
    port = split_address(address)[1]
    proxy = TcpProxy(address)
    await proxy.start()
    # Default heartbeat interval and ping settings: the race is the real one.
    edge_a, edge_b = await start_together(
        start_edge(address, name="edge-a"), start_edge(proxy.address, name="edge-b")
    )
    clients: list[JsClient] = []
    try:
        pids: dict[str, str] = {}
        for i in range(6):
            client = js.client(f"c{i}")
            clients.append(client)
            edge = edge_a if i % 2 == 0 else edge_b
            pids[client.name] = (await join(client, f"u{i}", url=edge.url))["participantId"]
        for i, client in enumerate(clients):
            await client.wait_for_events("participant-joined", 5 - i, timeout=10)
        marks = {c.name: c.mark() for c in clients}

        await rs.kill()
        killed = time.monotonic()
        took = await wait_until(
            lambda: _status_is(edge_a, 503), within=6, what="edge A /readyz reports not ready"
        )
        report("room service down: /readyz says 503", took)
        late = js.client("late")
        refused_in = await _join_refused(late, edge_a)
        report("join while room service down: refused", refused_in)
        assert refused_in < RPC_DEADLINE

        remaining = DOWN_FOR - (time.monotonic() - killed)
        if remaining > 0:
            await late.expect_no_event("meeting-joined", within=remaining)
        proxy.block()  # edge B will come back later than edge A
        rs = await start_room_service("--grpc-address", f"127.0.0.1:{port}", *QUICK_STOP)
        restarted = time.monotonic()
        # Edge A is back first; a join there lands while A's room stream still waits for
        # its resync snapshot (the service holds it for the restore grace).
        await edge_a.wait_ready(within=B_LATE_BY)
        report("room service restart: edge A ready after", time.monotonic() - restarted)
        pids[late.name] = (await join(late, "ul"))["participantId"]
        remaining = B_LATE_BY - (time.monotonic() - restarted)
        if remaining > 0:
            await late.expect_no_event("participant-left", within=remaining)
        proxy.unblock()
        clients.append(late)
        marks[late.name] = late.mark()

        async with room_stub(rs.grpc_address) as stub:
            expected = set(pids.values())

            async def all_back() -> bool:
                return await truth(stub) == expected

            took = await wait_until(all_back, within=10, what="every participant re-announced")
            report("room service restart: ListParticipants right again after", time.monotonic() - restarted)
            report("  (of which edge B was held back)", B_LATE_BY)
            await edge_a.wait_ready(within=10)
            await edge_b.wait_ready(within=10)
            report("room service restart: both edges ready after", time.monotonic() - restarted)

            # The streams are live again on both edges: a new join reaches everyone.
            newcomer = js.client("newcomer")
            pn = (await join(newcomer, "un", url=edge_b.url))["participantId"]
            for client in clients:
                await client.wait_for_event(
                    "participant-joined", about(pn), timeout=10, start=marks[client.name]
                )
            report("room service restart: events flow again after", time.monotonic() - restarted)
            assert await truth(stub) == expected | {pn}

        for client in clients:
            left = client.events_named("participant-left", start=marks[client.name])
            assert left == [], f"{client.name} was told a connected participant left: {left}"
            view = replay(client.events)
            assert view.violations == [], (client.name, [str(v) for v in view.violations])
            assert view.ids == (expected | {pn}) - {pids[client.name]}
    finally:
        await edge_b.terminate()
        await edge_a.terminate()
        await rs.terminate()
        await proxy.close()


PER_EDGE = 20
JOIN_EVERY = 0.5  # seconds between new clients joining, alternately through either edge
# Heartbeats far apart (and a lease to match): a heartbeat cannot paper over the race, so
# each edge must re-announce its sockets from whichever call first meets the new service.
SLOW_HEARTBEAT = ("--heartbeat-interval-seconds", "10")


async def test_restart_under_traffic_tells_nobody_that_a_live_participant_left(js: JsClientPool) -> None:
    rs = await start_room_service("--edge-lease-seconds", "30")  # default restore grace
    port = split_address(rs.grpc_address)[1]
    edges = [
        await start_edge(rs.grpc_address, *SLOW_HEARTBEAT, name="edge-a"),
        await start_edge(rs.grpc_address, *SLOW_HEARTBEAT, name="edge-b"),
    ]
    clients: list[JsClient] = []
    pids: dict[str, str] = {}
    try:
        for e, edge in enumerate(edges):
            batch = [js.client(f"e{e}c{i}") for i in range(PER_EDGE)]
            joined = await asyncio.gather(*(join(c, c.name, url=edge.url) for c in batch))
            pids.update((c.name, ack["participantId"]) for c, ack in zip(batch, joined, strict=True))
            clients.extend(batch)
        async with room_stub(rs.grpc_address) as stub:
            await wait_until(
                lambda: _has(stub, set(pids.values())), within=30, what="40 participants in the room"
            )

        stop = asyncio.Event()
        attempts: list[str] = []

        async def keep_joining() -> None:
            for n in range(200):  # bounded: about 100 s of joins at most
                client = js.client(f"new{n}")
                clients.append(client)
                await client.connect(edges[n % 2].url, transports=["websocket"])
                reply = await client.emit_with_ack("join-meeting", join_payload(client.name), timeout=10)
                attempts.append("ok" if reply["success"] else reply["error"]["code"])
                if reply["success"]:
                    pids[client.name] = reply["participantId"]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), JOIN_EVERY)
                if stop.is_set():
                    return

        joining = asyncio.create_task(keep_joining())
        await wait_until(lambda: _at_least(attempts, 2), within=30, what="joins flowing before the crash")
        await rs.kill()
        rs = await start_room_service(
            "--edge-lease-seconds", "30", "--grpc-address", f"127.0.0.1:{port}", *QUICK_STOP
        )
        # Keep joining through the restore grace (3 s) and beyond: 10 more joins take 5 s.
        before_restart = len(attempts)
        await wait_until(
            lambda: _at_least(attempts, before_restart + 10), within=60, what="joins through the restart"
        )
        stop.set()
        await joining
        outcomes = {code: attempts.count(code) for code in sorted(set(attempts))}
        print(f"[recovery] restart under traffic: join outcomes around the restart: {outcomes}")
        assert attempts.count("ok") >= 4, attempts  # joins went on through the restart

        async with room_stub(rs.grpc_address) as stub:
            live = set(pids.values())
            took = await wait_until(lambda: _has(stub, live), within=20, what="every live participant back")
            report("restart under traffic: ListParticipants right again after", took)
            for client in clients:
                if client.name not in pids:
                    continue  # its join was refused while the service was down

                async def in_step(client: JsClient = client) -> bool:
                    return replay(client.events).ids == live - {pids[client.name]}

                await wait_until(in_step, within=20, what=f"{client.name}'s roster equals the truth")
            assert await truth(stub) == live
        for client in clients:
            left = client.events_named("participant-left")
            assert left == [], f"{client.name} was told a live participant left: {left}"
            view = replay(client.events)
            assert view.violations == [], (client.name, [str(v) for v in view.violations])
    finally:
        for edge in edges:
            await edge.terminate()
        await rs.terminate()


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count


async def _has(stub: pb_grpc.RoomServiceAsyncStub, expected: set[str]) -> bool:
    return await truth(stub) == expected


async def test_frozen_room_service_reaps_nobody_alive_when_it_resumes(js: JsClientPool) -> None:
    lease = 2.0
    rs = await start_room_service("--edge-lease-seconds", str(lease), *QUICK_STOP)
    fast = ("--heartbeat-interval-seconds", "0.5")
    edge_a = await start_edge(rs.grpc_address, *fast, name="edge-a")
    try:
        a, b = js.client("a"), js.client("b")
        pa = (await join(a, "ua", url=edge_a.url))["participantId"]
        pb = await join_seen(b, "ub", a, url=edge_a.url)
        mark = a.mark()
        rs.freeze()
        frozen = time.monotonic()
        # The edge notices (its heartbeat misses its deadline) and says not ready...
        took = await wait_until(lambda: _status_is(edge_a, 503), within=10, what="/readyz 503")
        report("room service frozen: /readyz says 503", took)
        # ...and from then on refuses joins at once instead of hanging on the frozen service.
        refused_in = await _join_refused(js.client("late"), edge_a)
        report("join while room service frozen: refused", refused_in)
        assert refused_in < RPC_DEADLINE
        # Frozen for longer than a lease: every lease has run out when it wakes up.
        assert time.monotonic() - frozen > lease
        rs.thaw()
        await a.expect_no_event("participant-left", within=lease + 1.0, start=mark)
        async with room_stub(rs.grpc_address) as stub:
            assert await truth(stub) == {pa, pb}
    finally:
        await edge_a.terminate()
        await rs.terminate()


async def _join_refused(client: JsClient, edge: EdgeProcess) -> float:
    """Joins through `edge` expecting UNAVAILABLE (ack and error event); returns how long
    the refusal took."""
    await client.connect(edge.url, transports=["websocket"])
    asked = time.monotonic()
    await refused(client, "join-meeting", join_payload("ul", name="Late"), "UNAVAILABLE")
    return time.monotonic() - asked


async def _status_is(edge: EdgeProcess, status: int) -> bool:
    return await edge.readyz() == status

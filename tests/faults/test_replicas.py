"""Several room-service replicas on one Redis, two edges each given every replica: a
replica killed or restarted, or a Redis that restarts empty or goes away, loses nobody
who is still connected, tells nobody a live participant left, and keeps sequences
without a gap or a repeat."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.conftest import FAST_EDGE_ARGS
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess, msg_is, start_edge
from tests.support.prometheus import http_get_text, parse_exposition
from tests.support.replicas import Replicas, replicas_on_redis
from tests.support.room import MEETING, join, room_stub, truth
from tests.support.room_rpc import join_request, rpc_refused
from tests.support.roster import replay
from tests.support.timing import report, wait_until

EDGE_ARGS = (*FAST_EDGE_ARGS, "--max-connections-per-address", "2000")
RESYNCED = "room resynchronised from a snapshot"


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[Replicas, EdgeProcess, EdgeProcess]]:
    """Two replicas on one Redis, two edges each given both replicas as its target."""
    async with replicas_on_redis(2) as replicas:
        edges: list[EdgeProcess] = []
        try:
            for name in ("edge-a", "edge-b"):
                edges.append(await start_edge(replicas.target, *EDGE_ARGS, name=name))
            yield replicas, edges[0], edges[1]
        finally:
            for edge in edges:
                await edge.terminate()


class Joiner:
    """Keeps joining new clients, alternating edges, until stopped; every join must work."""

    def __init__(self, js: JsClientPool, edges: tuple[EdgeProcess, EdgeProcess], prefix: str) -> None:
        self._js = js
        self._edges = edges
        self._prefix = prefix
        self.clients: list[JsClient] = []
        self.pids: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            client = self._js.client(f"{self._prefix}{i}")
            self.clients.append(client)
            self.pids[client.name] = await connect_and_join(
                client, self._edges[i % 2].url, f"{self._prefix}-user{i}"
            )

    def check(self) -> None:
        """Raises what made the joins stop, if they did."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 60)


async def connect_and_join(client: JsClient, url: str, user: str) -> str:
    """Connects over WebSocket and joins the demo meeting; the participant id."""
    return str((await join(client, user, url=url))["participantId"])


async def wait_for_ready(url: str, *, within: float) -> float:
    """Polls an edge's /readyz until it answers 200."""
    return await wait_until(lambda: _status(url, 200), within=within, what=f"{url} ready")


async def readyz(url: str) -> int:
    """The status of `url`/readyz."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status


async def participant_ids(stub: object) -> set[str]:
    """Who the room service says is in the room."""
    return await truth(stub)  # type: ignore[arg-type]


async def _converged(stub: object, clients: list[JsClient], expected: set[str], within: float) -> float:
    """Waits until the truth is `expected` and every client's rebuilt roster equals it."""

    async def check() -> bool:
        if await participant_ids(stub) != expected:
            return False
        return all(replay(c.events).ids == expected - {replay(c.events).participant_id} for c in clients)

    return await wait_until(check, within=within, interval=0.25, what="every roster equals the truth")


async def _sequences(address: str) -> list[int]:
    """Every sequence of the room's current epoch, read back through one replica."""
    async with room_stub(address) as stub:
        snapshot = (
            await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=MEETING), timeout=5)
        ).snapshot
        after = pb.StreamPosition(sequence=0, epoch=snapshot.position.epoch)
        call = stub.WatchRoom(pb.WatchRoomRequest(meeting_id=MEETING, after=after))
        seen: list[int] = []
        try:
            async with asyncio.timeout(20):
                async for item in call:
                    assert item.HasField("event"), "the log no longer reaches its start"
                    seen.append(item.event.sequence)
                    if item.event.sequence >= snapshot.position.sequence:
                        break
        finally:
            call.cancel()
        return seen


async def test_killing_a_replica_mid_meeting_loses_nobody_and_sequences_continue(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    replicas, edge_a, edge_b = cluster
    clients = [js.client(f"c{i}") for i in range(40)]
    pids: dict[str, str] = {}
    for i, client in enumerate(clients):
        pids[client.name] = await connect_and_join(client, (edge_a, edge_b)[i % 2].url, f"user{i}")
    async with room_stub(replicas.addresses[1]) as stub:
        await _converged(stub, clients, set(pids.values()), within=30)
        marks = {c.name: c.mark() for c in clients}
        log_marks = {e.name: e.mark() for e in (edge_a, edge_b)}

        joiner = Joiner(js, (edge_a, edge_b), "j")
        joiner.start()
        await wait_until(lambda: _at_least(joiner, 3), within=30, what="joins under way")
        await replicas.kill(0)
        killed = time.monotonic()
        target = len(joiner.pids) + 10
        await wait_until(lambda: _at_least(joiner, target), within=60, what="joins after the kill")
        await joiner.stop()
        report("replica killed: joins completed since", time.monotonic() - killed)

        late = js.client("late")
        asked = time.monotonic()
        own = await connect_and_join(late, edge_b.url, "late-user")
        everyone = set(pids.values()) | set(joiner.pids.values()) | {own}
        # Generous: the late joiner sees exactly the live participants (5 s in the issue).
        took = await _converged(stub, [late], everyone, within=15)
        report("late joiner saw exactly the live participants after", time.monotonic() - asked)
        assert took >= 0
        await _converged(stub, clients + joiner.clients + [late], everyone, within=30)

        for client in clients + joiner.clients + [late]:
            start = marks.get(client.name, 0)
            left = client.events_named("participant-left", start=start)
            assert left == [], f"{client.name} was told a live participant left: {left}"
            view = replay(client.events)
            assert view.violations == [], (client.name, [str(v) for v in view.violations])
        # The edges resumed their streams on the other replica by replay, not by snapshot.
        for edge in (edge_a, edge_b):
            assert edge.logs_matching(msg_is(RESYNCED), start=log_marks[edge.name]) == []
        sequences = await _sequences(replicas.addresses[1])
        assert sequences == list(range(1, len(sequences) + 1))
        assert len(sequences) == len(everyone)  # one join each, nothing repeated


async def test_restarting_both_replicas_in_turn_under_joins_and_leaves_keeps_every_roster(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    replicas, edge_a, edge_b = cluster
    clients = [js.client(f"c{i}") for i in range(16)]
    pids: dict[str, str] = {}
    for i, client in enumerate(clients):
        pids[client.name] = await connect_and_join(client, (edge_a, edge_b)[i % 2].url, f"user{i}")
    stop = asyncio.Event()
    cycles = 0
    refused = 0

    async def rejoin(client: JsClient) -> str:
        # As a frontend does: a join refused with UNAVAILABLE ("please retry") is retried.
        nonlocal refused
        payload = {"meetingId": MEETING, "userId": f"user{clients.index(client)}", "userName": "N"}
        for _ in range(5):
            reply = await client.emit_with_ack("join-meeting", payload, timeout=30)
            if reply["success"]:
                return str(reply["participantId"])
            assert reply["error"]["code"] == "UNAVAILABLE", reply
            refused += 1
        raise AssertionError(f"{client.name}: joins kept failing during the rolling restart")

    async def churn() -> None:
        # Steady leaves and joins: each turn one client leaves and joins again.
        nonlocal cycles
        for client in itertools.cycle(clients):
            if stop.is_set():
                return
            reply = await client.emit_with_ack("leave-meeting", {}, timeout=30)
            assert reply["success"], reply
            pids[client.name] = await rejoin(client)
            cycles += 1

    task = asyncio.create_task(churn())
    try:
        for index in (0, 1):
            await replicas.restart(index)
            await wait_for_ready(edge_a.url, within=15)
            await wait_for_ready(edge_b.url, within=15)
        before = cycles
        await wait_until(
            lambda: _more(lambda: cycles, before + 5), within=30, what="churn after the restarts"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    report(f"rolling restart: {cycles} leave+join cycles meanwhile, {refused} joins refused (retried)", 0.0)
    async with room_stub(replicas.addresses[0]) as stub:
        await _converged(stub, clients, set(pids.values()), within=30)
    for client in clients:
        view = replay(client.events)
        assert view.violations == [], (client.name, [str(v) for v in view.violations])


async def test_the_last_replica_stopping_while_the_edge_reconnects_to_the_restarted_one_refuses_no_join(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    # The handover of a rolling restart: replica 0 is back (ready), the edges' channels
    # are still in their reconnect backoff towards it, and replica 1 stops. A replica is
    # serving all along, so the edges must not declare the service unreachable (which
    # refuses every join at once and fails /readyz) and no join may be refused.
    replicas, edge_a, edge_b = cluster
    # Several sockets in turn, each well under the per-socket event rate limit.
    churners = [js.client(f"churner{i}") for i in range(8)]
    for i, client in enumerate(churners):
        await connect_and_join(client, (edge_a, edge_b)[i % 2].url, f"churner{i}")
    await replicas.restart(0)
    marks = {e.name: e.mark() for e in (edge_a, edge_b)}
    stop = asyncio.Event()
    refusals: list[object] = []
    cycles = 0

    async def churn() -> None:
        nonlocal cycles
        for client in itertools.cycle(churners):
            if stop.is_set():
                return
            left = await client.emit_with_ack("leave-meeting", {}, timeout=30)
            assert left["success"], left
            payload = {"meetingId": MEETING, "userId": client.name, "userName": "N"}
            reply = await client.emit_with_ack("join-meeting", payload, timeout=30)
            if not reply["success"]:
                refusals.append(reply["error"])
                return
            cycles += 1

    async def churned() -> bool:
        assert refusals == [], f"joins refused in the handover: {refusals}"
        return cycles > 20

    task = asyncio.create_task(churn())
    try:
        await replicas.restart(1)
        await wait_until(churned, within=30, what="churn after the handover")
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert refusals == [], refusals
    for edge in (edge_a, edge_b):
        assert edge.logs_matching(msg_is("room service unreachable"), start=marks[edge.name]) == []


async def test_a_redis_restarted_empty_gets_every_roster_back_from_the_edges(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    replicas, edge_a, edge_b = cluster
    clients = [js.client(f"c{i}") for i in range(10)]
    pids: dict[str, str] = {}
    for i, client in enumerate(clients):
        pids[client.name] = await connect_and_join(client, (edge_a, edge_b)[i % 2].url, f"user{i}")
    async with room_stub(replicas.addresses[0]) as stub:
        await _converged(stub, clients, set(pids.values()), within=30)
        marks = {c.name: c.mark() for c in clients}
        await replicas.redis.restart_empty()
        restarted = time.monotonic()
        took = await wait_until(
            lambda: _is(participant_ids(stub), set(pids.values())), within=20, what="rosters re-announced"
        )
        report("Redis restarted empty: every participant re-announced after", took)
        # Events flow again through both edges and both replicas.
        newcomer = js.client("newcomer")
        pn = await connect_and_join(newcomer, edge_b.url, "newcomer")
        await _converged(stub, [*clients, newcomer], set(pids.values()) | {pn}, within=20)
        report("Redis restarted empty: rosters right again after", time.monotonic() - restarted)
    for client in clients:
        left = client.events_named("participant-left", start=marks[client.name])
        assert left == [], f"{client.name} was told a connected participant left: {left}"
        assert replay(client.events).violations == []


async def test_an_unreachable_redis_makes_joins_unavailable_and_both_tiers_unready_until_it_is_back(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    replicas, edge_a, _ = cluster
    first = js.client("first")
    p1 = await connect_and_join(first, edge_a.url, "u1")
    replicas.redis.freeze()  # frozen: nothing answers, connections stay open
    try:
        late = js.client("late")
        await late.connect(edge_a.url, transports=["websocket"])
        asked = time.monotonic()
        reply = await late.emit_with_ack(
            "join-meeting", {"meetingId": MEETING, "userId": "u2", "userName": "Late"}, timeout=30
        )
        report("Redis unreachable: join refused after", time.monotonic() - asked)
        assert reply["success"] is False and reply["error"]["code"] == "UNAVAILABLE", reply
        # The edge did not repeat a refusal the room service gave (each repeat would have
        # made the user wait for the store's timeout again): one refused join in all.
        refusals = 0.0
        for proc in replicas.procs:
            exposition = parse_exposition(await http_get_text(f"http://{proc.metrics_address}/metrics"))
            refusals += exposition.value("room_service_joins_total", result="UNAVAILABLE") or 0.0
        assert refusals == 1, refusals
        await wait_until(lambda: _status(edge_a.url, 503), within=20, what="edge /readyz 503")
        for proc in replicas.procs:
            await wait_until(
                lambda p=proc: _status(f"http://{p.metrics_address}", 503),
                within=20,
                what="replica /readyz 503",
            )
        # A replica that knows its store is down refuses a join at once (UNAVAILABLE, with
        # its reason), well before the store's 1 s command timeout and the call's deadline.
        async with grpc.aio.insecure_channel(replicas.addresses[0]) as channel:
            # Known down: its RoomService health, set with the joins' flag, says so.
            health = health_pb2_grpc.HealthStub(channel)
            await wait_until(lambda: _not_serving(health), within=20, what="replica NOT_SERVING")
            stub = pb_grpc.RoomServiceStub(channel)
            asked = time.monotonic()
            refused = await rpc_refused(
                stub.Join(join_request("u3"), timeout=0.8), grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"
            )
            report("Redis known down: replica refused a join after", time.monotonic() - asked)
            assert "unavailable" in (refused.details() or "").lower()
    finally:
        replicas.redis.thaw()
    back = time.monotonic()
    await wait_for_ready(edge_a.url, within=20)
    for proc in replicas.procs:
        await wait_until(
            lambda p=proc: _status(f"http://{p.metrics_address}", 200), within=20, what="replica ready"
        )
    report("Redis back: edge and replicas ready after", time.monotonic() - back)
    p2 = str((await join(late, "u2", within=30))["participantId"])
    async with room_stub(replicas.addresses[1]) as stub:
        await _converged(stub, [first, late], {p1, p2}, within=20)


async def _at_least(joiner: Joiner, count: int) -> bool:
    joiner.check()
    return len(joiner.pids) >= count


async def _more(value: object, than: int) -> bool:
    return bool(value() > than)  # type: ignore[operator]


async def _is(awaitable: object, expected: object) -> bool:
    return bool(await awaitable == expected)  # type: ignore[misc]


async def _not_serving(health: health_pb2_grpc.HealthStub) -> bool:
    service = pb.DESCRIPTOR.services_by_name["RoomService"].full_name
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)


async def _status(url: str, status: int) -> bool:
    with contextlib.suppress(aiohttp.ClientError):
        return await readyz(url) == status
    return False

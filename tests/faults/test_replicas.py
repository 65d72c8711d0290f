"""Several room-service replicas on one Redis, two edges each given every replica: a
replica killed, restarted, or stopping while the edges reconnect to another loses nobody
who is still connected, tells nobody a live participant left, refuses no join for good,
and keeps sequences without a gap or a repeat. (A Redis that restarts empty or goes away:
test_redis_outage.py.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

from meeting.v1 import room_service_pb2 as pb
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess, msg_is
from tests.support.replica_room import (
    connect_and_join,
    converged,
    join_alternating,
    settled_room,
    wait_for_ready,
)
from tests.support.replicas import Replicas
from tests.support.room import MEETING, room_stub
from tests.support.roster import replay
from tests.support.timing import report, wait_until

RESYNCED = "room resynchronised from a snapshot"


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


class Churn:
    """Steady leaves and joins while a fault happens: each turn one of `clients` leaves and
    `rejoin` joins it again (False: a join failed, the churn stops), until the block ends."""

    def __init__(self, clients: list[JsClient], rejoin: Callable[[JsClient], Awaitable[bool]]) -> None:
        self._clients = clients
        self._rejoin = rejoin
        self.cycles = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Churn:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 60)

    async def _run(self) -> None:
        for client in itertools.cycle(self._clients):
            if self._stop.is_set():
                return
            left = await client.emit_with_ack("leave-meeting", {}, timeout=30)
            assert left["success"], left
            if not await self._rejoin(client):
                return
            self.cycles += 1


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
    clients, pids, marks = await settled_room(js, replicas, (edge_a, edge_b), 40, via=1)
    log_marks = {e.name: e.mark() for e in (edge_a, edge_b)}
    async with room_stub(replicas.addresses[1]) as stub:
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
        took = await converged(stub, [late], everyone, within=15)
        report("late joiner saw exactly the live participants after", time.monotonic() - asked)
        assert took >= 0
        await converged(stub, clients + joiner.clients + [late], everyone, within=30)

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
    clients, pids = await join_alternating(js, (edge_a, edge_b), 16)
    refused = 0

    async def rejoin(client: JsClient) -> bool:
        # As a frontend does: a join refused with UNAVAILABLE ("please retry") is retried.
        nonlocal refused
        payload = {"meetingId": MEETING, "userId": f"user{clients.index(client)}", "userName": "N"}
        for _ in range(5):
            reply = await client.emit_with_ack("join-meeting", payload, timeout=30)
            if reply["success"]:
                pids[client.name] = str(reply["participantId"])
                return True
            assert reply["error"]["code"] == "UNAVAILABLE", reply
            refused += 1
        raise AssertionError(f"{client.name}: joins kept failing during the rolling restart")

    async with Churn(clients, rejoin) as churn:
        for index in (0, 1):
            await replicas.restart(index)
            await wait_for_ready(edge_a.url, within=15)
            await wait_for_ready(edge_b.url, within=15)
        before = churn.cycles
        await wait_until(
            lambda: _more(lambda: churn.cycles, before + 5), within=30, what="churn after the restarts"
        )
    report(
        f"rolling restart: {churn.cycles} leave+join cycles meanwhile, {refused} joins refused (retried)", 0.0
    )
    async with room_stub(replicas.addresses[0]) as stub:
        await converged(stub, clients, set(pids.values()), within=30)
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
    churners, _ = await join_alternating(js, (edge_a, edge_b), 8, name="churner", user="churner")
    await replicas.restart(0)
    marks = {e.name: e.mark() for e in (edge_a, edge_b)}
    refusals: list[object] = []

    async def rejoin(client: JsClient) -> bool:
        payload = {"meetingId": MEETING, "userId": client.name, "userName": "N"}
        reply = await client.emit_with_ack("join-meeting", payload, timeout=30)
        if not reply["success"]:
            refusals.append(reply["error"])
        return bool(reply["success"])

    async def churned() -> bool:
        assert refusals == [], f"joins refused in the handover: {refusals}"
        return churn.cycles > 20

    async with Churn(churners, rejoin) as churn:
        await replicas.restart(1)
        await wait_until(churned, within=30, what="churn after the handover")
    assert refusals == [], refusals
    for edge in (edge_a, edge_b):
        assert edge.logs_matching(msg_is("room service unreachable"), start=marks[edge.name]) == []


async def _at_least(joiner: Joiner, count: int) -> bool:
    joiner.check()
    return len(joiner.pids) >= count


async def _more(value: object, than: int) -> bool:
    return bool(value() > than)  # type: ignore[operator]

"""Several room-service replicas on one Redis, two edges each given every replica: a
Redis that restarts empty gets every roster back from the edges without telling anyone a
connected participant left; a Redis that goes away makes joins UNAVAILABLE and both tiers
unready, until it is back."""

from __future__ import annotations

import functools
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.prometheus import http_get_text, parse_exposition
from tests.support.replica_room import (
    connect_and_join,
    converged,
    participant_ids,
    settled_room,
    status_is,
    wait_for_ready,
)
from tests.support.replicas import Replicas
from tests.support.room import MEETING, join, room_stub
from tests.support.room_rpc import join_request, rpc_refused
from tests.support.roster import replay
from tests.support.timing import report, wait_until


async def test_a_redis_restarted_empty_gets_every_roster_back_from_the_edges(
    cluster: tuple[Replicas, EdgeProcess, EdgeProcess], js: JsClientPool
) -> None:
    replicas, edge_a, edge_b = cluster
    clients, pids, marks = await settled_room(js, replicas, (edge_a, edge_b), 10, via=0)
    async with room_stub(replicas.addresses[0]) as stub:
        await replicas.redis.restart_empty()
        restarted = time.monotonic()
        took = await wait_until(
            lambda: _is(participant_ids(stub), set(pids.values())), within=20, what="rosters re-announced"
        )
        report("Redis restarted empty: every participant re-announced after", took)
        # Events flow again through both edges and both replicas.
        newcomer = js.client("newcomer")
        pn = await connect_and_join(newcomer, edge_b.url, "newcomer")
        await converged(stub, [*clients, newcomer], set(pids.values()) | {pn}, within=20)
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
        # The replica that refused says why (the edge says nothing): Redis did not answer.
        causes = [
            str(line.record.get("cause", ""))
            for proc in replicas.procs
            for line in proc.lines
            if line.msg == "answered UNAVAILABLE" and line.record.get("method") == "Join"
        ]
        assert len(causes) == 1 and causes[0].startswith("redis TimeoutError in "), causes
        await wait_until(lambda: status_is(edge_a.url, 503), within=20, what="edge /readyz 503")
        for proc in replicas.procs:
            await wait_until(
                functools.partial(status_is, f"http://{proc.metrics_address}", 503),
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
            await replicas.procs[0].wait_for_log(
                lambda r: (
                    r.get("msg") == "answered UNAVAILABLE"
                    and str(r.get("cause", "")).startswith("store known down")
                )
            )
    finally:
        replicas.redis.thaw()
    back = time.monotonic()
    await wait_for_ready(edge_a.url, within=20)
    for proc in replicas.procs:
        await wait_until(
            functools.partial(status_is, f"http://{proc.metrics_address}", 200),
            within=20,
            what="replica ready",
        )
    report("Redis back: edge and replicas ready after", time.monotonic() - back)
    p2 = str((await join(late, "u2", within=30))["participantId"])
    async with room_stub(replicas.addresses[1]) as stub:
        await converged(stub, [first, late], {p1, p2}, within=20)


async def _is(awaitable: object, expected: object) -> bool:
    return bool(await awaitable == expected)  # type: ignore[misc]


async def _not_serving(health: health_pb2_grpc.HealthStub) -> bool:
    service = pb.DESCRIPTOR.services_by_name["RoomService"].full_name
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)

"""The edge's Commands stream across replica faults: a replica killed with commands in flight
fails them at once (as a broken stream, not at their deadline) and the next command is
served by the other replica; a replica that is stopping ends its streams after answering
what it took, and joins carry on at the other replica without one refused. Two replica
processes on one Redis, a real RoomClient on a channel given both."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from edge_gateway.errors import UNAVAILABLE_MESSAGE
from edge_gateway.rpc import RoomClient
from meeting_common.grpc_metrics import ClientMetrics
from tests.support.prometheus import http_get_text, parse_exposition
from tests.support.replicas import Replicas, replicas_on_redis
from tests.support.room import MEETING
from tests.support.room_rpc import edge_join, outcome
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(120)

# Far longer than any fault here takes to be noticed: a command that fails before it failed
# because its stream broke.
_DEADLINE = 30.0


async def _served(replicas: Replicas, index: int, method: str) -> float:
    """How many calls (commands) of `method` replica `index` has started."""
    exposition = parse_exposition(await http_get_text(replicas.procs[index].metrics_url))
    return exposition.value("grpc_server_started_total", grpc_method=method) or 0.0


async def _holder(replicas: Replicas) -> int:
    """The replica serving the client's one Commands stream."""
    opened = [await _served(replicas, i, "Commands") for i in range(len(replicas.procs))]
    assert sorted(opened) == [0.0, 1.0], opened
    return opened.index(1.0)


def _handled(registry: CollectorRegistry, method: str, code: str) -> float:
    labels = {"grpc_type": "unary", "grpc_service": "meeting.v1.RoomService", "grpc_method": method}
    return registry.get_sample_value("grpc_client_handled_total", {**labels, "grpc_code": code}) or 0.0


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Replicas, RoomClient, CollectorRegistry]]:
    """Two replicas on one Redis and a client with one Commands stream to them."""
    async with replicas_on_redis(2) as replicas:
        registry = CollectorRegistry()
        client = RoomClient(
            replicas.target, "edge-faults", _DEADLINE, metrics=ClientMetrics(registry), command_streams=1
        )
        try:
            yield replicas, client, registry
        finally:
            await client.close()


async def _join(client: RoomClient, user: str) -> str:
    return (await edge_join(client, user, MEETING)).participant.participant_id


async def test_a_replica_killed_mid_stream_fails_its_commands_at_once_and_the_other_serves(
    rig: tuple[Replicas, RoomClient, CollectorRegistry],
) -> None:
    replicas, client, registry = rig
    alice = await _join(client, "alice")
    holder = await _holder(replicas)
    admin = aioredis.Redis.from_url(replicas.redis.url)
    try:
        # Redis holds every write: the chats stay in flight at the replica.
        await admin.client_pause(60_000, all=False)
        chats = [asyncio.create_task(outcome(client.send_chat(MEETING, alice, f"m{i}"))) for i in range(3)]
        await wait_until(
            lambda: _served_all(replicas, holder, "SendChat", 3), within=10, what="all chats in flight"
        )
        await replicas.kill(holder)
        outcomes = await asyncio.wait_for(asyncio.gather(*chats), _DEADLINE)
        assert outcomes == [("UNAVAILABLE", UNAVAILABLE_MESSAGE)] * 3
        # They failed with their stream, not at their deadline.
        assert _handled(registry, "SendChat", "Unavailable") == 3
        assert _handled(registry, "SendChat", "DeadlineExceeded") == 0
    finally:
        await admin.client_unpause()
        await admin.aclose()
    # The next command opens a stream on the replica still up.
    await _join(client, "bob")
    assert await _served(replicas, 1 - holder, "Commands") == 1
    assert await _served(replicas, 1 - holder, "Join") == 1


async def _served_all(replicas: Replicas, index: int, method: str, count: int) -> bool:
    return await _served(replicas, index, method) >= count


async def test_a_stopping_replica_ends_its_streams_and_joins_carry_on_at_the_other(
    rig: tuple[Replicas, RoomClient, CollectorRegistry],
) -> None:
    replicas, client, registry = rig
    await _join(client, "first")
    holder = await _holder(replicas)
    stopping = replicas.procs[holder]
    stopping.send_signal(signal.SIGTERM)
    exited = asyncio.create_task(stopping.wait(timeout=30))
    # Joins one after another while the replica drains and exits, and a few after (the
    # same 50 users over again: a repeated join is idempotent, and still a Join).
    attempts, after_exit = 0, 0
    while after_exit < 5:
        await _join(client, f"user-{attempts % 50}")  # raises EdgeError if one is refused
        attempts += 1
        after_exit += 1 if exited.done() else 0
    await exited
    # The stream the stopping replica held ended cleanly once it had answered; the next
    # one opened on the other replica.
    commands = {
        "grpc_type": "bidi_stream",
        "grpc_service": "meeting.v1.RoomService",
        "grpc_method": "Commands",
    }
    ended = {
        sample.labels["grpc_code"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "grpc_client_handled_total"
        and sample.value
        and all(sample.labels.get(key) == value for key, value in commands.items())
    }
    assert ended == {"OK": 1}
    assert await _served(replicas, 1 - holder, "Commands") == 1
    assert await _served(replicas, 1 - holder, "Join") >= 5

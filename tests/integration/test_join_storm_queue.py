"""A join storm into one meeting, through the edge's RoomClient over real gRPC to a
RoomService whose Join the test holds: at most `joins_per_meeting` calls of a meeting
reach the service at once, the rest wait at the edge (where no deadline runs), other
meetings pass, and a queued join is refused at once once the service is known away.

Before the queue, the 1,000-client storm of `make bench` sent every Join at once; the
calls at the back outwaited their deadline behind the others and were refused
UNAVAILABLE while the service was answering (897 of 1,000 joined). Here the storm is 40
joins held at the service: without the queue all 40 would be at the service together."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from edge_gateway.errors import EdgeError
from edge_gateway.rpc import RoomClient
from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.codes import ErrorCode
from room_service.api.commands import CommandStreams
from tests.support.timing import wait_until

DEPTH = 3
STORM = 40


class HeldRoomService(pb_grpc.RoomServiceServicer):
    """Join waits until the test lets it through; counts the calls at the service."""

    def __init__(self) -> None:
        self.at_service: Counter[str] = Counter()
        self.most_at_service: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.open = asyncio.Event()
        self.heartbeat_ok = True
        # The edge's Commands streams run this servicer's Join as the room service's do.
        self.commands = CommandStreams(self)

    async def Commands(self, request_iterator: Any, context: Any) -> None:  # type: ignore[override]
        await self.commands.serve(context)

    async def Join(
        self, request: pb.JoinRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.JoinResponse:
        meeting = request.meeting_id
        self.calls[meeting] += 1
        self.at_service[meeting] += 1
        self.most_at_service[meeting] = max(self.most_at_service[meeting], self.at_service[meeting])
        try:
            if meeting == "big":
                await self.open.wait()
            return pb.JoinResponse(
                participant=pb.Participant(participant_id=f"p-{request.socket_id}", user_id=request.user_id),
                instance_id="held",
            )
        finally:
            self.at_service[meeting] -= 1

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.HeartbeatResponse:
        if not self.heartbeat_ok:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "away")
        return pb.HeartbeatResponse(known=True, lease_seconds=6, instance_id="held")


@pytest.fixture(params=[2, 0], ids=["command-streams", "unary-calls"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[HeldRoomService, RoomClient]]:
    servicer = HeldRoomService()  # type: ignore[abstract]  # the methods it lacks answer UNIMPLEMENTED
    server = grpc.aio.server()
    pb_grpc.add_RoomServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    # A deadline far beyond the test: what is checked is where the calls wait, not how long.
    client = RoomClient(
        f"127.0.0.1:{port}", "edge-test", 60.0, joins_per_meeting=DEPTH, command_streams=request.param
    )
    try:
        yield servicer, client
    finally:
        servicer.open.set()
        await client.close()
        await server.stop(None)


def _join(client: RoomClient, meeting: str, i: int) -> asyncio.Task[pb.JoinResponse]:
    return asyncio.create_task(client.join(meeting, f"user-{i}", f"User {i}", "", None, f"sock-{i}"))


async def test_a_storm_reaches_the_service_depth_calls_at_a_time(
    service: tuple[HeldRoomService, RoomClient],
) -> None:
    servicer, client = service
    storm = [_join(client, "big", i) for i in range(STORM)]
    await wait_until(
        lambda: servicer.at_service["big"] + client.joins.waiting("big") == STORM,
        within=10,
        what="every join at the service or queued",
    )
    assert servicer.at_service["big"] == DEPTH  # the rest wait at the edge
    # Another meeting's join is not queued behind the storm.
    other = await asyncio.wait_for(_join(client, "small", 999), 10)
    assert other.participant.participant_id == "p-sock-999"
    servicer.open.set()
    replies = await asyncio.wait_for(asyncio.gather(*storm), 30)
    assert {r.participant.participant_id for r in replies} == {f"p-sock-{i}" for i in range(STORM)}
    assert servicer.calls["big"] == STORM  # each once: none refused, none retried
    assert servicer.most_at_service["big"] == DEPTH
    assert client.joins.meetings() == 0


async def test_a_queued_join_is_refused_at_once_when_the_service_is_known_away(
    service: tuple[HeldRoomService, RoomClient],
) -> None:
    servicer, client = service
    in_flight = [_join(client, "big", i) for i in range(DEPTH)]
    await wait_until(lambda: servicer.at_service["big"] == DEPTH, within=10, what="the first calls in")
    queued = _join(client, "big", DEPTH)
    await wait_until(lambda: client.joins.waiting("big") == 1, within=10, what="a join queued")
    servicer.heartbeat_ok = False
    with pytest.raises(EdgeError):
        await client.heartbeat()
    servicer.open.set()
    await asyncio.wait_for(asyncio.gather(*in_flight), 30)  # those already sent are answered
    with pytest.raises(EdgeError) as refused:
        await asyncio.wait_for(queued, 30)
    assert refused.value.code is ErrorCode.UNAVAILABLE
    assert servicer.calls["big"] == DEPTH  # the queued one never tried the service
    servicer.heartbeat_ok = True
    await client.heartbeat()
    reply = await asyncio.wait_for(_join(client, "big", 100), 30)
    assert reply.participant.participant_id == "p-sock-100"

"""Handlers wrapped once at registration (WrappingServer): the internal token and the server
metrics, composed as the room service composes them, on a real grpc.aio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.codes import ErrorCode
from meeting_common.grpc_metrics import ServerMetrics
from meeting_common.grpc_wrapping import WrappingServer
from meeting_common.rpc_status import error_code_from
from room_service.api.auth import BearerToken

TOKEN = "wrap-test-token-5b1e"
SERVICE = "meeting.v1.RoomService"


@dataclass
class _Servicer(pb_grpc.RoomServiceServicer):
    """Records which methods ran; WatchRoom streams two responses."""

    ran: list[str] = field(default_factory=list)

    async def GetMeeting(self, request: pb.GetMeetingRequest, context: Any) -> pb.GetMeetingResponse:
        self.ran.append("GetMeeting")
        return pb.GetMeetingResponse()

    async def WatchRoom(
        self, request: pb.WatchRoomRequest, context: Any
    ) -> AsyncIterator[pb.WatchRoomResponse]:
        self.ran.append("WatchRoom")
        for _ in range(2):
            yield pb.WatchRoomResponse()


@dataclass
class _Rig:
    registry: CollectorRegistry
    servicer: _Servicer
    channel: grpc.aio.Channel

    def handled(self, method: str, code: str, kind: str = "unary", service: str = SERVICE) -> float:
        labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "grpc_code": code}
        return self.registry.get_sample_value("grpc_server_handled_total", labels) or 0.0


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[_Rig]:
    registry = CollectorRegistry()
    server = WrappingServer(grpc.aio.server(), [ServerMetrics(registry).wrap, BearerToken(TOKEN).wrap])
    servicer = _Servicer()  # type: ignore[abstract]  # the methods it lacks answer UNIMPLEMENTED
    pb_grpc.add_RoomServiceServicer_to_server(servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield _Rig(registry, servicer, channel)
    finally:
        await channel.close(grace=None)
        await server.stop(None)


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.mark.parametrize("metadata", [None, _bearer("not-the-token"), (("authorization", TOKEN),)])
async def test_a_call_without_the_token_is_refused_before_the_servicer_and_counted(
    rig: _Rig, metadata: tuple[tuple[str, str], ...] | None
) -> None:
    stub = pb_grpc.RoomServiceStub(rig.channel)
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await stub.GetMeeting(pb.GetMeetingRequest(meeting_id="m"), metadata=metadata)
    assert unary.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error_code_from(unary.value) is ErrorCode.UNAUTHENTICATED
    assert TOKEN not in (unary.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for _ in stub.WatchRoom(pb.WatchRoomRequest(meeting_id="m"), metadata=metadata):
            pytest.fail("a refused stream yielded a message")
    assert stream.value.code() is grpc.StatusCode.UNAUTHENTICATED

    assert rig.servicer.ran == []
    # The metrics wrap is outside the token's: its refusals are counted like any answer.
    assert rig.handled("GetMeeting", "Unauthenticated") == 1
    assert rig.handled("WatchRoom", "Unauthenticated", kind="server_stream") == 1


async def test_a_call_with_the_token_reaches_the_servicer(rig: _Rig) -> None:
    stub = pb_grpc.RoomServiceStub(rig.channel)
    assert isinstance(
        await stub.GetMeeting(pb.GetMeetingRequest(meeting_id="m"), metadata=_bearer(TOKEN)),
        pb.GetMeetingResponse,
    )
    streamed = [r async for r in stub.WatchRoom(pb.WatchRoomRequest(meeting_id="m"), metadata=_bearer(TOKEN))]
    assert len(streamed) == 2
    assert rig.servicer.ran == ["GetMeeting", "WatchRoom"]
    assert rig.handled("GetMeeting", "OK") == 1
    assert rig.handled("WatchRoom", "OK", kind="server_stream") == 1


async def test_health_needs_no_token_and_is_counted_too(rig: _Rig) -> None:
    stub = health_pb2_grpc.HealthStub(rig.channel)
    reply = await asyncio.wait_for(stub.Check(health_pb2.HealthCheckRequest(service=SERVICE)), 10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert rig.handled("Check", "OK", service="grpc.health.v1.Health") == 1

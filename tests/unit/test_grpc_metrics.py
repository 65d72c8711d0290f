"""The gRPC metrics (handlers wrapped at registration, calls reported by the caller) against a
real grpc.aio server and client on loopback. Just over 300 lines: the four call shapes, each
finished, cancelled, past its deadline and unimplemented, share one server fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry, generate_latest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.grpc_metrics import (
    BIDI_STREAM,
    CLIENT_STREAM,
    CODE_NAMES,
    SERVER_STREAM,
    UNARY,
    ClientMetrics,
    CountedStream,
    ServerMetrics,
    split_method,
)
from meeting_common.grpc_wrapping import WrappingServer
from tests.support.timing import wait_until

SERVICE = "meeting.v1.RoomService"
ECHO = "test.v1.Echo"  # a bytes-only service for the client- and bidi-streaming shapes


class _Servicer(pb_grpc.RoomServiceServicer):
    """GetMeeting knows one meeting; WatchRoom streams three events, or one and then waits."""

    def __init__(self) -> None:
        self.watch_started = asyncio.Event()
        self.slow_started = asyncio.Event()

    async def GetMeeting(
        self, request: pb.GetMeetingRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetMeetingResponse:
        if request.meeting_id == "slow":
            self.slow_started.set()
            await asyncio.sleep(30)
        if request.meeting_id != "known":
            await context.abort(grpc.StatusCode.NOT_FOUND, "meeting not found")
        return pb.GetMeetingResponse()

    async def WatchRoom(
        self, request: pb.WatchRoomRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.WatchRoomResponse]:
        count = 1 if request.meeting_id == "forever" else 3
        for _ in range(count):
            yield pb.WatchRoomResponse()
        self.watch_started.set()
        if request.meeting_id == "forever":
            await asyncio.Event().wait()


def _raw(data: bytes) -> bytes:
    return data


async def _collect(requests: AsyncIterator[bytes], context: Any) -> bytes:
    return b"".join([request async for request in requests])


async def _echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


@dataclass
class _Rig:
    server_registry: CollectorRegistry
    client_registry: CollectorRegistry
    client_metrics: ClientMetrics
    stub: Any
    channel: grpc.aio.Channel
    servicer: _Servicer

    async def unary(self, method: str, call: Any) -> Any:
        """Awaits a RoomService unary call, reported as the edge's RoomClient reports it."""
        return await self.client_metrics.start(UNARY, f"/{SERVICE}/{method}").response(call)

    def stream(self, method: str, call: Any) -> CountedStream[Any]:
        """A RoomService response stream, reported as the edge's RoomClient reports it."""
        return self.client_metrics.start(SERVER_STREAM, f"/{SERVICE}/{method}").responses(call)

    def server(self, name: str, **labels: str) -> float:
        return self.server_registry.get_sample_value(name, labels) or 0.0

    def client(self, name: str, **labels: str) -> float:
        return self.client_registry.get_sample_value(name, labels) or 0.0


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[_Rig]:
    server_registry, client_registry = CollectorRegistry(), CollectorRegistry()
    server_metrics, client_metrics = ServerMetrics(server_registry), ClientMetrics(client_registry)
    server = WrappingServer(grpc.aio.server(), [server_metrics.wrap])
    servicer = _Servicer()  # type: ignore[abstract]  # the methods it lacks answer UNIMPLEMENTED
    pb_grpc.add_RoomServiceServicer_to_server(servicer, server)
    echo = {
        "Collect": grpc.stream_unary_rpc_method_handler(_collect),
        "Echo": grpc.stream_stream_rpc_method_handler(_echo),
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(ECHO, echo)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = pb_grpc.RoomServiceStub(channel)
        yield _Rig(server_registry, client_registry, client_metrics, stub, channel, servicer)
    finally:
        await channel.close(grace=None)
        await server.stop(None)


def _labels(kind: str, method: str, service: str = SERVICE) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": service, "grpc_method": method}


@pytest.mark.asyncio
async def test_unary_not_found_is_counted_on_both_sides(rig: _Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rig.unary("GetMeeting", rig.stub.GetMeeting(pb.GetMeetingRequest(meeting_id="nope")))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    labels = _labels("unary", "GetMeeting")
    for side, value in (("server", rig.server), ("client", rig.client)):
        assert value(f"grpc_{side}_started_total", **labels) == 1
        assert value(f"grpc_{side}_handled_total", **labels, grpc_code="NotFound") == 1
        assert value(f"grpc_{side}_handled_total", **labels, grpc_code="OK") == 0
        assert value(f"grpc_{side}_handling_seconds_count", **labels) == 1
        assert value(f"grpc_{side}_handling_seconds_bucket", **labels, le="+Inf") == 1
    # A failed unary RPC took a request in and sent no response back.
    assert rig.server("grpc_server_msg_received_total", **labels) == 1
    assert rig.server("grpc_server_msg_sent_total", **labels) == 0
    assert rig.client("grpc_client_msg_sent_total", **labels) == 1
    assert rig.client("grpc_client_msg_received_total", **labels) == 0


@pytest.mark.asyncio
async def test_unary_ok_counts_one_message_each_way(rig: _Rig) -> None:
    call = rig.stub.GetMeeting(pb.GetMeetingRequest(meeting_id="known"))
    assert isinstance(await rig.unary("GetMeeting", call), pb.GetMeetingResponse)
    assert await call.code() is grpc.StatusCode.OK  # the reported call stays usable

    labels = _labels("unary", "GetMeeting")
    assert rig.server("grpc_server_handled_total", **labels, grpc_code="OK") == 1
    assert rig.client("grpc_client_handled_total", **labels, grpc_code="OK") == 1
    for side, value in (("server", rig.server), ("client", rig.client)):
        assert value(f"grpc_{side}_msg_received_total", **labels) == 1
        assert value(f"grpc_{side}_msg_sent_total", **labels) == 1


@pytest.mark.asyncio
async def test_server_stream_counts_every_message_and_the_final_code(rig: _Rig) -> None:
    responses = [
        r async for r in rig.stream("WatchRoom", rig.stub.WatchRoom(pb.WatchRoomRequest(meeting_id="m")))
    ]
    assert len(responses) == 3

    labels = _labels("server_stream", "WatchRoom")
    assert rig.server("grpc_server_started_total", **labels) == 1
    assert rig.server("grpc_server_msg_received_total", **labels) == 1
    assert rig.server("grpc_server_msg_sent_total", **labels) == 3
    assert rig.server("grpc_server_handled_total", **labels, grpc_code="OK") == 1
    assert rig.server("grpc_server_handling_seconds_count", **labels) == 1
    assert rig.client("grpc_client_started_total", **labels) == 1
    assert rig.client("grpc_client_msg_sent_total", **labels) == 1
    assert rig.client("grpc_client_msg_received_total", **labels) == 3
    assert rig.client("grpc_client_handled_total", **labels, grpc_code="OK") == 1


@pytest.mark.asyncio
async def test_cancelled_server_stream_is_handled_as_canceled(rig: _Rig) -> None:
    call = rig.stream("WatchRoom", rig.stub.WatchRoom(pb.WatchRoomRequest(meeting_id="forever")))
    first = await call.read()
    assert isinstance(first, pb.WatchRoomResponse)
    await asyncio.wait_for(rig.servicer.watch_started.wait(), 5)
    call.cancel()

    labels = _labels("server_stream", "WatchRoom")
    canceled = {**labels, "grpc_code": "Canceled"}
    await wait_until(
        lambda: rig.server("grpc_server_handled_total", **canceled) == 1,
        within=5,
        interval=0.01,
        what="metric recorded",
    )
    await wait_until(
        lambda: rig.client("grpc_client_handled_total", **canceled) == 1,
        within=5,
        interval=0.01,
        what="metric recorded",
    )
    assert rig.server("grpc_server_msg_sent_total", **labels) == 1
    assert rig.client("grpc_client_msg_received_total", **labels) == 1
    assert rig.server("grpc_server_handled_total", **labels, grpc_code="OK") == 0
    assert rig.server("grpc_server_handling_seconds_count", **labels) == 1


@pytest.mark.asyncio
async def test_deadline_is_handled_as_deadline_exceeded(rig: _Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rig.unary("GetMeeting", rig.stub.GetMeeting(pb.GetMeetingRequest(meeting_id="slow"), timeout=1))
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert rig.servicer.slow_started.is_set()

    exceeded = {**_labels("unary", "GetMeeting"), "grpc_code": "DeadlineExceeded"}
    assert rig.client("grpc_client_handled_total", **exceeded) == 1
    await wait_until(
        lambda: rig.server("grpc_server_handled_total", **exceeded) == 1,
        within=5,
        interval=0.01,
        what="metric recorded",
    )
    assert rig.server("grpc_server_handled_total", **{**exceeded, "grpc_code": "Canceled"}) == 0


@pytest.mark.asyncio
async def test_unimplemented_method_is_counted(rig: _Rig) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await rig.unary("ListRooms", rig.stub.ListRooms(pb.ListRoomsRequest()))
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    labels = {**_labels("unary", "ListRooms"), "grpc_code": "Unimplemented"}
    assert rig.server("grpc_server_handled_total", **labels) == 1
    assert rig.client("grpc_client_handled_total", **labels) == 1


@pytest.mark.asyncio
async def test_client_and_bidi_streams(rig: _Rig) -> None:
    async def three() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b", b"c"):
            yield chunk

    collect = rig.channel.stream_unary(f"/{ECHO}/Collect", _raw, _raw)
    rpc = rig.client_metrics.start(CLIENT_STREAM, f"/{ECHO}/Collect")
    assert await rpc.response(collect(rpc.requests(three()))) == b"abc"
    echo = rig.channel.stream_stream(f"/{ECHO}/Echo", _raw, _raw)
    rpc = rig.client_metrics.start(BIDI_STREAM, f"/{ECHO}/Echo")
    assert [r async for r in rpc.responses(echo(rpc.requests(three())))] == [b"a", b"b", b"c"]

    collected = _labels("client_stream", "Collect", ECHO)
    echoed = _labels("bidi_stream", "Echo", ECHO)
    assert rig.server("grpc_server_msg_received_total", **collected) == 3
    assert rig.server("grpc_server_msg_sent_total", **collected) == 1
    assert rig.server("grpc_server_handled_total", **collected, grpc_code="OK") == 1
    assert rig.client("grpc_client_msg_sent_total", **collected) == 3
    assert rig.client("grpc_client_msg_received_total", **collected) == 1
    assert rig.client("grpc_client_handled_total", **collected, grpc_code="OK") == 1
    for side, value in (("server", rig.server), ("client", rig.client)):
        assert value(f"grpc_{side}_msg_received_total", **echoed) == 3
        assert value(f"grpc_{side}_msg_sent_total", **echoed) == 3
        assert value(f"grpc_{side}_handled_total", **echoed, grpc_code="OK") == 1


def test_initialize_creates_every_series_at_zero() -> None:
    registry = CollectorRegistry()
    ServerMetrics(registry).initialize(pb.DESCRIPTOR.services_by_name["RoomService"])
    watch = _labels("server_stream", "WatchRoom")
    assert registry.get_sample_value("grpc_server_started_total", watch) == 0
    for code in CODE_NAMES.values():
        labels = {**_labels("unary", "Join"), "grpc_code": code}
        assert registry.get_sample_value("grpc_server_handled_total", labels) == 0


def test_exposition_uses_go_grpc_prometheus_names() -> None:
    server, client = CollectorRegistry(), CollectorRegistry()
    ServerMetrics(server).initialize(pb.DESCRIPTOR.services_by_name["RoomService"])
    ClientMetrics(client).initialize(pb.DESCRIPTOR.services_by_name["RoomService"])
    for side, registry in (("server", server), ("client", client)):
        text = generate_latest(registry).decode()
        for family in ("started_total", "handled_total", "msg_received_total", "msg_sent_total"):
            assert f"# TYPE grpc_{side}_{family} counter" in text
        assert f"# TYPE grpc_{side}_handling_seconds histogram" in text
        assert (
            f'grpc_{side}_handled_total{{grpc_code="DeadlineExceeded",grpc_method="Join",'
            f'grpc_service="{SERVICE}",grpc_type="unary"}} 0.0' in text
        )


def test_every_status_code_has_its_go_name() -> None:
    assert set(CODE_NAMES) == set(grpc.StatusCode)
    assert CODE_NAMES[grpc.StatusCode.CANCELLED] == "Canceled"
    assert CODE_NAMES[grpc.StatusCode.UNAVAILABLE] == "Unavailable"


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("/meeting.v1.RoomService/Join", (SERVICE, "Join")),
        (b"/meeting.v1.RoomService/WatchRoom", (SERVICE, "WatchRoom")),
        ("/grpc.health.v1.Health/Check", ("grpc.health.v1.Health", "Check")),
    ],
)
def test_split_method(full: str | bytes, expected: tuple[str, str]) -> None:
    assert split_method(full) == expected

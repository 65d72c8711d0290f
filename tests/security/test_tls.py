"""The internal gRPC API with TLS, mutual TLS and the internal bearer token, using a CA and
certificates made by the test: the edge gets through, everyone else is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.rpc_status import error_code_from
from tests.support.jsclient import JsClientPool
from tests.support.managed import ManagedProcess
from tests.support.processes import (
    QUICK_STOP,
    RoomServiceProcess,
    room_service_argv,
    start_edge,
    start_room_service,
)

from . import keys

pytestmark = pytest.mark.timeout(120)

TOKEN = "internal-token-for-tls-tests-7f3a9c"


@pytest.fixture
def pki(tmp_path: Path) -> keys.Pki:
    return keys.make_pki(tmp_path)


@pytest.fixture
async def mtls_room_service(pki: keys.Pki) -> AsyncIterator[RoomServiceProcess]:
    proc = await start_room_service(
        "--tls-cert-file", str(pki.server_cert),
        "--tls-key-file", str(pki.server_key),
        "--tls-client-ca-file", str(pki.ca),
        *QUICK_STOP,
        env={"ROOM_SERVICE_INTERNAL_TOKEN": TOKEN},
        name="room-service-mtls",
    )  # fmt: skip
    try:
        yield proc
    finally:
        await proc.terminate()


async def readyz(url: str) -> int:
    """The edge's /readyz status (200 once it reaches the room service)."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
        return response.status


def _creds(pki: keys.Pki, *, cert: Path | None, key: Path | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


async def _list_rooms(channel: grpc.aio.Channel, token: str | None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    try:
        await pb_grpc.RoomServiceStub(channel).ListRooms(pb.ListRoomsRequest(), timeout=5, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
            assert error_code_from(exc) == "UNAUTHENTICATED"
            assert TOKEN not in (exc.details() or "")
        return exc.code()
    return grpc.StatusCode.OK


async def test_edge_over_mutual_tls_with_token_serves_a_meeting(
    mtls_room_service: RoomServiceProcess, pki: keys.Pki, js: JsClientPool
) -> None:
    ready = mtls_room_service.ready or {}
    assert ready.get("tls") is True and ready.get("mutual_tls") is True
    async with await start_edge(
        mtls_room_service.grpc_address,
        "--room-service-tls-ca-file", str(pki.ca),
        "--tls-cert-file", str(pki.client_cert),
        "--tls-key-file", str(pki.client_key),
        env={"EDGE_GATEWAY_ROOM_SERVICE_TOKEN": TOKEN},
        name="edge-mtls",
    ) as edge:  # fmt: skip
        assert await readyz(edge.url) == 200
        a, b = js.client("a"), js.client("b")
        await a.connect(edge.url)
        await b.connect(edge.url)
        join = {"meetingId": "test-meeting-123", "userId": "u1", "userName": "One"}
        assert (await a.emit_with_ack("join-meeting", join))["success"] is True
        reply = await b.emit_with_ack("join-meeting", {**join, "userId": "u2", "userName": "Two"})
        assert reply["success"] is True and len(reply["participants"]) == 1
        # The room stream (WatchRoom) also passes TLS and the token check.
        seen = await a.wait_for_event("participant-joined")
        assert seen.data["userName"] == "Two"


async def test_callers_without_the_right_certificate_or_token_are_refused(
    mtls_room_service: RoomServiceProcess, pki: keys.Pki
) -> None:
    target = mtls_room_service.grpc_address
    async with grpc.aio.insecure_channel(target) as plain:
        assert await _list_rooms(plain, TOKEN) is grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.secure_channel(target, _creds(pki, cert=None, key=None)) as no_cert:
        assert await _list_rooms(no_cert, TOKEN) is grpc.StatusCode.UNAVAILABLE
    rogue = _creds(pki, cert=pki.rogue_client_cert, key=pki.rogue_client_key)
    async with grpc.aio.secure_channel(target, rogue) as channel:
        assert await _list_rooms(channel, TOKEN) is grpc.StatusCode.UNAVAILABLE
    good = _creds(pki, cert=pki.client_cert, key=pki.client_key)
    async with grpc.aio.secure_channel(target, good) as channel:
        assert await _list_rooms(channel, None) is grpc.StatusCode.UNAUTHENTICATED
        assert await _list_rooms(channel, "wrong-token") is grpc.StatusCode.UNAUTHENTICATED
        assert await _list_rooms(channel, TOKEN[:-1]) is grpc.StatusCode.UNAUTHENTICATED
        assert await _list_rooms(channel, TOKEN) is grpc.StatusCode.OK
        # A stream is refused the same way.
        stream = pb_grpc.RoomServiceStub(channel).WatchRoom(
            pb.WatchRoomRequest(meeting_id="test-meeting-123")
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stream.read()
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # Health checks need no token (probes and load balancers have none).
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_edge_with_wrong_token_is_not_ready(
    mtls_room_service: RoomServiceProcess, pki: keys.Pki, js: JsClientPool
) -> None:
    async with await start_edge(
        mtls_room_service.grpc_address,
        "--room-service-tls-ca-file", str(pki.ca),
        "--tls-cert-file", str(pki.client_cert),
        "--tls-key-file", str(pki.client_key),
        env={"EDGE_GATEWAY_ROOM_SERVICE_TOKEN": "not-the-token"},
        name="edge-bad-token",
    ) as edge:  # fmt: skip
        assert await readyz(edge.url) == 503
        # The edge's credentials are a server-side fault: clients see UNAVAILABLE.
        client = js.client("c")
        await client.connect(edge.url)
        join = {"meetingId": "test-meeting-123", "userId": "u1", "userName": "One"}
        reply = await client.emit_with_ack("join-meeting", join, timeout=15)
        assert reply["success"] is False
        assert reply["error"]["code"] == "UNAVAILABLE"


async def test_token_without_tls(tmp_path: Path) -> None:
    async with await start_room_service(
        *QUICK_STOP, env={"ROOM_SERVICE_INTERNAL_TOKEN": TOKEN}, name="rs-token"
    ) as rs:
        async with grpc.aio.insecure_channel(rs.grpc_address) as channel:
            assert await _list_rooms(channel, None) is grpc.StatusCode.UNAUTHENTICATED
            assert await _list_rooms(channel, TOKEN) is grpc.StatusCode.OK
        async with await start_edge(
            rs.grpc_address, env={"EDGE_GATEWAY_ROOM_SERVICE_TOKEN": TOKEN}, name="edge-token"
        ) as edge:
            assert await readyz(edge.url) == 200


async def test_bad_tls_settings_are_reported_at_start(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "rs-bad-tls",
        room_service_argv("--tls-cert-file", str(tmp_path / "missing.pem"), "--tls-key-file", "x"),
    )
    await proc.start()
    assert await proc.wait(20) == 2
    assert any("cannot read TLS" in line.text for line in proc.lines)

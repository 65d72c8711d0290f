"""A RoomServiceApp in this process on 127.0.0.1:0 and the helpers its gRPC tests share:
join requests, refusals checked by status and stable reason, and what an edge's call
ended with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from edge_gateway.errors import EdgeError
from edge_gateway.rpc import RoomClient
from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from room_service.app import RoomServiceApp
from room_service.config import load_settings

OPEN = "test-meeting-123"
LOCKED = "test-meeting-locked"
LOCKED_PASSWORD = "password123"


@asynccontextmanager
async def room_service_app(*flags: str) -> AsyncIterator[tuple[RoomServiceApp, pb_grpc.RoomServiceAsyncStub]]:
    """A started RoomServiceApp (demo meetings, no restore grace, `flags` on top) and a
    stub on a real channel to it; both closed on exit."""
    settings = load_settings(
        [
            "--grpc-address", "127.0.0.1:0",
            "--metrics-address", "127.0.0.1:0",
            "--restore-grace-seconds", "0",
            "--shutdown-grace-seconds", "0.2",  # stopping drains half of it; no calls are left
            *flags,
        ],
        {},
    )  # fmt: skip
    app = RoomServiceApp(settings)
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            yield app, pb_grpc.RoomServiceStub(channel)
    finally:
        await app.stop()


def join_request(user: str, meeting: str = OPEN, **fields: Any) -> pb.JoinRequest:
    """A JoinRequest from edge `edge-test`, socket `sock-<user>`, unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "meeting_id": meeting,
        "user_id": user,
        "user_name": f"Name {user}",
        "edge_id": "edge-test",
        "socket_id": f"sock-{user}",
    }
    values.update(fields)
    return pb.JoinRequest(**values)


def reason_of(error: grpc.aio.AioRpcError) -> str:
    """The google.rpc.ErrorInfo reason in a refusal's status details, read off the wire
    here (not with the code under test); the status must agree with the call's code."""
    # grpc-stubs types the trailing metadata of the sync RpcError; an aio call's is grpc.aio.Metadata.
    for key, value in cast("grpc.aio.Metadata", error.trailing_metadata()) or ():
        if key == "grpc-status-details-bin":
            assert isinstance(value, bytes), value
            status = status_pb2.Status.FromString(value)
            assert status.code == error.code().value[0]
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    assert info.domain == "meeting.v1"
                    return str(info.reason)
    raise AssertionError(f"no ErrorInfo in {error!r}")


async def rpc_refused(call: Any, code: grpc.StatusCode, reason: str) -> grpc.aio.AioRpcError:
    """Awaits `call`, which must fail with `code` and ErrorInfo `reason`."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code
    assert reason_of(caught.value) == reason
    return caught.value


async def edge_join(
    client: RoomClient, user: str, meeting: str = OPEN, password: str = ""
) -> pb.JoinResponse:
    """Joins `user` through an edge's RoomClient (socket id `sock-<user>`, no media)."""
    return await client.join(meeting, user, f"Name {user}", password, None, f"sock-{user}")


Outcome = tuple[str, str]
"""How an edge's call ended: ("ok", "") or the EdgeError's (code, message)."""


async def outcome(call: Awaitable[Any]) -> Outcome:
    """Awaits an edge's RoomClient call and says how it ended (a refusal does not raise)."""
    try:
        await call
    except EdgeError as error:
        return error.code.value, error.message
    return "ok", ""

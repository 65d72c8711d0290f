"""The edge's commands over the Commands stream answer exactly as the unary calls do: the
same replies, the same refusals (code and message), INTERNAL with the generic message;
many concurrent commands on one stream each get their own reply; a command stuck in its
store fails at its deadline as a unary call does while the stream serves the others.
A real RoomServiceApp on a real channel, a real RoomClient on each path."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from edge_gateway.errors import UNAVAILABLE_MESSAGE
from edge_gateway.rpc import RoomClient
from meeting.v1 import room_service_pb2 as pb
from room_service.app import RoomServiceApp
from tests.support.redis_server import SessionRedis
from tests.support.room_rpc import LOCKED, OPEN, edge_join, join_request, outcome, reason_of, room_service_app
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(90)

"""(code, message) of a refusal, or ("ok", "") for a reply."""


def served(app: RoomServiceApp, method: str, code: str = "OK", kind: str = "unary") -> float:
    """The server's handled_total of `method` with `code`."""
    value = app.registry.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": kind,
            "grpc_service": "meeting.v1.RoomService",
            "grpc_method": method,
            "grpc_code": code,
        },
    )
    return value or 0.0


@pytest.fixture
async def service() -> AsyncIterator[tuple[RoomServiceApp, RoomClient, RoomClient]]:
    """A room service, a client sending commands as unary calls, one sending them on one stream."""
    async with room_service_app() as (app, _):
        target = f"127.0.0.1:{app.grpc_port}"
        unary = RoomClient(target, "edge-test", 5.0, command_streams=0)
        stream = RoomClient(target, "edge-test", 5.0, command_streams=1)
        try:
            yield app, unary, stream
        finally:
            await unary.close()
            await stream.close()


async def test_replies_and_refusals_over_the_stream_equal_the_unary_calls(
    service: tuple[RoomServiceApp, RoomClient, RoomClient],
) -> None:
    app, unary, stream = service
    host = await edge_join(stream, "host")
    guest = await edge_join(stream, "guest")
    assert [p.user_id for p in guest.participants] == ["host"]
    assert guest.participant.permissions.is_host is False
    assert guest.instance_id and guest.instance_id == host.instance_id
    # A full room and an ended meeting, made with the internal API.
    template = await app.manager.get_meeting(OPEN)
    await app.manager.upsert_meeting(dataclasses.replace(template, id="tiny", max_participants=1), None)
    await edge_join(stream, "first", "tiny")
    await app.manager.upsert_meeting(dataclasses.replace(template, id="over"), None)
    await app.manager.end_meeting("over", "")
    host_id, guest_id = host.participant.participant_id, guest.participant.participant_id

    cases: dict[str, Callable[[RoomClient], Awaitable[Any]]] = {
        "MEETING_NOT_FOUND": lambda c: edge_join(c, "x", "no-such-meeting"),
        "INVALID_PASSWORD": lambda c: edge_join(c, "x", LOCKED, "wrong"),
        "MEETING_NOT_ACTIVE": lambda c: edge_join(c, "x", "over"),
        "ROOM_FULL": lambda c: edge_join(c, "x", "tiny"),
        "INVALID_PAYLOAD": lambda c: edge_join(c, ""),
        "NOT_IN_MEETING": lambda c: c.send_chat(OPEN, "p-nobody", "hi"),
        "FORBIDDEN": lambda c: c.remove_participant(OPEN, host_id, guest_id),
    }
    for code, make in cases.items():
        over_stream, over_unary = await outcome(make(stream)), await outcome(make(unary))
        assert over_stream == over_unary, code
        assert over_stream[0] == code, over_stream
    # Replies: the same messages either way (the second change changes nothing, so it
    # names no new position).
    changes = {"audio": False}
    first, again = (
        await stream.update_media(OPEN, guest_id, changes),
        await unary.update_media(OPEN, guest_id, changes),
    )
    assert first.participant == again.participant and first.participant.media.audio is False
    assert served(app, "Join", "NotFound") == 2  # each path counted under the RPC's own name
    assert served(app, "Commands", "OK", "bidi_stream") == 0  # the stream is still open


async def test_an_unknown_error_is_internal_with_the_generic_message_on_both_paths(
    service: tuple[RoomServiceApp, RoomClient, RoomClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, unary, stream = service

    async def broken(*_: Any) -> Any:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(app.manager, "send_chat", broken)
    with caplog.at_level(logging.ERROR, logger="room_service.api"):
        over_stream = await outcome(stream.send_chat(OPEN, "p-1", "hi"))
        over_unary = await outcome(unary.send_chat(OPEN, "p-1", "hi"))
    assert over_stream == over_unary == ("INTERNAL", "Internal error")
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error in SendChat"]
    assert len(logged) == 2 and all(r.exc_info for r in logged)


async def test_a_refusal_the_service_gave_is_not_retried_over_the_stream(
    service: tuple[RoomServiceApp, RoomClient, RoomClient],
) -> None:
    app, _, stream = service
    app.manager.store_answering = False  # joins refused at once, UNAVAILABLE with its ErrorInfo
    try:
        assert await outcome(edge_join(stream, "late")) == ("UNAVAILABLE", UNAVAILABLE_MESSAGE)
    finally:
        app.manager.store_answering = True
    assert served(app, "Join", "Unavailable") == 1


async def test_many_concurrent_commands_on_one_stream_each_get_their_own_reply(
    service: tuple[RoomServiceApp, RoomClient, RoomClient],
) -> None:
    app, _, stream = service
    joined = await asyncio.gather(*(edge_join(stream, f"user-{i}") for i in range(200)))
    ids = [reply.participant.participant_id for reply in joined]
    assert [reply.participant.user_id for reply in joined] == [f"user-{i}" for i in range(200)]
    replies = await asyncio.gather(
        *(
            stream.update_media(OPEN, pid, {"audio": i % 2 == 0, "video": i % 3 == 0})
            for i, pid in enumerate(ids)
        )
    )
    for i, (pid, reply) in enumerate(zip(ids, replies, strict=True)):
        assert reply.participant.participant_id == pid
        assert (reply.participant.media.audio, reply.participant.media.video) == (i % 2 == 0, i % 3 == 0)
    assert served(app, "UpdateMediaState") == 200
    started = app.registry.get_sample_value(
        "grpc_server_started_total",
        {"grpc_type": "bidi_stream", "grpc_service": "meeting.v1.RoomService", "grpc_method": "Commands"},
    )
    assert started == 1


@pytest.fixture
async def redis_service(session_redis: SessionRedis) -> AsyncIterator[RoomServiceApp]:
    """A room service on a Redis that a test can pause; its store waits long for Redis."""
    admin = aioredis.Redis.from_url(session_redis.url)
    await admin.flushall()
    flags = ("--store", "redis", "--redis-url", session_redis.url, "--redis-timeout-seconds", "30")
    try:
        async with room_service_app(*flags) as (app, _):
            yield app
    finally:
        await admin.client_unpause()
        await admin.aclose()


async def test_a_command_stuck_in_the_store_fails_at_its_deadline_and_the_stream_serves_on(
    redis_service: RoomServiceApp, session_redis: SessionRedis
) -> None:
    app = redis_service
    target = f"127.0.0.1:{app.grpc_port}"
    stream = RoomClient(target, "edge-test", 1.0, command_streams=1)
    unary = RoomClient(target, "edge-test", 1.0, command_streams=0)
    admin = aioredis.Redis.from_url(session_redis.url)
    try:
        alice = (await edge_join(stream, "alice")).participant.participant_id
        # Redis stops serving writes (the store waits up to 30 s for it): a chat cannot finish.
        await admin.client_pause(60_000, all=False)
        stuck = asyncio.create_task(outcome(stream.send_chat(OPEN, alice, "hello")))
        # Meanwhile the same stream answers a command that needs no write.
        assert (await outcome(edge_join(stream, "")))[0] == "INVALID_PAYLOAD"
        assert not stuck.done()
        over_stream = await asyncio.wait_for(stuck, 20)
        over_unary = await asyncio.wait_for(outcome(unary.send_chat(OPEN, alice, "hello")), 20)
        assert over_stream == over_unary == ("UNAVAILABLE", UNAVAILABLE_MESSAGE)
        # The service gave up on both at the deadline (the stream's command was cancelled).
        await wait_until(lambda: served(app, "SendChat", "DeadlineExceeded") == 2, within=10)
        await admin.client_unpause()
        changed = await stream.update_media(OPEN, alice, {"audio": False})
        assert changed.participant.media.audio is False
        assert served(app, "Commands", "OK", "bidi_stream") == 0  # the same stream throughout
    finally:
        await admin.client_unpause()
        await admin.aclose()
        await stream.close()
        await unary.close()


TOKEN = "commands-test-token-9c2d"


@pytest.mark.parametrize("metadata", [None, (("authorization", "Bearer not-the-token"),)])
async def test_a_commands_stream_without_the_token_is_refused(
    metadata: tuple[tuple[str, str], ...] | None,
) -> None:
    async with room_service_app("--internal-token", TOKEN) as (app, stub):
        call = stub.Commands(metadata=metadata)  # type: ignore[call-arg]  # written with call.write
        # The refusal may end the call before the write completes (the write then raises);
        # either way the command is never run and the read gives the call's status.
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call.write(pb.CommandsRequest(call_id=1, join=join_request("mallory")))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert reason_of(refused.value) == "UNAUTHENTICATED"
        assert served(app, "Commands", "Unauthenticated", "bidi_stream") == 1
        assert served(app, "Join", "OK") == 0
        assert (await app.manager.list_participants(OPEN)).participants == ()

        # An edge with the wrong token: its sockets see the service unavailable, as with
        # unary calls, and the refusal (a stable code) is not retried.
        target = f"127.0.0.1:{app.grpc_port}"
        wrong = RoomClient(target, "edge-test", 5.0, metadata=[("authorization", "Bearer nope")])
        right = RoomClient(target, "edge-test", 5.0, metadata=[("authorization", f"Bearer {TOKEN}")])
        try:
            assert await outcome(edge_join(wrong, "eve")) == ("UNAVAILABLE", UNAVAILABLE_MESSAGE)
            assert served(app, "Commands", "Unauthenticated", "bidi_stream") == 2
            assert (await edge_join(right, "alice")).participant.user_id == "alice"
        finally:
            await wrong.close()
            await right.close()

"""No password, token or secret in any log line, event, reply or metric: real processes at
DEBUG level are given every kind of secret, used the way clients and services use them
(right and wrong), and everything they print or serve is searched for each secret."""

from __future__ import annotations

import json

import aiohttp
import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClientPool, JsCommandError
from tests.support.processes import start_edge, start_room_service

from . import keys

pytestmark = pytest.mark.timeout(120)

INTERNAL_TOKEN = "itok-5b1f0c7e-never-log-me"
JWT_SECRET = "jwtsec-9d2a44e1-never-log-me-0123456789"
PASSWORD = "pw-c81e728d-never-log-me"
WRONG_PASSWORD = "pw-wrong-eccbc87e-never-log-me"
MEETING = "secret-meeting"


async def _text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


async def test_secrets_never_appear_in_logs_events_or_metrics(js: JsClientPool) -> None:
    token_a = keys.token("user-1-id", key=JWT_SECRET, name="Alice")
    token_b = keys.token("user-2-id", key=JWT_SECRET)
    forged = keys.token("user-3-id", key="not-the-secret-not-the-secret-0000")
    secrets = {
        "internal token": INTERNAL_TOKEN,
        "jwt secret": JWT_SECRET,
        "meeting password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "token a": token_a,
        "token a signature": token_a.rsplit(".", 1)[1],
        "token b": token_b,
        "forged token": forged,
        "password hash": "scrypt$",
    }
    metrics: list[str] = []
    replies: list[str] = []
    async with (
        await start_room_service(
            "--log-level", "DEBUG", env={"ROOM_SERVICE_INTERNAL_TOKEN": INTERNAL_TOKEN}, name="rs-secrets"
        ) as rs,
        await start_edge(
            rs.grpc_address,
            "--log-level", "DEBUG",
            "--auth-mode", "jwt",
            "--jwt-issuer", keys.ISSUER,
            "--jwt-audience", keys.AUDIENCE,
            env={"EDGE_GATEWAY_JWT_SECRET": JWT_SECRET, "EDGE_GATEWAY_ROOM_SERVICE_TOKEN": INTERNAL_TOKEN},
            name="edge-secrets",
        ) as edge,
    ):  # fmt: skip
        metadata = (("authorization", f"Bearer {INTERNAL_TOKEN}"),)
        async with grpc.aio.insecure_channel(rs.grpc_address) as channel:
            stub = pb_grpc.RoomServiceStub(channel)
            meeting = pb.Meeting(
                id=MEETING, meeting_name="Secret", creator_id="user-1-id", status=pb.MEETING_STATUS_LIVE
            )
            upserted = await stub.UpsertMeeting(
                pb.UpsertMeetingRequest(meeting=meeting, password=PASSWORD), metadata=metadata
            )
            got = await stub.GetMeeting(pb.GetMeetingRequest(meeting_id=MEETING), metadata=metadata)
            assert upserted.meeting.has_password and got.meeting.has_password
            replies += [str(upserted), str(got)]
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.ListRooms(pb.ListRoomsRequest(), metadata=(("authorization", "Bearer wrong"),))

        a, b, c = js.client("a"), js.client("b"), js.client("c")
        await a.connect(edge.url, auth={"token": token_a})
        await b.connect(edge.url, auth={"token": token_b})
        with pytest.raises(JsCommandError):
            await c.connect(edge.url, auth={"token": forged})
        ok = await a.emit_with_ack(
            "join-meeting",
            {"meetingId": MEETING, "userId": "user-1-id", "userName": "A", "meeting_password": PASSWORD},
        )
        assert ok["success"] is True
        bad = await b.emit_with_ack(
            "join-meeting",
            {
                "meetingId": MEETING,
                "userId": "user-2-id",
                "userName": "B",
                "meeting_password": WRONG_PASSWORD,
            },
        )
        assert bad["error"]["code"] == "INVALID_PASSWORD"
        ok_b = await b.emit_with_ack(
            "join-meeting",
            {"meetingId": MEETING, "userId": "user-2-id", "userName": "B", "meeting_password": PASSWORD},
        )
        assert ok_b["success"] is True
        await a.wait_for_event("participant-joined")
        await a.emit_with_ack("chat-message", {"text": "hello"})
        # A failing handler (forbidden userId) with the password in the payload.
        await b.emit_with_ack(
            "join-meeting",
            {"meetingId": MEETING, "userId": "user-1-id", "userName": "B", "meeting_password": PASSWORD},
        )
        await b.emit_with_ack("leave-meeting", {})
        await a.wait_for_event("participant-left")
        metrics.append(await _text(f"{edge.url}/metrics"))
        metrics.append(await _text(rs.metrics_url))

    # Both processes have exited: every line they wrote has been read.
    assert rs.returncode is not None and edge.returncode is not None
    print(f"searched {len(rs.lines)} room service and {len(edge.lines)} edge lines")
    haystacks = {
        "room service output": "\n".join(line.text for line in rs.lines),
        "edge output": "\n".join(line.text for line in edge.lines),
        "metrics": "\n".join(metrics),
        "grpc replies": "\n".join(replies),
        "client events": "\n".join(json.dumps(e.args) for client in (a, b, c) for e in client.events),
        "acks": json.dumps([ok, bad, ok_b]),
    }
    assert all(haystacks.values())
    # The search is real: what is not secret does show up where expected.
    assert MEETING in haystacks["room service output"] and "Sent meeting-joined" in haystacks["edge output"]
    assert "INVALID_PASSWORD" in haystacks["metrics"]
    leaks = [
        (name, where)
        for name, secret in secrets.items()
        for where, text in haystacks.items()
        if secret in text
    ]
    assert leaks == []

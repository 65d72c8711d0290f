"""Helpers shared by the fault tests: joining, the room service's truth, timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClient

MEETING = "test-meeting-123"


async def join(client: JsClient, user: str, *, meeting: str = MEETING, ack_within: float = 10.0) -> str:
    """`join-meeting` with an ack; returns the participant id."""
    reply = await client.emit_with_ack(
        "join-meeting", {"meetingId": meeting, "userId": user, "userName": f"Name {user}"}, timeout=ack_within
    )
    assert reply["success"], reply
    return str(reply["participantId"])


async def connect_and_join(client: JsClient, url: str, user: str, **options: Any) -> str:
    """Connects (websocket unless told otherwise) and joins the demo meeting."""
    options.setdefault("transports", ["websocket"])
    await client.connect(url, **options)
    return await join(client, user)


@asynccontextmanager
async def room_stub(address: str) -> AsyncIterator[pb_grpc.RoomServiceStub]:
    """A RoomService stub on `address` (closed on exit)."""
    async with grpc.aio.insecure_channel(address) as channel:
        yield pb_grpc.RoomServiceStub(channel)


async def participant_ids(stub: pb_grpc.RoomServiceStub, meeting: str = MEETING) -> set[str]:
    """The truth: who the room service says is in the room."""
    reply = await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=meeting), timeout=5)
    return {p.participant_id for p in reply.snapshot.participants}


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.1, what: str = "condition"
) -> float:
    """Polls `check` until true; returns the seconds it took. Fails after `within`."""
    started = time.monotonic()
    deadline = started + within
    while True:
        try:
            if await check():
                return time.monotonic() - started
        except grpc.aio.AioRpcError:
            pass  # the service may be coming back: keep polling until the deadline
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within}s")
        await asyncio.sleep(interval)


def left_payload(pid: str, reason: str | None = None) -> Callable[[Any], bool]:
    """Predicate for a `participant-left` about `pid` (and `reason` when given)."""

    def check(data: Any) -> bool:
        return (
            isinstance(data, dict)
            and data.get("participantId") == pid
            and (reason is None or data.get("reason") == reason)
        )

    return check


def about(pid: str) -> Callable[[Any], bool]:
    """Predicate for an event about participant `pid`."""
    return lambda data: isinstance(data, dict) and data.get("participantId") == pid


def report(label: str, seconds: float) -> None:
    """Prints a measured recovery time (collected for the report; pytest -s shows it)."""
    print(f"[recovery] {label}: {seconds:.2f}s")


async def readyz(url: str) -> int:
    """The edge's /readyz status code."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status


async def wait_for_ready(url: str, *, within: float) -> float:
    """Polls the edge's /readyz until it answers 200; returns the seconds it took."""

    async def ready() -> bool:
        return await readyz(url) == 200

    return await wait_until(ready, within=within, what=f"{url} ready")

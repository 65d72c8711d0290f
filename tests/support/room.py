"""The demo meetings, joining one from a client, refusals, and the room service's truth.

`join` and `refused` take either test client (a `tests.support.received.RecordingClient`:
the JS client's handle or the in-process python-socketio one); the truth comes from the
room service itself (ListParticipants), never from a client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.received import RecordingClient

MEETING = "test-meeting-123"
"""The open demo meeting."""
LOCKED_MEETING = "test-meeting-locked"
"""The demo meeting with a password."""
PASSWORD = "password123"
"""Its password."""


def join_payload(
    user: str, meeting: str = MEETING, *, name: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A `join-meeting` payload; the display name defaults to the user id in title case."""
    return {"meetingId": meeting, "userId": user, "userName": name or user.title(), **extra}


async def join(
    client: RecordingClient,
    user: str,
    meeting: str = MEETING,
    *,
    url: str | None = None,
    name: str | None = None,
    ack: bool = True,
    within: float = 10.0,
    **extra: Any,
) -> dict[str, Any]:
    """Joins `meeting` as `user` (connecting to `url` over WebSocket first when given and
    not connected yet); returns the `meeting-joined` payload (`participantId`,
    `participants`, ...), failing the test unless the join succeeded.

    With `ack=False` the client emits without an acknowledgement, as the seed frontend
    does, and only the `meeting-joined` event tells it it is in.
    """
    if url is not None and not client.connected:
        await client.connect(url, transports=["websocket"])
    start = client.mark()
    payload = join_payload(user, meeting, name=name, **extra)
    if ack:
        reply = await client.emit_with_ack("join-meeting", payload, timeout=within)
        assert reply["success"] is True, (user, reply)
    else:
        await client.emit("join-meeting", payload)
    event = await client.wait_for_event("meeting-joined", start=start, timeout=within)
    data: dict[str, Any] = event.data
    return data


async def join_seen(
    newcomer: RecordingClient,
    user: str,
    *watchers: RecordingClient,
    url: str | None = None,
    within: float = 10.0,
) -> str:
    """Joins `newcomer` as `user` (see `join`) and waits until each of `watchers` has been
    told (`participant-joined`); returns the new participant id."""
    marks = [watcher.mark() for watcher in watchers]
    pid = str((await join(newcomer, user, url=url))["participantId"])
    for watcher, mark in zip(watchers, marks, strict=True):
        await watcher.wait_for_event("participant-joined", about(pid), start=mark, timeout=within)
    return pid


async def seed_pair(
    js: Any, url_one: str, url_two: str, **options: Any
) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """The seed's two users in the meeting: User One on `url_one`, then User Two on
    `url_two`, each joined as the seed frontend joins (no ack), and User One has seen
    User Two arrive. Returns both clients (from the pool `js`) and both `meeting-joined`."""
    user1, user2 = js.client("user1"), js.client("user2")
    await user1.connect(url_one, **options)
    await user2.connect(url_two, **options)
    first = await join(user1, "user-1-id", name="User One", ack=False)
    second = await join(user2, "user-2-id", name="User Two", ack=False)
    await user1.wait_for_event("participant-joined", start=0)
    return user1, user2, first, second


async def refused(client: RecordingClient, event: str, payload: Any, code: str) -> dict[str, Any]:
    """Sends `event`; asserts the acknowledgement and the `error` event both carry `code`.
    Returns the error."""
    start = client.mark()
    reply = await client.emit_with_ack(event, payload)
    assert reply["success"] is False, reply
    assert reply["error"]["code"] == code, reply
    error = await client.wait_for_event("error", start=start)
    data: dict[str, Any] = error.data
    assert data["code"] == code, data
    return data


@asynccontextmanager
async def room_stub(address: str) -> AsyncIterator[pb_grpc.RoomServiceAsyncStub]:
    """A RoomService stub on `address` (closed on exit)."""
    async with grpc.aio.insecure_channel(address) as channel:
        yield pb_grpc.RoomServiceStub(channel)


async def room_snapshot(stub: pb_grpc.RoomServiceAsyncStub, meeting: str = MEETING) -> pb.RoomSnapshot:
    """The room as the room service holds it."""
    reply = await stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=meeting), timeout=10)
    return reply.snapshot


async def truth(stub: pb_grpc.RoomServiceAsyncStub, meeting: str = MEETING) -> set[str]:
    """Who is in the room, per the room service: its participant ids."""
    return {p.participant_id for p in (await room_snapshot(stub, meeting)).participants}


def about(pid: str) -> Callable[[Any], bool]:
    """Predicate for an event about participant `pid`."""
    return lambda data: isinstance(data, dict) and data.get("participantId") == pid


def left_payload(pid: str, reason: str | None = None) -> Callable[[Any], bool]:
    """Predicate for a `participant-left` about `pid` (and `reason` when given)."""
    return lambda data: about(pid)(data) and (reason is None or data.get("reason") == reason)

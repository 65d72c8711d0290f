"""Property-based fuzzing of every Socket.IO event handler of a real edge.

A fuzzing socket that has joined the demo meeting (as a plain participant, not the host)
sends each client event with arbitrary arguments: no argument, several, scalars, lists,
binary, nested objects, and objects with the real field names holding values of every
type and size. Properties, for every input:

- the edge answers the acknowledgement with `{success, ...}`; a refusal carries one of
  the stable codes (never INTERNAL) and a message;
- a refused input changes nothing in the room (the room service's roster, media states
  and event sequence are as before);
- the edge and the socket stay up (the next example uses the same socket).

`make test` runs a bounded budget; `make fuzz` (`-m slow_fuzz`) a long one.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.codes import ErrorCode
from tests.support.processes import EdgeProcess, RoomServiceProcess, start_edge
from tests.support.room import room_snapshot

MEETING = "test-meeting-123"
EVENTS = (
    "join-meeting",
    "leave-meeting",
    "update-media",
    "chat-message",
    "kick-participant",
    "end-meeting",
    "webrtc-offer",
    "webrtc-answer",
    "webrtc-ice-candidate",
)
FIELDS = (
    "meetingId",
    "userId",
    "userName",
    "meeting_password",
    "audio",
    "video",
    "screen",
    "text",
    "targetParticipantId",
    "participantId",
    "sdp",
    "candidate",
)
REFUSAL_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL.value}

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=32)
    | st.sampled_from(["", " ", "\x00", "\u202e", MEETING, "user-1-id", "test-meeting-locked", "a" * 129])
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_values = values | st.text(min_size=100, max_size=3000)
payloads = st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6).flatmap(
    lambda known: st.dictionaries(st.text(max_size=12), values, max_size=3).map(
        lambda extra: {**extra, **known}
    )
)
arguments = st.one_of(
    st.just(()),
    payloads.map(lambda p: (p,)),
    values.map(lambda v: (v,)),
    st.lists(values | payloads, min_size=2, max_size=3).map(tuple),
)
unknown_events = st.text(min_size=1, max_size=30).filter(
    lambda name: name not in EVENTS and name not in {"connect", "disconnect", "connect_error", "message"}
)
# Valid payloads; the fuzzer breaks one field at a time so that inputs get past the
# first check and reach the deeper ones (sessions, the RPC, the room service's rules).
VALID: dict[str, dict[str, Any]] = {
    "join-meeting": {"meetingId": MEETING, "userId": "fuzzer", "userName": "Fuzzer", "audio": True},
    "leave-meeting": {"meetingId": MEETING},
    "update-media": {"audio": False, "video": True, "screen": False},
    "chat-message": {"text": "hello"},
    "kick-participant": {"participantId": "no-such-participant"},
    "end-meeting": {},
    "webrtc-offer": {"targetParticipantId": "no-such-participant", "sdp": {"type": "offer", "sdp": "v=0"}},
    "webrtc-answer": {"targetParticipantId": "no-such-participant", "sdp": {"type": "answer", "sdp": "v=0"}},
    "webrtc-ice-candidate": {"targetParticipantId": "no-such-participant", "candidate": {"candidate": "c"}},
}


@st.composite
def near_valid(draw: st.DrawFn, event: str) -> tuple[Any, ...]:
    payload = dict(VALID[event])
    keys = sorted(set(payload) | set(FIELDS))
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2, unique=True)):
        if key in payload and draw(st.booleans()):
            del payload[key]
        else:
            payload[key] = draw(field_values)
    return (payload,)


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """An event name (one in ten unknown) and its arguments (half of them near-valid)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(unknown_events), draw(arguments)
    event = draw(st.sampled_from(EVENTS))
    return event, draw(near_valid(event) if draw(st.booleans()) else arguments)


@dataclass
class Rig:
    """The edge, the room service stub and the fuzzing socket."""

    edge: EdgeProcess
    stub: pb_grpc.RoomServiceAsyncStub
    host: socketio.AsyncClient
    fuzzer: socketio.AsyncClient
    seen: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    async def room(self) -> tuple[Any, ...]:
        """What must not change: roster with media, and the event position."""
        snap = await room_snapshot(self.stub, MEETING)
        people = sorted((p.participant_id, p.user_id, p.user_name, str(p.media)) for p in snap.participants)
        return (tuple(people), snap.position.sequence, snap.position.epoch)

    async def ensure_joined(self) -> None:
        """(Re)joins the fuzzing socket after an input that legitimately moved it."""
        reply = await self.fuzzer.call(
            "join-meeting", {"meetingId": MEETING, "userId": "fuzzer", "userName": "Fuzzer"}, timeout=10
        )
        assert reply["success"] is True, reply


async def _client(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


@pytest.fixture
async def rig(room_service: RoomServiceProcess) -> AsyncIterator[Rig]:
    # High rate limits: the fuzzer must reach the handlers, not the limiter.
    unlimited = ("--events-per-second", "100000", "--event-burst", "100000")
    edge = await start_edge(room_service.grpc_address, *unlimited, name="edge-fuzz")
    channel = grpc.aio.insecure_channel(room_service.grpc_address)
    host = await _client(edge.url)
    fuzzer = await _client(edge.url)
    rig = Rig(edge, pb_grpc.RoomServiceStub(channel), host, fuzzer)
    try:
        assert (
            await host.call("join-meeting", {"meetingId": MEETING, "userId": "user-1-id", "userName": "Host"})
        )["success"]
        await rig.ensure_joined()
        yield rig
        await _alive(rig)
        print("\nSocket.IO fuzz outcomes (event, result): count")
        for (event, result), count in sorted(rig.outcomes.items()):
            print(f"  {event:24} {result:18} {count}")
        assert set(rig.seen) >= set(EVENTS), f"events never fuzzed: {set(EVENTS) - set(rig.seen)}"
    finally:
        for client in (host, fuzzer):
            await client.disconnect()
        await channel.close(None)
        await edge.terminate()


async def check(rig: Rig, event: str, args: tuple[Any, ...]) -> None:
    """Sends one input and checks the properties."""
    before = await rig.room()
    reply = await rig.fuzzer.call(event, args if len(args) != 1 else args[0], timeout=10)
    rig.seen[event if event in EVENTS else "<unknown>"] += 1
    assert isinstance(reply, dict) and isinstance(reply.get("success"), bool), reply
    if reply["success"]:
        rig.outcomes[(event if event in EVENTS else "<unknown>", "ok")] += 1
        if not rig.fuzzer.connected:
            pytest.fail(f"{event} succeeded but the socket was dropped")
        await rig.ensure_joined()  # a valid leave/join may have moved it
        return
    error = reply["error"]
    assert error["code"] in REFUSAL_CODES, (event, args, reply)
    assert isinstance(error["message"], str) and error["message"], reply
    rig.outcomes[(event if event in EVENTS else "<unknown>", error["code"])] += 1
    after = await rig.room()
    if after != before:
        # A refused join-meeting may first have taken the socket out of its meeting
        # (it asked to switch meetings); anything else is a change by a refused input.
        assert event == "join-meeting", (event, args, reply, before, after)
        await rig.ensure_joined()


FAST = settings(
    max_examples=60 * (len(EVENTS) + 1),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    # The bounded budget in `make test` is the same every run, so CI never flakes on a
    # new seed; `make fuzz` explores with fresh seeds.
    derandomize=True,
)
SLOW = settings(FAST, max_examples=5000, derandomize=False)


async def _alive(rig: Rig) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{rig.edge.url}/healthz") as response:
        assert response.status == 200
    assert rig.edge.running
    assert rig.host.connected and rig.fuzzer.connected


@pytest.mark.timeout(300)
@FAST
@given(case=inputs())
async def test_fuzz_every_event(rig: Rig, case: tuple[str, tuple[Any, ...]]) -> None:
    await check(rig, *case)


@pytest.mark.slow_fuzz
@pytest.mark.timeout(3600)
@SLOW
@given(case=inputs())
async def test_fuzz_every_event_long(rig: Rig, case: tuple[str, tuple[Any, ...]]) -> None:
    await check(rig, *case)

"""Property-based fuzzing of every RoomService RPC of a real room service.

Requests are built from the proto descriptors: every field of every (nested) message gets
arbitrary values of its type (any text, huge text, any integer in range, unknown enum
numbers, out-of-range timestamps), and ids are sometimes the real ones. A second target
sends arbitrary bytes as the serialized request. Properties, for every input:

- the call ends with OK or a clear status (UNKNOWN/INTERNAL only for bytes that are not a
  protobuf message at all, which grpc.aio refuses while deserializing, before our code
  runs), and every refusal from our code carries the stable error code (ErrorInfo);
- a guarded room (a password-protected meeting with a participant in it) is unchanged;
- the service stays up (health SERVING at the end).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor as d
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.rpc_status import error_code_from
from tests.support.processes import RoomServiceProcess

SERVICE = pb.DESCRIPTOR.services_by_name["RoomService"]
METHODS = tuple(SERVICE.methods)
GUARDED = "test-meeting-locked"
OPEN = "test-meeting-123"
# RPCs that may legitimately change the guarded room when handed its id (an internal
# service may end a meeting, replace it, or re-announce sessions): they get random ids.
NO_REAL_IDS = {"UpsertMeeting", "EndMeeting", "RestoreSessions"}

_INT_RANGES = {
    d.FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    d.FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    d.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    d.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    d.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _text(real_ids: tuple[str, ...]) -> st.SearchStrategy[str]:
    base = st.text(max_size=40) | st.text(min_size=129, max_size=5000) | st.sampled_from(["", " ", "\x00"])
    return base | st.sampled_from(real_ids) if real_ids else base


def _scalar(f: d.FieldDescriptor, real_ids: tuple[str, ...]) -> st.SearchStrategy[Any]:
    if f.type == d.FieldDescriptor.TYPE_STRING:
        return _text(real_ids)
    if f.type == d.FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if f.type == d.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type in (d.FieldDescriptor.TYPE_DOUBLE, d.FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if f.type == d.FieldDescriptor.TYPE_FLOAT else 64)
    if f.type == d.FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        return st.sampled_from([v.number for v in f.enum_type.values]) | st.integers(-(2**31), 2**31 - 1)
    low, high = _INT_RANGES[f.type]
    return st.integers(low, high)


def _later(
    desc: d.Descriptor, real_ids: tuple[str, ...], depth: int
) -> Callable[[], st.SearchStrategy[dict[str, Any]]]:
    """`messages` of a nested type, built only when drawn (hypothesis wants a function)."""
    return lambda: messages(desc, real_ids, depth)


def messages(
    desc: d.Descriptor, real_ids: tuple[str, ...], depth: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary field values for a message type, as a dict for `_build`."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.type == d.FieldDescriptor.TYPE_MESSAGE:
            if depth >= 3:
                continue
            assert f.message_type is not None
            one = st.deferred(_later(f.message_type, real_ids, depth + 1))
        else:
            one = _scalar(f, real_ids)
        fields[f.name] = st.lists(one, max_size=3) if f.is_repeated else one
    return st.fixed_dictionaries({}, optional=fields)


def _build(cls: type[Message], values: dict[str, Any]) -> Message:
    msg = cls()
    for name, value in values.items():
        f = msg.DESCRIPTOR.fields_by_name[name]
        target = getattr(msg, name)
        if f.type == d.FieldDescriptor.TYPE_MESSAGE and isinstance(value, list):
            for item in value:
                sub = target.add()
                sub.CopyFrom(_build(type(sub), item))
        elif f.type == d.FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(_build(type(target), value))
        elif isinstance(value, list):
            target.extend(value)
        else:
            setattr(msg, name, value)
    return msg


@st.composite
def requests(draw: st.DrawFn) -> tuple[d.MethodDescriptor, Message]:
    method = draw(st.sampled_from(METHODS))
    real = () if method.name in NO_REAL_IDS else (GUARDED, OPEN, "user-1-id")
    values = draw(messages(method.input_type, real))
    cls = getattr(pb, method.input_type.name)
    try:
        return method, _build(cls, values)
    except ValueError:
        # e.g. a Timestamp beyond year 9999 is refused by protobuf on this side already;
        # the raw-bytes target covers what a foreign client could still send.
        return method, cls()


@dataclass
class Rig:
    channel: grpc.aio.Channel
    stub: pb_grpc.RoomServiceAsyncStub
    guarded_participant: str
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)

    async def guarded(self) -> tuple[Any, ...]:
        snap = (
            await self.stub.ListParticipants(pb.ListParticipantsRequest(meeting_id=GUARDED), timeout=5)
        ).snapshot
        meeting = (await self.stub.GetMeeting(pb.GetMeetingRequest(meeting_id=GUARDED), timeout=5)).meeting
        people = sorted((p.participant_id, p.user_name, str(p.media)) for p in snap.participants)
        return (tuple(people), snap.position.sequence, snap.position.epoch, meeting.SerializeToString())


@pytest.fixture
async def rig(room_service: RoomServiceProcess) -> AsyncIterator[Rig]:
    async with grpc.aio.insecure_channel(room_service.grpc_address) as channel:
        stub = pb_grpc.RoomServiceStub(channel)
        joined = await stub.Join(
            pb.JoinRequest(
                meeting_id=GUARDED, user_id="user-1-id", user_name="Host", password="password123",
                edge_id="fuzz-edge", socket_id="fuzz-socket",
            )
        )  # fmt: skip
        rig = Rig(channel, stub, joined.participant.participant_id)
        # Keep the fake edge's lease alive, or the reaper rightly removes its participant.
        beat = asyncio.create_task(_heartbeats(stub))
        try:
            yield rig
        finally:
            beat.cancel()
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        assert room_service.running
        print("\ngRPC fuzz outcomes (method, status[/code]): count")
        for (method, result), count in sorted(rig.outcomes.items()):
            print(f"  {method:20} {result:36} {count}")


async def _heartbeats(stub: pb_grpc.RoomServiceAsyncStub) -> None:
    while True:
        await stub.Heartbeat(pb.HeartbeatRequest(edge_id="fuzz-edge"), timeout=5)
        await asyncio.sleep(0.5)


async def _invoke(rig: Rig, method: d.MethodDescriptor, payload: bytes) -> tuple[grpc.StatusCode, Any]:
    path = f"/{SERVICE.full_name}/{method.name}"
    ident = bytes  # send and receive raw bytes, so any payload can be sent
    try:
        if method.server_streaming:
            call = rig.channel.unary_stream(path, request_serializer=ident, response_deserializer=ident)(
                payload, timeout=0.3
            )
            await call.read()
            call.cancel()
        else:
            await rig.channel.unary_unary(path, request_serializer=ident, response_deserializer=ident)(
                payload, timeout=5
            )
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc
    return grpc.StatusCode.OK, None


async def check(rig: Rig, method: d.MethodDescriptor, payload: bytes, *, raw: bool) -> None:
    before = await rig.guarded()
    code, exc = await _invoke(rig, method, payload)
    label = code.name
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        # Only a stream may wait: it is open and has nothing to say yet.
        assert method.server_streaming, (method.name, payload, exc)
    elif code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        # Only bytes that are no protobuf message at all: grpc.aio refuses them while
        # deserializing (UNKNOWN "DecodeError"), before any of our code runs.
        details = (exc.details() or "").lower()
        assert raw and ("decodeerror" in details or "deserializ" in details), (method.name, payload, details)
        label = f"{code.name}/not protobuf"
    elif code is not grpc.StatusCode.OK:
        reason = error_code_from(exc)
        assert reason is not None, (method.name, payload, code, exc.details())
        assert exc.details(), (method.name, payload)
        label = f"{code.name}/{reason.value}"
    rig.outcomes[(method.name, label)] += 1
    assert await rig.guarded() == before, (method.name, payload, code)


FAST = settings(
    max_examples=60 * len(METHODS),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
    # The bounded budget in `make test` is the same every run, so CI never flakes on a
    # new seed; `make fuzz` explores with fresh seeds.
    derandomize=True,
)
RAW = settings(FAST, max_examples=20 * len(METHODS))


@pytest.mark.timeout(300)
@FAST
@given(case=requests())
async def test_fuzz_every_rpc(rig: Rig, case: tuple[d.MethodDescriptor, Message]) -> None:
    method, request = case
    await check(rig, method, request.SerializeToString(), raw=False)


@pytest.mark.timeout(300)
@RAW
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=256))
async def test_fuzz_every_rpc_with_raw_bytes(rig: Rig, method: d.MethodDescriptor, payload: bytes) -> None:
    await check(rig, method, payload, raw=True)


@pytest.mark.slow_fuzz
@pytest.mark.timeout(3600)
@settings(FAST, max_examples=5000, derandomize=False)
@given(case=requests())
async def test_fuzz_every_rpc_long(rig: Rig, case: tuple[d.MethodDescriptor, Message]) -> None:
    method, request = case
    await check(rig, method, request.SerializeToString(), raw=False)

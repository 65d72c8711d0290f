"""RoomService.Commands: the edge's per-socket commands as messages over one long-lived
bidirectional stream, each run by the servicer method its unary RPC runs.

Per stream: one reader takes commands off the stream and starts a task for each (gRPC
starts one per unary call: commands run concurrently, as calls do); each task applies the
command's `timeout` (past it the work is cancelled, as a unary deadline cancels the handler)
and queues its reply; the handler itself is the one writer (grpc.aio allows one
outstanding write), so replies go out in completion order. Errors get the very status a
unary call would (error_mapping.status_for). Each command is counted in the server's RPC
metrics as a unary call of its own method (Join, Leave, ...): per-method dashboards and
alerts read commands and calls alike; the stream itself counts as method Commands.

When the service stops (`stop`, with the other streams), every stream answers further
commands UNAVAILABLE without an ErrorInfo (what a call refused by a stopping server gets:
the edge may retry it elsewhere), finishes the commands in flight, then ends, so that
edges reopen their streams on a serving replica.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from prometheus_client import CollectorRegistry

from meeting.v1 import room_service_pb2 as pb
from meeting_common.grpc_metrics import UNARY, ServerMetrics
from meeting_common.grpc_metrics.families import MethodSeries, Rpc
from meeting_common.rpc_status import CODE_FOR_NUMBER
from room_service.api.error_mapping import refusals, status_for
from room_service.domain.errors import invalid

log = logging.getLogger("room_service.api")

_SERVICE = pb.DESCRIPTOR.services_by_name["RoomService"]
_OK = grpc.StatusCode.OK

# What a unary call gets from gRPC itself past its deadline, and from a stopping server.
_DEADLINE_EXCEEDED = status_pb2.Status(
    code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0], message="Deadline Exceeded"
)
_STOPPING = status_pb2.Status(
    code=grpc.StatusCode.UNAVAILABLE.value[0], message="The room service is stopping"
)


@dataclass(frozen=True, slots=True)
class _Command:
    """One kind of command: the servicer method that runs it and its metric series."""

    field: str
    """The command's field in CommandsRequest, and its reply's in CommandsResponse."""
    method: str
    """The RPC's name (Join, ...): the metric's `grpc_method` and the log's method."""
    run: Callable[[Any, Any], Awaitable[Message]]
    """The servicer's method, undecorated: (request, context) -> reply, raising on error."""
    series: MethodSeries
    """The unary RPC's server series, bound once."""


class _Stream:
    """One open Commands stream: its replies waiting for the writer, its commands running."""

    __slots__ = ("in_flight", "reading", "replies")

    def __init__(self) -> None:
        # None wakes the writer to check whether the stream is done.
        self.replies: asyncio.Queue[pb.CommandsResponse | None] = asyncio.Queue()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.reading = True


class CommandStreams:
    """Serves every Commands stream of one servicer."""

    def __init__(self, servicer: object, metrics: ServerMetrics | None = None) -> None:
        metrics = metrics if metrics is not None else ServerMetrics(CollectorRegistry())
        rpc_for_input = {m.input_type.full_name: m.name for m in _SERVICE.methods}
        results = pb.CommandsResponse.DESCRIPTOR.fields_by_name
        self._commands: dict[str, _Command] = {}
        for field in pb.CommandsRequest.DESCRIPTOR.oneofs_by_name["command"].fields:
            command, result = field.message_type, results[field.name].message_type
            assert command is not None, field.name
            method = rpc_for_input[command.full_name]
            assert result is not None and result.name == f"{method}Response", field.name
            # The method the unary RPC runs, without the decorator that turns its errors
            # into an aborted call: here they become the reply's `error`.
            run = inspect.unwrap(getattr(type(servicer), method))
            self._commands[field.name] = _Command(
                field.name,
                method,
                functools.partial(run, servicer),
                metrics.method(UNARY, f"/{_SERVICE.full_name}/{method}"),
            )
        self._streams: set[_Stream] = set()
        self._stopping = False

    def stop(self) -> None:
        """The service is stopping: each stream ends once its commands in flight are answered."""
        self._stopping = True
        for stream in self._streams:
            stream.replies.put_nowait(None)

    async def serve(self, context: Any) -> None:
        """Serves one stream until the edge closes it or the service stops (the writer)."""
        if self._stopping:
            return  # opened on a stopping replica: ends at once, the edge opens another
        stream = _Stream()
        self._streams.add(stream)
        reader = asyncio.create_task(self._read(context, stream))
        try:
            while True:
                reply = await stream.replies.get()
                if reply is not None:
                    await context.write(reply)
                if (self._stopping or not stream.reading) and not stream.in_flight and stream.replies.empty():
                    return
        finally:
            # The edge went away (the call was cancelled) or the stream is done: commands
            # still running are cancelled, as a unary handler is when its call ends.
            self._streams.discard(stream)
            reader.cancel()
            for task in stream.in_flight:
                task.cancel()

    async def _read(self, context: Any, stream: _Stream) -> None:
        try:
            while True:
                request = await context.read()
                if request is grpc.aio.EOF:  # type: ignore[attr-defined]  # missing in grpc-stubs
                    return
                if self._stopping:
                    stream.replies.put_nowait(pb.CommandsResponse(call_id=request.call_id, error=_STOPPING))
                    continue
                stream.in_flight.add(asyncio.create_task(self._run(request, stream)))
        except Exception as error:  # the call broke; the writer ends once the commands are done
            log.debug("Commands stream read failed", extra={"error": repr(error)})
        finally:
            stream.reading = False
            stream.replies.put_nowait(None)

    async def _run(self, request: pb.CommandsRequest, stream: _Stream) -> None:
        reply = pb.CommandsResponse(call_id=request.call_id)
        try:
            name = request.WhichOneof("command")
            command = self._commands.get(name) if name is not None else None
            if command is None:
                reply.error.CopyFrom(status_for("Commands", invalid("command is required")))
            else:
                await self._execute(command, request, reply)
        finally:
            # Both in one step: the writer, woken by the reply, sees the command done.
            stream.in_flight.discard(asyncio.current_task())
            stream.replies.put_nowait(reply)

    async def _execute(
        self, command: _Command, request: pb.CommandsRequest, reply: pb.CommandsResponse
    ) -> None:
        """Runs one command into `reply`, counted as one unary call of its method."""
        rpc = Rpc(command.series)
        rpc.received()
        timeout = request.timeout.seconds + request.timeout.nanos / 1e9
        deadline = asyncio.timeout(timeout if timeout > 0 else None)
        try:
            async with deadline:
                result = await command.run(getattr(request, command.field), None)
        except Exception as exc:
            if deadline.expired():
                refusals.late(command.method, 0.0)
                status = _DEADLINE_EXCEEDED
            else:
                status = status_for(command.method, exc)
            reply.error.CopyFrom(status)
            rpc.finish(CODE_FOR_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN))
            return
        except asyncio.CancelledError:
            rpc.finish(grpc.StatusCode.CANCELLED)
            raise
        answer = getattr(reply, command.field)
        answer.SetInParent()  # an empty reply (SendSignalResponse) is still the answer
        answer.CopyFrom(result)
        rpc.sent()
        rpc.finish(_OK)

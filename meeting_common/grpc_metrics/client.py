"""Client side: `ClientMetrics(registry).start(...)` reports one call made on a grpc.aio channel.

No interceptor: grpc.aio runs every intercepted unary call in an extra task and relays each
streamed message through one more async generator. The caller records its calls instead,
at the one place it makes them:

    rpc = metrics.start(UNARY, "/meeting.v1.RoomService/Join")
    reply = await rpc.response(stub.Join(request))              # unary, client stream
    stream = rpc.responses(stub.WatchRoom(request))             # server, bidi stream
    stub.Collect(rpc.requests(iterator))                        # a request stream, counted
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio
from prometheus_client import CollectorRegistry, Histogram

from meeting_common.grpc_metrics.families import SERVER_STREAM, UNARY, Rpc, SideMetrics

T = TypeVar("T")
R = TypeVar("R")


class ClientRpc(Rpc):
    """One call as the client reports it: started at creation, ended exactly once."""

    __slots__ = ("_tasks",)

    def __init__(self, metrics: ClientMetrics, kind: str, full_method: str) -> None:
        super().__init__(metrics.method(kind, full_method))
        self._tasks = metrics.tasks

    def requests(self, messages: Any) -> AsyncIterator[Any]:
        """The request stream to pass to the call, counting each message gRPC has sent."""
        return self.count_sent(messages)

    async def response(self, call: Awaitable[T]) -> T:
        """Awaits a single-response call (unary or client-streaming): its reply, or its error."""
        try:
            reply = await call
        except grpc.aio.AioRpcError as error:
            self.finish(error.code())
            raise
        except asyncio.CancelledError:
            self.finish(grpc.StatusCode.CANCELLED)
            raise
        self.received()
        self.finish(grpc.StatusCode.OK)
        return reply

    def responses(self, call: grpc.aio.Call) -> CountedStream[Any]:
        """A response-streaming call, read through a counter (iterate it, cancel it)."""
        call.add_done_callback(self._ended)
        return CountedStream(call, self)

    def _ended(self, call: Any) -> None:
        """The call ended where no reader saw it (cancelled, or left unread to its end)."""
        if call.cancelled():
            self.finish(grpc.StatusCode.CANCELLED)
            return
        with contextlib.suppress(RuntimeError):  # no running loop: interpreter exit
            task = asyncio.get_running_loop().create_task(self._finish_from(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _finish_from(self, call: Any) -> None:
        self.finish(await call.code())


class CountedStream(Generic[R]):
    """A response stream that counts each message as the reader takes it and records how
    the stream ended. One awaited read per message, no generator in between."""

    __slots__ = ("_call", "_rpc")

    def __init__(self, call: Any, rpc: ClientRpc) -> None:
        self._call = call
        self._rpc = rpc

    def __aiter__(self) -> CountedStream[R]:
        return self

    async def __anext__(self) -> R:
        message = await self.read()
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]  # missing in grpc-stubs
            raise StopAsyncIteration
        return message  # type: ignore[no-any-return]

    async def read(self) -> Any:
        """The next message, or `grpc.aio.EOF` once the stream ended well (as `call.read()`)."""
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as error:
            self._rpc.finish(error.code())
            raise
        except asyncio.CancelledError:
            self._rpc.finish(grpc.StatusCode.CANCELLED)
            raise
        if message is grpc.aio.EOF:  # type: ignore[attr-defined]  # missing in grpc-stubs
            self._rpc.finish(grpc.StatusCode.OK)
        else:
            self._rpc.received()
        return message

    def cancel(self) -> bool:
        """Cancels the call (recorded as Canceled unless it had ended)."""
        return self._call.cancel()  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class ClientMetrics(SideMetrics):
    """`grpc_client_*` metrics in `registry`, recorded by the calls `start` reports."""

    SIDE = "client"

    def __init__(
        self, registry: CollectorRegistry, *, buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS
    ) -> None:
        super().__init__(registry, buckets=buckets)
        # Status look-ups scheduled by done-callbacks, held so they are not collected early.
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, kind: str, full_method: str) -> ClientRpc:
        """Reports a call of `full_method` (`/package.Service/Method`) as started now; a
        single request is counted as sent (a request stream through `requests()`)."""
        rpc = ClientRpc(self, kind, full_method)
        if kind in (UNARY, SERVER_STREAM):
            rpc.sent()
        return rpc

"""Client side: `ClientMetrics(registry).interceptors()` for a grpc.aio channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from prometheus_client import CollectorRegistry, Histogram

from meeting_common.grpc_metrics.families import (
    BIDI_STREAM,
    CLIENT_STREAM,
    SERVER_STREAM,
    UNARY,
    Families,
    Rpc,
    SideMetrics,
)
from meeting_common.grpc_types import StreamStreamClientInterceptor as _StreamStreamInterceptor
from meeting_common.grpc_types import StreamUnaryClientInterceptor as _StreamUnaryInterceptor
from meeting_common.grpc_types import UnaryStreamClientInterceptor as _UnaryStreamInterceptor
from meeting_common.grpc_types import UnaryUnaryClientInterceptor as _UnaryUnaryInterceptor


async def _finish_from(rpc: Rpc, call: Any) -> None:
    rpc.finish(await call.code())


class _ClientInterceptor:
    """Shared by the four client interceptors (grpc.aio sorts interceptors by class)."""

    def __init__(self, families: Families, tasks: set[asyncio.Task[None]]) -> None:
        self._families = families
        self._tasks = tasks

    async def _start(
        self, kind: str, continuation: Callable[..., Any], details: Any, request: Any
    ) -> tuple[Rpc, Any]:
        """Starts the call, counting a single request as sent."""
        rpc = Rpc(self._families, kind, details.method)
        if kind in (CLIENT_STREAM, BIDI_STREAM) and request is not None:
            request = rpc.count_sent(request)  # None means the caller uses call.write()
        try:
            call = await continuation(details, request)
        except grpc.aio.AioRpcError as error:
            rpc.finish(error.code())
            raise
        except asyncio.CancelledError:
            rpc.finish(grpc.StatusCode.CANCELLED)
            raise
        if kind in (UNARY, SERVER_STREAM):
            rpc.sent()
        return rpc, call

    async def _single_response(self, rpc: Rpc, call: Any) -> Any:
        """Waits for the call to end; the caller then awaits the same (finished) call."""
        try:
            await call
        except grpc.aio.AioRpcError as error:
            rpc.finish(error.code())
            return call
        except asyncio.CancelledError:
            rpc.finish(grpc.StatusCode.CANCELLED)
            raise
        rpc.received()
        rpc.finish(grpc.StatusCode.OK)
        return call

    def _stream_responses(self, rpc: Rpc, call: Any) -> AsyncIterator[Any]:
        """Relays the responses, counting each; the status is recorded when the stream
        ends, or from a done-callback when the caller cancels or stops reading."""

        def done(finished: Any) -> None:
            if finished.cancelled():
                rpc.finish(grpc.StatusCode.CANCELLED)
                return
            with contextlib.suppress(RuntimeError):  # no running loop: interpreter exit
                task = asyncio.get_running_loop().create_task(_finish_from(rpc, finished))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        call.add_done_callback(done)
        return self._relay(rpc, call)

    @staticmethod
    async def _relay(rpc: Rpc, call: Any) -> AsyncIterator[Any]:
        try:
            async for response in call:
                rpc.received()
                yield response
        except grpc.aio.AioRpcError as error:
            rpc.finish(error.code())
            raise
        except asyncio.CancelledError:
            rpc.finish(grpc.StatusCode.CANCELLED)
            raise
        rpc.finish(grpc.StatusCode.OK)


class _UnaryUnary(_ClientInterceptor, _UnaryUnaryInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        rpc, call = await self._start(UNARY, continuation, client_call_details, request)
        return await self._single_response(rpc, call)


class _UnaryStream(_ClientInterceptor, _UnaryStreamInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        rpc, call = await self._start(SERVER_STREAM, continuation, client_call_details, request)
        return self._stream_responses(rpc, call)


class _StreamUnary(_ClientInterceptor, _StreamUnaryInterceptor):
    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        rpc, call = await self._start(CLIENT_STREAM, continuation, client_call_details, request_iterator)
        return await self._single_response(rpc, call)


class _StreamStream(_ClientInterceptor, _StreamStreamInterceptor):
    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        rpc, call = await self._start(BIDI_STREAM, continuation, client_call_details, request_iterator)
        return self._stream_responses(rpc, call)


class ClientMetrics(SideMetrics):
    """`grpc_client_*` metrics in `registry`, recorded by `interceptors()`."""

    SIDE = "client"

    def __init__(
        self, registry: CollectorRegistry, *, buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS
    ) -> None:
        super().__init__(registry, buckets=buckets)
        # Status look-ups scheduled by done-callbacks, held so they are not collected early.
        self._tasks: set[asyncio.Task[None]] = set()

    def interceptors(self) -> list[Any]:
        """The interceptors to pass to `grpc.aio.insecure_channel(..., interceptors=...)`
        (or `secure_channel`): one per RPC shape, as grpc.aio sorts them by class."""
        return [
            kind(self._families, self._tasks)
            for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
        ]

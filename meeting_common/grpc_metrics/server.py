"""Server side: `ServerMetrics(registry).wrap` instruments a method's handler once, when it is
registered (see `meeting_common.grpc_wrapping.WrappingServer`), instead of per call."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any, Final

import grpc
import grpc.aio

from meeting_common.grpc_metrics.families import MethodSeries, Rpc, SideMetrics, rpc_type
from meeting_common.grpc_types import RpcMethodHandler as _Handler
from meeting_common.grpc_wrapping import behavior_of

# A client's expired deadline often reaches the server as a cancellation (RST_STREAM) just
# before the server's own timer fires; so close to the deadline, it is the deadline.
_DEADLINE_SLACK_SECONDS: Final = 0.1


def _interrupted_code(context: Any) -> grpc.StatusCode:
    """The status of a handler interrupted by cancellation: its deadline or the client."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= _DEADLINE_SLACK_SECONDS:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _server_code(context: _ObservedContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the server sends for a handler that returned or raised `error`."""
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return _interrupted_code(context)
    code = context.code()
    if error is None:
        return code or grpc.StatusCode.OK
    return code if code not in (None, grpc.StatusCode.OK) else grpc.StatusCode.UNKNOWN


class _ObservedContext:
    """The servicer context as the handler sees it: counts reader/writer-API messages and
    remembers the code set, which synchronous contexts cannot report."""

    __slots__ = ("_code", "_context", "_rpc")

    def __init__(self, context: Any, rpc: Rpc) -> None:
        self._context = context
        self._rpc = rpc
        self._code: grpc.StatusCode | None = None

    def code(self) -> grpc.StatusCode | None:
        if hasattr(self._context, "code"):
            return self._context.code()  # type: ignore[no-any-return]
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code
        self._context.set_code(code)

    # abort() sends the status before it raises, so record first: whoever sees the status
    # then also sees the metric.
    def abort(self, code: grpc.StatusCode, *args: Any, **kwargs: Any) -> Any:
        self._code = code
        self._rpc.finish(code)
        return self._context.abort(code, *args, **kwargs)  # raises, or a coroutine that will

    def abort_with_status(self, status: grpc.Status) -> Any:
        self._code = status.code
        self._rpc.finish(status.code)
        return self._context.abort_with_status(status)

    async def read(self) -> Any:
        message = await self._context.read()
        if message is not grpc.aio.EOF:  # type: ignore[attr-defined]  # missing in grpc-stubs
            self._rpc.received()
        return message

    async def write(self, message: Any) -> None:
        await self._context.write(message)
        self._rpc.sent()

    # Asked on every call by our own handlers: forwarded without the __getattr__ detour.
    def time_remaining(self) -> float | None:
        return self._context.time_remaining()  # type: ignore[no-any-return]

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _instrument(handler: _Handler, series: MethodSeries) -> _Handler:
    """A copy of `handler` whose behaviour reports each call to `series`."""
    request_streaming, response_streaming = handler.request_streaming, handler.response_streaming
    behavior, factory = behavior_of(handler)
    is_async = inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)
    if not is_async and (request_streaming or response_streaming):
        # Synchronous streaming handlers run their iterators in the server's thread pool;
        # rare in an asyncio service, they pass through unmeasured.
        return handler

    def begin(request: Any, context: Any) -> tuple[Rpc, Any, _ObservedContext]:
        rpc = Rpc(series)
        if response_streaming and hasattr(context, "add_done_callback"):  # async contexts only
            # Covers ends the handler never sees, e.g. a cancel while a yield is being sent.
            # (A unary handler sees each of its ends, the cancellations included.)
            context.add_done_callback(lambda ctx: rpc.finish(_interrupted_code(ctx)))
        if request_streaming:
            request = rpc.count_received(request)
        else:
            rpc.received()
        return rpc, request, _ObservedContext(context, rpc)

    def end(rpc: Rpc, context: _ObservedContext) -> None:
        code = _server_code(context, None)
        if code is grpc.StatusCode.OK and not response_streaming:
            rpc.sent()
        rpc.finish(code)

    wrapped: Any
    if inspect.isasyncgenfunction(behavior):

        async def wrapped(request: Any, context: Any) -> AsyncIterator[Any]:
            rpc, request, observed = begin(request, context)
            try:
                async for response in behavior(request, observed):
                    yield response
                    rpc.sent()
            except BaseException as error:
                rpc.finish(_server_code(observed, error))
                raise
            end(rpc, observed)

    elif inspect.iscoroutinefunction(behavior):

        async def wrapped(request: Any, context: Any) -> Any:
            rpc, request, observed = begin(request, context)
            try:
                response = await behavior(request, observed)
            except BaseException as error:
                rpc.finish(_server_code(observed, error))
                raise
            end(rpc, observed)
            return response

    else:  # synchronous unary, run in the server's thread pool

        def wrapped(request: Any, context: Any) -> Any:
            rpc, request, observed = begin(request, context)
            try:
                response = behavior(request, observed)
            except BaseException as error:
                rpc.finish(_server_code(observed, error))
                raise
            end(rpc, observed)
            return response

    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class ServerMetrics(SideMetrics):
    """`grpc_server_*` metrics in `registry`, recorded by the handlers `wrap` returns."""

    SIDE = "server"

    def wrap(self, full_method: str, handler: _Handler) -> _Handler:
        """`handler` reporting every call of `full_method` (`/package.Service/Method`):
        pass it to `WrappingServer`, which wraps each method once when it is registered."""
        kind = rpc_type(handler.request_streaming, handler.response_streaming)
        return _instrument(handler, self.method(kind, full_method))

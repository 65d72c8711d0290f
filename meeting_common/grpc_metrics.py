"""gRPC metrics under go-grpc-prometheus names, as grpc.aio server and client interceptors.

Dashboards and alerts written for Go services (`grpc_server_handled_total{grpc_code="OK"}`
and friends) work unchanged against our tiers: the metric names, label names, `grpc_type`
values and CamelCase `grpc_code` values are the ones go-grpc-prometheus exports.

Server: `ServerMetrics(registry).interceptor()` goes into `grpc.aio.server(interceptors=...)`.
Client: `ClientMetrics(registry).interceptors()` goes into `grpc.aio.insecure_channel(...,
interceptors=...)`. Both handle async handlers/calls of the four RPC shapes; messages a
client writes with `call.write()` (instead of a request iterator) are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry, Counter, Histogram

if TYPE_CHECKING:  # grpc-stubs types these as generics; at run time they are not.
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStreamInterceptor = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnaryInterceptor = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStreamInterceptor = grpc.aio.StreamStreamClientInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStreamInterceptor = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnaryInterceptor = grpc.aio.StreamUnaryClientInterceptor
    _StreamStreamInterceptor = grpc.aio.StreamStreamClientInterceptor
    _Handler = grpc.RpcMethodHandler

UNARY: Final = "unary"
CLIENT_STREAM: Final = "client_stream"
SERVER_STREAM: Final = "server_stream"
BIDI_STREAM: Final = "bidi_stream"

# Go's codes.Code.String(); note Go spells CANCELLED "Canceled".
CODE_NAMES: Final[dict[grpc.StatusCode, str]] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def rpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The `grpc_type` label of an RPC shape."""
    if request_streaming:
        return BIDI_STREAM if response_streaming else CLIENT_STREAM
    return SERVER_STREAM if response_streaming else UNARY


def split_method(full_method: str | bytes) -> tuple[str, str]:
    """`/meeting.v1.RoomService/Join` -> (`meeting.v1.RoomService`, `Join`)."""
    text = full_method.decode() if isinstance(full_method, bytes) else full_method
    service, _, method = text.lstrip("/").rpartition("/")
    return (service, method) if service else ("unknown", method)


class _Families:
    """The five metric families of one side ("server" or "client")."""

    def __init__(self, side: str, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        prefix = f"grpc_{side}_"
        peer = "client" if side == "server" else "server"
        self.started = Counter(
            prefix + "started_total",
            f"Total number of RPCs started on the {side}.",
            labels,
            registry=registry,
        )
        self.handled = Counter(
            prefix + "handled_total",
            f"Total number of RPCs completed on the {side}, regardless of success or failure.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.handling_seconds = Histogram(
            prefix + "handling_seconds",
            f"Histogram of response latency (seconds) of gRPC that had been "
            f"application-level handled by the {side}.",
            labels,
            registry=registry,
            buckets=buckets,
        )
        self.msg_received = Counter(
            prefix + "msg_received_total",
            f"Total number of RPC stream messages received by the {side} from the {peer}.",
            labels,
            registry=registry,
        )
        self.msg_sent = Counter(
            prefix + "msg_sent_total",
            f"Total number of gRPC stream messages sent by the {side} to the {peer}.",
            labels,
            registry=registry,
        )

    def initialize(self, service: ServiceDescriptor) -> None:
        """Creates every series of `service`'s methods at zero, like Go's InitializeMetrics.

        Without this a series appears only after its first RPC, so `rate()` and `absent()`
        in alerts see nothing until then.
        """
        for method in service.methods:
            labels = (
                rpc_type(method.client_streaming, method.server_streaming),
                service.full_name,
                method.name,
            )
            self.started.labels(*labels)
            self.handling_seconds.labels(*labels)
            self.msg_received.labels(*labels)
            self.msg_sent.labels(*labels)
            for code_name in CODE_NAMES.values():
                self.handled.labels(*labels, code_name)


class _Rpc:
    """Reports one RPC: counts it started at creation and handled exactly once."""

    __slots__ = ("_families", "_finished", "_labels", "_received", "_sent", "_started_at")

    def __init__(self, families: _Families, kind: str, full_method: str | bytes) -> None:
        self._families = families
        self._labels = (kind, *split_method(full_method))
        self._received = families.msg_received.labels(*self._labels)
        self._sent = families.msg_sent.labels(*self._labels)
        self._finished = False
        families.started.labels(*self._labels).inc()
        self._started_at = time.perf_counter()

    def received(self) -> None:
        """One message came in."""
        self._received.inc()

    def sent(self) -> None:
        """One message went out."""
        self._sent.inc()

    def finish(self, code: grpc.StatusCode) -> None:
        """Records the final status; later calls are ignored (several paths may see the end)."""
        if self._finished:
            return
        self._finished = True
        self._families.handled.labels(*self._labels, CODE_NAMES.get(code, "Unknown")).inc()
        self._families.handling_seconds.labels(*self._labels).observe(time.perf_counter() - self._started_at)

    async def count_received(self, messages: Any) -> AsyncIterator[Any]:
        """Relays a sync or async iterable, counting each message as it is taken."""
        if hasattr(messages, "__aiter__"):
            async for message in messages:
                self.received()
                yield message
        else:
            for message in messages:
                self.received()
                yield message

    async def count_sent(self, messages: Any) -> AsyncIterator[Any]:
        """Relays a sync or async iterable, counting a message once the consumer asks for
        the next one (gRPC asks only after the previous write completed)."""
        if hasattr(messages, "__aiter__"):
            async for message in messages:
                yield message
                self.sent()
        else:
            for message in messages:
                yield message
                self.sent()


# --- server ---------------------------------------------------------------------------


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

    def __init__(self, context: Any, rpc: _Rpc) -> None:
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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


_FACTORIES: Final[dict[tuple[bool, bool], tuple[str, Callable[..., _Handler]]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _instrument(handler: _Handler, families: _Families, method: str) -> _Handler:
    """A copy of `handler` whose behaviour reports to `families`."""
    shape = (handler.request_streaming, handler.response_streaming)
    attribute, factory = _FACTORIES[shape]
    behavior: Any = getattr(handler, attribute)
    kind = rpc_type(*shape)
    request_streaming, response_streaming = shape
    is_async = inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)
    if not is_async and (request_streaming or response_streaming):
        # Synchronous streaming handlers run their iterators in the server's thread pool;
        # rare in an asyncio service, they pass through unmeasured.
        return handler

    def begin(request: Any, context: Any) -> tuple[_Rpc, Any, _ObservedContext]:
        rpc = _Rpc(families, kind, method)
        if hasattr(context, "add_done_callback"):  # async contexts only
            # Covers ends the handler never sees, e.g. a cancel while a yield is being sent.
            context.add_done_callback(lambda ctx: rpc.finish(_interrupted_code(ctx)))
        if request_streaming:
            request = rpc.count_received(request)
        else:
            rpc.received()
        return rpc, request, _ObservedContext(context, rpc)

    def end(rpc: _Rpc, context: _ObservedContext) -> None:
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


class _MetricsServerInterceptor(_ServerInterceptor):
    """Wraps every registered method's handler; unknown methods pass through untouched."""

    def __init__(self, families: _Families) -> None:
        self._families = families

    async def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _instrument(handler, self._families, handler_call_details.method)


class ServerMetrics:
    """`grpc_server_*` metrics in `registry`, recorded by `interceptor()`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> None:
        self._families = _Families("server", registry, buckets)

    def interceptor(self) -> _ServerInterceptor:
        """The interceptor to pass to `grpc.aio.server(interceptors=[...])`."""
        return _MetricsServerInterceptor(self._families)

    def initialize(self, service: ServiceDescriptor) -> None:
        """Creates all of `service`'s series at zero (call once per registered service)."""
        self._families.initialize(service)


# --- client ---------------------------------------------------------------------------


async def _finish_from(rpc: _Rpc, call: Any) -> None:
    rpc.finish(await call.code())


class _ClientInterceptor:
    """Shared by the four client interceptors (grpc.aio sorts interceptors by class)."""

    def __init__(self, families: _Families, tasks: set[asyncio.Task[None]]) -> None:
        self._families = families
        self._tasks = tasks

    async def _start(
        self, kind: str, continuation: Callable[..., Any], details: Any, request: Any
    ) -> tuple[_Rpc, Any]:
        """Starts the call, counting a single request as sent."""
        rpc = _Rpc(self._families, kind, details.method)
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

    async def _single_response(self, rpc: _Rpc, call: Any) -> Any:
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

    def _stream_responses(self, rpc: _Rpc, call: Any) -> AsyncIterator[Any]:
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
    async def _relay(rpc: _Rpc, call: Any) -> AsyncIterator[Any]:
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


class ClientMetrics:
    """`grpc_client_*` metrics in `registry`, recorded by `interceptors()`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
    ) -> None:
        self._families = _Families("client", registry, buckets)
        # Status look-ups scheduled by done-callbacks, held so they are not collected early.
        self._tasks: set[asyncio.Task[None]] = set()

    def interceptors(self) -> list[Any]:
        """The interceptors to pass to `grpc.aio.insecure_channel(..., interceptors=...)`
        (or `secure_channel`): one per RPC shape, as grpc.aio sorts them by class."""
        return [
            kind(self._families, self._tasks)
            for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
        ]

    def initialize(self, service: ServiceDescriptor) -> None:
        """Creates all of `service`'s series at zero."""
        self._families.initialize(service)

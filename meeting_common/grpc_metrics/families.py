"""The go-grpc-prometheus metric families of one side, each method's series bound once, and
the report of one RPC to them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, Final

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from prometheus_client import CollectorRegistry, Counter, Histogram

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


class MethodSeries:
    """The series of one method of one side, bound once: recording an RPC then costs no
    label look-up (a look-up takes as long as two increments)."""

    __slots__ = ("_handled", "_labels", "handled_family", "received", "seconds", "sent", "started")

    def __init__(self, families: Families, labels: tuple[str, str, str]) -> None:
        self._labels = labels
        self.started = families.started.labels(*labels)
        self.seconds = families.handling_seconds.labels(*labels)
        self.received = families.msg_received.labels(*labels)
        self.sent = families.msg_sent.labels(*labels)
        self.handled_family = families.handled
        # Bound on first use, so that a method never answered with a code has no series
        # for it unless `Families.initialize` created them all at zero.
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode) -> Any:
        """The `handled_total` child of `code`."""
        child = self._handled.get(code)
        if child is None:
            name = CODE_NAMES.get(code, "Unknown")
            child = self._handled[code] = self.handled_family.labels(*self._labels, name)
        return child


class Families:
    """The five metric families of one side ("server" or "client")."""

    def __init__(self, side: str, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        prefix = f"grpc_{side}_"
        peer = "client" if side == "server" else "server"

        def counter(name: str, text: str, names: Sequence[str] = labels) -> Counter:
            return Counter(prefix + name, text, names, registry=registry)

        self.started = counter("started_total", f"Total number of RPCs started on the {side}.")
        self.handled = counter(
            "handled_total",
            f"Total number of RPCs completed on the {side}, regardless of success or failure.",
            (*labels, "grpc_code"),
        )
        self.handling_seconds = Histogram(
            prefix + "handling_seconds",
            f"Histogram of response latency (seconds) of gRPC that had been "
            f"application-level handled by the {side}.",
            labels,
            registry=registry,
            buckets=buckets,
        )
        self.msg_received = counter(
            "msg_received_total",
            f"Total number of RPC stream messages received by the {side} from the {peer}.",
        )
        self.msg_sent = counter(
            "msg_sent_total", f"Total number of gRPC stream messages sent by the {side} to the {peer}."
        )
        self._methods: dict[tuple[str, str], MethodSeries] = {}

    def method(self, kind: str, full_method: str | bytes) -> MethodSeries:
        """The series of `full_method` called as `kind`, bound on first use."""
        key = (kind, full_method.decode() if isinstance(full_method, bytes) else full_method)
        series = self._methods.get(key)
        if series is None:
            series = self._methods[key] = MethodSeries(self, (kind, *split_method(key[1])))
        return series

    def initialize(self, service: ServiceDescriptor) -> None:
        """Creates every series of `service`'s methods at zero, like Go's InitializeMetrics.

        Without this a series appears only after its first RPC, so `rate()` and `absent()`
        in alerts see nothing until then.
        """
        for method in service.methods:
            kind = rpc_type(method.client_streaming, method.server_streaming)
            series = self.method(kind, f"/{service.full_name}/{method.name}")
            for code in CODE_NAMES:
                series.handled(code)


class SideMetrics:
    """The metrics of one side in a registry; `SIDE` is "server" or "client"."""

    SIDE: ClassVar[str]

    def __init__(
        self, registry: CollectorRegistry, *, buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS
    ) -> None:
        self._families = Families(self.SIDE, registry, buckets)

    def initialize(self, service: ServiceDescriptor) -> None:
        """Creates all of `service`'s series at zero (call once per registered service)."""
        self._families.initialize(service)

    def method(self, kind: str, full_method: str | bytes) -> MethodSeries:
        """The bound series of one method (look it up once, record many RPCs to it)."""
        return self._families.method(kind, full_method)


class Rpc:
    """Reports one RPC: counts it started at creation and handled exactly once."""

    __slots__ = ("_finished", "_series", "_started_at")

    def __init__(self, series: MethodSeries) -> None:
        self._series = series
        self._finished = False
        series.started.inc()
        self._started_at = time.perf_counter()

    def received(self) -> None:
        """One message came in."""
        self._series.received.inc()

    def sent(self) -> None:
        """One message went out."""
        self._series.sent.inc()

    def finish(self, code: grpc.StatusCode) -> None:
        """Records the final status; later calls are ignored (several paths may see the end)."""
        if self._finished:
            return
        self._finished = True
        self._series.handled(code).inc()
        self._series.seconds.observe(time.perf_counter() - self._started_at)

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

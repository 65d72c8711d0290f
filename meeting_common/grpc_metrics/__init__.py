"""gRPC metrics under go-grpc-prometheus names, recorded without grpc.aio interceptors.

Dashboards and alerts written for Go services (`grpc_server_handled_total{grpc_code="OK"}`
and friends) work unchanged against our tiers: the metric names, label names, `grpc_type`
values and CamelCase `grpc_code` values are the ones go-grpc-prometheus exports.

Server: `ServerMetrics(registry).wrap` is a handler wrap for `meeting_common.grpc_wrapping.
WrappingServer`: each method's handler is instrumented once, at registration. Client:
`ClientMetrics(registry).start(kind, method)` reports one call at the place the caller
makes it. Both handle the four RPC shapes with async handlers and calls; messages a client
writes with `call.write()` (instead of a request iterator) are not counted. Each method's
series are bound once, so recording an RPC costs no label look-up.
"""

from meeting_common.grpc_metrics.client import ClientMetrics, ClientRpc, CountedStream
from meeting_common.grpc_metrics.families import (
    BIDI_STREAM,
    CLIENT_STREAM,
    CODE_NAMES,
    SERVER_STREAM,
    UNARY,
    rpc_type,
    split_method,
)
from meeting_common.grpc_metrics.server import ServerMetrics

__all__ = [
    "BIDI_STREAM",
    "CLIENT_STREAM",
    "CODE_NAMES",
    "SERVER_STREAM",
    "UNARY",
    "ClientMetrics",
    "ClientRpc",
    "CountedStream",
    "ServerMetrics",
    "rpc_type",
    "split_method",
]

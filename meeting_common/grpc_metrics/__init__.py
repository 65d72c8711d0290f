"""gRPC metrics under go-grpc-prometheus names, as grpc.aio server and client interceptors.

Dashboards and alerts written for Go services (`grpc_server_handled_total{grpc_code="OK"}`
and friends) work unchanged against our tiers: the metric names, label names, `grpc_type`
values and CamelCase `grpc_code` values are the ones go-grpc-prometheus exports.

Server: `ServerMetrics(registry).interceptor()` goes into `grpc.aio.server(interceptors=...)`.
Client: `ClientMetrics(registry).interceptors()` goes into `grpc.aio.insecure_channel(...,
interceptors=...)`. Both handle async handlers/calls of the four RPC shapes; messages a
client writes with `call.write()` (instead of a request iterator) are not counted.
"""

from meeting_common.grpc_metrics.client import ClientMetrics
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
    "ServerMetrics",
    "rpc_type",
    "split_method",
]

"""grpc's interceptor and handler classes as our subclasses name them.

grpc-stubs declares them generic, while at run time they are plain classes that cannot
be subscripted: type checking sees the parametrised forms, the interpreter the classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

if TYPE_CHECKING:
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    RpcMethodHandler = grpc.RpcMethodHandler[Any, Any]
    UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    UnaryStreamClientInterceptor = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    StreamUnaryClientInterceptor = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    StreamStreamClientInterceptor = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    ServerInterceptor = grpc.aio.ServerInterceptor
    RpcMethodHandler = grpc.RpcMethodHandler
    UnaryUnaryClientInterceptor = grpc.aio.UnaryUnaryClientInterceptor
    UnaryStreamClientInterceptor = grpc.aio.UnaryStreamClientInterceptor
    StreamUnaryClientInterceptor = grpc.aio.StreamUnaryClientInterceptor
    StreamStreamClientInterceptor = grpc.aio.StreamStreamClientInterceptor

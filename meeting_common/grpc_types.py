"""grpc's handler classes as our code names them.

grpc-stubs declares them generic, while at run time they are plain classes that cannot
be subscripted: type checking sees the parametrised forms, the interpreter the classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    RpcMethodHandler = grpc.RpcMethodHandler[Any, Any]
    GenericRpcHandler = grpc.GenericRpcHandler[Any, Any]
else:
    RpcMethodHandler = grpc.RpcMethodHandler
    GenericRpcHandler = grpc.GenericRpcHandler

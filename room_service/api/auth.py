"""Internal-caller authentication: a shared bearer token checked by a server interceptor.

Every RPC must carry `authorization: Bearer <token>` metadata equal to the configured
token (compared in constant time); otherwise it ends with UNAUTHENTICATED before the
servicer sees it. Health checks are exempt so that probes and load balancers need no
secret. The token never appears in a log line or a status message.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from meeting_common.codes import ErrorCode
from meeting_common.grpc_types import RpcMethodHandler as _Handler
from meeting_common.grpc_types import ServerInterceptor as _ServerInterceptor
from meeting_common.rpc_status import abort

log = logging.getLogger("room_service.api")

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods callable without the token."""

_MESSAGE = "Missing or invalid internal token"


def _presented(metadata: Any) -> bytes | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip().encode()
    return None


def _refusal(handler: _Handler) -> _Handler:
    """A handler of the same shape as `handler` that only refuses."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, ErrorCode.UNAUTHENTICATED, _MESSAGE)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await abort(context, ErrorCode.UNAUTHENTICATED, _MESSAGE)
        yield  # pragma: no cover - abort raises; the yield makes this a generator

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse_stream, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)


class BearerTokenInterceptor(_ServerInterceptor):
    """Refuses every non-exempt call whose bearer token is not `token`."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty internal token would let everyone in")
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Passes the call on when exempt or authenticated, else answers UNAUTHENTICATED."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(EXEMPT_PREFIXES):
            return handler
        presented = _presented(handler_call_details.invocation_metadata)
        if presented is not None and hmac.compare_digest(presented, self._token):
            return handler
        log.warning(
            "internal call refused: missing or invalid token",
            extra={"method": method, "token_present": presented is not None},
        )
        return _refusal(handler)

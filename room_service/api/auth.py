"""Internal-caller authentication: a shared bearer token checked before each handler runs.

Every RPC must carry `authorization: Bearer <token>` metadata equal to the configured
token (compared in constant time); otherwise it ends with UNAUTHENTICATED before the
servicer sees it. Health checks are exempt so that probes and load balancers need no
secret. The token never appears in a log line or a status message.

`BearerToken.wrap` guards a method's handler once, at registration (meeting_common's
`WrappingServer`), rather than per call as a server interceptor would.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from meeting_common.codes import ErrorCode
from meeting_common.grpc_types import RpcMethodHandler as _Handler
from meeting_common.grpc_wrapping import behavior_of
from meeting_common.rpc_status import abort, refusal

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


class BearerToken:
    """Refuses every non-exempt call whose bearer token is not `token`."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty internal token would let everyone in")
        self._token = token.encode()

    def _admits(self, method: str, context: Any) -> bool:
        presented = _presented(context.invocation_metadata())
        if presented is not None and hmac.compare_digest(presented, self._token):
            return True
        log.warning(
            "internal call refused: missing or invalid token",
            extra={"method": method, "token_present": presented is not None},
        )
        return False

    def wrap(self, full_method: str, handler: _Handler) -> _Handler:
        """`handler` answering UNAUTHENTICATED, before its behaviour runs, to any call
        without the token; exempt methods are served as they are."""
        if full_method.startswith(EXEMPT_PREFIXES):
            return handler
        behavior, factory = behavior_of(handler)
        admits = self._admits
        guarded: Any
        if inspect.isasyncgenfunction(behavior):

            async def guarded(request: Any, context: Any) -> AsyncIterator[Any]:
                if not admits(full_method, context):
                    await abort(context, ErrorCode.UNAUTHENTICATED, _MESSAGE)
                async for response in behavior(request, context):
                    yield response

        elif inspect.iscoroutinefunction(behavior):

            async def guarded(request: Any, context: Any) -> Any:
                if not admits(full_method, context):
                    await abort(context, ErrorCode.UNAUTHENTICATED, _MESSAGE)
                return await behavior(request, context)

        else:  # synchronous: runs in the server's thread pool, whose context aborts by raising

            def guarded(request: Any, context: Any) -> Any:
                if not admits(full_method, context):
                    status = refusal(ErrorCode.UNAUTHENTICATED, _MESSAGE)
                    context.abort(status.code, status.details, status.trailing_metadata)
                return behavior(request, context)

        return factory(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

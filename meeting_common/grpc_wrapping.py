"""A grpc.aio server whose method handlers are wrapped once, when a service is registered.

What a server interceptor does per call (grpc.aio runs the interceptor chain as coroutines
on every call, and an interceptor that changes behaviour builds a new handler each time),
a wrap does once per method: `wrap(full_method, handler)` returns the handler to serve that
method with. Services register on the `WrappingServer` as on any grpc.aio server (the
generated `add_*Servicer_to_server`, health, reflection); it passes each handler through
its wraps, the first one outermost, and hands it to the real server. Methods no service
registered are answered UNIMPLEMENTED by gRPC without reaching any wrap, as with an
interceptor that passes unknown methods through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import grpc
import grpc.aio

from meeting_common.grpc_types import GenericRpcHandler, RpcMethodHandler

HandlerWrap = Callable[[str, RpcMethodHandler], RpcMethodHandler]
"""(full method name `/package.Service/Method`, handler) -> the handler to serve it with."""

_FACTORIES: Final[dict[tuple[bool, bool], tuple[str, Callable[..., RpcMethodHandler]]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def behavior_of(handler: RpcMethodHandler) -> tuple[Any, Callable[..., RpcMethodHandler]]:
    """A handler's behaviour and the factory that makes a handler of the same shape (a wrap
    returns `factory(new_behavior, request_deserializer=..., response_serializer=...)`)."""
    attribute, factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
    return getattr(handler, attribute), factory


class _WrappedGeneric(GenericRpcHandler):
    """A generic handler whose answers are wrapped, each handler once (they are remembered)."""

    def __init__(self, inner: GenericRpcHandler, wrap: HandlerWrap) -> None:
        self._inner = inner
        self._wrap = wrap
        self._wrapped: dict[str, tuple[RpcMethodHandler, RpcMethodHandler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> RpcMethodHandler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]


class WrappingServer(grpc.aio.Server):
    """`server` with every registered method's handler passed through `wraps` once."""

    def __init__(self, server: grpc.aio.Server, wraps: Sequence[HandlerWrap]) -> None:
        self._server = server
        self._wraps = tuple(reversed(wraps))  # applied innermost first

    def wrap(self, full_method: str, handler: RpcMethodHandler) -> RpcMethodHandler:
        """`handler` as this server serves `full_method`."""
        for wrap in self._wraps:
            handler = wrap(full_method, handler)
        return handler

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_WrappedGeneric(h, self.wrap) for h in generic_rpc_handlers])

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: dict[str, RpcMethodHandler]
    ) -> None:
        # Looked up by full name in a dict on every call (before the generic handlers).
        wrapped = {name: self.wrap(f"/{service_name}/{name}", h) for name, h in method_handlers.items()}
        self._server.add_registered_method_handlers(service_name, wrapped)  # type: ignore[attr-defined]  # missing in grpc-stubs

    def add_insecure_port(self, address: str) -> int:
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._server.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float | None = None) -> None:
        await self._server.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 (grpc's signature)
        return await self._server.wait_for_termination(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)

"""The edge's own credentials towards the room service: TLS and the internal bearer token."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from meeting_common.grpc_types import UnaryStreamClientInterceptor as _UnaryStream
from meeting_common.grpc_types import UnaryUnaryClientInterceptor as _UnaryUnary
from meeting_common.tls import channel_credentials

if TYPE_CHECKING:
    from edge_gateway.config import Settings


def room_service_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS towards the room service (None: plaintext)."""
    return channel_credentials(
        settings.room_service_tls_ca_file, settings.tls_cert_file, settings.tls_key_file
    )


def _with_token(details: grpc.aio.ClientCallDetails, header: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata["authorization"] = header
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _BearerToken:
    """Sends every call it intercepts on with `authorization: <header>` in its metadata.

    gRPC files an interceptor under the first call kind it subclasses, so each kind needs
    a class of its own; the subclasses below only name which kind they intercept.
    """

    def __init__(self, header: str) -> None:
        self._header = header

    async def _forward(self, continuation: Callable[..., Any], client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request)


class _UnaryUnaryToken(_BearerToken, _UnaryUnary):
    intercept_unary_unary = _BearerToken._forward


class _UnaryStreamToken(_BearerToken, _UnaryStream):
    intercept_unary_stream = _BearerToken._forward


def bearer_interceptors(settings: Settings) -> list[Any]:
    """Client interceptors adding `authorization: Bearer <token>`; none without a token."""
    token = settings.room_service_token.get_secret_value()
    if not token:
        return []
    header = f"Bearer {token}"
    return [_UnaryUnaryToken(header), _UnaryStreamToken(header)]

"""The edge's own credentials towards the room service: TLS and the internal bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from meeting_common.tls import channel_credentials

if TYPE_CHECKING:
    from edge_gateway.config import Settings


def room_service_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """TLS towards the room service (None: plaintext)."""
    return channel_credentials(
        settings.room_service_tls_ca_file, settings.tls_cert_file, settings.tls_key_file
    )


def bearer_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: `authorization: Bearer <token>`; none without a token."""
    token = settings.room_service_token.get_secret_value()
    return (("authorization", f"Bearer {token}"),) if token else ()

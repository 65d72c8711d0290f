"""TLS credentials for the internal gRPC link, loaded from PEM files named by settings.

The room service serves TLS when given a certificate and key, and asks every caller for a
client certificate signed by `client_ca_file` when that is set (mutual TLS). The edge
verifies the room service against a CA file and presents its own certificate when given
one. Files are read once at start (a few kilobytes), before anything is served.
"""

from __future__ import annotations

from pathlib import Path

import grpc


class TlsConfigError(ValueError):
    """A TLS setting names a missing or unreadable file, or an incomplete pair."""


def _read(path: str, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read {what} {path!r}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in data:
        raise TlsConfigError(f"{what} {path!r} is not PEM")
    return data


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str = ""
) -> grpc.ServerCredentials | None:
    """Credentials for `add_secure_port`, or None when TLS is off (no certificate given).

    With `client_ca_file`, a client must present a certificate signed by that CA: the
    handshake fails otherwise, before any RPC reaches a handler.
    """
    if not cert_file and not key_file:
        if client_ca_file:
            raise TlsConfigError("a client CA needs the server's own certificate and key")
        return None
    if not (cert_file and key_file):
        raise TlsConfigError("give both the TLS certificate and its key")
    pair = (_read(key_file, "TLS key"), _read(cert_file, "TLS certificate"))
    if client_ca_file:
        return grpc.ssl_server_credentials(
            [pair], root_certificates=_read(client_ca_file, "client CA"), require_client_auth=True
        )
    return grpc.ssl_server_credentials([pair])


def channel_credentials(
    ca_file: str, cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials | None:
    """Credentials for `secure_channel`, or None for a plaintext channel (no CA given).

    `cert_file`/`key_file` are this client's certificate for mutual TLS.
    """
    if not ca_file:
        if cert_file or key_file:
            raise TlsConfigError("a client certificate needs the room service CA file too")
        return None
    if bool(cert_file) != bool(key_file):
        raise TlsConfigError("give both the client certificate and its key")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA"),
        private_key=_read(key_file, "TLS key") if key_file else None,
        certificate_chain=_read(cert_file, "TLS certificate") if cert_file else None,
    )

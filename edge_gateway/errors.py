"""Edge errors: a stable code and a message, sent to clients as `error {code, message}`."""

from __future__ import annotations

import logging

import grpc
from google.rpc import status_pb2

from meeting_common.codes import ErrorCode
from meeting_common.rpc_status import CODE_FOR_NUMBER, error_code_from, error_code_of

_FALLBACK = {
    grpc.StatusCode.UNAVAILABLE: ErrorCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorCode.UNAVAILABLE,
    grpc.StatusCode.CANCELLED: ErrorCode.UNAVAILABLE,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorCode.INVALID_PAYLOAD,
    grpc.StatusCode.PERMISSION_DENIED: ErrorCode.FORBIDDEN,
    grpc.StatusCode.UNAUTHENTICATED: ErrorCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorCode.RATE_LIMITED,
}

log = logging.getLogger("edge_gateway")

UNAVAILABLE_MESSAGE = "Meeting service is unavailable, please retry"


class EdgeError(Exception):
    """A refusal to send back to the client."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def payload(self) -> dict[str, str]:
        """The Socket.IO `error` payload."""
        return {"code": self.code.value, "message": self.message}


def from_rpc_error(error: grpc.aio.AioRpcError) -> EdgeError:
    """A failed unary call as the client's error (see `from_status`)."""
    return from_status(error.code(), error_code_from(error), error.details() or "")


def from_rpc_status(status: status_pb2.Status) -> EdgeError:
    """A command's `error` from the Commands stream as the client's error (see `from_status`)."""
    code = CODE_FOR_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return from_status(code, error_code_of(status), status.message)


def from_status(status: grpc.StatusCode, code: ErrorCode | None, message: str) -> EdgeError:
    """Reads the stable code the room service attached (`code`, from the status's ErrorInfo),
    else maps the status code; both call paths (unary, Commands stream) end here."""
    if code is None:
        code = _FALLBACK.get(status, ErrorCode.INTERNAL)
    if code is ErrorCode.UNAUTHENTICATED:
        # Only the edge's own internal credentials can be refused by the room service: a
        # server-side fault the client cannot fix, so it sees the service as unavailable.
        log.error("room service refused the edge's credentials", extra={"details": message})
        code = ErrorCode.UNAVAILABLE
    if code is ErrorCode.UNAVAILABLE:
        return EdgeError(code, UNAVAILABLE_MESSAGE)
    if code is ErrorCode.INTERNAL:
        return EdgeError(code, "Internal error")
    return EdgeError(code, message or code.value)

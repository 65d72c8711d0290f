"""The one table from domain error codes to gRPC status codes, and back.

Each refusal travels as a gRPC status whose details carry google.rpc.ErrorInfo with the
stable code as `reason`, so callers need not parse messages. grpcio-status puts the
google.rpc.Status into the trailing metadata and reads it back (checking it agrees with
the call's own code and message).
"""

from __future__ import annotations

from typing import Any, cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from meeting_common.codes import ErrorCode

ERROR_DOMAIN = "meeting.v1"

STATUS_FOR_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_PAYLOAD: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.FORBIDDEN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.MEETING_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.MEETING_NOT_ACTIVE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INVALID_PASSWORD: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.NOT_IN_MEETING: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ROOM_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}


CODE_FOR_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}
"""grpc.StatusCode by its number (a google.rpc.Status carries the number)."""


def status_of(error_code: ErrorCode, message: str) -> status_pb2.Status:
    """The google.rpc.Status for an error: its gRPC code, message and ErrorInfo detail (what a
    unary call carries in its trailers, and a Commands reply in its `error`)."""
    code = STATUS_FOR_CODE.get(error_code, grpc.StatusCode.INTERNAL)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=error_code.value, domain=ERROR_DOMAIN))
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def refusal(error_code: ErrorCode, message: str) -> grpc.Status:
    """The status for an error, ready for `context.abort_with_status`."""
    return to_grpc_status(status_of(error_code, message))


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    """A google.rpc.Status as the grpc.Status a server aborts with (details in the trailers)."""
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], status: status_pb2.Status) -> None:
    """Ends the call with `status` (raises, as `context.abort` does)."""
    converted = to_grpc_status(status)
    await context.abort(converted.code, converted.details, trailing_metadata=converted.trailing_metadata)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error_code: ErrorCode, message: str) -> None:
    """Ends the call with the status for an error (raises, as `context.abort` does)."""
    await abort_with(context, status_of(error_code, message))


def error_code_from(error: grpc.RpcError) -> ErrorCode | None:
    """The stable code a failed call carries, if any (None for a status that disagrees
    with the call, an undecodable one, or a reason this version does not know)."""
    # Both grpc.RpcError (a grpc.Call) and grpc.aio.AioRpcError answer code(), details()
    # and trailing_metadata() synchronously, which is all from_call asks of a call.
    try:
        status = rpc_status.from_call(cast("grpc.Call", error))
    except (ValueError, DecodeError):
        return None
    if status is None:
        return None
    return error_code_of(status)


def error_code_of(status: status_pb2.Status) -> ErrorCode | None:
    """The stable code in a google.rpc.Status's ErrorInfo, if any (None for none, or for a
    reason this version does not know)."""
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            try:
                return ErrorCode(info.reason)
            except ValueError:
                return None
    return None

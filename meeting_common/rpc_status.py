"""The one table from domain error codes to gRPC status codes, and back.

Each refusal travels as a gRPC status whose details carry google.rpc.ErrorInfo with the
stable code as `reason`, so callers need not parse messages.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from meeting_common.codes import ErrorCode

ERROR_DOMAIN = "meeting.v1"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

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


def status_details(error_code: ErrorCode, message: str) -> tuple[grpc.StatusCode, bytes]:
    """The status code and the serialized google.rpc.Status (with ErrorInfo) for an error."""
    code = STATUS_FOR_CODE.get(error_code, grpc.StatusCode.INTERNAL)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=error_code.value, domain=ERROR_DOMAIN))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return code, status.SerializeToString()


def error_code_from(metadata: object) -> ErrorCode | None:
    """The stable code carried in trailing metadata, if any."""
    if not metadata:
        return None
    for key, value in metadata:  # type: ignore[attr-defined]
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                try:
                    return ErrorCode(info.reason)
                except ValueError:
                    return None
    return None

"""The stable error codes both tiers speak (gRPC ErrorInfo.reason, Socket.IO error.code)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes; clients and services branch on these, never on messages."""

    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    MEETING_NOT_FOUND = "MEETING_NOT_FOUND"
    MEETING_NOT_ACTIVE = "MEETING_NOT_ACTIVE"
    INVALID_PASSWORD = "INVALID_PASSWORD"
    NOT_IN_MEETING = "NOT_IN_MEETING"
    ROOM_FULL = "ROOM_FULL"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"

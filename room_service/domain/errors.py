"""Domain errors with stable codes; the API layer maps them to transport statuses."""

from __future__ import annotations

from meeting_common.codes import ErrorCode

__all__ = ["DomainError", "ErrorCode"]


class DomainError(Exception):
    """A refusal the caller can act on: a stable `code` and a human `message`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r})"


def meeting_not_found() -> DomainError:
    """The seed's wording for an unknown meeting."""
    return DomainError(ErrorCode.MEETING_NOT_FOUND, "Meeting not found")


def invalid_password() -> DomainError:
    """The seed's wording for a wrong or missing meeting password."""
    return DomainError(ErrorCode.INVALID_PASSWORD, "Invalid meeting password")


def not_in_meeting(what: str = "Participant is not in this meeting") -> DomainError:
    """The participant (or target) is not in the meeting."""
    return DomainError(ErrorCode.NOT_IN_MEETING, what)


def invalid(message: str) -> DomainError:
    """A request that is malformed whatever the state."""
    return DomainError(ErrorCode.INVALID_PAYLOAD, message)


def forbidden(message: str) -> DomainError:
    """The caller may not do this."""
    return DomainError(ErrorCode.FORBIDDEN, message)


def meeting_not_active() -> DomainError:
    """The meeting has ended (or is not open for joins)."""
    return DomainError(ErrorCode.MEETING_NOT_ACTIVE, "Meeting is not active")


def room_full() -> DomainError:
    """The room holds as many participants as the meeting allows."""
    return DomainError(ErrorCode.ROOM_FULL, "Meeting is full")


def rate_limited(message: str) -> DomainError:
    """Too many attempts; the caller may retry later."""
    return DomainError(ErrorCode.RATE_LIMITED, message)

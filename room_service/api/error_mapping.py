"""How the RoomService's methods answer errors: a DomainError becomes its status, anything
else INTERNAL with a generic message, and every UNAVAILABLE (or reply past the caller's
deadline) is logged with its cause; plus the id checks of requests."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.rpc import status_pb2

from meeting_common.codes import ErrorCode
from meeting_common.rpc_status import abort_with, status_of
from room_service.api.refusals import RefusalLog
from room_service.domain import rules
from room_service.domain.errors import DomainError

log = logging.getLogger("room_service.api")

# Why a call was answered UNAVAILABLE, or too late (bounded; see refusals.py).
refusals = RefusalLog()

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def status_for(method: str, exc: BaseException) -> status_pb2.Status:
    """The status `exc`, raised by `method`, is answered with: a DomainError's own, anything
    else INTERNAL with a generic message (its traceback logged, never sent). Both a unary
    call and a command on the Commands stream answer with this."""
    if isinstance(exc, DomainError):
        if exc.code is ErrorCode.UNAVAILABLE:
            refusals.refused(method, exc)
        return status_of(exc.code, exc.message)
    log.error("unhandled error in %s", method, exc_info=exc)
    return status_of(ErrorCode.INTERNAL, "Internal error")


async def _answer(context: grpc.aio.ServicerContext[Any, Any], method: str, exc: Exception) -> None:
    """Aborts the call with the status `exc` stands for (always raises)."""
    await abort_with(context, status_for(method, exc))


def unary(
    method: Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], Awaitable[Resp]]:
    """Maps DomainError to its status; anything else to INTERNAL with a generic message."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext[Req, Resp]) -> Resp:
        try:
            reply = await method(self, request, context)
            remaining = context.time_remaining()
            if remaining is not None and remaining < 0:
                refusals.late(method.__name__, -remaining)
            return reply
        except Exception as exc:
            await _answer(context, method.__name__, exc)
        raise AssertionError("unreachable: abort raises")

    return wrapper


def streaming(
    method: Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext[Req, Resp]], AsyncIterator[Resp]]:
    """The same error mapping for server-streaming methods."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Req, context: grpc.aio.ServicerContext[Req, Resp]
    ) -> AsyncIterator[Resp]:
        try:
            async for item in method(self, request, context):
                yield item
        except Exception as exc:
            await _answer(context, method.__name__, exc)

    return wrapper


def require(value: str, name: str) -> str:
    return rules.checked_id(value, name)


def optional(value: str, name: str) -> str:
    """An id that may be empty (e.g. `requested_by`: empty means an internal service)."""
    return rules.checked_id(value, name) if value else value

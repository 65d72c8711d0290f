"""The log of UNAVAILABLE answers: each says why, and abuse cannot flood the log."""

from __future__ import annotations

import logging

import pytest

from room_service.api.refusals import RefusalLog
from room_service.domain.errors import DomainError, ErrorCode
from room_service.store.base import StoreUnavailableError


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "room_service.api"]


def test_each_refusal_is_logged_with_its_method_and_cause(caplog: pytest.LogCaptureFixture) -> None:
    refusals = RefusalLog(clock=_Clock())
    with caplog.at_level(logging.WARNING):
        refusals.refused("Join", StoreUnavailableError(cause="redis TimeoutError in join after 1.002 s"))
        refusals.refused("UpdateMediaState", DomainError(ErrorCode.UNAVAILABLE, "Participant changed"))
        refusals.late("Join", 0.25)
    first, second, late = _lines(caplog)
    assert first.getMessage() == "answered UNAVAILABLE"
    assert (first.method, first.cause) == ("Join", "redis TimeoutError in join after 1.002 s")  # type: ignore[attr-defined]
    assert (second.method, second.cause) == ("UpdateMediaState", "DomainError")  # type: ignore[attr-defined]
    assert second.error_message == "Participant changed"  # type: ignore[attr-defined]
    assert late.getMessage() == "answered after the caller's deadline"
    assert late.overrun_seconds == 0.25  # type: ignore[attr-defined]


def test_a_flood_of_refusals_is_bounded_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    refusals = RefusalLog(burst=3, window=10.0, clock=clock)
    error = StoreUnavailableError(cause="store known down (pings unanswered)")
    with caplog.at_level(logging.WARNING):
        for _ in range(1000):
            refusals.refused("Join", error)
        refusals.late("Join", 1.0)  # another kind has its own budget
        assert len(_lines(caplog)) == 4
        clock.now += 10.0
        refusals.refused("Join", error)
    lines = _lines(caplog)
    assert len(lines) == 5
    assert lines[-1].suppressed_before == 997  # type: ignore[attr-defined]

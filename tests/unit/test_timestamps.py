"""convert.timestamp computes what protobuf's own Timestamp.FromDatetime computes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from room_service.api.convert import from_timestamp, timestamp


def _reference(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 12, 2, 10, 4, 1, 123456, tzinfo=UTC),
        datetime(2026, 12, 2, 12, 4, 1, 999999, tzinfo=timezone(timedelta(hours=2))),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 2, 10, 4, 1, 7),  # naive: taken as UTC, as FromDatetime takes it
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_timestamp_matches_from_datetime(value: datetime) -> None:
    assert timestamp(value) == _reference(value)


def test_timestamp_round_trips() -> None:
    value = datetime(2026, 12, 2, 10, 4, 1, 654321, tzinfo=UTC)
    assert from_timestamp(timestamp(value)) == value

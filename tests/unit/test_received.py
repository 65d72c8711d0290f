"""The event log both test clients keep (tests.support.received): a wait sees the events
already received and those still to come, the quiet check fails on a matching event
only, and a wait ends with the client's own error once nothing more can arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.received import RecordingClient


class _Client(RecordingClient):
    """A client that receives what the test hands it."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.gone: Exception | None = None

    @property
    def connected(self) -> bool:
        return self.gone is None

    async def connect(self, url: str, **options: Any) -> None:
        raise NotImplementedError

    async def emit(self, event: str, *args: Any) -> None:
        raise NotImplementedError

    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        raise NotImplementedError

    def _lost(self, waiting_for: str) -> Exception | None:
        return self.gone

    async def deliver(self, event: str, *args: Any) -> None:
        self._add(event, list(args), ts=0.0, hr=0.0, received=0.0)
        await self.notify()


async def test_a_wait_sees_events_already_received_and_those_to_come() -> None:
    client = _Client()
    await client.deliver("a", 1)
    assert (await client.wait_for_event("a")).data == 1
    start = client.mark()
    waiter = asyncio.create_task(client.wait_for_event("b", lambda data: data == 2, start=start))
    await client.deliver("b", 1)
    await client.deliver("b", 2)
    found = await waiter
    assert (found.event, found.data, found.index) == ("b", 2, 2)
    assert client.payloads("b", start=start) == [1, 2]


async def test_the_quiet_check_fails_on_a_matching_event_only() -> None:
    client = _Client()
    await client.deliver("x", 1)
    await client.expect_no_event("x", start=client.mark(), within=0.05)
    await client.expect_no_event("x", lambda data: data == 2, within=0.05)
    with pytest.raises(AssertionError, match="fake"):
        await client.expect_no_event("x", within=0.05)


async def test_a_wait_ends_with_the_clients_error_once_nothing_more_can_arrive() -> None:
    client = _Client()
    waiter = asyncio.create_task(client.wait_for_event("never", timeout=120))
    client.gone = RuntimeError("driver died")
    await client.notify()
    with pytest.raises(RuntimeError, match="driver died"):
        await waiter

"""A socket's Socket.IO events reach their handlers one after another, in the order sent
(each handler takes its socket's lock before its first wait): a handler that waits on
the room service holds up its own socket's next event, and no other socket's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.edge_stack import Connect, Stack
from tests.support.room import join
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)


async def test_one_sockets_events_run_in_order_while_another_socket_is_served(
    connected: Connect, stack: Stack
) -> None:
    slow, other = await connected("slow", "other")
    await join(slow, "user-slow")
    await join(other, "user-other")
    client = stack.edge.hub.client
    real_update = client.update_media
    gate = asyncio.Event()
    calls: list[tuple[str, dict[str, bool]]] = []

    async def held_update(meeting_id: str, participant_id: str, changes: dict[str, bool]) -> Any:
        calls.append((participant_id, changes))
        if len(calls) == 1:
            await gate.wait()  # the first change waits on the "room service"
        return await real_update(meeting_id, participant_id, changes)

    client.update_media = held_update  # type: ignore[method-assign]
    try:
        first = asyncio.create_task(slow.emit_with_ack("update-media", {"audio": False}, timeout=30))
        await wait_until(lambda: len(calls) == 1, within=10, what="the first change at the service")
        second = asyncio.create_task(slow.emit_with_ack("update-media", {"video": False}, timeout=30))
        # Another socket's change goes through while the first socket's handler waits...
        reply = await other.emit_with_ack("update-media", {"screen": True}, timeout=10)
        assert reply["success"] is True
        assert [changes for _, changes in calls] == [{"audio": False}, {"screen": True}]
        # ...and the first socket's second change, received by the edge, has not started:
        # it waits its turn.
        registry = stack.edge.hub.metrics.registry
        await wait_until(
            lambda: (
                registry.get_sample_value("edge_gateway_events_received_total", {"event": "update-media"})
                == 3
            ),
            within=10,
            what="the second change received at the edge",
        )
        assert [changes for _, changes in calls] == [{"audio": False}, {"screen": True}]
        assert not second.done()
        gate.set()
        replies = await asyncio.gather(first, second)
    finally:
        client.update_media = real_update  # type: ignore[method-assign]
    assert [r["success"] for r in replies] == [True, True]
    assert [changes for _, changes in calls] == [{"audio": False}, {"screen": True}, {"video": False}]
    # The others saw the slow socket's changes in the order it made them.
    updates = await other.wait_for_events(
        "participant-updated", 2, lambda d: d["userId"] == "user-slow", timeout=10
    )
    assert [(u.data["audio"], u.data["video"]) for u in updates] == [(False, True), (False, False)]

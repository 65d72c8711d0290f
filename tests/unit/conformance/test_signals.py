"""Store contract for signal mailboxes: per-edge queues that keep the newest signals,
survive a reap while read, and keep nothing for an edge nobody reads."""

from __future__ import annotations

import asyncio

import pytest

from room_service.domain.models import Signal, SignalType
from room_service.store.memory import MemoryStore
from tests.support.stores import MEETING, StoreFactory, spec


async def test_a_waiting_signal_reader_keeps_its_mailbox_across_a_reap(new_store: StoreFactory) -> None:
    store = await new_store()
    await store.touch_edge("edge-a", 10.0)
    reader = asyncio.create_task(store.next_signal("edge-a"))
    await asyncio.sleep(0)
    assert await store.drop_edge("edge-a", 10.0) is not None  # reaped while its stream still reads
    joined = await store.join(spec("u1"))  # its socket joins again
    await store.touch_edge("edge-a", 20.0)
    signal = Signal(SignalType.OFFER, MEETING, "someone", joined.participant.participant_id, "{}")
    await store.publish_signal("edge-a", signal)
    assert await asyncio.wait_for(reader, 1.0) == signal
    # A reader of an edge nobody knows leaves nothing once it stops.
    ghost = asyncio.create_task(store.next_signal("made-up"))
    await asyncio.sleep(0)
    ghost.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ghost
    await store.publish_signal("made-up", signal)  # nobody could read it: not kept
    late = asyncio.create_task(store.next_signal("made-up"))
    done, _ = await asyncio.wait({late}, timeout=0.3)
    assert not done, "a signal for an edge nobody could read was kept"
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    if isinstance(store, MemoryStore):
        assert store.footprint().mailboxes == 1  # edge-a's, which holds a lease


async def test_signals_sent_through_one_replica_reach_the_edge_listening_on_another(
    new_store: StoreFactory,
) -> None:
    sender = await new_store(signal_queue=3)
    listener = await new_store.replica(signal_queue=3)
    await sender.touch_edge("edge-b", 1e12)  # a signal is kept only for an edge someone could read
    for i in range(5):
        await sender.publish_signal("edge-b", _signal(f"offer-{i}"))
    # The queue keeps the newest three: a stale offer is worth less than a fresh one.
    received = [await asyncio.wait_for(listener.next_signal("edge-b"), 5.0) for _ in range(3)]
    assert [s.payload_json for s in received] == ['"offer-2"', '"offer-3"', '"offer-4"']
    assert received[0] == _signal("offer-2")
    waiting = asyncio.create_task(listener.next_signal("edge-b"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await sender.publish_signal("edge-b", _signal("late"))
    assert (await asyncio.wait_for(waiting, 5.0)).payload_json == '"late"'


def _signal(payload: str) -> Signal:
    return Signal(
        type=SignalType.OFFER,
        meeting_id=MEETING,
        from_participant_id="participant-a",
        target_participant_id="participant-b",
        payload_json=f'"{payload}"',
        target_socket_id="sock-b",
    )

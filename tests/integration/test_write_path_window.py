"""The write path under load (edge_gateway/engine.py) on a real aiohttp server over loopback:
frames of several loop iterations share one write and keep their order, frames held for
the window leave when traffic stops, and a room's broadcast follows its members (the
byte bound with a window: test_write_path.py)."""

from __future__ import annotations

import asyncio

import uvloop

from tests.support.jsclient import JsClientPool
from tests.support.write_path import ROOM, CountingTransport, RawSocket, numbers, on_burst, serve

LOOP_FACTORY = uvloop.new_event_loop
"""As the edge runs (read by tests/integration/conftest.py)."""

# Long enough that a burst spread over many loop iterations falls inside one window even
# on a loaded machine; each test waits on frames arriving, never on the clock.
_WINDOW = 2.0


async def test_frames_of_many_iterations_share_a_write_in_order_and_a_reply_cuts_the_wait() -> None:
    async with serve(write_window=_WINDOW) as served:
        sio = served.sio

        async def after_each(sid: str, n: int) -> None:
            # Each emit in a loop iteration of its own; halfway a reply its client waits
            # for is written at once, with all before it.
            if n == 30:
                sio.flush(sid)
            await asyncio.sleep(0)

        on_burst(sio, after_each)
        raw = await RawSocket.open(served.url)
        counting = CountingTransport.around(sio, raw)
        await raw.ws.send('421["burst",60]')
        frames = await raw.frames_until("431[60]")
        assert numbers(frames, "n") == list(range(60))
        assert frames[-1] == "431[60]" and len(frames) == 61
        assert sum(counting.writes) == 61
        # Sixty loop iterations, a handful of writes: the first (an idle socket's frames
        # leave at once), the flush halfway, the rest at the end of the window.
        assert len(counting.writes) <= 4, counting.writes
        await raw.ws.close()


async def test_frames_held_for_the_window_leave_when_traffic_stops(js: JsClientPool) -> None:
    async with serve(write_window=0.05) as served:
        raw = await RawSocket.open(served.url)
        other = js.client("other")
        await other.connect(served.url, transports=["websocket"])
        for n in range(5):
            await served.sio.emit("n", {"n": n}, room=ROOM)
            await asyncio.sleep(0)
        # Nothing is emitted after these: the window's own timer writes them.
        assert numbers(await raw.frames_until('42["n",{"n":4}]'), "n") == list(range(5))
        assert [e.data["n"] for e in await other.wait_for_events("n", 5, timeout=10)] == list(range(5))
        await raw.ws.close()


async def test_a_room_broadcast_reaches_exactly_the_sockets_in_the_room_at_each_emit() -> None:
    """Broadcasts reuse the room's recipients until someone enters or leaves it."""
    async with serve() as served:
        sio = served.sio
        first = await RawSocket.open(served.url)
        await sio.emit("n", {"n": 0}, room=ROOM)
        late = await RawSocket.open(served.url)  # enters the room after a broadcast
        await sio.emit("n", {"n": 1}, room=ROOM)
        await sio.leave_room(first.sid, ROOM)
        await sio.emit("n", {"n": 2}, room=ROOM)
        await sio.enter_room(first.sid, ROOM)
        await sio.emit("n", {"n": 3}, room=ROOM)
        await sio.emit("end", None, room=ROOM)
        assert numbers(await first.frames_until('42["end"]'), "n") == [0, 1, 3]
        assert numbers(await late.frames_until('42["end"]'), "n") == [1, 2, 3]
        await first.ws.close()
        await late.ws.close()

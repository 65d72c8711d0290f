"""The edge's write path (edge_gateway/engine.py) on a real aiohttp server over loopback:
per-socket order, byte-bounded backpressure, long-polling beside WebSocket, the sweep."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from edge_gateway import engine
from tests.support.jsclient import JsClientPool
from tests.support.write_path import ROOM, CountingTransport, RawSocket, numbers, on_burst, serve

LOOP_FACTORY = uvloop.new_event_loop
"""The edge runs on uvloop (meeting_common.lifecycle), and so do these tests: its
transports differ from asyncio's where it matters (a write to a closed one raises).
Read by tests/integration/conftest.py."""


async def test_direct_emits_broadcasts_and_the_ack_reach_a_socket_in_emit_order(js: JsClientPool) -> None:
    async with serve() as served:
        sio = served.sio

        async def burst(sid: str, count: int) -> int:
            # Alternating a direct emit and a room broadcast: one numbered sequence.
            for n in range(count):
                if n % 2:
                    await sio.emit("n", {"n": n}, to=sid)
                else:
                    await sio.emit("n", {"n": n}, room=ROOM)
            return count  # the acknowledgement, sent after every emit above

        sio.on("burst", burst)
        raw = await RawSocket.open(served.url)
        other = js.client("other")
        await other.connect(served.url, transports=["websocket"])
        await raw.ws.send('421["burst",300]')
        frames = await raw.frames_until("431[300]")
        assert numbers(frames, "n") == list(range(300))
        assert frames[-1] == "431[300]" and len(frames) == 301
        # The room's other socket got the broadcasts only, in order.
        got = await other.wait_for_events("n", 150, timeout=15)
        assert [e.data["n"] for e in got] == list(range(0, 300, 2))
        await raw.ws.close()


@pytest.mark.parametrize("write_window", [0.0, 2.0], ids=["every-iteration", "held-for-a-window"])
async def test_a_socket_that_stops_reading_is_dropped_at_its_byte_bound_while_others_get_everything(
    write_window: float,
) -> None:
    limit = 64 * 1024
    async with serve(max_buffered_bytes=limit, write_window=write_window) as served:
        sio = served.sio
        stuck = await RawSocket.open(served.url, rcvbuf=4096)
        healthy = await RawSocket.open(served.url)
        stuck.ws.transport.pause_reading()  # the peer stops reading its socket
        outbox = sio.eio.sockets[stuck.eio_sid].queue
        text = "x" * 4000
        received: list[str] = []

        async def read() -> None:
            received.extend(await healthy.frames_until('42["end"]'))

        reader = asyncio.create_task(read())
        sent, worst = 0, 0
        while not outbox.overflowed and sent < 20_000:
            await sio.emit("chunk", {"n": sent, "text": text}, room=ROOM)
            sent += 1
            worst = max(worst, outbox.buffered_bytes)
            if sent % 20 == 0:
                await asyncio.sleep(0)  # the healthy reader runs meanwhile
        assert outbox.overflowed, "the stuck socket was never dropped"
        print(f"stuck socket dropped after {sent} broadcasts of {len(text)} bytes")
        # Bounded: never more than the limit (plus the one frame that crossed it) held.
        assert worst <= limit + len(text) + 100
        for n in range(sent, sent + 50):  # the room carries on after the drop
            await sio.emit("chunk", {"n": n, "text": text}, room=ROOM)
        await sio.emit("end", None, room=ROOM)
        await asyncio.wait_for(reader, 30)
        assert numbers(received, "chunk") == list(range(sent + 50))
        assert await served.wait_left(stuck.sid, 10) == "server disconnect"
        assert healthy.sid not in served.left
        assert served.drops == [1]
        await healthy.ws.close()


async def test_polling_upgrading_and_websocket_sockets_share_a_room_in_order(js: JsClientPool) -> None:
    async with serve() as served:
        polling, upgrading, ws = js.client("polling"), js.client("upgrading"), js.client("ws")
        await polling.connect(served.url, transports=["polling"])
        await upgrading.connect(served.url, transports=["polling", "websocket"])
        await ws.connect(served.url, transports=["websocket"])
        count = 400
        for n in range(count):
            # Non-ASCII text through the orjson codec and both transports.
            await served.sio.emit("seq", {"n": n, "who": "Zoë 会议"}, room=ROOM)
            if n % 10 == 0:
                await asyncio.sleep(0.005)  # spread out, so the upgrade happens mid-stream
        for client in (polling, upgrading, ws):
            got = await client.wait_for_events("seq", count, timeout=30)
            assert [e.data["n"] for e in got] == list(range(count)), client.name
            assert {e.data["who"] for e in got} == {"Zoë 会议"}
        transports = {s.sid: s.upgraded for s in served.sio.eio.sockets.values()}
        assert sorted(transports.values()) == [False, True, True]  # one stayed on polling


async def test_binary_payloads_still_reach_websocket_and_polling_sockets(js: JsClientPool) -> None:
    async with serve() as served:
        polling, ws = js.client("polling"), js.client("ws")
        await polling.connect(served.url, transports=["polling"])
        await ws.connect(served.url, transports=["websocket"])
        await served.sio.emit("blob", {"n": 1, "bytes": b"\x00\x01\xff"}, room=ROOM)
        await served.sio.emit("blob", {"n": 2, "text": "after"}, room=ROOM)
        for client in (polling, ws):
            got = await client.wait_for_events("blob", 2, timeout=10)
            assert got[0].data == {"n": 1, "bytes": b"\x00\x01\xff"}, client.name
            assert got[1].data == {"n": 2, "text": "after"}, client.name


async def test_a_broadcast_passes_over_a_socket_whose_connection_just_died() -> None:
    async with serve() as served:
        gone = await RawSocket.open(served.url)
        healthy = await RawSocket.open(served.url)
        transport = served.sio.eio.sockets[gone.eio_sid].queue.transport
        assert transport is not None
        # The connection dies (closed by the loop's next step) and a broadcast goes out
        # before the socket's reading loop has noticed: its outbox holds a dead transport.
        transport.abort()
        await asyncio.sleep(0)
        await served.sio.emit("after", {"n": 1}, room=ROOM)
        frames = await healthy.frames_until('42["after",{"n":1}]')
        assert numbers(frames, "after") == [1]
        assert await served.wait_left(gone.sid, 10) == "transport close"
        assert healthy.sid not in served.left
        await healthy.ws.close()


async def test_a_websocket_socket_keeps_no_queue_of_its_own_once_attached(js: JsClientPool) -> None:
    """The queue goes when the WebSocket is attached (it is never used again); a socket
    still on long-polling keeps its own, and both get every emit."""
    async with serve() as served:
        peer = await RawSocket.open(served.url)
        polling = js.client("polling")
        await polling.connect(served.url, transports=["polling"])
        outboxes = [s.queue for s in served.sio.eio.sockets.values()]
        attached = served.sio.eio.sockets[peer.eio_sid].queue
        (queued,) = [o for o in outboxes if o is not attached]
        assert attached._queue is None and not hasattr(attached, "__dict__")
        assert isinstance(queued._queue, asyncio.Queue)
        for n in (1, 2):
            await served.sio.emit("after", {"n": n}, room=ROOM)
        assert numbers(await peer.frames_until('42["after",{"n":2}]'), "after") == [1, 2]
        assert [e.data["n"] for e in await polling.wait_for_events("after", 2, timeout=10)] == [1, 2]
        assert attached.empty()
        await attached.join()  # nothing is pending: returns at once
        await peer.ws.close()


async def test_a_broadcast_with_its_recovery_offset_is_encoded_once_for_every_recipient(
    js: JsClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve() as served:
        sio = served.sio
        # Every serialisation counts, by either way an emit encodes: straight to JSON
        # (engine._json_array) or through upstream's packet (for what orjson refuses).
        encoded: list[str] = []
        real_packet = sio.packet_class

        class Counted(real_packet):  # type: ignore[misc, valid-type]
            def encode(self) -> Any:
                result = super().encode()
                encoded.append(str(result))
                return result

        real_json_array = engine._json_array

        def counted_json_array(items: list[Any]) -> bytes | None:
            result = real_json_array(items)
            encoded.append(str(result))
            return result

        monkeypatch.setattr(engine, "_json_array", counted_json_array)

        clients = [js.client(f"c{i}") for i in range(3)]
        for client in clients:
            await client.connect(served.url, transports=["websocket"])
        raws = [await RawSocket.open(served.url) for _ in range(2)]
        sio.packet_class = Counted
        try:
            # A room event: its payload, then the room position every recipient shares.
            await sio.emit("chat-message", ({"text": "hello"}, "epoch-1:7"), room=ROOM)
        finally:
            sio.packet_class = real_packet
        assert len(encoded) == 1, encoded  # one encode for five sockets
        for client in clients:
            event = await client.wait_for_event("chat-message", timeout=10)
            assert event.args == [{"text": "hello"}, "epoch-1:7"]
        for raw in raws:
            frames = await raw.frames_until('42["chat-message",{"text":"hello"},"epoch-1:7"]')
            assert frames[-1] == '42["chat-message",{"text":"hello"},"epoch-1:7"]'
            await raw.ws.close()


async def test_a_burst_leaves_in_one_write_per_socket_in_order_beside_a_polling_socket(
    js: JsClientPool,
) -> None:
    """Direct emits, broadcasts and the ack of one loop iteration reach a WebSocket socket in
    one write, in emit order; a long-polling socket in the same room gets its share in order."""
    async with serve() as served:
        on_burst(served.sio)
        raw = await RawSocket.open(served.url)
        polling = js.client("polling")
        await polling.connect(served.url, transports=["polling"])
        counting = CountingTransport.around(served.sio, raw)
        await raw.ws.send('421["burst",60]')
        frames = await raw.frames_until("431[60]")
        assert numbers(frames, "n") == list(range(60))
        assert frames[-1] == "431[60]" and len(frames) == 61
        assert counting.writes == [61]  # sixty events and the ack: one write
        got = await polling.wait_for_events("n", 40, timeout=15)
        assert [e.data["n"] for e in got] == [n for n in range(60) if n % 3]
        await raw.ws.close()


async def test_a_rooms_kept_recipients_follow_its_members_and_a_direct_emit_its_one_socket() -> None:
    """Between broadcasts a room gains a socket, one enters it again and one leaves: each
    broadcast reaches exactly the members of that moment, once; a direct emit reaches only
    its socket."""
    async with serve() as served:
        sio = served.sio
        a, b, c = [await RawSocket.open(served.url) for _ in range(3)]
        await sio.leave_room(c.sid, ROOM)
        await sio.emit("n", {"n": 1}, room=ROOM)  # a, b; the room's recipients kept now
        await sio.enter_room(c.sid, ROOM)
        await sio.emit("n", {"n": 2}, room=ROOM)  # a, b, c
        await sio.enter_room(a.sid, ROOM)  # already in
        await sio.emit("n", {"n": 3}, room=ROOM)  # a, b, c, each once
        await sio.leave_room(b.sid, ROOM)
        await sio.emit("n", {"n": 4}, room=ROOM)  # a, c
        await sio.emit("n", {"n": 5}, to=b.sid)  # b alone
        await sio.emit("n", {"n": 6}, room=ROOM)  # a, c
        assert numbers(await a.frames_until('42["n",{"n":6}]'), "n") == [1, 2, 3, 4, 6]
        assert numbers(await b.frames_until('42["n",{"n":5}]'), "n") == [1, 2, 3, 5]
        assert numbers(await c.frames_until('42["n",{"n":6}]'), "n") == [2, 3, 4, 6]
        for raw in (a, b, c):
            await raw.ws.close()

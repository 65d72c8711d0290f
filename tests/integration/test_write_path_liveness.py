"""The edge's liveness checks (edge_gateway/engine.py) on a real aiohttp server over
loopback: silent peers dropped, idle sockets pinged on time, pongs taken as read."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import uvloop

from edge_gateway import engine
from tests.support.timing import wait_until
from tests.support.write_path import RawSocket, serve

LOOP_FACTORY = uvloop.new_event_loop
"""The edge runs on uvloop (meeting_common.lifecycle), and so do these tests: its
transports differ from asyncio's where it matters (a write to a closed one raises).
Read by tests/integration/conftest.py."""


async def test_a_silent_peer_is_dropped_even_after_the_sweep_failed_once() -> None:
    async with serve(ping_interval=0.2, ping_timeout=0.4) as served:
        eio = served.sio.eio
        real_sweep = eio.sweep
        failures: list[float] = []

        def flaky(now: float) -> None:
            if not failures:
                failures.append(now)
                raise RuntimeError("injected sweep failure")
            real_sweep(now)

        eio.sweep = flaky
        silent = await RawSocket.open(served.url)  # never answers a PING
        assert await served.wait_left(silent.sid, 15) == "ping timeout"
        assert failures, "the injected failure never ran"
        with contextlib.suppress(Exception):
            await silent.ws.close()


async def test_idle_sockets_are_pinged_on_time_without_a_task_each() -> None:
    """Every socket gets its PING each interval and stays connected while it answers, and
    no socket has a task of its own waiting for its next ping (one timer serves them all)."""
    async with serve(ping_interval=0.2, ping_timeout=2) as served:
        peers = [await RawSocket.open(served.url) for _ in range(20)]
        pings = dict.fromkeys((p.sid for p in peers), 0)
        ping_tasks: list[int] = []

        async def answer(peer: RawSocket) -> None:
            while True:
                if str(await peer.ws.recv()) == "2":
                    pings[peer.sid] += 1
                    await peer.ws.send("3")

        def count_ping_tasks() -> int:
            return sum(
                1 for t in asyncio.all_tasks() if "_send_ping" in getattr(t.get_coro(), "__qualname__", "")
            )

        answering = [asyncio.create_task(answer(p)) for p in peers]
        try:
            async with asyncio.timeout(20):
                while min(pings.values()) < 5:
                    ping_tasks.append(count_ping_tasks())
                    await asyncio.sleep(0.05)
        finally:
            for task in answering:
                task.cancel()
        assert ping_tasks and max(ping_tasks) == 0
        assert served.left == {}  # answered pings keep every socket in
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.ws.close()


async def test_a_pong_is_taken_as_it_is_read_without_waking_the_reading_loop() -> None:
    """An idle socket answering pings keeps being pinged, and engine.io's `receive` (run by
    a reading task of the connection's) is given only what is not a PONG."""
    async with serve(ping_interval=0.1, ping_timeout=2) as served:
        peer = await RawSocket.open(served.url)
        sock = served.sio.eio.sockets[peer.eio_sid]
        received: list[str] = []
        receive = sock.receive

        async def counted(pkt: Any) -> None:
            received.append(str(pkt.encode()))
            await receive(pkt)

        sock.receive = counted  # the connection's reading task calls it for each packet
        pings = 0
        async with asyncio.timeout(20):
            while pings < 6:  # the 6th PING is scheduled by the 5th PONG
                if str(await peer.ws.recv()) == "2":
                    pings += 1
                    if pings < 6:
                        await peer.ws.send("3")
        await peer.ws.send("41")  # a Socket.IO goodbye: this one is read by the loop
        assert await served.wait_left(peer.sid, 10) == "client disconnect"
        assert received == ["41"]  # the goodbye only: no PONG went through receive
        with contextlib.suppress(Exception):
            await peer.ws.close()


async def _answer_pings(peer: RawSocket, pings: dict[str, int]) -> None:
    while True:
        if str(await peer.ws.recv()) == "2":
            pings[peer.sid] += 1
            await peer.ws.send("3")


async def test_pings_are_due_on_the_batch_grid() -> None:
    """With a batch grid every socket's next PING is due on a multiple of it, whenever its
    PONG came: sockets that answer at different moments are pinged in one batch."""
    grid = 0.5
    async with serve(ping_interval=0.2, ping_timeout=2, ping_batch_seconds=grid) as served:
        eio = served.sio.eio
        peers = [await RawSocket.open(served.url) for _ in range(5)]
        pings = dict.fromkeys((p.sid for p in peers), 0)
        dues: list[float] = []
        answering = [asyncio.create_task(_answer_pings(p, pings)) for p in peers]
        try:
            async with asyncio.timeout(20):
                while min(pings.values()) < 3:
                    dues.extend(due for due, _ in eio._pings)
                    await asyncio.sleep(0.02)
        finally:
            for task in answering:
                task.cancel()
        assert dues
        assert all(abs(due / grid - round(due / grid)) < 1e-6 for due in dues), dues
        assert served.left == {}
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.ws.close()


async def test_a_batch_of_pings_is_written_a_chunk_per_loop_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets due together are pinged a chunk at a time, the rest in later callbacks (other
    work runs in between), and every one of them still gets its PING."""
    monkeypatch.setattr(engine, "_PING_CHUNK", 2)
    # A long grid and a short interval: sockets that answer within one grid step are due at
    # the same instant, so a batch is larger than a chunk.
    async with serve(ping_interval=0.1, ping_timeout=5, ping_batch_seconds=1.0) as served:
        eio = served.sio.eio
        written: list[int] = []
        send_due_pings = eio._send_due_pings

        def counted() -> None:
            before = len(eio._pings)
            send_due_pings()
            written.append(before - len(eio._pings))

        eio._send_due_pings = counted  # looked up on the instance whenever the timer is armed
        peers = [await RawSocket.open(served.url) for _ in range(7)]
        pings = dict.fromkeys((p.sid for p in peers), 0)
        answering = [asyncio.create_task(_answer_pings(p, pings)) for p in peers]
        try:
            await wait_until(lambda: min(pings.values()) >= 3, within=20, what="three pings each")
        finally:
            for task in answering:
                task.cancel()
        assert max(written) == 2, written  # chunks, and batches larger than one chunk
        assert served.left == {}
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.ws.close()

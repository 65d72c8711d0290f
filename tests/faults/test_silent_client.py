"""A client whose network vanishes (no close, no FIN) is reported left to the others
within 10 s with the default settings (its recovery window is spent by then), and faster
when configured so."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_gateway.config import OPTIONS
from tests.support.jsclient import JsClientPool
from tests.support.processes import QUICK_STOP, RoomServiceProcess, start_edge, start_room_service
from tests.support.room import join, join_seen, left_payload, room_stub, truth
from tests.support.timing import report

DEFAULT_BOUND = 10.0
DEFAULT_PING_INTERVAL = float(next(o.default for o in OPTIONS if o.name == "ping_interval_seconds"))


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_vanished_client_is_reported_left_within_10s_by_default(
    room_service: RoomServiceProcess, js: JsClientPool, transport: str
) -> None:
    # Default ping settings: only the lease-related heartbeat is irrelevant here.
    edge = await start_edge(room_service.grpc_address, name="edge-defaults")
    try:
        watcher, ghost = js.client("watcher"), js.client("ghost")
        await join(watcher, "uw", url=edge.url)
        await ghost.connect(edge.url, transports=[transport])
        pid = await join_seen(ghost, "ug", watcher)

        # Worst case: vanish just after answering a ping, so that a whole ping interval
        # passes before the server even asks again (the first ping comes one interval
        # after the connection opened).
        connected = ghost.events_named("connect")[0].received
        await asyncio.sleep(max(0.0, connected + DEFAULT_PING_INTERVAL + 0.3 - time.monotonic()))
        mark = watcher.mark()
        started = time.monotonic()
        await ghost.drop("blackhole")
        event = await watcher.wait_for_event(
            "participant-left", left_payload(pid, "disconnected"), timeout=DEFAULT_BOUND + 5, start=mark
        )
        took = event.received - started
        report(f"silent client ({transport}, default pings): others told", took)
        async with room_stub(room_service.grpc_address) as stub:
            assert pid not in await truth(stub)
    finally:
        await edge.terminate()


async def test_silent_client_timeout_is_configurable(js: JsClientPool) -> None:
    # The others learn of a silent loss after the longer of the ping bound and the
    # recovery window (counted from the client's last sign of life): a short
    # window here, so the ping settings are what this measures.
    async with await start_room_service(
        "--recovery-window-seconds", "1", *QUICK_STOP, name="rs-short-window"
    ) as rs:
        await _silent_client_with_fast_pings(rs, js)


async def _silent_client_with_fast_pings(room_service: RoomServiceProcess, js: JsClientPool) -> None:
    edge = await start_edge(
        room_service.grpc_address,
        "--ping-interval-seconds",
        "0.5",
        "--ping-timeout-seconds",
        "1",
        name="edge",
    )
    try:
        watcher, ghost = js.client("watcher"), js.client("ghost")
        await join(watcher, "uw", url=edge.url)
        pid = await join_seen(ghost, "ug", watcher, url=edge.url)
        mark = watcher.mark()
        started = time.monotonic()
        await ghost.drop("blackhole")
        event = await watcher.wait_for_event(
            # Well below the 8.5 s the default pings need: the settings took effect.
            "participant-left",
            left_payload(pid, "disconnected"),
            timeout=6,
            start=mark,
        )
        report("silent client (ping 0.5 s + 1 s): others told", event.received - started)
    finally:
        await edge.terminate()

"""An edge that dies, freezes or is cut off loses its participants within the lease, and
everyone else is told (`participant-left`, reason `disconnected`); one that dies is noticed
when its connection closes, long before its lease. Nothing stays behind, nothing comes back
when a frozen or cut-off edge returns, and signals reach a reaped-then-thawed edge again."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.jsclient import JsClientPool
from tests.support.processes import (
    QUICK_STOP,
    RoomServiceProcess,
    start_edge,
    start_room_service,
    start_together,
)
from tests.support.room import about, join, join_seen, left_payload, room_stub, truth
from tests.support.tcp_proxy import TcpProxy
from tests.support.timing import report

LEASE = 2.0
# A reaped edge's sockets stay recoverable through other edges for the recovery window;
# only then are the others told. Short here, to keep the tests short.
RECOVERY_WINDOW = 1.0
FAST = ("--ping-interval-seconds", "1", "--ping-timeout-seconds", "2", "--heartbeat-interval-seconds", "0.5")
# Lease, plus the recovery window, plus the reaper's tick, plus relay and scheduling slack.
# Used only as a generous wait: the measured times are reported, not asserted (timing
# belongs in benchmarks).
BOUND = LEASE + RECOVERY_WINDOW + 2.0


@contextlib.asynccontextmanager
async def _room_service(recovery_window: float) -> AsyncIterator[RoomServiceProcess]:
    """A room service on the short lease, with this recovery window on top of it."""
    proc = await start_room_service(
        "--edge-lease-seconds",
        str(LEASE),
        "--restore-grace-seconds",
        "1",
        "--recovery-window-seconds",
        str(recovery_window),
        *QUICK_STOP,
    )
    try:
        yield proc
    finally:
        await proc.terminate()


@pytest.fixture
async def rs() -> AsyncIterator[RoomServiceProcess]:
    async with _room_service(RECOVERY_WINDOW) as proc:
        yield proc


@pytest.mark.parametrize("fault", ["sigkill", "sigstop"])
async def test_dead_or_frozen_edge_loses_its_participants(
    rs: RoomServiceProcess, js: JsClientPool, fault: str
) -> None:
    edge_a, edge_b = await start_together(
        start_edge(rs.grpc_address, *FAST, name="edge-a"), start_edge(rs.grpc_address, *FAST, name="edge-b")
    )
    try:
        a1 = js.client("a1")
        pa = (await join(a1, "ua", url=edge_a.url))["participantId"]
        b_pids = [
            (await join(js.client(f"b{i}"), f"ub{i}", url=edge_b.url))["participantId"] for i in range(2)
        ]
        await a1.wait_for_events("participant-joined", 2)
        mark = a1.mark()

        started = time.monotonic()
        if fault == "sigkill":
            await edge_b.kill()
        else:
            edge_b.freeze()
        for pid in b_pids:
            await a1.wait_for_event(
                "participant-left", left_payload(pid, "disconnected"), timeout=BOUND + 3, start=mark
            )
        report(f"edge {fault}: others told participant-left", time.monotonic() - started)
        async with room_stub(rs.grpc_address) as stub:
            assert await truth(stub) == {pa}

            if fault == "sigstop":
                # The frozen edge wakes up: its old participants must not come back.
                edge_b.thaw()
                thawed = a1.mark()
                await a1.expect_no_event("participant-joined", within=3.0, start=thawed)
                assert await truth(stub) == {pa}
        assert len(a1.events_named("participant-left", start=mark)) == 2  # each told once
    finally:
        await edge_b.terminate()
        await edge_a.terminate()


async def test_cut_off_edge_is_reaped_and_its_sockets_are_told_when_it_returns(
    rs: RoomServiceProcess, js: JsClientPool
) -> None:
    async with TcpProxy(rs.grpc_address) as proxy:
        edge_a, edge_b = await start_together(
            start_edge(rs.grpc_address, *FAST, name="edge-a"), start_edge(proxy.address, *FAST, name="edge-b")
        )
        try:
            a1, b1 = js.client("a1"), js.client("b1")
            pa = (await join(a1, "ua", url=edge_a.url))["participantId"]
            pb1 = await join_seen(b1, "ub", a1, url=edge_b.url)
            mark_a, mark_b = a1.mark(), b1.mark()

            started = time.monotonic()
            proxy.block()  # edge B is alive and its client connected, but B is cut off
            event = await a1.wait_for_event(
                "participant-left", left_payload(pb1, "disconnected"), timeout=BOUND + 3, start=mark_a
            )
            reaped_after = event.received - started
            report("edge cut off: others told participant-left", reaped_after)
            async with room_stub(rs.grpc_address) as stub:
                assert await truth(stub) == {pa}

                proxy.unblock()
                healed = time.monotonic()
                # B re-announces its socket; the room service refuses (its lease ran out and
                # everyone was told), so B tells its client it is out of the meeting...
                told = await b1.wait_for_event("participant-left", about(pb1), timeout=10, start=mark_b)
                report("edge cut off: its own client told after the link healed", told.received - healed)
                await edge_b.wait_ready(within=10)
                # ...and nobody sees the reaped participant come back as a ghost.
                await a1.expect_no_event("participant-joined", about(pb1), within=1.5, start=mark_a)
                assert await truth(stub) == {pa}

                # The client can join again and is seen by the others.
                again = await join_seen(b1, "ub", a1, within=5)
                assert await truth(stub) == {pa, again}
        finally:
            await edge_b.terminate()
            await edge_a.terminate()


# A lease far longer than any wait below: a reap seen within them cannot be the lease's.
LONG_LEASE = 30.0
# With the short recovery window, a reap on a closed connection (disconnect grace, window,
# reaper tick: about 2.5 s) shows well within those waits; at the shipped 5 s window it
# would come after the 4 s quiet period below.
LONG_LEASE_ARGS = ("--edge-lease-seconds", str(LONG_LEASE), "--recovery-window-seconds", str(RECOVERY_WINDOW))


async def test_a_crashed_edge_is_reaped_when_its_connection_closes_not_after_its_lease(
    js: JsClientPool,
) -> None:
    async with await start_room_service(*LONG_LEASE_ARGS, *QUICK_STOP, name="rs-long-lease") as rs:
        edge_a, edge_b = await start_together(
            start_edge(rs.grpc_address, name="edge-a"), start_edge(rs.grpc_address, name="edge-b")
        )  # default heartbeat and pings
        try:
            a1 = js.client("a1")
            pa = (await join(a1, "ua", url=edge_a.url))["participantId"]
            b_pids = [await join_seen(js.client(f"b{i}"), f"ub{i}", a1, url=edge_b.url) for i in range(2)]
            mark = a1.mark()

            killed = time.monotonic()
            await edge_b.kill()
            for pid in b_pids:
                await a1.wait_for_event(
                    "participant-left", left_payload(pid, "disconnected"), timeout=LONG_LEASE / 2, start=mark
                )
            report("edge SIGKILL (30 s lease): others told participant-left", time.monotonic() - killed)
            async with room_stub(rs.grpc_address) as stub:
                assert await truth(stub) == {pa}
        finally:
            await edge_b.terminate()
            await edge_a.terminate()


@pytest.mark.parametrize("fault", ["sigstop", "silent-cut"])
async def test_a_frozen_or_silently_cut_edge_keeps_its_lease(js: JsClientPool, fault: str) -> None:
    async with (
        await start_room_service(*LONG_LEASE_ARGS, *QUICK_STOP, name="rs-long-lease") as rs,
        TcpProxy(rs.grpc_address) as proxy,
    ):
        edge_a, edge_b = await start_together(
            start_edge(rs.grpc_address, name="edge-a"), start_edge(proxy.address, name="edge-b")
        )
        try:
            a1, b1 = js.client("a1"), js.client("b1")
            pa = (await join(a1, "ua", url=edge_a.url))["participantId"]
            pb1 = await join_seen(b1, "ub", a1, url=edge_b.url)
            mark = a1.mark()
            # Its connection stays open (nothing is closed), so only the lease may reap it.
            if fault == "sigstop":
                edge_b.freeze()
            else:
                proxy.freeze()
            await a1.expect_no_event("participant-left", within=4.0, start=mark)
            if fault == "sigstop":
                edge_b.thaw()
            else:
                proxy.thaw()
            async with room_stub(rs.grpc_address) as stub:
                assert await truth(stub) == {pa, pb1}
        finally:
            await edge_b.terminate()
            await edge_a.terminate()


@pytest.fixture
async def rs_without_recovery() -> AsyncIterator[RoomServiceProcess]:
    """Reaping at the lease, no recovery window on top: a frozen edge must wake up before
    its own clients' ping timeout (3 s) gives up on it."""
    async with _room_service(0) as proc:
        yield proc


async def test_signals_reach_a_frozen_edge_again_after_it_was_reaped(
    rs_without_recovery: RoomServiceProcess, js: JsClientPool
) -> None:
    rs = rs_without_recovery
    edge_a, edge_b = await start_together(
        start_edge(rs.grpc_address, *FAST, name="edge-a"), start_edge(rs.grpc_address, *FAST, name="edge-b")
    )
    try:
        a1, b1 = js.client("a1"), js.client("b1")
        await join(a1, "ua", url=edge_a.url)
        pb1 = await join_seen(b1, "ub", a1, url=edge_b.url)
        mark_a, mark_b = a1.mark(), b1.mark()

        edge_b.freeze()  # frozen past its lease, but its connection (and WatchEdge stream) survives
        await a1.wait_for_event("participant-left", left_payload(pb1), timeout=BOUND + 3, start=mark_a)
        edge_b.thaw()
        await b1.wait_for_event("participant-left", about(pb1), timeout=10, start=mark_b)
        await edge_b.wait_ready(within=10)
        again = await join_seen(b1, "ub", a1, within=5)

        mark_b = b1.mark()
        ack = await a1.emit_with_ack("webrtc-offer", {"targetParticipantId": again, "sdp": {"type": "offer"}})
        assert ack["success"], ack
        offer = await b1.wait_for_event("webrtc-offer", timeout=10, start=mark_b)
        assert offer.data["targetParticipantId"] == again
    finally:
        await edge_b.terminate()
        await edge_a.terminate()

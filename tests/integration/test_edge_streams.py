"""WatchEdge over real gRPC: signals reach the edge that holds the target again after
that edge was reaped while its stream survived (a freeze), and streams for made-up edge
ids leave nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json

import grpc
import pytest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from room_service.store.memory import MemoryStore
from tests.support.room import room_snapshot
from tests.support.room_rpc import OPEN, join_request, room_service_app
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)


class EdgeStream:
    """A WatchEdge stream piped into a queue."""

    def __init__(self, stub: pb_grpc.RoomServiceAsyncStub, edge_id: str) -> None:
        self.call = stub.WatchEdge(pb.WatchEdgeRequest(edge_id=edge_id))
        self.signals: asyncio.Queue[pb.Signal] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for item in self.call:
                await self.signals.put(item.signal)

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_signals_reach_an_edge_reaped_while_its_stream_survived() -> None:
    async with room_service_app("--edge-lease-seconds", "1") as (_app, stub):
        await stub.Heartbeat(pb.HeartbeatRequest(edge_id="edge-frozen"), timeout=5)
        stream = EdgeStream(stub, "edge-frozen")
        try:
            await stub.Join(join_request("ada", edge_id="edge-frozen"), timeout=5)
            bob = await stub.Join(join_request("bob", edge_id="edge-live", socket_id="s-bob"), timeout=5)
            stopped = asyncio.Event()

            async def keep_live() -> None:  # edge-live heartbeats; edge-frozen does not
                while not stopped.is_set():
                    await stub.Heartbeat(pb.HeartbeatRequest(edge_id="edge-live"), timeout=5)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopped.wait(), 0.3)

            beating = asyncio.create_task(keep_live())

            async def reaped() -> bool:
                return [p.user_id for p in (await room_snapshot(stub, OPEN)).participants] == ["bob"]

            await wait_until(reaped, within=15, what="edge-frozen reaped")
            # The edge thaws: it announces itself again and its socket joins anew.
            await stub.Heartbeat(pb.HeartbeatRequest(edge_id="edge-frozen"), timeout=5)
            again = await stub.Join(
                join_request("ada", edge_id="edge-frozen", socket_id="s-ada-2"), timeout=5
            )
            signal = pb.Signal(
                type=pb.SIGNAL_TYPE_OFFER,
                meeting_id=OPEN,
                from_participant_id=bob.participant.participant_id,
                target_participant_id=again.participant.participant_id,
                payload_json=json.dumps({"sdp": "v=0"}),
            )
            await stub.SendSignal(pb.SendSignalRequest(signal=signal), timeout=5)
            got = await asyncio.wait_for(stream.signals.get(), 10)
            assert (got.target_participant_id, got.target_socket_id) == (
                again.participant.participant_id,
                "s-ada-2",
            )
            stopped.set()
            await beating
        finally:
            await stream.close()


async def test_watch_edge_for_made_up_ids_leaves_nothing_behind() -> None:
    async with room_service_app() as (app, stub):
        store = app.store
        assert isinstance(store, MemoryStore)
        streams = [EdgeStream(stub, f"made-up-{i}") for i in range(30)]

        async def all_open() -> bool:
            return store.footprint().mailboxes == 30 and app.manager.edge_streams_open == 30

        await wait_until(all_open, within=10, what="30 made-up WatchEdge streams open")
        for stream in streams:
            await stream.close()

        async def nothing_left() -> bool:
            footprint = store.footprint()
            return (footprint.mailboxes, footprint.edges, app.manager.edge_streams_open) == (0, 0, 0)

        took = await wait_until(nothing_left, within=10, what="nothing left of the made-up edges")
        print(f"[streams] 30 made-up WatchEdge streams cleaned up {took:.2f}s after they closed")
        assert await store.edge_count() == 0

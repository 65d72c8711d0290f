"""A RoomService WatchRoom stream piped into a queue, so that tests wait for its next item
with a timeout or assert that nothing more arrives."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.timing import nothing_arrives


class Watch:
    """A WatchRoom stream piped into a queue, so tests can wait with a timeout."""

    def __init__(
        self,
        stub: pb_grpc.RoomServiceAsyncStub,
        meeting: str,
        after: pb.StreamPosition,
        *,
        batch: bool = False,
    ) -> None:
        self.call = stub.WatchRoom(pb.WatchRoomRequest(meeting_id=meeting, after=after, batch=batch))
        self.items: asyncio.Queue[pb.WatchRoomResponse | grpc.aio.AioRpcError] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for item in self.call:
                await self.items.put(item)
        except grpc.aio.AioRpcError as exc:
            await self.items.put(exc)

    async def next(self, within: float = 5.0) -> pb.WatchRoomResponse:
        item = await asyncio.wait_for(self.items.get(), within)
        assert isinstance(item, pb.WatchRoomResponse), item
        return item

    async def event(self, within: float = 5.0) -> pb.RoomEvent:
        item = await self.next(within)
        assert item.HasField("event"), item
        return item.event

    async def nothing(self, within: float = 0.3) -> None:
        await nothing_arrives(self.items.get, within=within, what="stream item")

    async def close(self) -> None:
        self.call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

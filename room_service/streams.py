"""The room service's streams: WatchRoom (replay, then tail; a snapshot where replay
cannot reach) and WatchEdge (signals, doubling as the edge's liveness)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from room_service.domain import errors
from room_service.domain.events import RoomEvent
from room_service.domain.models import Position, Signal, Snapshot
from room_service.manager_core import ManagerCore

log = logging.getLogger("room_service")
T = TypeVar("T")

_READ_BATCH = 256


class RoomStreams(ManagerCore):
    """The long-lived streams; all end when the service starts shutting down."""

    async def edge_signals(self, edge_id: str) -> AsyncIterator[Signal]:
        """The signals for one edge's sockets, as they come.

        The stream doubles as the edge's liveness: a (re)opened stream renews a known
        edge's lease, and when the edge's last stream ends because its connection closed
        (the process died) its lease is cut to the disconnect grace."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        self._edge_streams[edge_id] = self._edge_streams.get(edge_id, 0) + 1
        try:
            await self._store.touch_edge(
                edge_id, self._clock() + self._options.edge_lease_seconds, create=False
            )
            while True:
                signal = await self._unless_closing(self._store.next_signal(edge_id))
                if signal is None:
                    return
                yield signal
        finally:
            await self._edge_stream_ended(edge_id)

    async def _edge_stream_ended(self, edge_id: str) -> None:
        remaining = self._edge_streams.pop(edge_id) - 1
        if remaining:
            self._edge_streams[edge_id] = remaining
            return
        if self._closing.is_set():
            return  # this service is stopping; the edge is not the one that went away
        # A dead edge never reconnects; a live one whose connection blipped reopens its
        # stream (renewing the lease above) or heartbeats within the grace.
        grace = self._options.edge_disconnect_grace_seconds
        if await self._store.touch_edge(edge_id, self._clock() + grace, create=False):
            log.info(
                "edge connection closed; its participants go unless it reconnects",
                extra={"edge_id": edge_id, "grace_seconds": grace},
            )

    # -- the stream -------------------------------------------------------------------

    async def watch(self, meeting_id: str, after: Position) -> AsyncIterator[list[RoomEvent] | Snapshot]:
        """The room's events after `after`, in order, as the batches that were ready
        together (never empty); a snapshot where replay cannot reach."""
        await self._store.get_meeting(meeting_id)
        position = after
        self._metrics.watch_streams.inc()
        try:
            while True:
                batch = await self._store.read_after(meeting_id, position, _READ_BATCH)
                if isinstance(batch, Snapshot):
                    await self._restore_grace()
                    if self._closing.is_set():
                        return
                    # Re-read: edges may have re-announced their sockets meanwhile.
                    batch = await self._store.snapshot(meeting_id)
                    if batch.position != position:
                        yield batch
                        position = batch.position
                    continue
                if batch:
                    yield batch
                    position = batch[-1].position
                else:
                    await self._unless_closing(self._store.wait_beyond(meeting_id, position))
                if self._closing.is_set():
                    return
        finally:
            self._metrics.watch_streams.dec()

    async def _restore_grace(self) -> None:
        # A fresh in-memory service (or a Redis that lost its data) knows nobody until
        # the edges re-announce their sockets. A resuming watcher answered with a
        # snapshot now would tell its sockets that every participant of a slower edge
        # left; so stale watchers wait out the grace (edges re-announce within about a
        # second of the service coming back).
        await self.check_store_continuity()
        remaining = self._started + self._options.restore_grace_seconds - self._clock()
        if remaining > 0:
            await self._unless_closing(asyncio.sleep(remaining))

    async def _unless_closing(self, awaitable: Awaitable[T]) -> T | None:
        """The awaitable's result, or None when the service starts shutting down first."""
        if self._closing.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            return None
        work = asyncio.ensure_future(awaitable)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        return work.result() if not work.cancelled() else None

    def close_streams(self) -> None:
        """Ends every WatchRoom and WatchEdge stream (shutdown); new ones end at once."""
        self._closing.set()

"""Signal mailboxes of the in-memory store: one bounded queue per edge, kept exactly as
long as someone could read it (the edge holds a lease, or a WatchEdge stream waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from room_service.domain.models import Signal


@dataclass(slots=True)
class _Mailbox:
    """An edge's undelivered signals and how many streams wait on them."""

    queue: asyncio.Queue[Signal]
    readers: int = 0


class Mailboxes:
    """Mailboxes by edge id; `leased(edge_id)` says whether the edge holds a lease."""

    def __init__(self, capacity: int, leased: Callable[[str], bool]) -> None:
        self._capacity = capacity
        self._leased = leased
        self._boxes: dict[str, _Mailbox] = {}

    def __len__(self) -> int:
        return len(self._boxes)

    def post(self, edge_id: str, signal: Signal) -> None:
        """Queues a signal; dropped when nobody could read it (no lease, no reader)."""
        box = self._boxes.get(edge_id)
        if box is None:
            if not self._leased(edge_id):
                return
            box = self._open(edge_id)
        if box.queue.full():
            box.queue.get_nowait()  # a stale offer is worth less than the newest candidate
        box.queue.put_nowait(signal)

    async def take(self, edge_id: str) -> Signal:
        """Waits for the edge's next signal; waiting keeps the mailbox."""
        box = self._open(edge_id)
        box.readers += 1
        try:
            return await box.queue.get()
        finally:
            box.readers -= 1
            self.tidy(edge_id)

    def discard(self, edge_id: str) -> None:
        """Drops the edge's queued signals (their targets are gone); a waiting stream keeps
        its mailbox (the edge froze, it did not die) and gets whatever comes next."""
        box = self._boxes.get(edge_id)
        if box is not None:
            while not box.queue.empty():
                box.queue.get_nowait()
            self.tidy(edge_id)

    def tidy(self, edge_id: str) -> None:
        """Forgets the mailbox once it has neither a reader nor a leased edge."""
        box = self._boxes.get(edge_id)
        if box is not None and box.readers == 0 and not self._leased(edge_id):
            del self._boxes[edge_id]

    def _open(self, edge_id: str) -> _Mailbox:
        box = self._boxes.get(edge_id)
        if box is None:
            box = self._boxes[edge_id] = _Mailbox(asyncio.Queue(self._capacity))
        return box

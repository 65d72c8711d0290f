"""The edge's queue of Join calls: at most `depth` in flight per meeting, the rest wait
their turn here, first come first served.

Why. Each Join's reply carries the meeting's whole roster, so a room's joins cost the room
service and the edge in proportion to its size, and a join storm into one big meeting
(1,000 people at the start of a webinar) is a queue whatever is done. Without this queue
every join of the storm was a gRPC call at once, each with its own deadline running from
that moment: the calls at the back waited out the deadline behind the others (in the
channel, in the room service) and were refused UNAVAILABLE although the service was
answering all along (103 of 1,000 in one bench run). Queued here instead, a call's
deadline runs from when it is sent, behind at most `depth - 1` others of its meeting, so
it measures the room service, not the storm; the storm takes as long as the work takes.

A meeting's entry lives while it has calls in flight or waiting; other meetings' joins
never wait on it. Waiting is cancellation-safe (a task cancelled in the queue leaves it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class _Meeting:
    __slots__ = ("slots", "users")

    def __init__(self, depth: int) -> None:
        self.slots = asyncio.Semaphore(depth)
        self.users = 0  # calls in flight or waiting


class JoinQueue:
    """Per meeting, at most `depth` Join calls in flight; FIFO for the rest."""

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth
        self._meetings: dict[str, _Meeting] = {}

    @contextlib.asynccontextmanager
    async def turn(self, meeting_id: str) -> AsyncIterator[None]:
        """Waits for one of the meeting's slots and holds it for the block."""
        meeting = self._meetings.get(meeting_id)
        if meeting is None:
            meeting = self._meetings[meeting_id] = _Meeting(self.depth)
        meeting.users += 1
        try:
            async with meeting.slots:
                yield
        finally:
            meeting.users -= 1
            if meeting.users == 0:
                del self._meetings[meeting_id]

    def waiting(self, meeting_id: str) -> int:
        """Calls of the meeting queued behind the ones in flight."""
        meeting = self._meetings.get(meeting_id)
        return 0 if meeting is None else max(0, meeting.users - self.depth)

    def meetings(self) -> int:
        """Meetings with calls in flight or waiting (entries held)."""
        return len(self._meetings)

"""Heap memory freed after a load burst goes back to the system.

glibc's malloc keeps the pages of freed chunks for reuse: after a join storm (rosters of a
thousand participants encoded for each joiner) a process holds tens of megabytes it no
longer uses, and its resident size never returns to the idle level. A check every few
seconds asks malloc how much it holds free (`mallinfo2`, a walk of its bins) and trims only
when that grew by a threshold over its lowest level since the last trim (a trim releases
the pages of free chunks but keeps them free: the level itself stays up), so an idle
process does almost nothing and the trim's cost (proportional to the heap) is paid once
per burst. Without glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

log = logging.getLogger("meeting_common.heap")

CHECK_SECONDS = 5.0
"""How often the free memory malloc holds is looked at."""
TRIM_ABOVE_BYTES = 2 << 20
"""Free heap memory worth handing back (below it a trim costs more than it returns)."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


class HeapTrimmer:
    """Trims glibc's heap when it holds at least `threshold` bytes free."""

    def __init__(self, threshold: int = TRIM_ABOVE_BYTES) -> None:
        self.threshold = threshold
        self._low = 0  # the least free memory seen since the last trim
        self._libc: ctypes.CDLL | None = None
        name = ctypes.util.find_library("c")
        if name is not None:
            libc = ctypes.CDLL(name)
            if hasattr(libc, "mallinfo2") and hasattr(libc, "malloc_trim"):
                libc.mallinfo2.restype = _MallInfo2
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
                self._libc = libc
                self._low = self.free_bytes()

    @property
    def available(self) -> bool:
        """True on glibc (2.33 or later)."""
        return self._libc is not None

    def free_bytes(self) -> int:
        """Bytes malloc holds in free chunks (0 without glibc)."""
        return int(self._libc.mallinfo2().fordblks) if self._libc is not None else 0

    def trim_if_worth(self) -> bool:
        """Hands free heap pages back when enough were freed since the last trim; True if it trimmed."""
        if self._libc is None:
            return False
        free = self.free_bytes()
        self._low = min(self._low, free)
        if free - self._low < self.threshold:
            return False
        self._libc.malloc_trim(0)
        self._low = self.free_bytes()
        return True

    async def run(self, interval: float = CHECK_SECONDS) -> None:
        """Checks every `interval` seconds, forever."""
        while True:
            await asyncio.sleep(interval)
            free = self.free_bytes()
            if self.trim_if_worth():
                log.debug("heap trimmed", extra={"free_bytes": free, "free_after": self.free_bytes()})

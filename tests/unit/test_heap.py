"""The heap trimmer hands memory freed by a burst back once, not at every check."""

from __future__ import annotations

from meeting_common.heap import HeapTrimmer

_CHUNK = 4096  # above Python's small-object allocator: straight from malloc


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_memory_freed_by_a_burst_is_trimmed_once() -> None:
    trimmer = HeapTrimmer(threshold=8 << 20)
    assert trimmer.available  # the images and this machine run on glibc
    assert not trimmer.trim_if_worth()  # nothing freed yet
    # Larger than what malloc already holds free (earlier tests in this process may have
    # left some): the burst cannot be served from reused chunks alone.
    size = trimmer.free_bytes() + (16 << 20)
    burst = [bytes(_CHUNK) for _ in range(size // _CHUNK)]
    kept = burst[::16]  # live chunks between the freed ones: malloc cannot shrink its top
    del burst
    resident = _rss_bytes()
    assert trimmer.trim_if_worth()
    assert _rss_bytes() < resident - (8 << 20)  # the freed pages left the process
    assert not trimmer.trim_if_worth()  # they stay free, but nothing new was freed
    assert kept

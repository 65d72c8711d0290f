"""Who may spend a password check (a deliberately slow scrypt) on a meeting, and when.

Guessers are throttled per socket, never per meeting: counting wrong passwords per
meeting let anyone lock the host out by guessing. The counts live in the store, so every
replica sees the same ones (joins are balanced over replicas). A socket's attempt is
counted before the hash runs (so concurrent joins from one socket cannot slip past the
limit) and forgiven when the password was right. Each edge runs at most `checks_per_edge` hashes at
once; the rest wait their turn, so one edge (or one caller inventing socket ids) cannot
take the CPU from the others, and nobody is refused for another's guessing.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter

from room_service.domain import errors
from room_service.domain.passwords import verify_password
from room_service.store.base import PasswordAttempts

_WINDOW_SECONDS = 60.0


class PasswordGate:
    """Checks meeting passwords under the per-socket and per-edge bounds."""

    def __init__(
        self,
        attempts: PasswordAttempts,
        attempts_per_minute: int,
        checks_per_edge: int,
        checks: Counter,
    ) -> None:
        self._attempts = attempts
        self._limit = attempts_per_minute
        self._checks_per_edge = checks_per_edge
        self._checks = checks
        # One semaphore per edge with a hash running or waiting; dropped when idle, so
        # made-up edge ids leave nothing behind.
        self._edges: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}

    async def check(
        self, meeting_id: str, password_hash: str, password: str, edge_id: str, socket_id: str
    ) -> None:
        """Returns when `password` matches; INVALID_PASSWORD or RATE_LIMITED otherwise."""
        if not password:
            raise errors.invalid_password()  # a prompt for the password, not a guess
        key = f"{edge_id}\x00{socket_id}"  # ids never hold control characters
        if not await self._attempts.take_password_attempt(meeting_id, key, self._limit, _WINDOW_SECONDS):
            raise errors.rate_limited("Too many wrong passwords, try again later")
        ok = await self._hash_on(edge_id, password, password_hash)
        self._checks.labels(result="ok" if ok else "wrong").inc()
        if not ok:
            raise errors.invalid_password()
        await self._attempts.return_password_attempt(meeting_id, key)

    async def _hash_on(self, edge_id: str, password: str, password_hash: str) -> bool:
        entry = self._edges.get(edge_id)
        if entry is None:
            entry = self._edges[edge_id] = (asyncio.Semaphore(self._checks_per_edge), [0])
        semaphore, users = entry
        users[0] += 1
        try:
            async with semaphore:
                work = asyncio.ensure_future(asyncio.to_thread(verify_password, password, password_hash))
                try:
                    return await asyncio.shield(work)
                except asyncio.CancelledError:
                    # The thread hashes on regardless: hold the edge's slot until it ends.
                    await asyncio.wait({work})
                    raise
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._edges[edge_id]

    @property
    def edges_tracked(self) -> int:
        """Edges with a check running or waiting (0 when idle)."""
        return len(self._edges)

"""Edge leases: heartbeats, re-announcements after a restart (or a store that lost its
data), and reaping the participants of edges whose lease ran out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from room_service.domain import errors
from room_service.manager_core import ManagerCore
from room_service.store.base import StoreUnavailableError
from room_service.store.base_edges import RestoreRecord

log = logging.getLogger("room_service")


class EdgeLeases(ManagerCore):
    """Leases and reaping; reaping pauses after a stall or a store outage."""

    # -- edges ------------------------------------------------------------------------

    async def heartbeat(self, edge_id: str) -> bool:
        """Renews an edge's lease; False when the edge was unknown (its sessions are gone)."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        return await self._store.touch_edge(edge_id, self._clock() + self._options.edge_lease_seconds)

    async def instance_id(self) -> str:
        """Names the state this service serves; edges re-announce their sockets when it changes."""
        return await self._store.instance_id()

    async def restore(self, edge_id: str, records: Sequence[RestoreRecord]) -> list[str]:
        """Re-adds the participants an edge still holds after this service lost them."""
        if not edge_id:
            raise errors.invalid("edge_id is required")
        # The usual reason to re-announce is a store that lost its data: have its
        # meetings registered again first, or every participant would be refused.
        await self.check_store_continuity()
        await self._store.touch_edge(edge_id, self._clock() + self._options.edge_lease_seconds)
        # A reaped edge's participants were reported gone to everyone: the store refuses
        # them, and the edge tells its sockets so instead of bringing them back.
        rejected = await self._store.restore(edge_id, records)
        log.info(
            "Edge re-announced its sessions",
            extra={"edge_id": edge_id, "sessions": len(records), "rejected": len(rejected)},
        )
        return rejected

    async def reap_expired_edges(self) -> int:
        """Removes the participants of every edge whose lease ran out; returns how many."""
        reaped = 0
        now = self._clock()
        if now < self._reap_not_before:
            return 0
        window = self._options.recovery_window_seconds
        for edge_id in await self._store.expired_edges(now):
            # Its sockets' clients may reconnect through another edge: held for the window.
            events = await self._store.drop_edge(
                edge_id, now, hold_until=now + window if window > 0 else None
            )
            if events is None:
                continue  # renewed meanwhile, or another replica reaped it
            for event in events:
                await self._published(event)
            reaped += len(events)
            self._metrics.reaped.inc(len(events))
            log.warning(
                "Edge lease expired; its participants were removed",
                extra={"edge_id": edge_id, "participants": len(events)},
            )
        return reaped

    def note_stall(self, seconds: float) -> None:
        """This process did not run for `seconds` (frozen, starved): no edge could renew
        its lease meanwhile, so every edge gets one full lease before anyone is reaped."""
        self._reap_not_before = self._clock() + self._options.edge_lease_seconds
        log.warning(
            "room service stalled; reaping paused for one lease",
            extra={"stalled_seconds": round(seconds, 3), "lease_seconds": self._options.edge_lease_seconds},
        )

    async def run_reaper(self, interval: float) -> None:
        """Reaps expired edges forever, every `interval` seconds."""
        last = self._clock()
        store_down = False
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            if now - last > interval + max(1.0, self._options.edge_lease_seconds / 4):
                self.note_stall(now - last - interval)
            last = now
            try:
                await self.check_store_continuity()
                if store_down:
                    # While the store was away no edge could renew its lease either:
                    # every edge gets one full lease before anyone is reaped.
                    store_down = False
                    self._reap_not_before = self._clock() + self._options.edge_lease_seconds
                    log.warning("room store reachable again; reaping paused for one lease")
                await self.housekeeping()
            except StoreUnavailableError:
                store_down = True
            except Exception:
                log.exception("reaping expired edges or ended rooms failed")

    async def housekeeping(self) -> None:
        """One reaper tick: expired edges lose their participants, held sessions past their
        recovery window leave, ended rooms past their retention are forgotten."""
        await self.reap_expired_edges()
        for event in await self._store.expire_holds(self._clock()):
            self._metrics.recoveries.labels(outcome="expired").inc()
            await self._published(event)
        dropped = await self._store.drop_ended_rooms(self._clock())
        if dropped:
            log.info("ended rooms dropped", extra={"rooms": dropped})

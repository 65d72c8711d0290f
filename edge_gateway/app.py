"""Wiring: aiohttp + python-socketio, the hub, health and metrics endpoints, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from typing import Any

import socketio
from aiohttp import web
from meeting.v1 import room_service_pb2 as pb
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge_gateway.config import Settings
from edge_gateway.handlers import EventHandlers
from edge_gateway.hub import Hub
from edge_gateway.metrics import EdgeMetrics
from edge_gateway.rpc import RoomClient
from meeting_common.net import bound_port

log = logging.getLogger("edge_gateway")


def webrtc_config(_user_id: str) -> dict[str, Any]:
    """The `webrtcConfig` of `meeting-joined`."""
    return {"iceServers": []}


class EdgeApp:
    """One running edge gateway: start(), stop()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.edge_id = f"edge-{uuid.uuid4().hex[:12]}"
        self.registry = CollectorRegistry()
        self.metrics = EdgeMetrics(self.registry)
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins=settings.cors_allowed_origins,
            ping_interval=settings.ping_interval_seconds,
            ping_timeout=settings.ping_timeout_seconds,
            max_http_buffer_size=settings.max_payload_bytes,
        )
        self.client = RoomClient(settings.room_service_address, self.edge_id, settings.rpc_timeout_seconds)
        self.hub = Hub(self.sio, self.client, self.metrics)
        self.handlers = EventHandlers(self.hub, webrtc_config, settings.max_payload_bytes)
        self.handlers.register(self.sio)
        self.web = web.Application()
        self.sio.attach(self.web)
        self.web.router.add_get("/healthz", self._healthz)
        self.web.router.add_get("/readyz", self._readyz)
        self.web.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Serves HTTP and starts the room service link."""
        await self.hub.heartbeat_once()
        self.hub.start(self.settings.heartbeat_interval_seconds)
        self._runner = web.AppRunner(self.web, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = self.settings.http_address
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = bound_port(site)
        log.info(
            "edge gateway ready",
            extra={
                "http_address": f"{host}:{self.port}",
                "edge_id": self.edge_id,
                "room_service": self.settings.room_service_address,
            },
        )

    async def stop(self) -> None:
        """Graceful: refuse joins, let every socket leave (others get participant-left), exit."""
        log.info("edge gateway stopping", extra={"sockets": len(self.hub.sessions)})
        self.handlers.draining = True
        grace = self.settings.shutdown_grace_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release_sessions(), grace)
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()
        log.info("edge gateway stopped")

    async def _release_sessions(self) -> None:
        for session in self.hub.sessions.all():
            await self.hub.detach(session.sid)
            await self.hub.leave(session, pb.LEAVE_REASON_DISCONNECTED)
        for sid in list(self.sio.manager.get_participants("/", None)):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid[0])

    async def _healthz(self, _: web.Request) -> web.Response:
        # Liveness never depends on the room service: an outage must not restart edges.
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready = self.hub.room_service_up and not self.handlers.draining
        body = {"ready": ready, "roomService": "up" if self.hub.room_service_up else "down"}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


async def serve(settings: Settings) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully."""
    app = EdgeApp(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await app.stop()

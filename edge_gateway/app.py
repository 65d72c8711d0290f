"""Wiring: aiohttp + python-socketio, the hub, health and metrics endpoints, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid

import socketio
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from edge_gateway.auth import authenticator_for
from edge_gateway.channel import bearer_metadata, room_service_credentials
from edge_gateway.config import Settings
from edge_gateway.guard import ClientAddresses, GuardedSocketServer
from edge_gateway.handlers import EventHandlers
from edge_gateway.hub import Hub
from edge_gateway.limits import EdgeLimits
from edge_gateway.metrics import EdgeMetrics
from edge_gateway.recovery import Release
from edge_gateway.rpc import RoomClient
from edge_gateway.sessions import Session
from edge_gateway.webrtc import WebRtcConfigBuilder
from meeting.v1 import room_service_pb2 as pb
from meeting_common.grpc_metrics import ClientMetrics
from meeting_common.net import bound_port

log = logging.getLogger("edge_gateway")
_SHUTDOWN_LEAVE_CONCURRENCY = 32
_TRANSPORT_CLOSE = socketio.AsyncServer.reason.TRANSPORT_CLOSE
# Collections of the young generation between two of the middle one, and of those between
# two full ones (the interpreter's default is 10 and 10).
_OLDER_GC_THRESHOLDS = (20, 10)


class EdgeApp:
    """One running edge gateway: start(), stop()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.edge_id = f"edge-{uuid.uuid4().hex[:12]}"
        self.registry = CollectorRegistry()
        self.metrics = EdgeMetrics(self.registry)
        self.limits = EdgeLimits(settings)
        self.sio = GuardedSocketServer(
            limits=self.limits,
            addresses=ClientAddresses(settings.trusted_proxies),
            on_malformed=self.metrics.malformed_frames.inc,
            async_mode="aiohttp",
            cors_allowed_origins=settings.cors_allowed_origins,
            ping_interval=settings.ping_interval_seconds,
            ping_timeout=settings.ping_timeout_seconds,
            max_http_buffer_size=settings.max_payload_bytes,
            max_buffered_bytes=settings.max_buffered_bytes,
            on_drop=self.metrics.slow_sockets_dropped.inc,
            ping_batch_seconds=settings.ping_batch_seconds,
            write_window=settings.write_window_seconds,
        )
        self.grpc_metrics = ClientMetrics(self.registry)
        self.grpc_metrics.initialize(pb.DESCRIPTOR.services_by_name["RoomService"])
        self.client = RoomClient(
            settings.room_service_address,
            self.edge_id,
            settings.rpc_timeout_seconds,
            metrics=self.grpc_metrics,
            metadata=bearer_metadata(settings),
            credentials=room_service_credentials(settings),
            joins_per_meeting=settings.joins_in_flight_per_meeting,
            command_streams=settings.command_streams,
        )
        self.hub = Hub(self.sio, self.client, self.metrics)
        webrtc_config = WebRtcConfigBuilder(
            settings.ice_servers,
            settings.turn_urls,
            settings.turn_secret.get_secret_value(),
            settings.turn_ttl_seconds,
        )
        self.handlers = EventHandlers(
            self.hub,
            webrtc_config,
            settings.max_payload_bytes,
            authenticator=authenticator_for(settings),
            limits=self.limits,
            token_warning_seconds=settings.token_expiry_warning_seconds,
            # A token the edge would still accept (within the clock-skew leeway) is not yet
            # expired for a connected socket either; the grace for a refresh comes after.
            token_grace_seconds=settings.jwt_leeway_seconds + settings.token_expiry_grace_seconds,
            # A ping timeout means the client was silent for this long already: its
            # recovery window (counted from its last sign of life) is mostly spent.
            silent_after_ping_timeout=settings.ping_interval_seconds + settings.ping_timeout_seconds,
        )
        self.handlers.register(self.sio)
        self.web = web.Application()
        self.sio.attach(self.web)
        self.web.router.add_get("/healthz", self._healthz)
        self.web.router.add_get("/readyz", self._readyz)
        self.web.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._gc_thresholds: tuple[int, int, int] | None = None

    async def start(self) -> None:
        """Serves HTTP and starts the room service link."""
        self._tune_collector()
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
                "auth_mode": self.settings.auth_mode,
                "room_service_tls": bool(self.settings.room_service_tls_ca_file),
            },
        )
        if self.settings.auth_mode == "none":
            log.warning("authentication is off: any client may join as any userId (development only)")

    async def stop(self) -> None:
        """Graceful: refuse joins, hand every session to the room service (held for recovery,
        so a client that reconnects to another edge resumes it; the others leave), exit."""
        log.info("edge gateway stopping", extra={"sockets": len(self.hub.sessions)})
        self.handlers.draining = True
        grace = self.settings.shutdown_grace_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release_sessions(), grace)
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()
        if self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
        log.info("edge gateway stopped")

    def _tune_collector(self) -> None:
        # A join or a broadcast allocates thousands of short-lived containers, nearly all
        # freed by reference counting. At the interpreter's default (700) they start a
        # young collection every few joins that finds nothing, and every tenth of those
        # walks everything that survived meanwhile: pauses of several milliseconds (up to
        # 40 in a join200 run) that the joins waiting in the loop paid. Rarer young
        # collections promote less, so the older generations are collected rarely too.
        self._gc_thresholds = gc.get_threshold()
        gc.set_threshold(self.settings.gc_young_threshold, *_OLDER_GC_THRESHOLDS)

    async def _release_sessions(self) -> None:
        sessions = self.hub.sessions.all()
        for session in sessions:
            await self.hub.detach(session.sid)
        # Concurrent but bounded: hundreds of sockets are handed over within the grace
        # without flooding the room service.
        limit = asyncio.Semaphore(_SHUTDOWN_LEAVE_CONCURRENCY)

        async def release(session: Session) -> bool:
            # A rolling restart is a blip, not a leave: closed without a goodbye from its
            # client, the session is held like any other, and its client resumes it
            # through another edge; one that cannot be held leaves.
            async with limit:
                released = await self.handlers.recovery.release(session, _TRANSPORT_CLOSE, False)
                if released is Release.LEAVE:
                    await self.hub.leave(session, pb.LEAVE_REASON_DISCONNECTED)
                return released is Release.HELD

        held = sum(await asyncio.gather(*(release(s) for s in sessions)))
        log.info("released every session", extra={"sessions": len(sessions), "held": held})
        # Closed at the engine.io level, not with a Socket.IO disconnect: the client sees
        # "transport close" and reconnects (to another edge behind the balancer), where
        # "io server disconnect" would tell it to stay away.
        for sock in list(self.sio.eio.sockets.values()):
            with contextlib.suppress(Exception):
                await sock.close(wait=False, abort=False)
                sock.queue.put_nowait(None)  # let a websocket writer flush CLOSE and hang up

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

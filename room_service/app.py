"""Wiring: store, manager, gRPC server (health, reflection), metrics HTTP, signals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

import grpc
from aiohttp import web
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from meeting_common.grpc_metrics import ServerMetrics
from meeting_common.grpc_wrapping import WrappingServer
from meeting_common.net import bound_port
from meeting_common.tls import server_credentials
from room_service.api.auth import BearerToken
from room_service.api.servicer import RoomServicer
from room_service.config import Settings, redacted_url
from room_service.domain.errors import DomainError
from room_service.meetings_file import load_meetings
from room_service.metrics import RoomMetrics
from room_service.rooms import ManagerOptions, RoomManager
from room_service.store.base import StoreOptions
from room_service.store.factory import create_store, store_clock
from room_service.store_watch import StoreWatch

log = logging.getLogger("room_service")
# The reaper's tick: a crashed edge is gone within its disconnect grace plus this (1.5 s
# at the defaults, the design's 2 s). Every tick wakes an idle process: four a second cost
# 0.1-0.15 % of a core here with 1,000 sockets connected.
_REAPER_INTERVAL_SECONDS = 0.5
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RoomService"].full_name
_DRAIN_SECONDS = 0.5
_STORE_MISSES_BEFORE_UNREADY = 3


class RoomServiceApp:
    """One running room service: start(), wait(), stop()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = RoomMetrics(self.registry)
        self.store = create_store(
            settings.store,
            StoreOptions(
                replay_buffer=settings.replay_buffer,
                default_capacity=settings.max_participants,
                multiple_sessions=settings.multiple_sessions,
            ),
            redis_url=settings.redis_url.get_secret_value(),
            redis_timeout=settings.redis_timeout_seconds,
            observe=self.metrics.observe_store,
        )
        self.manager = RoomManager(
            self.store,
            # Every manager option is the setting of the same name.
            ManagerOptions(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(ManagerOptions)}),
            self.metrics,
            clock=store_clock(settings.store),
        )
        self.health = health_aio.HealthServicer()
        self.grpc_metrics = ServerMetrics(self.registry)
        self.grpc_metrics.initialize(pb.DESCRIPTOR.services_by_name["RoomService"])
        internal_token = settings.internal_token.get_secret_value()
        # No interceptors (grpc.aio runs their chain as coroutines on every call): each
        # method's handler is wrapped once, as it is registered. Metrics outermost, so the
        # token's refusals are counted too.
        self.server = WrappingServer(
            grpc.aio.server(
                options=[
                    # Detect a dead or frozen edge connection even when no call is active.
                    ("grpc.keepalive_time_ms", 10_000),
                    ("grpc.keepalive_timeout_ms", 5_000),
                    ("grpc.http2.min_ping_interval_without_data_ms", 2_000),
                    ("grpc.keepalive_permit_without_calls", 1),
                ],
            ),
            [self.grpc_metrics.wrap, *([BearerToken(internal_token).wrap] if internal_token else [])],
        )
        self.servicer: RoomServicer | None = None
        self.grpc_port = 0
        self.metrics_port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Registers the meetings file, then serves gRPC and metrics."""
        # A Redis store must answer before anything is registered; until it does the
        # process waits (and says why) rather than exiting in a restart loop.
        while not await self.store.ready():
            log.warning("room store not reachable yet; waiting", extra={"store": self.settings.store})
            await asyncio.sleep(1.0)
        await self.manager.check_store_continuity()
        await self._register_meetings()
        self.manager.on_store_reset = self._register_meetings
        self.servicer = RoomServicer(self.manager, self.grpc_metrics)
        pb_grpc.add_RoomServiceServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        host, port = self.settings.grpc_address
        address = f"{_bracket(host)}:{port}"
        credentials = server_credentials(
            self.settings.tls_cert_file, self.settings.tls_key_file, self.settings.tls_client_ca_file
        )
        if credentials is None:
            self.grpc_port = self.server.add_insecure_port(address)
        else:
            self.grpc_port = self.server.add_secure_port(address, credentials)
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        self.metrics_port = await self._start_metrics()
        self._tasks.append(asyncio.create_task(self.manager.run_reaper(_REAPER_INTERVAL_SECONDS)))
        self._tasks.append(asyncio.create_task(self._watch_store(1.0)))
        log.info(
            "room service ready",
            extra={
                "grpc_address": f"{host}:{self.grpc_port}",
                "tls": credentials is not None,
                "mutual_tls": bool(self.settings.tls_client_ca_file),
                "internal_token_required": bool(self.settings.internal_token.get_secret_value()),
                "metrics_address": f"{self.settings.metrics_address[0]}:{self.metrics_port}",
                "store": self.settings.store,
                **(
                    {"redis": redacted_url(self.settings.redis_url.get_secret_value())}
                    if self.settings.store == "redis"
                    else {}
                ),
            },
        )
        if not (self.settings.internal_token.get_secret_value() or self.settings.tls_client_ca_file):
            log.warning("authentication is off: any caller may use the gRPC API (development only)")

    async def _watch_store(self, interval: float) -> None:
        """Readiness follows the store: the RoomService's gRPC health (the readiness probe's
        service) is NOT_SERVING while the store does not answer. The overall health ""
        (the liveness probe's) stays SERVING: restarting pods cannot bring Redis back."""
        serving = True
        watch = StoreWatch(
            self.store.ready, self.settings.redis_timeout_seconds, _STORE_MISSES_BEFORE_UNREADY
        )
        try:
            while True:
                up = await watch.check()
                self.metrics.store_up.set(1 if watch.answered else 0)
                self.manager.store_answering = up  # joins are refused at once while down
                if up != serving and not self._stopping:
                    serving = up
                    status = (
                        health_pb2.HealthCheckResponse.SERVING
                        if up
                        else health_pb2.HealthCheckResponse.NOT_SERVING
                    )
                    await self.health.set(SERVICE_NAME, status)
                    log.warning("room store reachable" if up else "room store unreachable; not ready")
                await asyncio.sleep(interval)
        finally:
            await watch.close()

    async def _register_meetings(self) -> None:
        """Registers the meetings file (again, after a Redis that lost its data)."""
        for seed in load_meetings(self.settings.meetings_file):
            await self.manager.upsert_meeting(seed.meeting, seed.password)

    async def _start_metrics(self) -> int:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, port = self.settings.metrics_address
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        return bound_port(site)

    async def _readyz(self, _: web.Request) -> web.Response:
        """Ready while the store answers and the service is not shutting down."""
        store_up = await self.store.ready()
        self.metrics.store_up.set(1 if store_up else 0)
        if store_up:
            self.manager.store_answering = True  # back: joins need not wait for the watcher
        ready = store_up and not self._stopping
        body = {"ready": ready, "store": "up" if store_up else "down"}
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics_handler(self, _: web.Request) -> web.Response:
        store_up = await self.store.ready()
        self.metrics.store_up.set(1 if store_up else 0)
        if store_up:
            with contextlib.suppress(DomainError):  # the store went away meanwhile
                await self.manager.refresh_gauges()
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        """Graceful: NOT_SERVING first, then let calls and streams finish within the grace."""
        log.info("room service stopping", extra={"grace_seconds": self.settings.shutdown_grace_seconds})
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await self.health.enter_graceful_shutdown()
        # Edges watch this health and stop sending new calls here once they see it; calls
        # already on their way still land before the server starts refusing them.
        await asyncio.sleep(min(_DRAIN_SECONDS, self.settings.shutdown_grace_seconds / 2))
        # Streams never finish on their own: end them now (edges resume elsewhere or
        # after the restart from their last position) so that only unary calls use
        # the grace period.
        self.manager.close_streams()
        # Commands streams end once their commands in flight are answered; the edges
        # reopen them on a serving replica.
        if self.servicer is not None:
            self.servicer.commands.stop()
        await self.server.stop(self.settings.shutdown_grace_seconds)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.close()
        self._stopped.set()
        log.info("room service stopped")


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host

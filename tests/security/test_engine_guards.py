"""Engine.IO-level abuse against real edge processes: a flood of malformed frames, a
connection closed while its token is being checked, handshakes that never connect, and
the client address behind a trusted proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web

from edge_gateway import config as edge_config
from edge_gateway.guard import ClientAddresses, GuardedSocketServer
from edge_gateway.limits import EdgeLimits
from tests.support.jsclient import JsClientPool, JsCommandError
from tests.support.processes import EdgeProcess, RoomServiceProcess, start_edge
from tests.support.prometheus import http_get_text, parse_exposition
from tests.support.web import serve_on_loopback

from . import keys

pytestmark = pytest.mark.timeout(180)

BAD_FRAMES = ("4x", "42[1,")


async def _answer_pings(ws: Any) -> None:
    """Pongs every ping until the connection closes."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async for frame in ws:
            if frame == "2":
                await ws.send("3")


async def metric(edge: EdgeProcess, name: str) -> float:
    value = parse_exposition(await http_get_text(f"{edge.url}/metrics")).value(name)
    return value or 0.0


async def test_a_flood_of_malformed_frames_is_summarised_and_drops_the_socket(
    edge: EdgeProcess, js: JsClientPool
) -> None:
    """2,000 malformed frames on one socket: a few log lines, a metric, the socket closed."""
    url = f"ws://{edge.http_address}/socket.io/?EIO=4&transport=websocket"
    mark = edge.mark()
    async with websockets.connect(url, open_timeout=5, max_size=None) as ws:
        assert str(await asyncio.wait_for(ws.recv(), 5)).startswith("0{")
        await ws.send("40")
        assert str(await asyncio.wait_for(ws.recv(), 5)).startswith("40")
        # Answers the edge's pings, so that only the edge's verdict on the frames can
        # close the socket (not a ping timeout).
        answering = asyncio.create_task(_answer_pings(ws))
        with contextlib.suppress(websockets.ConnectionClosed):
            for i in range(2000):
                await ws.send(BAD_FRAMES[i % 2])
        closed = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                await asyncio.shield(answering)
                closed = True
        answering.cancel()
    lines = edge.lines[mark:]
    print(f"\nlog lines for 2,000 malformed frames: {len(lines)}; socket closed by the edge: {closed}")
    assert closed, f"the socket stayed open ({len(lines)} log lines)"
    assert len(lines) < 50, "\n".join(line.text[:200] for line in lines[:5])
    assert await metric(edge, "edge_gateway_malformed_frames_total") >= 10
    # Only that socket: the edge serves others as before.
    client = js.client("after")
    await client.connect(edge.url, transports=["websocket"])
    reply = await client.emit_with_ack(
        "join-meeting", {"meetingId": "test-meeting-123", "userId": "u", "userName": "U"}
    )
    assert reply["success"] is True


# -- a connection closed while its token is checked -------------------------------------


class SlowJwks:
    """A JWKS endpoint that answers each fetch only when the test lets it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetching = asyncio.Queue[asyncio.Event]()
        self.app = web.Application()
        self.app.router.add_get("/jwks", self._serve)
        self.url = ""
        self._serving = contextlib.AsyncExitStack()

    async def _serve(self, _: web.Request) -> web.Response:
        release = asyncio.Event()
        await self.fetching.put(release)
        await release.wait()
        return web.json_response(self.document)

    async def __aenter__(self) -> SlowJwks:
        base = await self._serving.enter_async_context(serve_on_loopback(self.app))
        self.url = f"{base}/jwks"
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._serving.aclose()


async def _polling_handshake(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/socket.io/?EIO=4&transport=polling") as response:
        assert response.status == 200, await response.text()
        opened = json.loads((await response.text())[1:])
    return str(opened["sid"])


async def test_a_socket_closed_during_authentication_leaks_no_slot(
    room_service: RoomServiceProcess, js: JsClientPool, tmp_path: Path
) -> None:
    """40 polling sockets close while the edge waits for the JWKS to check their tokens;
    afterwards no slot is held and a socket can still get in (limit 40)."""
    rsa = keys.rsa_key()
    document = json.loads(keys.jwks(tmp_path / "jwks.json", {"kid-1": rsa}).read_text())
    attempts = 40
    async with (
        SlowJwks(document) as jwks,
        await start_edge(
            room_service.grpc_address,
            "--auth-mode",
            "jwt",
            "--jwt-jwks-url",
            jwks.url,
            "--max-connections-per-address",
            str(attempts),
            name="edge-auth-race",
        ) as edge,  # fmt: skip
        aiohttp.ClientSession() as http,
    ):
        endpoints = []
        for _ in range(attempts):
            sid = await _polling_handshake(http, edge.url)
            endpoints.append(f"{edge.url}/socket.io/?EIO=4&transport=polling&sid={sid}")
        connects = []
        for i, endpoint in enumerate(endpoints):
            token = keys.token(
                f"user-{i}", key=rsa, algorithm="RS256", kid="kid-1", issuer=None, audience=None
            )
            connects.append(
                asyncio.create_task(http.post(endpoint, data="40" + json.dumps({"token": token})))
            )
        # Every check now waits for the one JWKS fetch (the key client is shared).
        release = await asyncio.wait_for(jwks.fetching.get(), 10)
        for endpoint in endpoints:  # every client goes away meanwhile
            async with http.post(endpoint, data="1") as closed:
                assert closed.status == 200
        release.set()
        for connect in connects:
            with contextlib.suppress(aiohttp.ClientError):
                (await connect).release()
        leaked = await metric(edge, "edge_gateway_sockets_connected")
        print(f"\nsockets counted after {attempts} closed-during-auth races: {leaked:g}")
        assert leaked == 0
        last = js.client("last")
        token = keys.token("user-last", key=rsa, algorithm="RS256", kid="kid-1", issuer=None, audience=None)
        await last.connect(edge.url, transports=["websocket"], auth={"token": token})


# -- sessions that never connect, and the address behind a proxy ------------------------


@pytest.fixture
async def small_edge(room_service: RoomServiceProcess) -> AsyncIterator[EdgeProcess]:
    async with await start_edge(
        room_service.grpc_address,
        "--max-connections-per-address", "5",
        "--trusted-proxies", "127.0.0.0/8, ::1",
        name="edge-small",
    ) as proc:  # fmt: skip
        yield proc


async def test_handshakes_that_never_connect_are_bounded_per_address(small_edge: EdgeProcess) -> None:
    """3,000 polling handshakes from one address hold at most twice the limit (10)."""
    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(3000):
            async with http.get(f"{small_edge.url}/socket.io/?EIO=4&transport=polling") as response:
                statuses.append(response.status)
                if statuses.count(200) > 10:
                    break
    held = statuses.count(200)
    print(f"\nsessions held by 3,000 handshakes (limit 5): {held}")
    assert held == 10
    assert len(statuses) == 3000


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    small_edge: EdgeProcess, js: JsClientPool
) -> None:
    """Through a trusted proxy (the loopback here) each forwarded client has its own
    limit; a forged left-most hop does not let a client escape its own."""

    def via_proxy(client: str, forged: str = "") -> dict[str, Any]:
        hops = f"{forged}, {client}" if forged else client
        return {"transports": ["polling"], "extraHeaders": {"X-Forwarded-For": hops}}

    for i in range(5):
        await js.client(f"a{i}").connect(small_edge.url, **via_proxy("203.0.113.7", forged=f"198.51.100.{i}"))
    with pytest.raises(JsCommandError):
        await js.client("a-extra").connect(small_edge.url, **via_proxy("203.0.113.7", forged="198.51.100.99"))
    refusal = js.client("a-extra").events_named("connect_error")[-1].data
    assert refusal["data"]["code"] == "RATE_LIMITED"
    # Another client behind the same proxy is not affected by the first one's limit.
    await js.client("b").connect(small_edge.url, **via_proxy("203.0.113.8"))


async def test_without_trusted_proxies_forwarded_headers_are_ignored(
    room_service: RoomServiceProcess, js: JsClientPool
) -> None:
    async with await start_edge(
        room_service.grpc_address, "--max-connections-per-address", "2", name="edge-untrusting"
    ) as edge:
        for i in range(2):
            await js.client(f"c{i}").connect(
                edge.url, transports=["polling"], extraHeaders={"X-Forwarded-For": f"203.0.113.{i}"}
            )
        with pytest.raises(JsCommandError):
            await js.client("c-extra").connect(
                edge.url, transports=["polling"], extraHeaders={"X-Forwarded-For": "203.0.113.50"}
            )


async def test_a_connected_socket_keeps_only_what_authentication_reads_of_its_request() -> None:
    """Once connected, a socket's environ holds the headers a later CONNECT would be
    authenticated with, not the handshake request; a refused CONNECT keeps it whole."""
    sio = GuardedSocketServer(
        limits=EdgeLimits(edge_config.load_settings([], {})),
        addresses=ClientAddresses(),
        on_malformed=lambda: None,
        async_mode="aiohttp",
        max_buffered_bytes=1 << 20,
        on_drop=lambda: None,
    )
    seen: list[dict[str, Any]] = []

    async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        seen.append(environ)
        return bool(auth)  # a CONNECT without auth is refused, one with it admitted

    sio.on("connect", on_connect)
    app = web.Application()
    sio.attach(app)
    async with serve_on_loopback(app) as url:
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(ws_url, additional_headers={"Authorization": "Bearer t"}) as ws:
            await ws.recv()  # OPEN
            await ws.send("40")
            assert str(await ws.recv()).startswith("44")  # refused: may try again
            assert "aiohttp.request" in seen[0]
            await ws.send('40{"token":"t"}')
            assert str(await ws.recv()).startswith("40")
            environ = seen[1]
            assert set(environ) == {"HTTP_AUTHORIZATION", "REMOTE_ADDR", "edge.client_address"}
            assert environ["HTTP_AUTHORIZATION"] == "Bearer t"
        await sio.shutdown()

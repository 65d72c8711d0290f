"""The JavaScript client harness itself: the socket.io-client driver against a tiny
python-socketio echo server started here, one test per driver feature (transports, acks,
binary, drops, bad commands) that the other suites rely on without testing it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import socketio
from aiohttp import web

from tests.support.jsclient import (
    AckTimeoutError,
    EventTimeoutError,
    JsClient,
    JsClientPool,
    JsCommandError,
    JsHarnessError,
)
from tests.support.timing import condition_met
from tests.support.web import serve_on_loopback

pytestmark = pytest.mark.timeout(120)

Welcomed = tuple[JsClient, str, list[str]]


@dataclass
class EchoServer:
    url: str
    sio: socketio.AsyncServer
    connects: list[str] = field(default_factory=list)
    disconnects: dict[str, str] = field(default_factory=dict)
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def note(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_disconnect(self, sid: str, timeout: float = 5.0) -> str:
        if not await condition_met(self.changed, lambda: sid in self.disconnects, within=timeout):
            raise TimeoutError(f"the server saw no disconnect of {sid} within {timeout}s")
        return self.disconnects[sid]


@pytest_asyncio.fixture
async def echo_server() -> AsyncIterator[EchoServer]:
    # Short pings so that silent ("blackhole") clients are detected quickly.
    sio = socketio.AsyncServer(
        async_mode="aiohttp", ping_interval=1, ping_timeout=1, cors_allowed_origins="*"
    )
    app = web.Application()
    sio.attach(app)
    async with serve_on_loopback(app) as url:
        server = EchoServer(url=url, sio=sio)
        _echo_handlers(server)
        yield server


def _echo_handlers(server: EchoServer) -> None:
    """Registers the echo server's handlers on `server.sio`."""
    sio = server.sio

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        server.connects.append(sid)
        await sio.emit("welcome", {"sid": sid, "auth": auth}, to=sid)
        await server.note()

    async def disconnect(sid: str, reason: str) -> None:
        server.disconnects[sid] = str(reason)
        await server.note()

    async def echo(sid: str, data: Any) -> None:
        server.received.append((sid, "echo", data))
        await sio.emit("echo", data, to=sid)

    async def with_ack(sid: str, data: Any) -> dict[str, Any]:
        server.received.append((sid, "with-ack", data))
        return {"success": True, "got": data}

    async def multi_ack(sid: str, *args: Any) -> tuple[Any, ...]:
        return ("first", len(args))

    async def empty_ack(sid: str, data: Any) -> None:
        return None  # python-socketio still acknowledges, with no arguments

    async def shout(sid: str, data: Any) -> None:
        await sio.emit("announce", {"from": sid, "data": data}, skip_sid=sid)

    for event, handler in {
        "connect": connect,
        "disconnect": disconnect,
        "echo": echo,
        "with-ack": with_ack,
        "multi-ack": multi_ack,
        "empty-ack": empty_ack,
        "shout": shout,
    }.items():
        sio.on(event, handler)


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[JsClientPool]:
    async with JsClientPool() as p:
        yield p


async def test_websocket_echo_ack_and_clean_disconnect(echo_server: EchoServer, pool: JsClientPool) -> None:
    assert pool.versions["socketIoClient"].startswith("4.")
    c = pool.client("alice")
    status = await c.connect(echo_server.url, transports=["websocket"], auth={"token": "t-1"})
    assert status["connected"] is True and status["transport"] == "websocket"
    welcome = await c.wait_for_event("welcome")
    assert welcome.data == {"sid": welcome.data["sid"], "auth": {"token": "t-1"}}
    assert c.events_named("connect")[0].data["transport"] == "websocket"

    await c.emit("echo", {"n": 1, "text": "héllo"})
    echoed = await c.wait_for_event("echo", lambda d: d["n"] == 1)
    assert echoed.data == {"n": 1, "text": "héllo"}

    assert await c.emit_with_ack("with-ack", {"x": [1, 2]}) == {"success": True, "got": {"x": [1, 2]}}
    assert await c.emit_with_ack_args("multi-ack", 1, 2, 3) == ["first", 3]
    assert await c.emit_with_ack_args("empty-ack", {}) == []
    with pytest.raises(AckTimeoutError):  # python-socketio never acks an unhandled event
        await c.emit_with_ack("unhandled-event", {}, timeout=0.3)

    server_sid = echo_server.connects[-1]
    await c.disconnect()
    assert await echo_server.wait_disconnect(server_sid) == "client disconnect"
    gone = await c.wait_for_event("disconnect")
    assert gone.data["reason"] == "io client disconnect"
    assert not c.connected


async def test_polling_then_upgrade_and_polling_only(echo_server: EchoServer, pool: JsClientPool) -> None:
    upgrading = pool.client("upgrading")
    await upgrading.connect(echo_server.url)  # default transports: polling, then websocket
    assert upgrading.events_named("$open")[0].data["transport"] == "polling"
    upgrade = await upgrading.wait_for_event("$upgrade")
    assert upgrade.data == {"transport": "websocket"}
    assert upgrading.transport == "websocket"
    assert await upgrading.emit_with_ack("with-ack", "after-upgrade") == {
        "success": True,
        "got": "after-upgrade",
    }

    polling = pool.client("polling")
    await polling.connect(echo_server.url, transports=["polling"])
    await polling.emit("echo", {"via": "polling"})
    await polling.wait_for_event("echo", lambda d: d == {"via": "polling"})
    assert await polling.emit_with_ack("with-ack", 7) == {"success": True, "got": 7}
    await polling.expect_no_event("$upgrade", within=0.2)
    assert (await polling.status())["transport"] == "polling"

    sid = echo_server.connects[-1]
    await polling.disconnect()
    assert await echo_server.wait_disconnect(sid) == "client disconnect"


async def test_broadcast_reaches_many_clients_in_one_driver(
    echo_server: EchoServer, pool: JsClientPool
) -> None:
    clients = await pool.connect_many(echo_server.url, 40, transports=["websocket"])
    sender, others = clients[0], clients[1:]
    await sender.emit("shout", {"hello": "all"})
    for other in others:
        got = await other.wait_for_event("announce")
        assert got.data["data"] == {"hello": "all"}
    await sender.expect_no_event("announce", within=0.3)
    listing = await pool.command("list")
    assert len(listing) == 40 and all(entry["connected"] for entry in listing)


@pytest.fixture(params=[["websocket"], ["polling"]], ids=["websocket", "polling"])
async def welcomed(request: pytest.FixtureRequest, pool: JsClientPool, echo_server: EchoServer) -> Welcomed:
    """A client connected over each transport to the echo server, which has greeted it;
    its server-side sid; and the transports."""
    transports: list[str] = request.param
    c = pool.client()
    await c.connect(echo_server.url, transports=transports)
    await c.wait_for_event("welcome")
    return c, echo_server.connects[-1], transports


async def test_drop_reset_makes_the_server_see_a_disconnect(
    echo_server: EchoServer, welcomed: Welcomed
) -> None:
    c, sid, transports = welcomed
    await c.drop()  # mode "reset"
    reason = await echo_server.wait_disconnect(sid, timeout=10)
    if transports == ["websocket"]:
        assert reason in {"transport close", "transport error"}
    else:  # a silent polling client is only noticed by the ping timeout
        assert reason == "ping timeout"
    local = await c.wait_for_event("disconnect")
    assert local.data["reason"] == "transport close"
    # Nothing else happens: no reconnection.
    await c.expect_no_event("connect", start=local.index, within=0.5)


async def test_drop_blackhole_is_noticed_by_ping_timeout(
    echo_server: EchoServer, pool: JsClientPool, welcomed: Welcomed
) -> None:
    c, sid, _ = welcomed
    mark = c.mark()
    await c.drop("blackhole")
    await echo_server.sio.emit("echo", "into the void", to=sid)
    assert await echo_server.wait_disconnect(sid, timeout=10) == "ping timeout"
    assert c.events_named("echo", start=mark) == []
    await pool.command("forget", client=c.name)


async def test_raw_send_and_binary(echo_server: EchoServer, pool: JsClientPool) -> None:
    c = pool.client("raw")
    await c.connect(echo_server.url, transports=["websocket"])
    await c.raw_send('2["echo",{"raw":"engine"}]')  # a Socket.IO EVENT packet
    await c.wait_for_event("echo", lambda d: d == {"raw": "engine"})
    await c.raw_send('42["echo",{"raw":"frame"}]', level="transport")  # the whole WebSocket frame
    await c.wait_for_event("echo", lambda d: d == {"raw": "frame"})

    payload = bytes(range(256))
    await c.emit("echo", {"blob": payload})
    got = await c.wait_for_event("echo", lambda d: isinstance(d, dict) and "blob" in d)
    assert got.data["blob"] == payload
    assert any(data == {"blob": payload} for _, _, data in echo_server.received)

    polling = pool.client("raw-polling")
    await polling.connect(echo_server.url, transports=["polling"])
    with pytest.raises(JsCommandError) as info:
        await polling.raw_send("42[]", level="transport")
    assert info.value.code == "UNSUPPORTED"


async def test_driver_survives_bad_commands(echo_server: EchoServer, pool: JsClientPool) -> None:
    await pool.send_raw_line("this is not json")
    await pool.send_raw_line("[1, 2, 3]")
    with pytest.raises(JsCommandError) as unknown:
        await pool.command("no-such-command")
    assert unknown.value.code == "UNKNOWN_COMMAND"
    with pytest.raises(JsCommandError) as missing:
        await pool.client("ghost").emit("x", 1)
    assert missing.value.code == "NO_SUCH_CLIENT"
    with pytest.raises(JsCommandError) as bad:
        await pool.command("emit", client="ghost")
    assert bad.value.code == "NO_SUCH_CLIENT"
    with pytest.raises(JsCommandError) as refused:
        await pool.client("nowhere").connect("http://127.0.0.1:1", timeout=3)
    assert refused.value.code in {"CONNECT_ERROR", "CONNECT_TIMEOUT"}
    assert pool.client("nowhere").events_named("connect_error")

    codes = {r["error"]["code"] for r in pool.orphan_replies}
    assert {"BAD_JSON", "BAD_COMMAND"} <= codes
    assert (await pool.command("ping"))["pong"] is True
    c = pool.client("after")
    await c.connect(echo_server.url, transports=["websocket"])
    assert await c.emit_with_ack("with-ack", 1) == {"success": True, "got": 1}


async def test_wait_for_event_timeout_lists_received_events(
    echo_server: EchoServer, pool: JsClientPool
) -> None:
    c = pool.client("waiter")
    await c.connect(echo_server.url, transports=["websocket"])
    with pytest.raises(EventTimeoutError, match="welcome"):
        await c.wait_for_event("never", timeout=0.3)


async def test_missing_node_modules_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "driver.js").write_text("// empty\n")
    with pytest.raises(JsHarnessError, match="npm ci"):
        await JsClientPool(js_dir=tmp_path).start()

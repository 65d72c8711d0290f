"""The test harness itself: the socket.io-client driver (against a tiny python-socketio
server started here) and ManagedProcess (against a fake ``python -c`` service).

Over 300 lines on purpose: most of it is the echo server every driver test talks to and
one test per driver feature (transports, acks, binary, drops, process control) that the
other suites rely on without testing it."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
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
from tests.support.processes import ManagedProcess, ProcessError, msg_is
from tests.support.timing import wait_until
from tests.support.web import serve_on_loopback

pytestmark = pytest.mark.timeout(120)


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
        async with asyncio.timeout(timeout):
            async with self.changed:
                await self.changed.wait_for(lambda: sid in self.disconnects)
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


@pytest.mark.asyncio
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


@pytest.mark.asyncio
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


@pytest.mark.asyncio
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


async def _welcomed(pool: JsClientPool, server: EchoServer, transports: list[str]) -> tuple[JsClient, str]:
    """A client connected to the echo server, which has greeted it; and its server-side sid."""
    c = pool.client()
    await c.connect(server.url, transports=transports)
    await c.wait_for_event("welcome")
    return c, server.connects[-1]


@pytest.mark.asyncio
@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_drop_reset_makes_the_server_see_a_disconnect(
    echo_server: EchoServer, pool: JsClientPool, transports: list[str]
) -> None:
    c, sid = await _welcomed(pool, echo_server, transports)
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


@pytest.mark.asyncio
@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_drop_blackhole_is_noticed_by_ping_timeout(
    echo_server: EchoServer, pool: JsClientPool, transports: list[str]
) -> None:
    c, sid = await _welcomed(pool, echo_server, transports)
    mark = c.mark()
    await c.drop("blackhole")
    await echo_server.sio.emit("echo", "into the void", to=sid)
    assert await echo_server.wait_disconnect(sid, timeout=10) == "ping timeout"
    assert c.events_named("echo", start=mark) == []
    await pool.command("forget", client=c.name)


@pytest.mark.asyncio
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


@pytest.mark.asyncio
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


@pytest.mark.asyncio
async def test_wait_for_event_timeout_lists_received_events(
    echo_server: EchoServer, pool: JsClientPool
) -> None:
    c = pool.client("waiter")
    await c.connect(echo_server.url, transports=["websocket"])
    with pytest.raises(EventTimeoutError, match="welcome"):
        await c.wait_for_event("never", timeout=0.3)


@pytest.mark.asyncio
async def test_missing_node_modules_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "driver.js").write_text("// empty\n")
    with pytest.raises(JsHarnessError, match="npm ci"):
        await JsClientPool(js_dir=tmp_path).start()


# ---- ManagedProcess, against a fake service ---------------------------------------

FAKE_SERVICE = textwrap.dedent(
    """
    import json, signal, sys, time
    def log(msg, **kw):
        sys.stderr.write(json.dumps({"level": "info", "msg": msg, **kw}) + "\\n")
        sys.stderr.flush()
    def on_term(signum, frame):
        log("shutting down", signal="SIGTERM")
        sys.exit(0)
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    print("plain text on stdout", flush=True)
    if "--die" in sys.argv:
        log("fatal", error="boom")
        sys.exit(3)
    log("room service ready", grpc_address="127.0.0.1:1234", metrics_address="127.0.0.1:5678")
    n = 0
    while True:
        n += 1
        log("tick", n=n)
        time.sleep(0.05)
    """
)


def _state(proc: ManagedProcess) -> str:
    """The process state letter from /proc (T: stopped)."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def fake(*args: str, ready: str | None = "room service ready") -> ManagedProcess:
    return ManagedProcess(
        "fake", [sys.executable, "-c", FAKE_SERVICE, *args], ready_msg=ready, ready_timeout=10
    )


@pytest.mark.asyncio
async def test_managed_process_lifecycle() -> None:
    proc = fake()
    async with proc:
        assert proc.ready is not None and proc.ready["grpc_address"] == "127.0.0.1:1234"
        assert proc.running and proc.returncode is None
        tick = await proc.wait_for_log(lambda r: r.get("msg") == "tick" and r["n"] >= 3)
        assert tick.record["n"] >= 3
        assert any(line.stream == "stdout" and line.record.get("unparsed") for line in proc.lines)

        proc.freeze()  # SIGSTOP: no more ticks
        seen = -1

        def frozen_and_drained() -> bool:
            # Stopped (state T), and the lines it wrote before are all read: none came in
            # since the last look.
            nonlocal seen
            drained, seen = len(proc.lines) == seen, len(proc.lines)
            return _state(proc) == "T" and drained

        await wait_until(frozen_and_drained, within=5, interval=0.1, what="stopped with its output read")
        frozen = proc.mark()
        with pytest.raises(ProcessError, match="no matching log line"):
            await proc.wait_for_log(msg_is("tick"), start=frozen, timeout=0.5)
        proc.thaw()
        await proc.wait_for_log(msg_is("tick"), start=frozen, timeout=5)
    assert proc.returncode == 0
    assert proc.logs_matching(msg_is("shutting down", signal="SIGTERM"))


@pytest.mark.asyncio
async def test_managed_process_terminate_while_stopped_and_kill_after_grace() -> None:
    stopped = fake()
    await stopped.start()
    stopped.freeze()
    assert await stopped.terminate(grace=5) == 0  # SIGCONT is sent after SIGTERM

    stubborn = fake("--ignore-term")
    await stubborn.start()
    assert await stubborn.terminate(grace=0.5) == -9

    victim = fake()
    await victim.start()
    assert await victim.kill() == -9


@pytest.mark.asyncio
async def test_managed_process_failures_carry_the_output() -> None:
    with pytest.raises(ProcessError, match=r"(?s)exited \(returncode 3\).*boom"):
        await fake("--die").start()
    slow = fake(ready="never printed")
    slow.ready_timeout = 0.5
    with pytest.raises(ProcessError, match=r"(?s)did not become ready.*tick"):
        await slow.start()
    assert slow.returncode is not None


def test_fake_service_is_json() -> None:
    # The fake's ready line looks like the real one.
    line = json.dumps({"msg": "room service ready", "grpc_address": "127.0.0.1:1"})
    assert msg_is("room service ready")(json.loads(line))

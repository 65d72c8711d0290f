"""Malformed Engine.IO / Socket.IO packets over a plain WebSocket do not break the edge.

Each bad frame goes on a fresh, properly opened Socket.IO session; then a probe (an event
with an acknowledgement) shows whether that socket still works, or the edge closed it.
Whatever happens to that one socket, the edge stays up, logs no error, and a real client
can still connect and join. The outcome of every frame is printed (run with -s).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from typing import Any

import aiohttp
import pytest
import websockets

from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess

pytestmark = pytest.mark.timeout(180)

PROBE = '4299["leave-meeting",{}]'
JOIN = '["join-meeting",{"meetingId":"test-meeting-123","userId":"raw","userName":"Raw"'

BAD_FRAMES: list[tuple[str, str | bytes | list[str | bytes]]] = [
    ("empty frame", ""),
    ("message without a Socket.IO type", "4"),
    ("event without data", "42"),
    ("truncated JSON", "42["),
    ("object instead of array", '42{"a":1}'),
    ("empty array", "42[]"),
    ("number as event name", "42[123,{}]"),
    ("null event name", "42[null]"),
    ("unterminated event", '42["join-meeting"'),
    ("NaN in payload", "42" + JOIN + ',"audio":NaN}]'),
    ("deep nesting (5000)", '42["chat-message",' + "[" * 5000 + "]" * 5000 + "]"),
    ("deep nesting, unterminated", "42" + "[" * 30000),
    ("huge ack id", '4299999999999999999999999["leave-meeting",{}]'),
    ("negative ack id", '42-1["leave-meeting",{}]'),
    ("unknown namespace event", '42/nope,["leave-meeting",{}]'),
    ("connect to unknown namespace", "40/admin,"),
    ("second connect on /", "40"),
    ("client ack for unknown id", '43["x"]'),
    ("client CONNECT_ERROR", '44{"message":"x"}'),
    ("binary event, attachment never sent", '451-["join-meeting",{"_placeholder":true,"num":0}]'),
    ("placeholder index out of range", ['451-["chat-message",{"_placeholder":true,"num":7}]', b"\x00\x01"]),
    ("binary ack without attachments", '46["x"]'),
    ("unknown Socket.IO type", "49"),
    ("letter as Socket.IO type", "4x"),
    ("unknown Engine.IO type", "9"),
    ("client ping", "2"),
    ("upgrade on an upgraded socket", "5"),
    ("Engine.IO close", "1"),
    ("binary frame out of nowhere", b"\x00\x01\x02garbage"),
    ("over the payload limit", '42["chat-message",{"text":"' + "a" * 70_000 + '"}]'),
    ("Socket.IO disconnect", "41"),
]


async def _open(url: str) -> Any:
    ws = await websockets.connect(url, open_timeout=5, max_size=None)
    opened = await asyncio.wait_for(ws.recv(), 5)
    assert str(opened).startswith("0{")
    await ws.send("40")
    connected = await asyncio.wait_for(ws.recv(), 5)
    assert str(connected).startswith("40")
    return ws


async def _outcome(ws: Any, frames: list[str | bytes]) -> str:
    """What the edge did: the frames it sent back before answering the probe, or the close."""
    got: list[str] = []
    try:
        for frame in frames:
            await ws.send(frame)
        await ws.send(PROBE)
        async with asyncio.timeout(1.5):
            while True:
                reply = await ws.recv()
                text = reply if isinstance(reply, str) else f"<binary {len(reply)}B>"
                if text.startswith("4399"):
                    return f"socket usable; sent back {got or 'nothing'}"
                if text != "2":  # server pings
                    got.append(text[:80])
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        return f"connection closed (code {code}); sent back {got or 'nothing'}"
    except TimeoutError:
        return f"no answer to the probe within 1.5 s (socket ignored); sent back {got or 'nothing'}"


async def test_malformed_packets_do_not_break_the_edge(edge: EdgeProcess, js: JsClientPool) -> None:
    url = f"ws://{edge.http_address}/socket.io/?EIO=4&transport=websocket"
    results: dict[str, str] = {}

    async def try_frame(name: str, frame: str | bytes | list[str | bytes]) -> None:
        ws = await _open(url)
        try:
            results[name] = await _outcome(ws, frame if isinstance(frame, list) else [frame])
        finally:
            with contextlib.suppress(Exception):
                await ws.close()

    # A socket each, all at once: a frame the edge ignores costs the probe's whole 1.5 s,
    # and one after the other those added up to most of this test.
    await asyncio.gather(*(try_frame(name, frame) for name, frame in BAD_FRAMES))
    results = {name: results[name] for name, _ in BAD_FRAMES}  # printed in the list's order
    # Handshakes that are wrong from the start.
    for name, bad_url in [
        ("Engine.IO v3 handshake", url.replace("EIO=4", "EIO=3")),
        ("unknown session id", url + "&sid=bogus"),
        ("unknown transport", url.replace("transport=websocket", "transport=carrier-pigeon")),
    ]:
        try:
            async with websockets.connect(bad_url, open_timeout=5) as ws:
                results[name] = f"opened; first frame {str(await asyncio.wait_for(ws.recv(), 3))[:40]!r}"
        except websockets.InvalidStatus as exc:
            results[name] = f"refused with HTTP {exc.response.status_code}"
        except (websockets.ConnectionClosed, TimeoutError) as exc:
            results[name] = f"closed: {type(exc).__name__}"

    print("\nraw packet outcomes:")
    for name, outcome in results.items():
        print(f"  {name:40} {outcome}")

    assert edge.running
    async with aiohttp.ClientSession() as session, session.get(f"{edge.url}/healthz") as response:
        assert response.status == 200
    client = js.client("after")
    await client.connect(edge.url, transports=["websocket"])
    reply = await client.emit_with_ack(
        "join-meeting", {"meetingId": "test-meeting-123", "userId": "after", "userName": "After"}
    )
    assert reply["success"] is True
    # None of our handlers blew up on the way (an unexpected exception is logged at ERROR).
    # The libraries (engineio, socketio, aiohttp) do log some malformed frames at ERROR
    # with a traceback; they drop that packet or socket and carry on.
    ours = [
        line.text
        for line in edge.lines
        if line.level in ("ERROR", "CRITICAL")
        and str(line.record.get("logger", "")).startswith("edge_gateway")
    ]
    assert ours == [], json.dumps(ours[:3])
    library = collections.Counter(
        str(line.record.get("logger")) for line in edge.lines if line.level in ("ERROR", "CRITICAL")
    )
    print(f"library ERROR lines: {dict(library)}")
    # The socket sessions were cleaned up: nobody from the raw sockets is left in the room.
    assert [p["userId"] for p in reply["participants"]] == []

"""The edge tier in this process: a real EdgeApp in front of a real RoomServiceApp, driven
by python-socketio clients. Bad input of every shape, health endpoints, what `meeting`
may contain, idempotent re-join and replacement of a user's older session.

Over 300 lines on purpose: every test here drives the same in-process stack through the
same python-socketio `Client` wrapper (both defined at the top and used nowhere else), and
the sections (bad input, health, what the joiner gets, delivery under interleaving) are
the edge's own contract; split, each file would carry a copy of that stack."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from edge_gateway.app import EdgeApp
from edge_gateway.config import load_settings as edge_settings
from edge_gateway.sessions import Session
from room_service.app import RoomServiceApp
from room_service.config import load_settings as room_settings
from room_service.domain.models import JoinSpec, MediaState
from tests.support.room import join
from tests.support.roster import replay
from tests.support.timing import nothing_arrives, wait_until

pytestmark = pytest.mark.timeout(60)

OPEN = "test-meeting-123"
LOCKED = "test-meeting-locked"


@dataclass
class Stack:
    """A room service and an edge in this process."""

    room: RoomServiceApp
    edge: EdgeApp

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.edge.port}"

    async def participants(self, meeting_id: str = OPEN) -> list[str]:
        """The truth: participant ids in the room, per the room service."""
        snapshot = await self.room.manager.list_participants(meeting_id)
        return [p.participant_id for p in snapshot.participants]


ROOM_ARGS = "--grpc-address 127.0.0.1:0 --metrics-address 127.0.0.1:0 --restore-grace-seconds 0"
EDGE_ARGS = "--http-address 127.0.0.1:0 --heartbeat-interval-seconds 0.2 --rpc-timeout-seconds 2"


async def start_stack() -> Stack:
    room = RoomServiceApp(room_settings([*ROOM_ARGS.split(), "--shutdown-grace-seconds", "0.5"], {}))
    await room.start()
    target = f"127.0.0.1:{room.grpc_port}"
    edge = EdgeApp(edge_settings([*EDGE_ARGS.split(), "--room-service-address", target], {}))
    await edge.start()
    return Stack(room, edge)


async def stop_stack(stack: Stack) -> None:
    await stack.edge.stop()
    await stack.room.stop()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    running = await start_stack()
    try:
        yield running
    finally:
        await stop_stack(running)


@dataclass
class Client:
    """A python-socketio client that records every event it receives."""

    name: str
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    events: list[tuple[str, Any]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        async def record(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))
            async with self.changed:
                self.changed.notify_all()

        self.sio.on("*", record)

    # The same calls as tests.support.jsclient.JsClient, so tests.support.room works here.

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def connect(self, url: str, **_: Any) -> None:
        await self.sio.connect(url, transports=["websocket"], wait_timeout=5)

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, args[0] if args else None)

    async def emit_with_ack(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        return await self.sio.call(event, args[0] if args else None, timeout=timeout)

    def mark(self) -> int:
        return len(self.events)

    def named(self, event: str, start: int = 0) -> list[Any]:
        return [data for name, data in self.events[start:] if name == event]

    async def wait_for_event(
        self,
        event: str | None,
        where: Callable[[Any], bool] | None = None,
        *,
        timeout: float = 5.0,
        start: int = 0,
    ) -> Any:
        """The data of the first matching event at index >= `start` (received or to come)."""

        def found() -> list[Any]:
            return [
                d for name, d in self.events[start:] if event in (None, name) and (where is None or where(d))
            ]

        async with asyncio.timeout(timeout):
            async with self.changed:
                await self.changed.wait_for(lambda: bool(found()))
        return found()[0]

    async def expect_no_event(
        self, event: str | None, where: Callable[[Any], bool] | None = None, *, within: float, start: int
    ) -> None:
        """Asserts that no matching event arrives (or has arrived) during `within` seconds."""
        await nothing_arrives(
            lambda: self.wait_for_event(event, where, timeout=within + 1, start=start), within=within
        )


def _sockets(stack: Stack) -> float | None:
    """Sockets the edge counts as connected (its own gauge)."""
    return stack.edge.registry.get_sample_value("edge_gateway_sockets_connected")


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(name: str) -> Client:
        made.append(client := Client(name))
        return client

    yield make
    for client in made:
        with contextlib.suppress(Exception):
            await client.sio.disconnect()


GOOD = {"meetingId": OPEN, "userId": "user-x", "userName": "X"}

BAD_JOINS: list[Any] = [
    pytest.param({"userId": "u", "userName": "U"}, id="missing-meetingId"),
    pytest.param({"meetingId": OPEN, "userName": "U"}, id="missing-userId"),
    pytest.param({"meetingId": OPEN, "userId": "u"}, id="missing-userName"),
    pytest.param({**GOOD, "meetingId": 12.5}, id="float-meetingId"),
    pytest.param({**GOOD, "userId": None}, id="null-userId"),
    pytest.param({**GOOD, "userName": ["a"]}, id="list-userName"),
    pytest.param({**GOOD, "userName": {"first": "a"}}, id="object-userName"),
    pytest.param({**GOOD, "audio": "yes"}, id="string-audio"),
    pytest.param({**GOOD, "meeting_password": 123}, id="number-password"),
    pytest.param({**GOOD, "userName": "N" * 50_000}, id="huge-userName"),
    pytest.param({**GOOD, "meetingId": "M" * 50_000}, id="huge-meetingId"),
    pytest.param("join me", id="string"),
    pytest.param(42, id="number"),
    pytest.param([GOOD], id="array"),
    pytest.param(None, id="no-payload"),
    pytest.param((GOOD, GOOD), id="two-arguments"),
    pytest.param(b"\x00\xffbinary", id="binary"),
    pytest.param({"bin": b"\x01\x02", **GOOD}, id="binary-inside-object"),
    pytest.param({**GOOD, "userId": "user\x00x"}, id="NUL-in-userId"),
    pytest.param({**GOOD, "meetingId": OPEN + "\x1b[2J"}, id="ESC-in-meetingId"),
    pytest.param({**GOOD, "userName": "evil\u202egnp.exe"}, id="RLO-in-userName"),
    pytest.param({**GOOD, "userName": "in\u200bvisible"}, id="zero-width-space-in-userName"),
]


@pytest.mark.parametrize("payload", BAD_JOINS)
async def test_bad_join_input_is_refused_and_changes_nothing(
    stack: Stack, clients: Callable[[str], Client], payload: Any
) -> None:
    watcher, sender = clients("watcher"), clients("sender")
    await watcher.connect(stack.url)
    await sender.connect(stack.url)
    await join(watcher, "watcher")
    before = await stack.participants()
    mark_w, mark_s = len(watcher.events), len(sender.events)

    ack = await sender.emit_with_ack("join-meeting", payload)

    if payload == {"bin": b"\x01\x02", **GOOD}:
        # Extra fields are ignored, even binary ones: this is a valid join.
        assert ack["success"]
        return
    assert ack["success"] is False
    assert ack["error"]["code"] == "INVALID_PAYLOAD"
    assert isinstance(ack["error"]["message"], str) and 0 < len(ack["error"]["message"]) < 300
    error = await sender.wait_for_event("error", start=mark_s)
    assert error == ack["error"]
    assert sender.named("meeting-joined", mark_s) == []
    assert await stack.participants() == before
    await watcher.expect_no_event("participant-joined", within=0.2, start=mark_w)
    # The socket is still usable: a proper join now works.
    joined = await join(sender, "sender")
    assert [p["participantId"] for p in joined["participants"]] == before


@pytest.mark.parametrize(
    ("event", "args"),
    [
        pytest.param("no-such-event", GOOD, id="unknown-event"),
        pytest.param("JOIN-MEETING", GOOD, id="wrong-case"),
        pytest.param("leave-meeting", "now", id="leave-string"),
        pytest.param("leave-meeting", {"meetingId": 5.5}, id="leave-wrong-type"),
    ],
)
async def test_unknown_events_and_bad_leave_payloads_are_refused(
    stack: Stack, clients: Callable[[str], Client], event: str, args: Any
) -> None:
    peer, client = clients("peer"), clients("client")
    await peer.connect(stack.url)
    await client.connect(stack.url)
    await join(peer, "peer")
    await join(client, "client")
    before = await stack.participants()
    mark = len(peer.events)
    ack = await client.emit_with_ack(event, args)
    assert ack == {"success": False, "error": {"code": "INVALID_PAYLOAD", "message": ack["error"]["message"]}}
    assert (await client.wait_for_event("error"))["code"] == "INVALID_PAYLOAD"
    assert await stack.participants() == before
    await peer.expect_no_event("participant-left", within=0.2, start=mark)


async def test_bad_input_without_an_ack_still_gets_an_error_event(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    client = clients("client")
    await client.connect(stack.url)
    await client.sio.emit("join-meeting", {"meetingId": OPEN})
    error = await client.wait_for_event("error")
    assert error["code"] == "INVALID_PAYLOAD" and "userId" in error["message"]
    await join(client, "client")


async def test_chat_controls_and_deeply_nested_signals_are_refused(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    """Chat keeps newlines and tabs but refuses other controls and bidi overrides; a signal
    nested deeper than the bound is refused, a real one goes through."""
    a, b = clients("a"), clients("b")
    await a.connect(stack.url)
    await b.connect(stack.url)
    await join(a, "user-a")
    target = (await join(b, "user-b"))["participantId"]
    mark = len(b.events)
    for text in ("red \x1b[31malert", "evil\u202eoverride", "nul\x00"):
        ack = await a.emit_with_ack("chat-message", {"text": text})
        assert ack["error"]["code"] == "INVALID_PAYLOAD", ack
    assert (await a.emit_with_ack("chat-message", {"text": "two\n\tlines"}))["success"]
    chat = await b.wait_for_event("chat-message", start=mark)
    assert chat["text"] == "two\n\tlines" and len(b.named("chat-message", mark)) == 1
    nested: Any = "x"
    for _ in range(64):
        nested = [nested]
    ack = await a.emit_with_ack("webrtc-offer", {"targetParticipantId": target, "sdp": nested})
    assert ack["error"] == {"code": "INVALID_PAYLOAD", "message": "Signal is nested too deeply"}
    assert (
        await a.emit_with_ack(
            "webrtc-offer", {"targetParticipantId": target, "sdp": {"type": "offer", "sdp": "v=0"}}
        )
    )["success"]
    offer = await b.wait_for_event("webrtc-offer", start=mark)
    assert offer["sdp"] == {"type": "offer", "sdp": "v=0"} and len(b.named("webrtc-offer", mark)) == 1


async def test_leave_when_not_in_a_meeting_is_not_in_meeting(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    client = clients("client")
    await client.connect(stack.url)
    ack = await client.emit_with_ack("leave-meeting", {})
    assert ack["success"] is False and ack["error"]["code"] == "NOT_IN_MEETING"


async def test_domain_refusals_use_the_seeds_messages(stack: Stack, clients: Callable[[str], Client]) -> None:
    client = clients("client")
    await client.connect(stack.url)
    cases = [
        ({"meetingId": "nope", "userId": "u", "userName": "U"}, "MEETING_NOT_FOUND", "Meeting not found"),
        (
            {"meetingId": LOCKED, "userId": "u", "userName": "U"},
            "INVALID_PASSWORD",
            "Invalid meeting password",
        ),
        (
            {"meetingId": LOCKED, "userId": "u", "userName": "U", "meeting_password": "x"},
            "INVALID_PASSWORD",
            "Invalid meeting password",
        ),
    ]
    for payload, code, message in cases:
        mark = len(client.events)
        ack = await client.emit_with_ack("join-meeting", payload)
        assert ack == {"success": False, "error": {"code": code, "message": message}}
        assert await client.wait_for_event("error", start=mark) == {"code": code, "message": message}
    assert await stack.participants(LOCKED) == []


# -- health -------------------------------------------------------------------------------


async def test_healthz_and_readyz_follow_the_room_service(clients: Callable[[str], Client]) -> None:
    running = await start_stack()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{running.url}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
            async with http.get(f"{running.url}/readyz") as response:
                assert response.status == 200
                assert await response.json() == {"ready": True, "roomService": "up"}
            await running.room.stop()
            answers: list[tuple[int, Any]] = []

            async def not_ready() -> bool:
                async with http.get(f"{running.url}/readyz") as response:
                    answers.append((response.status, await response.json()))
                return answers[-1][0] == 503

            # Heartbeats every 0.2 s: the outage shows within seconds.
            await wait_until(not_ready, within=5, what="/readyz 503")
            assert answers[-1] == (503, {"ready": False, "roomService": "down"})
            # Liveness never depends on the room service.
            async with http.get(f"{running.url}/healthz") as response:
                assert response.status == 200
            # And a join during the outage is refused as UNAVAILABLE, not left hanging.
            client = clients("client")
            await client.connect(running.url)
            ack = await client.emit_with_ack("join-meeting", GOOD)
            assert ack["success"] is False and ack["error"]["code"] == "UNAVAILABLE"
    finally:
        await running.edge.stop()


# -- what the joiner gets -----------------------------------------------------------------


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [k2 for v in value.values() for k2 in _keys(v)]
    if isinstance(value, list | tuple):
        return [k for v in value for k in _keys(v)]
    return []


async def test_meeting_never_contains_the_password_or_its_hash(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    host, guest = clients("host"), clients("guest")
    await host.connect(stack.url)
    await guest.connect(stack.url)
    await join(host, "user-1-id", LOCKED, meeting_password="password123")
    mark = len(host.events)
    joined = await join(guest, "user-2-id", LOCKED, meeting_password="password123")
    await host.wait_for_event("participant-joined", start=mark)
    meeting = joined["meeting"]
    assert meeting["id"] == LOCKED
    assert meeting["meeting_status"] == "live"
    assert meeting["creator_id"] == "user-1-id"
    assert meeting["has_password"] is True
    everything = json.dumps([host.events, guest.events], default=repr)
    assert "password123" not in everything
    assert "scrypt" not in everything
    assert [k for k in _keys([host.events, guest.events]) if "password" in k.lower()] == ["has_password"] * 2


async def test_meeting_joined_has_the_seeds_shape(stack: Stack, clients: Callable[[str], Client]) -> None:
    host, guest = clients("host"), clients("guest")
    await host.connect(stack.url)
    await guest.connect(stack.url)
    first = await join(host, "user-1-id", audio=True, video=False)
    second = await join(guest, "user-2-id")
    assert first["success"] is True and first["participants"] == []
    assert first["permissions"]["canRecord"] is True
    assert second["permissions"] == {"canShare": True, "canChat": True, "canRecord": False, "isHost": False}
    assert second["webrtcConfig"] == {"iceServers": []}
    (listed,) = second["participants"]
    assert listed["participantId"] == first["participantId"]
    assert (listed["userId"], listed["userName"]) == ("user-1-id", "User-1-Id")
    assert (listed["audio"], listed["video"], listed["screen"]) == (True, False, False)
    announced = await host.wait_for_event("participant-joined")
    assert announced["participantId"] == second["participantId"]
    assert announced["permissions"] == {
        "canShare": True,
        "canChat": True,
        "canRecord": False,
        "isHost": False,
    }
    assert (announced["audio"], announced["video"], announced["screen"]) == (True, True, False)


async def test_second_join_from_the_same_socket_is_idempotent(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    me, peer = clients("me"), clients("peer")
    await me.connect(stack.url)
    await peer.connect(stack.url)
    first = await join(me, "user-me")
    mark_peer = len(peer.events)
    await join(peer, "user-peer")
    await me.wait_for_event("participant-joined")
    mark_me, mark_peer = len(me.events), len(peer.events)

    again = await join(me, "user-me")

    assert again["participantId"] == first["participantId"]
    assert [p["userId"] for p in again["participants"]] == ["user-peer"]  # a fresh roster
    assert len(await stack.participants()) == 2
    await peer.expect_no_event("participant-joined", within=0.4, start=mark_peer)
    assert peer.named("participant-left", mark_peer) == []
    # The socket is still wired to the room: it hears the next change exactly once.
    third = clients("third")
    await third.connect(stack.url)
    joined = await join(third, "user-third")
    announced = await me.wait_for_event("participant-joined", start=mark_me)
    assert announced["participantId"] == joined["participantId"]
    await me.expect_no_event("participant-joined", within=0.3, start=me.mark())
    assert len(me.named("participant-joined", mark_me)) == 1


async def test_same_user_from_a_second_socket_replaces_the_older_one(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    peer, old, new = clients("peer"), clients("old"), clients("new")
    for client in (peer, old, new):
        await client.connect(stack.url)
    await join(peer, "user-peer")
    first = await join(old, "user-dup")
    await peer.wait_for_event("participant-joined")
    mark_peer, mark_old = len(peer.events), len(old.events)

    second = await join(new, "user-dup")

    assert second["participantId"] != first["participantId"]
    assert [p["userId"] for p in second["participants"]] == ["user-peer"]  # not its older self
    left = await peer.wait_for_event("participant-left", start=mark_peer)
    assert left["participantId"] == first["participantId"]
    assert left["reason"] == "replaced"
    joined = await peer.wait_for_event("participant-joined", start=mark_peer)
    assert joined["participantId"] == second["participantId"]
    # The older socket is told it is out, and hears nothing more of the room.
    told = await old.wait_for_event("participant-left", start=mark_old)
    assert told["participantId"] == first["participantId"] and told["reason"] == "replaced"
    assert sorted(await stack.participants()) == sorted([second["participantId"], peer.named(
        "meeting-joined")[0]["participantId"]])  # fmt: skip
    mark_old = len(old.events)
    extra = clients("extra")
    await extra.connect(stack.url)
    await join(extra, "user-extra")
    await peer.wait_for_event("participant-joined", lambda d: d["userId"] == "user-extra")
    await old.expect_no_event("participant-joined", within=0.3, start=mark_old)
    # Its disconnect now removes nobody.
    assert _sockets(stack) == 4
    await old.sio.disconnect()
    await wait_until(lambda: _sockets(stack) == 3, within=5, what="the edge handled the disconnect")
    assert len(await stack.participants()) == 3


# -- delivery rules under interleaving ------------------------------------------------------


async def test_events_during_a_late_joiners_catch_up_are_not_lost(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    """A socket whose join the relay has already passed is caught up from the relay's ring
    before it enters the room; an event the stream brings meanwhile must reach it too.

    The emits are slowed (and the other joins triggered from inside them) only to make the
    interleaving certain; correctness never depends on those sleeps."""
    first, late = clients("first"), clients("late")
    await first.connect(stack.url)
    await late.connect(stack.url)
    await join(first, "user-first")
    hub = stack.edge.hub
    real_emit = hub.emit
    manager = stack.room.manager
    triggered: list[str] = []

    async def remote_join(user: str) -> None:
        spec = JoinSpec(OPEN, user, f"Name {user}", MediaState(), "edge-elsewhere", f"sock-{user}")
        await manager.join(spec, "")
        triggered.append(user)
        await asyncio.sleep(0.3)  # the edge's stream relays it meanwhile

    real_attach = hub.attach

    async def late_attach(session: Session, *rest: Any) -> None:
        if session.sid == late.sio.get_sid() and not triggered:
            # After its `meeting-joined`, before it registers: the relay moves past its join.
            await remote_join("user-before")
        await real_attach(session, *rest)

    async def slow_emit(event: str, data: dict[str, Any], **kwargs: Any) -> None:
        if event == "participant-joined" and kwargs.get("to") == late.sio.get_sid() and len(triggered) == 1:
            await remote_join("user-during")  # arrives while the late joiner is caught up
        await real_emit(event, data, **kwargs)

    hub.emit = slow_emit  # type: ignore[method-assign]
    hub.attach = late_attach  # type: ignore[method-assign]
    try:
        joined = await join(late, "user-late")
        await first.wait_for_event("participant-joined", lambda d: d["userId"] == "user-during")
        await late.wait_for_event("participant-joined", lambda d: d["userId"] == "user-during")
        await late.expect_no_event(None, within=0.3, start=late.mark())  # no duplicate follows
    finally:
        hub.emit = real_emit  # type: ignore[method-assign]
        hub.attach = real_attach  # type: ignore[method-assign]
    assert triggered == ["user-before", "user-during"]
    view = replay(late.events)
    assert view.violations == []
    truth = set(await stack.participants()) - {joined["participantId"]}
    assert view.ids == truth
    assert sorted(p["userId"] for p in view.roster.values()) == ["user-before", "user-during", "user-first"]


def first_argument(data: Any) -> Any:
    """What a hooked `hub.emit` is sending, without the recovery offset a room event or
    `meeting-joined` carries as its last argument."""
    return data[0] if isinstance(data, tuple) else data


async def test_an_idempotent_rejoin_while_the_stream_lags_repeats_nothing(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    """The re-sent roster is as of the log head; an event the edge's stream had not
    relayed yet when the socket re-joined is in that roster and must not follow it."""
    me, peer = clients("me"), clients("peer")
    await me.connect(stack.url)
    await peer.connect(stack.url)
    first = await join(me, "user-me")
    await join(peer, "user-peer")
    await me.wait_for_event("participant-joined")
    hub = stack.edge.hub
    real_emit = hub.emit
    rejoin: list[asyncio.Task[dict[str, Any]]] = []
    resent = asyncio.Event()

    async def lagging_emit(event: str, data: Any, **kwargs: Any) -> None:
        payload = first_argument(data)
        if event == "meeting-joined" and rejoin:
            resent.set()
        if (
            event == "participant-joined"
            and kwargs.get("room")
            and payload["userId"] == "user-lag"
            and not rejoin
        ):
            # The stream holds this event until the socket re-joined and got its roster.
            rejoin.append(asyncio.create_task(join(me, "user-me")))
            await asyncio.wait_for(resent.wait(), 5)
        await real_emit(event, data, **kwargs)

    hub.emit = lagging_emit  # type: ignore[method-assign]
    try:
        mark = len(me.events)
        spec = JoinSpec(OPEN, "user-lag", "Lag", MediaState(), "edge-elsewhere", "sock-lag")
        await stack.room.manager.join(spec, "")
        await peer.wait_for_event("participant-joined", lambda d: d["userId"] == "user-lag")
        again = await asyncio.wait_for(rejoin[0], 5)
        # The held event must not follow the roster that already holds it.
        await me.expect_no_event("participant-joined", within=0.3, start=mark)
    finally:
        hub.emit = real_emit  # type: ignore[method-assign]
    assert again["participantId"] == first["participantId"]
    assert sorted(p["userId"] for p in again["participants"]) == ["user-lag", "user-peer"]
    view = replay(me.events)
    assert view.violations == []
    assert view.ids == set(await stack.participants()) - {first["participantId"]}
    assert me.named("participant-joined", mark) == []
    # Still in step afterwards.
    await peer.emit_with_ack("leave-meeting", {})
    left = await me.wait_for_event("participant-left", start=mark)
    assert left["userId"] == "user-peer"


@pytest.mark.parametrize("removal", ["kicked", "replaced"])
async def test_a_socket_removed_before_it_registers_never_enters_the_fan_out(
    stack: Stack, clients: Callable[[str], Client], removal: str
) -> None:
    """The kick (or a newer session of the same user) lands after the victim's join reply
    and before its registration, and the relay's stream has already passed it: the
    victim must be told it is out (`kicked` when kicked) and hear nothing of the room.

    The victim's registration (after its `meeting-joined`) is held until the relay has
    applied the removal, which forces that interleaving every time."""
    host, victim, newer = clients("host"), clients("victim"), clients("newer")
    for client in (host, victim, newer):
        await client.connect(stack.url)
    await join(host, "user-1-id")  # the meeting's creator: its host
    hub = stack.edge.hub
    real_attach = hub.attach
    removed: list[str] = []

    async def removal_first(session: Session, *rest: Any) -> None:
        if session.sid == victim.sio.get_sid() and not removed:
            pid = session.participant_id
            removed.append(pid)
            if removal == "kicked":
                ack = await host.emit_with_ack("kick-participant", {"participantId": pid})
                assert ack["success"], ack
            else:
                await join(newer, "user-victim")
            # The relay has applied the removal once the host hears of it.
            await host.wait_for_event("participant-left", lambda d: d["participantId"] == pid)
            assert pid not in hub.relays[OPEN].view
        await real_attach(session, *rest)

    hub.attach = removal_first  # type: ignore[method-assign]
    try:
        mark = len(victim.events)
        ack = await victim.emit_with_ack(
            "join-meeting", {"meetingId": OPEN, "userId": "user-victim", "userName": "Victim"}
        )
        assert ack["success"], ack
    finally:
        hub.attach = real_attach  # type: ignore[method-assign]
    (victim_pid,) = removed
    if removal == "kicked":
        told = await victim.wait_for_event("kicked", start=mark)
        assert told == {"meetingId": OPEN, "participantId": victim_pid, "reason": "kicked"}
        assert [d for d in victim.named("participant-left", mark) if d["participantId"] == victim_pid] == []
    else:
        told = await victim.wait_for_event(
            "participant-left", lambda d: d["participantId"] == victim_pid, start=mark
        )
        assert told["reason"] == "replaced"
    # Out of the edge's fan-out and sessions: nothing more reaches it, nothing restores it.
    assert hub.sessions.by_sid(victim.sio.get_sid()) is None
    relay = hub.relays[OPEN]
    assert victim.sio.get_sid() not in relay.members and victim.sio.get_sid() not in relay.pending
    after = len(victim.events)
    assert (await host.emit_with_ack("chat-message", {"text": "still here?"}))["success"]
    await host.wait_for_event("chat-message", lambda d: d["text"] == "still here?")
    await victim.expect_no_event("chat-message", within=0.3, start=after)
    assert victim_pid not in await stack.participants()


async def test_a_local_joiner_hears_meeting_joined_before_the_others_hear_of_it(
    stack: Stack, clients: Callable[[str], Client]
) -> None:
    """The room stream brings a join before the Join RPC's reply reaches the handler: the
    others on this edge must still hear `participant-joined` only after the joiner got its
    `meeting-joined` (the seed emits to the joiner first, then broadcasts).

    The Join reply is held until the edge's relay has taken the join event off the stream,
    which forces that interleaving every time."""
    first, second = clients("first"), clients("second")
    await first.connect(stack.url)
    await second.connect(stack.url)
    await join(first, "user-1-id")
    hub = stack.edge.hub
    relay = hub.relays[OPEN]
    real_join, real_emit = hub.client.join, hub.emit
    written: list[tuple[str, str]] = []

    async def late_reply(*args: Any) -> Any:
        reply = await real_join(*args)
        # The stream has delivered the joiner's own join event to the relay.
        await wait_until(lambda: relay.position[0] >= reply.position.sequence, within=5, interval=0.01)
        return reply

    async def recorded_emit(event: str, data: Any, **kwargs: Any) -> None:
        written.append((event, kwargs.get("to") or kwargs.get("room") or ""))
        await real_emit(event, data, **kwargs)

    hub.client.join = late_reply  # type: ignore[method-assign]
    hub.emit = recorded_emit  # type: ignore[method-assign]
    try:
        joined = await join(second, "user-2-id")
        announced = await first.wait_for_event("participant-joined")
    finally:
        hub.client.join = real_join  # type: ignore[method-assign]
        hub.emit = real_emit  # type: ignore[method-assign]
    assert announced["participantId"] == joined["participantId"]
    # Written to the sockets in this order (engine.py writes each emit in place).
    order = [event for event, _ in written if event in ("meeting-joined", "participant-joined")]
    assert order == ["meeting-joined", "participant-joined"], written
    assert replay(first.events).violations == [] and replay(second.events).violations == []
    await second.expect_no_event("participant-joined", within=0.3, start=0)  # not echoed to itself

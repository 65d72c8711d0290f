"""The edge's delivery rules under interleaving: events during a late joiner's catch-up,
rejoins while the stream lags, removals before registration, and join order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from edge_gateway.relay_host import Broadcast
from edge_gateway.sessions import Session
from room_service.domain.models import MediaState
from room_service.domain.requests import JoinSpec
from tests.support.edge_stack import OPEN, Client, Connect, Stack
from tests.support.room import join
from tests.support.roster import replay
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)


async def test_events_during_a_late_joiners_catch_up_are_not_lost(connected: Connect, stack: Stack) -> None:
    """A socket whose join the relay has already passed is caught up from the relay's ring
    before it enters the room; an event the stream brings meanwhile must reach it too.

    The emits are slowed (and the other joins triggered from inside them) only to make the
    interleaving certain; correctness never depends on those sleeps."""
    first, late = await connected("first", "late")
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

    hub.emit = slow_emit  # type: ignore[method-assign,assignment]
    hub.attach = late_attach  # type: ignore[method-assign,assignment]
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
    connected: Connect, stack: Stack
) -> None:
    """The re-sent roster is as of the log head; an event the edge's stream had not
    relayed yet when the socket re-joined is in that roster and must not follow it."""
    me, peer = await connected("me", "peer")
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
            and isinstance(kwargs["to"], Broadcast)
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
    assert me.payloads("participant-joined", start=mark) == []
    # Still in step afterwards.
    await peer.emit_with_ack("leave-meeting", {})
    left = (await me.wait_for_event("participant-left", start=mark)).data
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

    hub.attach = removal_first  # type: ignore[method-assign,assignment]
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
        told = (await victim.wait_for_event("kicked", start=mark)).data
        assert told == {"meetingId": OPEN, "participantId": victim_pid, "reason": "kicked"}
        assert [
            d for d in victim.payloads("participant-left", start=mark) if d["participantId"] == victim_pid
        ] == []
    else:
        told = await victim.wait_for_event(
            "participant-left", lambda d: d["participantId"] == victim_pid, start=mark
        )
        assert told.data["reason"] == "replaced"
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
    connected: Connect, stack: Stack
) -> None:
    """The room stream brings a join before the Join RPC's reply reaches the handler: the
    others on this edge must still hear `participant-joined` only after the joiner got its
    `meeting-joined` (the seed emits to the joiner first, then broadcasts).

    The Join reply is held until the edge's relay has taken the join event off the stream,
    which forces that interleaving every time."""
    first, second = await connected("first", "second")
    await join(first, "user-1-id")
    hub = stack.edge.hub
    relay = hub.relays[OPEN]
    real_join, real_emit = hub.client.join, hub.emit
    written: list[tuple[str, str | Broadcast]] = []

    async def late_reply(*args: Any) -> Any:
        reply = await real_join(*args)
        # The stream has delivered the joiner's own join event to the relay.
        await wait_until(lambda: relay.position[0] >= reply.position.sequence, within=5, interval=0.01)
        return reply

    async def recorded_emit(event: str, data: Any, **kwargs: Any) -> None:
        written.append((event, kwargs["to"]))
        await real_emit(event, data, **kwargs)

    hub.client.join = late_reply  # type: ignore[method-assign,assignment]
    hub.emit = recorded_emit  # type: ignore[method-assign]
    try:
        joined = await join(second, "user-2-id")
        announced = (await first.wait_for_event("participant-joined")).data
    finally:
        hub.client.join = real_join  # type: ignore[method-assign]
        hub.emit = real_emit  # type: ignore[method-assign]
    assert announced["participantId"] == joined["participantId"]
    # Written to the sockets in this order (engine.py writes each emit in place).
    order = [event for event, _ in written if event in ("meeting-joined", "participant-joined")]
    assert order == ["meeting-joined", "participant-joined"], written
    assert replay(first.events).violations == [] and replay(second.events).violations == []
    await second.expect_no_event("participant-joined", within=0.3, start=0)  # not echoed to itself

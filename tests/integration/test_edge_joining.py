"""What a joiner gets from the edge: `meeting` never holds the password or its hash, the
seed's `meeting-joined` shape, idempotent re-join, replacement of a user's older session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from edge_gateway.relay import RoomRelay
from tests.support.edge_stack import (
    LOCKED,
    OPEN,
    Client,
    Connect,
    Stack,
    sockets_connected,
    start_stack,
    stop_stack,
)
from tests.support.room import join
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["2", "0"], ids=["command-streams", "unary-calls"])
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    """The edge's commands over its Commands streams (the default), and as unary calls
    (`--command-streams 0`, the escape hatch): the same behaviour either way."""
    running = await start_stack("--command-streams", request.param)
    try:
        yield running
    finally:
        await stop_stack(running)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [k2 for v in value.values() for k2 in _keys(v)]
    if isinstance(value, list | tuple):
        return [k for v in value for k in _keys(v)]
    return []


async def test_meeting_never_contains_the_password_or_its_hash(connected: Connect) -> None:
    host, guest = await connected("host", "guest")
    await join(host, "user-1-id", LOCKED, meeting_password="password123")
    mark = len(host.events)
    joined = await join(guest, "user-2-id", LOCKED, meeting_password="password123")
    await host.wait_for_event("participant-joined", start=mark)
    meeting = joined["meeting"]
    assert meeting["id"] == LOCKED
    assert meeting["meeting_status"] == "live"
    assert meeting["creator_id"] == "user-1-id"
    assert meeting["has_password"] is True
    received = [[e.args for e in client.events] for client in (host, guest)]
    everything = json.dumps(received, default=repr)
    assert "password123" not in everything
    assert "scrypt" not in everything
    assert [k for k in _keys(received) if "password" in k.lower()] == ["has_password"] * 2


async def test_meeting_joined_has_the_seeds_shape(connected: Connect) -> None:
    host, guest = await connected("host", "guest")
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
    announced = (await host.wait_for_event("participant-joined")).data
    assert announced["participantId"] == second["participantId"]
    assert announced["permissions"] == {
        "canShare": True,
        "canChat": True,
        "canRecord": False,
        "isHost": False,
    }
    assert (announced["audio"], announced["video"], announced["screen"]) == (True, True, False)


async def test_second_join_from_the_same_socket_is_idempotent(
    connected: Connect, stack: Stack, clients: Callable[[str], Client]
) -> None:
    me, peer = await connected("me", "peer")
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
    assert peer.payloads("participant-left", start=mark_peer) == []
    # The socket is still wired to the room: it hears the next change exactly once.
    third = clients("third")
    await third.connect(stack.url)
    joined = await join(third, "user-third")
    announced = (await me.wait_for_event("participant-joined", start=mark_me)).data
    assert announced["participantId"] == joined["participantId"]
    await me.expect_no_event("participant-joined", within=0.3, start=me.mark())
    assert len(me.payloads("participant-joined", start=mark_me)) == 1


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
    left = (await peer.wait_for_event("participant-left", start=mark_peer)).data
    assert left["participantId"] == first["participantId"]
    assert left["reason"] == "replaced"
    joined = (await peer.wait_for_event("participant-joined", start=mark_peer)).data
    assert joined["participantId"] == second["participantId"]
    # The older socket is told it is out, and hears nothing more of the room.
    told = (await old.wait_for_event("participant-left", start=mark_old)).data
    assert told["participantId"] == first["participantId"] and told["reason"] == "replaced"
    assert sorted(await stack.participants()) == sorted([second["participantId"], peer.payloads(
        "meeting-joined")[0]["participantId"]])  # fmt: skip
    mark_old = len(old.events)
    extra = clients("extra")
    await extra.connect(stack.url)
    await join(extra, "user-extra")
    await peer.wait_for_event("participant-joined", lambda d: d["userId"] == "user-extra")
    await old.expect_no_event("participant-joined", within=0.3, start=mark_old)
    # Its disconnect now removes nobody.
    assert sockets_connected(stack) == 4
    await old.sio.disconnect()
    await wait_until(lambda: sockets_connected(stack) == 3, within=5, what="the edge handled the disconnect")
    assert len(await stack.participants()) == 3


async def test_the_edge_keeps_one_copy_of_each_participant(connected: Connect, stack: Stack) -> None:
    """A joined socket's session and its room's view share one participant message (each
    socket of a big meeting held two)."""
    me, peer = await connected("me", "peer")
    await join(me, "user-me")
    mark = len(me.events)
    await join(peer, "user-peer")
    await me.wait_for_event("participant-joined", start=mark)
    hub = stack.edge.hub

    def shared(client: Client) -> bool:
        session = hub.sessions.by_sid(client.sio.get_sid())
        relay = hub.relays.get(OPEN)
        return (
            session is not None
            and relay is not None
            and session.sid in relay.members
            and session.participant is relay.view.get(session.participant_id)
        )

    await wait_until(lambda: shared(me) and shared(peer), within=5, what="both sockets in step")


async def test_a_roster_from_the_edges_view_is_the_rooms_as_of_the_join(
    connected: Connect, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the room has a relay here, a joiner's roster is taken from its view (each entry
    converted once, not once per joiner): the room service's list, in its order, with the
    media as changed since the entry was first converted."""
    from_view: list[bool] = []
    real = RoomRelay.roster_json

    def watched(relay: RoomRelay, *args: Any, **kwargs: Any) -> bytes | None:
        roster = real(relay, *args, **kwargs)
        from_view.append(roster is not None)
        return roster

    monkeypatch.setattr(RoomRelay, "roster_json", watched)
    people = await connected(*(f"person-{i}" for i in range(5)))
    first = await join(people[0], "user-0")
    for i, person in enumerate(people[1:], start=1):
        mark = people[0].mark()
        before = await stack.participants()
        joined = await join(person, f"user-{i}")
        assert [p["participantId"] for p in joined["participants"]] == before
        listed = {p["participantId"]: p for p in joined["participants"]}
        assert listed[first["participantId"]]["audio"] is (i < 3)
        if i == 2:  # muted after two joiners have its entry
            assert (await people[0].emit_with_ack("update-media", {"audio": False}))["success"]
            await person.wait_for_event("participant-updated", lambda d: d["audio"] is False)
        # The relay stands at the join before the next one comes: the view is used.
        await people[0].wait_for_event("participant-joined", start=mark)
    assert from_view == [True] * 4  # every joiner after the first, which opened the relay

"""Users on different edge gateways of one room service see each other exactly as users on
one edge do: the seed's checklist tests 2-5 across edges, and identical event histories
for an observer on each edge."""

from __future__ import annotations

from typing import Any

import pytest

from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.conftest import SHORT_RECOVERY_WINDOW
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.room import join, seed_pair, truth
from tests.support.roster import replay

pytestmark = pytest.mark.timeout(120)

WS: dict[str, Any] = {"transports": ["websocket"]}


async def on(js: JsClientPool, **edges: EdgeProcess) -> list[JsClient]:
    """A WebSocket client per keyword, named by it, connected in order to its edge."""
    clients = [js.client(name) for name in edges]
    for client, edge in zip(clients, edges.values(), strict=True):
        await client.connect(edge.url, **WS)
    return clients


def room_history(client: JsClient, start: int = 0) -> list[tuple[str, Any]]:
    """The room events a client received, without the transport lifecycle."""
    names = ("participant-joined", "participant-left", "participant-updated")
    return [(e.event, e.data) for e in client.events[start:] if e.event in names]


async def test_2_and_3_joins_are_seen_across_edges(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool
) -> None:
    user1, user2, user3 = await on(js, user1=edge, user2=edge2, user3=edge)
    first = await join(user1, "user-1-id", name="User One", ack=False)
    second = await join(user2, "user-2-id", name="User Two", ack=False)
    assert [p["participantId"] for p in second["participants"]] == [first["participantId"]]
    seen = (await user1.wait_for_event("participant-joined")).data
    assert seen["participantId"] == second["participantId"] and seen["userName"] == "User Two"
    third = await join(user3, "user-3-id", name="User Three", ack=False)
    assert [p["userName"] for p in third["participants"]] == ["User One", "User Two"]
    for user in (user1, user2):
        event = await user.wait_for_event("participant-joined", lambda d: d["userId"] == "user-3-id")
        assert event.data["participantId"] == third["participantId"]
    assert len({first["participantId"], second["participantId"], third["participantId"]}) == 3
    await user3.expect_no_event("participant-joined", within=0.3)
    for user in (user1, user2, user3):
        assert replay(user.events).violations == []
        assert user.payloads("error") == []


async def test_4_leave_and_rejoin_across_edges(
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    user1, user2, first, before = await seed_pair(js, edge.url, edge2.url, **WS)
    assert (await user2.emit_with_ack("leave-meeting", {}))["success"] is True
    left = (await user1.wait_for_event("participant-left")).data
    assert (left["participantId"], left["reason"]) == (before["participantId"], "left")
    mark = user1.mark()
    after = await join(user2, "user-2-id", name="User Two", ack=False)
    assert after["participantId"] != before["participantId"]
    rejoined = (await user1.wait_for_event("participant-joined", start=mark)).data
    assert rejoined["participantId"] == after["participantId"]
    await user1.expect_no_event("participant-joined", start=mark + 1, within=0.3)
    view = replay(user1.events)
    assert view.violations == [] and view.ids == {after["participantId"]}
    assert await truth(stub) == {first["participantId"], after["participantId"]}


@SHORT_RECOVERY_WINDOW
async def test_5_disconnect_is_seen_across_edges(
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    user1, user2, first, second = await seed_pair(js, edge.url, edge2.url, **WS)
    await user2.drop("reset")
    left = (await user1.wait_for_event("participant-left", timeout=10)).data
    assert (left["participantId"], left["reason"]) == (second["participantId"], "disconnected")
    assert await truth(stub) == {first["participantId"]}


@SHORT_RECOVERY_WINDOW
async def test_an_observer_on_each_edge_sees_the_same_history(
    edge: EdgeProcess, edge2: EdgeProcess, js: JsClientPool
) -> None:
    near, far = await on(js, near=edge, far=edge2)
    await join(near, "observer-near", name="Near", ack=False)
    await join(far, "observer-far", name="Far", ack=False)
    await near.wait_for_event("participant-joined")
    marks = {near.name: near.mark(), far.name: far.mark()}
    actors = await on(js, **{f"actor{i}": edge if i % 2 else edge2 for i in range(4)})
    ids = [
        (await join(a, f"actor-{i}", name=f"Actor {i}", ack=False))["participantId"]
        for i, a in enumerate(actors)
    ]
    assert (await actors[1].emit_with_ack("leave-meeting", {}))["success"] is True
    await actors[2].drop("reset")
    # One change at a time, so that the expected order below is the room's order.
    await near.wait_for_event("participant-left", lambda d: d["participantId"] == ids[2], timeout=10)
    await actors[3].disconnect()
    for observer in (near, far):
        await observer.wait_for_events("participant-left", 3, start=marks[observer.name], timeout=10)
    histories = [room_history(near, marks["near"]), room_history(far, marks["far"])]
    assert histories[0] == histories[1]
    assert [(name, data["participantId"]) for name, data in histories[0]] == [
        ("participant-joined", ids[0]),
        ("participant-joined", ids[1]),
        ("participant-joined", ids[2]),
        ("participant-joined", ids[3]),
        ("participant-left", ids[1]),
        ("participant-left", ids[2]),
        ("participant-left", ids[3]),
    ]
    reasons = [data["reason"] for name, data in histories[0] if name == "participant-left"]
    assert reasons == ["left", "disconnected", "disconnected"]


async def test_same_user_on_another_edge_replaces_the_older_session(
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    peer, old, new = await on(js, peer=edge2, old=edge, new=edge2)
    host = await join(peer, "user-peer", name="Peer", ack=False)
    first = await join(old, "user-dup", name="Dup", ack=False)
    await peer.wait_for_event("participant-joined")
    mark_peer, mark_old = peer.mark(), old.mark()
    second = await join(new, "user-dup", name="Dup", ack=False)
    assert [p["participantId"] for p in second["participants"]] == [host["participantId"]]
    told = (await old.wait_for_event("participant-left", start=mark_old, timeout=10)).data
    assert (told["participantId"], told["reason"]) == (first["participantId"], "replaced")
    await peer.wait_for_events(
        None, 2, lambda d: isinstance(d, dict) and "participantId" in d, start=mark_peer
    )
    assert [(n, d["participantId"]) for n, d in room_history(peer, mark_peer)] == [
        ("participant-left", first["participantId"]),
        ("participant-joined", second["participantId"]),
    ]
    assert room_history(peer, mark_peer)[0][1]["reason"] == "replaced"
    assert await truth(stub) == {host["participantId"], second["participantId"]}

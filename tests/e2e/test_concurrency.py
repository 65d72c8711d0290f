"""Many official clients join one meeting at once over two edges while some leave and
some vanish mid-way; afterwards every remaining client's roster, rebuilt from the events
it received, is the room service's truth, and no history shows a duplicate, a ghost or
an event before its `meeting-joined`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.conftest import SHORT_RECOVERY_WINDOW
from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.room import MEETING, join, truth
from tests.support.roster import ROOM_EVENTS, replay
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(180)

CLIENTS = 36
LEAVERS = range(0, CLIENTS, 6)  # 6 clients leave with leave-meeting
DROPPERS = range(3, CLIENTS, 6)  # 6 clients vanish (TCP reset, no disconnect packet)
WEBSOCKET_ONLY: dict[str, Any] = {"transports": ["websocket"]}


def _explain(client: JsClient, violations: list[str], pids: list[str]) -> str:
    """A client's history with participant ids shown as user ids, for failure messages."""
    names = {pid: f"user-{i}" for i, pid in enumerate(pids)}
    lines = [f"{client.name}: {violations}"]
    for e in client.events:
        data = e.data if isinstance(e.data, dict) else {}
        who = names.get(data.get("participantId", ""), data.get("participantId"))
        listed = [names.get(p["participantId"]) for p in data.get("participants", [])]
        lines.append(f"  #{e.index} {e.event} {who} {data.get('reason', '')} {listed or ''}")
    return "\n".join(lines)


@SHORT_RECOVERY_WINDOW
async def test_concurrent_joins_leaves_and_drops_over_two_edges(
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    clients: list[JsClient] = []
    for i in range(CLIENTS):
        client = js.client(f"c{i}")
        clients.append(client)
    # Spread over both edges; droppers use WebSocket so that the reset is seen at once,
    # every fourth other client keeps the default polling-then-upgrade.
    await asyncio.gather(
        *(
            c.connect(
                (edge if i % 2 else edge2).url,
                timeout=30,
                **({} if i % 4 == 1 and i not in DROPPERS else WEBSOCKET_ONLY),
            )
            for i, c in enumerate(clients)
        )
    )
    after_leave: dict[str, int] = {}

    async def run(i: int, client: JsClient) -> str:
        joined = await join(client, f"user-{i}", name=f"User {i}", ack=False, within=30)
        pid: str = joined["participantId"]
        if i in LEAVERS:
            ack = await client.emit_with_ack("leave-meeting", {"meetingId": MEETING}, timeout=15)
            assert ack["success"] is True, ack
            after_leave[client.name] = client.mark()
        elif i in DROPPERS:
            await client.drop("reset")
        return pid

    started = time.monotonic()
    pids = await asyncio.gather(*(run(i, c) for i, c in enumerate(clients)))
    assert len(set(pids)) == CLIENTS  # a new participant id for every join
    remaining = {i for i in range(CLIENTS) if i not in LEAVERS and i not in DROPPERS}
    expected = {pids[i] for i in remaining}

    async def settled() -> bool:
        return await truth(stub) == expected

    await wait_until(
        settled, within=20, interval=0.2, what="the room service holds exactly the remaining clients"
    )

    def views_match() -> bool:
        return all(replay(clients[i].events).ids == expected - {pids[i]} for i in remaining)

    await wait_until(
        views_match, within=20, interval=0.2, what="every remaining client's roster equals the truth"
    )
    elapsed = time.monotonic() - started
    # Stragglers would show up as duplicates or ghosts: none may arrive, then check.
    quiet_from = {i: clients[i].mark() for i in remaining}
    await asyncio.gather(
        *(clients[i].expect_no_event(None, within=0.5, start=quiet_from[i]) for i in remaining)
    )
    for i in remaining:
        client = clients[i]
        view = replay(client.events)
        assert view.violations == [], _explain(client, [str(v) for v in view.violations], pids)
        assert view.joins_seen == 1 and view.participant_id == pids[i]
        assert view.ids == expected - {pids[i]}, client.name
        assert client.payloads("error") == [], client.name
        # No room event before the client's own meeting-joined.
        first_joined = client.events_named("meeting-joined")[0].index
        early = [e.event for e in client.events[:first_joined] if e.event in ROOM_EVENTS]
        assert early == [], client.name
    for i in LEAVERS:
        client = clients[i]
        assert replay(client.events).violations == []
        late = [e.event for e in client.events[after_leave[client.name] :] if e.event in ROOM_EVENTS]
        assert late == [], f"{client.name} got room events after leaving: {late}"
    print(f"{CLIENTS} clients over two edges settled in {elapsed:.2f}s")

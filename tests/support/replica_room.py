"""A room spread over several room-service replicas and two edges, as the fault tests
drive it: clients joined alternately through the edges, rosters that converge on the
truth, and the edges' readiness."""

from __future__ import annotations

import contextlib

import aiohttp

from tests.support.jsclient import JsClient, JsClientPool
from tests.support.processes import EdgeProcess
from tests.support.replicas import Replicas
from tests.support.room import join, room_stub, truth
from tests.support.roster import replay
from tests.support.timing import wait_until


async def connect_and_join(client: JsClient, url: str, user: str) -> str:
    """Connects over WebSocket and joins the demo meeting; the participant id."""
    return str((await join(client, user, url=url))["participantId"])


async def join_alternating(
    js: JsClientPool,
    edges: tuple[EdgeProcess, EdgeProcess],
    count: int,
    *,
    name: str = "c",
    user: str = "user",
) -> tuple[list[JsClient], dict[str, str]]:
    """`count` clients (`name`0, `name`1, ...) joined as `user`0, `user`1, ... through the
    two edges in turn; the clients, and their participant ids by client name."""
    clients = [js.client(f"{name}{i}") for i in range(count)]
    pids: dict[str, str] = {}
    for i, client in enumerate(clients):
        pids[client.name] = await connect_and_join(client, edges[i % 2].url, f"{user}{i}")
    return clients, pids


async def settled_room(
    js: JsClientPool, replicas: Replicas, edges: tuple[EdgeProcess, EdgeProcess], count: int, *, via: int
) -> tuple[list[JsClient], dict[str, str], dict[str, int]]:
    """`count` clients joined through the two edges in turn (see `join_alternating`) and
    every roster equal to the truth read through replica `via`; the clients, their
    participant ids by client name, and each client's event mark once settled."""
    clients, pids = await join_alternating(js, edges, count)
    async with room_stub(replicas.addresses[via]) as stub:
        await converged(stub, clients, set(pids.values()), within=30)
    return clients, pids, {c.name: c.mark() for c in clients}


async def wait_for_ready(url: str, *, within: float) -> float:
    """Polls an edge's /readyz until it answers 200."""
    return await wait_until(lambda: status_is(url, 200), within=within, what=f"{url} ready")


async def readyz(url: str) -> int:
    """The status of `url`/readyz."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
        return response.status


async def participant_ids(stub: object) -> set[str]:
    """Who the room service says is in the room."""
    return await truth(stub)  # type: ignore[arg-type]


async def converged(stub: object, clients: list[JsClient], expected: set[str], within: float) -> float:
    """Waits until the truth is `expected` and every client's rebuilt roster equals it."""

    async def check() -> bool:
        if await participant_ids(stub) != expected:
            return False
        return all(replay(c.events).ids == expected - {replay(c.events).participant_id} for c in clients)

    return await wait_until(check, within=within, interval=0.25, what="every roster equals the truth")


async def status_is(url: str, status: int) -> bool:
    """Whether `url`/readyz answers `status` (an unreachable edge answers nothing)."""
    with contextlib.suppress(aiohttp.ClientError):
        return await readyz(url) == status
    return False

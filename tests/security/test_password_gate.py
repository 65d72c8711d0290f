"""Meeting passwords at the room service: guessers are throttled per socket without
locking out the right password, a repeat join from a socket already in costs no hash, and
the hashing one socket or one edge can cause is bounded. The number of hashes is read from
room_service_password_checks_total, as an operator would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from room_service import password_gate
from room_service.app import RoomServiceApp
from room_service.domain import passwords
from tests.support.replicas import replicas_on_redis
from tests.support.room import room_stub
from tests.support.room_rpc import (
    LOCKED,
    LOCKED_PASSWORD,
    join_request,
    reason_of,
    room_service_app,
    rpc_refused,
)

pytestmark = pytest.mark.timeout(90)

ATTEMPTS = 3


def hashes(app: RoomServiceApp) -> dict[str, float]:
    """Password hashes computed so far, by result."""
    return {
        result: app.registry.get_sample_value("room_service_password_checks_total", {"result": result}) or 0.0
        for result in ("ok", "wrong")
    }


async def outcome(call: Any) -> str:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return reason_of(exc)
    return "ok"


async def test_a_guesser_is_throttled_and_the_host_still_gets_in() -> None:
    async with room_service_app("--password-attempts-per-minute", str(ATTEMPTS)) as (_app, stub):
        guesses = [
            await outcome(stub.Join(join_request("mallory", LOCKED, password=f"guess-{i}"), timeout=10))
            for i in range(ATTEMPTS + 2)
        ]
        assert guesses == ["INVALID_PASSWORD"] * ATTEMPTS + ["RATE_LIMITED"] * 2
        # The guesser cannot learn that it found the password...
        right = join_request("mallory", LOCKED, password=LOCKED_PASSWORD)
        await rpc_refused(stub.Join(right, timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        # ...but the meeting is not locked: the host, on its own socket, walks in.
        host = await stub.Join(join_request("user-1-id", LOCKED, password=LOCKED_PASSWORD), timeout=10)
        assert host.participant.permissions.is_host


async def test_a_repeat_join_from_a_socket_already_in_costs_no_hash() -> None:
    async with room_service_app() as (app, stub):
        request = join_request("ada", LOCKED, password=LOCKED_PASSWORD)
        first = await stub.Join(request, timeout=10)
        for _ in range(10):
            again = await stub.Join(request, timeout=10)
            assert again.already_joined and again.participant == first.participant
        assert hashes(app) == {"ok": 1.0, "wrong": 0.0}


async def test_concurrent_guesses_from_one_socket_hash_at_most_the_limit() -> None:
    async with room_service_app("--password-attempts-per-minute", str(ATTEMPTS)) as (app, stub):
        calls = [
            stub.Join(join_request("mallory", LOCKED, password=f"guess-{i}"), timeout=30) for i in range(20)
        ]
        results = await asyncio.gather(*(outcome(c) for c in calls))
        assert sorted(set(results)) == ["INVALID_PASSWORD", "RATE_LIMITED"]
        assert results.count("INVALID_PASSWORD") == ATTEMPTS
        assert hashes(app) == {"ok": 0.0, "wrong": float(ATTEMPTS)}


async def test_one_edge_runs_at_most_its_share_of_hashes_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spy around the real scrypt check: counts how many run at once per edge.
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()
    real: Callable[[str, str], bool] = passwords.verify_password  # what password_gate calls

    def spied(password: str, stored: str) -> bool:
        edge, _, password = password.partition("/")
        with lock:
            running[edge] = running.get(edge, 0) + 1
            peak[edge] = max(peak.get(edge, 0), running[edge])
        try:
            return real(password, stored)
        finally:
            with lock:
                running[edge] -= 1

    monkeypatch.setattr(password_gate, "verify_password", spied)
    async with room_service_app("--password-checks-per-edge", "2") as (app, stub):
        flood = [
            stub.Join(
                join_request(f"u{i}", LOCKED, edge_id="edge-flood", password=f"edge-flood/{i}"), timeout=60
            )
            for i in range(12)
        ]
        other = stub.Join(
            join_request("calm", LOCKED, edge_id="edge-calm", password="edge-calm/" + LOCKED_PASSWORD),
            timeout=60,
        )
        results = await asyncio.gather(*(outcome(c) for c in [*flood, other]))
        assert results == ["INVALID_PASSWORD"] * 12 + ["ok"]  # each socket guessed once: none throttled
        assert peak["edge-flood"] <= 2
        assert app.manager.password_edges_tracked == 0  # nothing kept per edge once idle


async def test_the_guess_limit_holds_across_replicas_sharing_one_redis() -> None:
    # Joins are balanced over replicas: the count is in the store, not in one replica.
    async with (
        replicas_on_redis(2, "--password-attempts-per-minute", str(ATTEMPTS)) as replicas,
        room_stub(replicas.addresses[0]) as first,
        room_stub(replicas.addresses[1]) as second,
    ):
        stubs = (first, second)
        guesses = [
            await outcome(
                stubs[i % 2].Join(join_request("mallory", LOCKED, password=f"guess-{i}"), timeout=10)
            )
            for i in range(ATTEMPTS + 2)
        ]
        assert guesses == ["INVALID_PASSWORD"] * ATTEMPTS + ["RATE_LIMITED"] * 2
        # The host, on its own socket, still walks in through either replica.
        host = await second.Join(join_request("user-1-id", LOCKED, password=LOCKED_PASSWORD), timeout=10)
        assert host.participant.permissions.is_host

"""A memory room's seats answer "who sits at this socket" and "this user's seats" exactly as
a scan of the room in join order would, through every change a room's dict takes."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

import pytest

from room_service.domain import rules
from room_service.domain.models import MediaState, Participant
from room_service.store.memory_state import Seats


def _seat(pid: str, user: str, socket: str, edge: str = "edge-a") -> Participant:
    return Participant(
        participant_id=pid,
        user_id=user,
        user_name=user.title(),
        media=MediaState(),
        permissions=rules.NO_PERMISSIONS,
        joined_at=datetime(2026, 1, 1, tzinfo=UTC),
        edge_id=edge,
        socket_id=socket,
    )


def _agrees(seats: Seats) -> None:
    everyone = list(seats.values())
    for p in everyone:
        first = next(q for q in everyone if (q.edge_id, q.socket_id) == (p.edge_id, p.socket_id))
        assert seats.at_socket(p.edge_id, p.socket_id) is first
        assert seats.of_user(p.user_id) == [q for q in everyone if q.user_id == p.user_id]
    assert seats.at_socket("edge-a", "nobody") is None
    for p in everyone:  # the same socket id on an edge where nobody holds it
        if not any(q.socket_id == p.socket_id and q.edge_id == "edge-z" for q in everyone):
            assert seats.at_socket("edge-z", p.socket_id) is None
    assert seats.of_user("nobody") == []


def test_every_change_keeps_the_lookups_right() -> None:
    seats = Seats()
    seats["p1"], seats["p2"], seats["p3"] = (
        _seat("p1", "ann", "s1"),
        _seat("p2", "bob", "s2"),
        _seat("p3", "ann", "s3"),
    )
    _agrees(seats)
    seats["p2"] = dataclasses.replace(seats["p2"], edge_id="edge-b")  # a recovery moves it
    _agrees(seats)
    assert seats.at_socket("edge-a", "s2") is None
    del seats["p1"]
    assert seats.pop("p3").user_id == "ann"
    assert seats.pop("p9", None) is None
    with pytest.raises(KeyError):
        seats.pop("p9")
    _agrees(seats)
    assert seats.of_user("ann") == []
    seats.clear()
    assert seats.at_socket("edge-b", "s2") is None and seats.of_user("bob") == []


def test_shared_keys_are_answered_in_join_order() -> None:
    rng = random.Random(7)
    seats = Seats()
    for n in range(300):
        pid = f"p{rng.randrange(40)}"
        if rng.random() < 0.3 and pid in seats:
            del seats[pid]
        else:  # few users and sockets: many seats share them
            edge = f"edge-{rng.randrange(2)}"  # two edges may give the same socket id
            seats[pid] = _seat(pid, f"user-{rng.randrange(4)}", f"s{rng.randrange(5)}", edge)
        if n % 10 == 0:
            _agrees(seats)
    _agrees(seats)

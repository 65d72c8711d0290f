"""Store contract for the guards kept in the store: password attempts per socket and
meeting, and bans."""

from __future__ import annotations

from tests.support.stores import MEETING, StoreFactory
from tests.support.timing import wait_until


async def test_password_attempts_are_counted_per_socket_and_meeting_up_to_the_limit(
    new_store: StoreFactory,
) -> None:
    store = await new_store()
    taken = [await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) for _ in range(4)]
    assert taken == [True, True, True, False]
    # Another socket, or the same socket at another meeting, has its own count.
    assert await store.take_password_attempt(MEETING, "edge-a\x00s2", 3, 60.0) is True
    assert await store.take_password_attempt("other-meeting", "edge-a\x00s1", 3, 60.0) is True
    # A right password gives its attempt back.
    await store.return_password_attempt(MEETING, "edge-a\x00s1")
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) is True
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 3, 60.0) is False


async def test_password_attempts_are_forgotten_after_the_window(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2)
    assert not await store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2)
    await wait_until(
        lambda: store.take_password_attempt(MEETING, "edge-a\x00s1", 1, 0.2),
        within=10,
        what="the attempt window passed",
    )


async def test_a_ban_keeps_one_user_out_of_one_meeting_until_cleared(new_store: StoreFactory) -> None:
    store = await new_store()
    assert await store.is_banned(MEETING, "u1") is False
    await store.ban_user(MEETING, "u1")
    assert await store.is_banned(MEETING, "u1") is True
    assert await store.is_banned(MEETING, "u2") is False
    assert await store.is_banned("other-meeting", "u1") is False
    await store.clear_bans(MEETING)
    assert await store.is_banned(MEETING, "u1") is False


async def test_a_ban_is_seen_by_another_replica(new_store: StoreFactory) -> None:
    store = await new_store()
    other = await new_store.replica()
    await store.ban_user(MEETING, "u1")
    assert await other.is_banned(MEETING, "u1") is True

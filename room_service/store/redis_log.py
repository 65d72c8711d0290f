"""The Redis store's room log as this replica writes and waits on it: each change is one
Lua script (on one server, with the edge index, one round trip), whose entries this
replica's watchers get at once from the reply; and waiting for a room's next change.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from room_service.domain.events import RoomEvent
from room_service.domain.models import Position
from room_service.store import redis_scripts as lua
from room_service.store.redis_base import RedisPart, room_keys, run_script
from room_service.store.redis_codec import event_from
from room_service.store.redis_notify import RoomNotifier
from room_service.store.redis_rosters import RoomRosters
from room_service.store.redis_tails import RoomTails

# A wait for a room's next change returns after this long even without news; the
# watcher re-reads. It bounds the cost of a notification lost while Redis was away.
_WAIT_SECONDS = 10.0
# Changes after which the room is still open, so the head they return is the room's.
_KEEPS_ROOM_OPEN = frozenset({"join", "update_media", "append_chat", "end_meeting"})


@dataclass(frozen=True, slots=True)
class Command:
    """A plain Redis command sent along with a room change (see `_change_room_with`)."""

    op: str
    """The operation it is measured under when it goes alone."""
    words: tuple[Any, ...]
    """The command as sent: its name, then its arguments."""

    def send(self, target: Any) -> Any:
        """Queues it on a pipeline, or runs it on a client (then awaitable)."""
        return target.execute_command(*self.words)


@dataclass(frozen=True, slots=True)
class Along:
    """Commands sent with a room change: before the script, and after it."""

    before: Sequence[Command] = ()
    after: Sequence[Command] = ()


# Changes that may close the room: where their reply tells the participants left.
_REMAINING_AT = {"leave": 3, "expire_holds": 4, "drop_edge": 4}


class RedisLog(RedisPart):
    """Room changes and waits; the store's rooms build on it."""

    def _init_log(self, notifier: RoomNotifier) -> None:
        self._notifier = notifier
        self._tails = RoomTails(self._options.replay_buffer)
        self._rosters = RoomRosters()
        self._change: dict[str, tuple[AsyncScript, Callable[[str], list[str]]]] = {}
        self._add_changes(
            room_keys,
            {
                "leave": lua.LEAVE,
                "update_media": lua.UPDATE,
                "append_chat": lua.CHAT,
                "end_meeting": lua.END,
                "restore": lua.RESTORE,
                "rejoin": lua.REJOIN,
                "drop_ended_rooms": lua.DROP_ENDED,
            },
        )

    def _add_changes(self, keys: Callable[[str], list[str]], scripts: dict[str, str]) -> None:
        """Registers change scripts by the operation name each is measured under; `keys`
        gives a room's keys in the scripts' order (the room's state first). Every script
        that appends to a room's log must be run through `_change_room`."""
        for op, source in scripts.items():
            self._change[op] = (self._script(source), keys)

    async def _change_room(self, op: str, meeting_id: str, args: list[Any]) -> list[Any]:
        """Runs one change script on a room; its reply, the status decoded and its entries
        as RoomEvents, which this replica's watchers of the room get at once."""
        reply, _ = await self._change_room_with(op, meeting_id, args, Along())
        return reply

    async def _change_room_with(
        self, op: str, meeting_id: str, args: list[Any], along: Along
    ) -> tuple[list[Any], list[Any]]:
        """`_change_room`, with plain commands sent before and after the script (such as
        indexing the room under the edge, so that reaping the edge always finds it); on
        one server all in one round trip, in order (a Cluster may run a pipeline's
        commands on its nodes in any order, so there each is a round trip of its own).
        Also answers the replies of the commands `after`."""
        state = self._change[op][1](meeting_id)[0]
        mark = self._notifier.mark(state)
        self._notifier.writing(state)
        head: Position | None = None
        try:
            reply, later = await self._run_change(op, meeting_id, args, along)
            events: list[RoomEvent] = []
            if len(reply) > 2:
                events = reply[2] = [event_from(meeting_id, reply[1], entry) for entry in reply[2]]
                head = events[-1].position if events else None
                self._rosters.apply(meeting_id, events)
            remaining = _REMAINING_AT.get(op)
            if op in _KEEPS_ROOM_OPEN or (
                remaining is not None and reply[0] == "OK" and int(reply[remaining]) > 0
            ):
                self._tails.learned(meeting_id, events, head, mark)
            elif reply[0] == "OK":
                self._tails.forget(meeting_id)  # the room may have closed, its log with it
            return reply, later
        finally:
            self._notifier.wrote(state, head)

    async def _run_change(
        self, op: str, meeting_id: str, args: list[Any], along: Along
    ) -> tuple[list[Any], list[Any]]:
        script, keys_of = self._change[op]
        keys = keys_of(meeting_id)
        full = [self._now(), self._options.replay_buffer, *args]
        if self._line is not None:
            return await self._op(op, lambda: self._on_line(script, keys, full, along))
        if (along.before or along.after) and not isinstance(self._redis, RedisCluster):
            return await self._op(op, lambda: self._pipelined(script, keys, full, along))
        for command in along.before:
            await self._op(command.op, functools.partial(command.send, self._redis))
        reply: list[Any] = await self._op(op, lambda: run_script(script, keys, full))
        later = [await self._op(c.op, functools.partial(c.send, self._redis)) for c in along.after]
        return reply, later

    async def _on_line(
        self, script: AsyncScript, keys: list[str], args: list[Any], along: Along
    ) -> tuple[list[Any], list[Any]]:
        """The change and its commands in one write on the store's line (see `redis_line`):
        again once if the connection broke (as the client retries), and after loading the
        script if Redis lost it (it restarted empty)."""
        assert self._line is not None
        at = len(along.before)
        commands = [
            *(c.words for c in along.before),
            ("EVALSHA", script.sha, len(keys), *keys, *args),
            *(c.words for c in along.after),
        ]
        reconnected = loaded = False
        while True:
            try:
                replies = await self._line.call(commands)
            except RedisConnectionError:
                if reconnected:
                    raise
                reconnected = True
                continue
            if isinstance(replies[at], NoScriptError) and not loaded:
                loaded = True
                await self._line.call([("SCRIPT", "LOAD", script.script)])
                continue
            break
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies[at], replies[at + 1 :]

    async def _pipelined(
        self, script: AsyncScript, keys: list[str], args: list[Any], along: Along
    ) -> tuple[list[Any], list[Any]]:
        before, after = along.before, along.after
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for command in before:
                    command.send(pipe)
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                for command in after:
                    command.send(pipe)
                replies = await pipe.execute(raise_on_error=False)
            if not isinstance(replies[len(before)], NoScriptError) or attempt == 2:
                break
            await self._redis.script_load(script.script)  # Redis restarted empty
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies[len(before)], replies[len(before) + 1 :]

    def _events(self, reply: list[Any]) -> list[RoomEvent]:
        events: list[RoomEvent] = reply[2]
        return events

    async def wait_beyond(self, meeting_id: str, position: Position) -> None:
        state = room_keys(meeting_id)[0]

        async def moved() -> bool:
            epoch, head = await self._op("wait_beyond", lambda: self._redis.hmget(state, "epoch", "head"))
            if epoch is None:
                return position.epoch != ""  # closed: only a watcher of nothing waits for it to open
            return bool(epoch != position.epoch or int(head or 0) > position.sequence)

        mark = self._tails.mark_at(meeting_id, position)
        await self._notifier.wait(state, moved, _WAIT_SECONDS, position, mark)

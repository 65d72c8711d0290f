"""The operator CLI run as a subprocess against a real room service, with real sockets
(official JavaScript client) showing that its actions reach the meeting."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest

from tests.support.jsclient import JsClientPool
from tests.support.managed import REPO_ROOT
from tests.support.processes import QUICK_STOP, EdgeProcess, RoomServiceProcess, start_room_service
from tests.support.room import join

MEETING = "ops-sync"


async def cli(
    *args: str, address: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Runs `python -m room_service.cli` and returns (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ROOM_SERVICE_CLI_")}
    full_env.update(env or {})
    argv = [sys.executable, "-m", "room_service.cli", *(["--address", address] if address else []), *args]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(REPO_ROOT),
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_help_for_every_command() -> None:
    helps = [
        ([], ("rooms", "participants", "meeting", "kick", "mute", "ROOM_SERVICE_CLI_ADDRESS")),
        (["rooms"], ("open rooms",)),
        (["participants"], ("MEETING",)),
        (["meeting"], ("get", "create", "end")),
        (["meeting", "get"], ("MEETING",)),
        (["meeting", "create"], ("--name", "--creator", "--password", "--scheduled")),
        (["meeting", "end"], ("meeting-ended",)),
        (["kick"], ("MEETING", "PARTICIPANT")),
        (["mute"], ("--video", "PARTICIPANT")),
    ]
    results = await asyncio.gather(*(cli(*words, "--help") for words, _ in helps))
    for (words, expected), (code, out, _) in zip(helps, results, strict=True):
        assert code == 0, words
        for text in expected:
            assert text in out, (words, text, out)


async def test_operator_session(
    room_service: RoomServiceProcess, edge: EdgeProcess, js: JsClientPool
) -> None:
    address = room_service.grpc_address
    code, out, err = await cli(
        "meeting",
        "create",
        MEETING,
        "--name",
        "Ops sync",
        "--creator",
        "host-user",
        "--password",
        "pw-1",
        address=address,
    )
    assert code == 0, err
    assert "Ops sync" in out and "live" in out and "pw-1" not in out

    code, out, err = await cli("--json", "meeting", "get", MEETING, address=address)
    assert code == 0, err
    meeting = json.loads(out)["meeting"]
    assert meeting["status"] == "MEETING_STATUS_LIVE" and meeting["has_password"] is True
    assert meeting["creator_id"] == "host-user"

    host, guest, other = js.client("host"), js.client("guest"), js.client("other")
    await join(host, "host-user", MEETING, url=edge.url, meeting_password="pw-1")
    guest_pid = (await join(guest, "guest-user", MEETING, url=edge.url, meeting_password="pw-1"))[
        "participantId"
    ]
    other_pid = (await join(other, "other-user", MEETING, url=edge.url, meeting_password="pw-1"))[
        "participantId"
    ]

    # The address from the environment this time.
    code, out, err = await cli("rooms", env={"ROOM_SERVICE_CLI_ADDRESS": address})
    assert code == 0, err
    header, *rows = out.strip().splitlines()
    assert header.split() == ["MEETING", "NAME", "STATUS", "PARTICIPANTS", "SEQUENCE"]
    row = next(r for r in rows if r.startswith(MEETING))
    assert row.split()[-2] == "3"

    code, out, err = await cli("participants", MEETING, address=address)
    assert code == 0, err
    assert guest_pid in out and "Guest-User" in out
    code, out, err = await cli("participants", MEETING, "--json", address=address)
    listed = {p["participant_id"]: p for p in json.loads(out)["snapshot"]["participants"]}
    assert set(listed) >= {guest_pid, other_pid} and len(listed) == 3
    assert listed[guest_pid]["media"] == {"audio": True, "video": True, "screen": False}

    # Moderator mute: every socket, the muted one included, sees it.
    start = {c.name: c.mark() for c in (host, guest, other)}
    code, out, err = await cli("mute", MEETING, guest_pid, "--video", address=address)
    assert code == 0, err
    for client in (host, guest, other):
        update = await client.wait_for_event(
            "participant-updated", lambda d: d["participantId"] == guest_pid, start=start[client.name]
        )
        assert (update.data["audio"], update.data["video"], update.data["screen"]) == (False, False, False)

    code, out, err = await cli("kick", MEETING, other_pid, address=address)
    assert code == 0, err
    assert other_pid in out
    await other.wait_for_event("kicked", start=start["other"])
    left = await host.wait_for_event("participant-left", lambda d: d["participantId"] == other_pid)
    assert left.data["reason"] == "kicked"

    code, out, err = await cli("meeting", "end", MEETING, address=address)
    assert code == 0, err
    assert "ended" in out
    for client in (host, guest):
        await client.wait_for_event("meeting-ended", start=start[client.name])
    code, out, _ = await cli("rooms", address=address)
    assert MEETING not in out
    code, out, _ = await cli("meeting", "get", MEETING, address=address)
    assert "ended" in out


async def test_refusals_and_bad_usage(room_service: RoomServiceProcess) -> None:
    address = room_service.grpc_address
    code, _, err = await cli("meeting", "get", "no-such-meeting", address=address)
    assert code == 1 and "MEETING_NOT_FOUND" in err
    code, _, err = await cli("kick", "test-meeting-123", "participant-ghost", address=address)
    assert code == 1 and "NOT_IN_MEETING" in err
    code, _, err = await cli("meeting", "create", "x" * 200, address=address)
    assert code == 1 and "INVALID_PAYLOAD" in err
    code, _, err = await cli("--timeout", "3", "rooms", address="127.0.0.1:1")
    assert code == 1 and ("UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err)
    code, _, err = await cli("frobnicate", address=address)
    assert code == 2 and "invalid choice" in err
    code, _, _ = await cli("kick", "only-a-meeting", address=address)
    assert code == 2


@pytest.fixture
async def guarded_service() -> Any:
    """A room service that requires an internal bearer token."""
    proc = await start_room_service(
        *QUICK_STOP, env={"ROOM_SERVICE_INTERNAL_TOKEN": "ops-token-123"}, name="rs-token"
    )
    try:
        yield proc
    finally:
        await proc.terminate()


async def test_token_from_the_environment(guarded_service: RoomServiceProcess) -> None:
    address = guarded_service.grpc_address
    code, _, err = await cli("rooms", address=address)
    assert code == 1 and "UNAUTHENTICATED" in err
    assert "ops-token-123" not in err
    code, out, err = await cli(
        "meeting", "get", "test-meeting-123", address=address, env={"ROOM_SERVICE_CLI_TOKEN": "ops-token-123"}
    )
    assert code == 0, err
    assert "Test Meeting" in out

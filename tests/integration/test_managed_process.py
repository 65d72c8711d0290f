"""The managed-process base every process a test starts relies on (tests.support.managed),
against a fake ``python -c`` service: ready line, log waits, freeze and thaw, terminate
and kill, failures that carry the output."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.managed import ManagedProcess
from tests.support.process_log import ProcessError, msg_is
from tests.support.timing import wait_until

pytestmark = pytest.mark.timeout(60)

FAKE_SERVICE = textwrap.dedent(
    """
    import json, signal, sys, time
    def log(msg, **kw):
        sys.stderr.write(json.dumps({"level": "info", "msg": msg, **kw}) + "\\n")
        sys.stderr.flush()
    def on_term(signum, frame):
        log("shutting down", signal="SIGTERM")
        sys.exit(0)
    if "--ignore-term" in sys.argv:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    print("plain text on stdout", flush=True)
    if "--die" in sys.argv:
        log("fatal", error="boom")
        sys.exit(3)
    log("room service ready", grpc_address="127.0.0.1:1234", metrics_address="127.0.0.1:5678")
    n = 0
    while True:
        n += 1
        log("tick", n=n)
        time.sleep(0.05)
    """
)


def _state(proc: ManagedProcess) -> str:
    """The process state letter from /proc (T: stopped)."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def fake(*args: str, ready: str | None = "room service ready") -> ManagedProcess:
    return ManagedProcess(
        "fake", [sys.executable, "-c", FAKE_SERVICE, *args], ready_msg=ready, ready_timeout=10
    )


async def test_managed_process_lifecycle() -> None:
    proc = fake()
    async with proc:
        assert proc.ready is not None and proc.ready["grpc_address"] == "127.0.0.1:1234"
        assert proc.running and proc.returncode is None
        tick = await proc.wait_for_log(lambda r: r.get("msg") == "tick" and r["n"] >= 3)
        assert tick.record["n"] >= 3
        assert any(line.stream == "stdout" and line.record.get("unparsed") for line in proc.lines)

        proc.freeze()  # SIGSTOP: no more ticks
        seen = -1

        def frozen_and_drained() -> bool:
            # Stopped (state T), and the lines it wrote before are all read: none came in
            # since the last look.
            nonlocal seen
            drained, seen = len(proc.lines) == seen, len(proc.lines)
            return _state(proc) == "T" and drained

        await wait_until(frozen_and_drained, within=5, interval=0.1, what="stopped with its output read")
        frozen = proc.mark()
        with pytest.raises(ProcessError, match="no matching log line"):
            await proc.wait_for_log(msg_is("tick"), start=frozen, timeout=0.5)
        proc.thaw()
        await proc.wait_for_log(msg_is("tick"), start=frozen, timeout=5)
    assert proc.returncode == 0
    assert proc.logs_matching(msg_is("shutting down", signal="SIGTERM"))


async def test_managed_process_terminate_while_stopped_and_kill_after_grace() -> None:
    stopped = fake()
    await stopped.start()
    stopped.freeze()
    assert await stopped.terminate(grace=5) == 0  # SIGCONT is sent after SIGTERM

    stubborn = fake("--ignore-term")
    await stubborn.start()
    assert await stubborn.terminate(grace=0.5) == -9

    victim = fake()
    await victim.start()
    assert await victim.kill() == -9


async def test_managed_process_failures_carry_the_output() -> None:
    with pytest.raises(ProcessError, match=r"(?s)exited \(returncode 3\).*boom"):
        await fake("--die").start()
    slow = fake(ready="never printed")
    slow.ready_timeout = 0.5
    with pytest.raises(ProcessError, match=r"(?s)did not become ready.*tick"):
        await slow.start()
    assert slow.returncode is not None


def test_fake_service_is_json() -> None:
    # The fake's ready line looks like the real one.
    line = json.dumps({"msg": "room service ready", "grpc_address": "127.0.0.1:1"})
    assert msg_is("room service ready")(json.loads(line))

"""`make bench`: this project against a one-process Node socket.io@4 reference, side by side.

For every run and scenario a fresh reference (`node bench/reference.js`) and a fresh
stack (`python -m tools.run_local`, as `make run` starts it) are started, one after the
other, and driven by the same load generator on the official client (`bench/loadgen.js`).
Prints each figure's median over the runs and its ratio to the reference. Timing only:
nothing here decides pass or fail.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from servers import reference, stack

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
MEETING = "test-meeting-123"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Scenario:
    """One row group of the table: a load generator scenario and the figures it yields."""

    name: str
    loadgen: str
    clients: int
    figures: tuple[tuple[str, str], ...]  # (key in the generator's result, label)


JOIN_FIGURES = (("p50_ms", "join at 50/s: p50 ms"), ("p99_ms", "join at 50/s: p99 ms"))
IDLE_FIGURES = (("kb_per_socket", "idle 1000 joined: KB/socket"), ("cpu_pct", "idle 1000: CPU %"))
SCENARIOS = (
    Scenario("fanout", "fanout", 100, (("deliveries_per_s", "fan-out 100x10 deliveries/s"),)),
    Scenario("storm300", "storm", 300, (("converged_ms", "storm 300: converged ms"),)),
    Scenario("join200", "join", 200, JOIN_FIGURES),
    Scenario("storm1000", "storm", 1000, (("converged_ms", "storm 1000: converged ms"),)),
    Scenario("idle1000", "idle", 1000, IDLE_FIGURES),
)


def rss_bytes(pids: list[int]) -> int:
    return sum(int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE for p in pids)


def tier(pid: int) -> str:
    """Which tier a process of our stack is ("edge", "room"; "server" for the reference)."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    return "edge" if b"edge_gateway" in command else "room" if b"room_service" in command else "server"


def idle_memory(pids: list[int], before: dict[int, int], clients: int, seconds: float) -> dict[str, float]:
    """KB per socket over the idle window: each process's RSS sampled every 0.5 s, the median
    sample's growth since before the joins, per tier and in total (a one-off peak or trim in
    the window moves no figure)."""
    samples: dict[int, list[int]] = {p: [] for p in pids}
    deadline = time.monotonic() + seconds
    while True:
        for p in pids:
            samples[p].append(rss_bytes([p]))
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    grown = {p: statistics.median(samples[p]) - before[p] for p in pids}
    figures = {"kb_per_socket": sum(grown.values()) / clients / 1024}
    for p in pids:
        key = f"kb_{tier(p)}"
        figures[key] = figures.get(key, 0.0) + grown[p] / clients / 1024
    return figures


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def drive(url: str, pids: list[int], scenario: Scenario, settle: float) -> dict[str, float]:
    """Runs one scenario against one server; for `idle`, measures memory and CPU too."""
    cmd = ["node", str(BENCH / "loadgen.js"), url, scenario.loadgen, str(scenario.clients), MEETING]
    if scenario.loadgen != "idle":
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if "error" in result:
            print(f"{scenario.name} against {url} failed: {result['error']}", file=sys.stderr)
            return {}
        return {k: float(v) for k, v in result.items() if isinstance(v, int | float)}
    time.sleep(1.0)
    before = {p: rss_bytes([p]) for p in pids}
    gen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert gen.stdout is not None
        line = gen.stdout.readline()
        if "joined" not in line:
            print(f"idle against {url} failed: {line.strip()}", file=sys.stderr)
            return {}
        time.sleep(settle)  # the servers return to idle
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        memory = idle_memory(pids, before, scenario.clients, 5.0)
        cpu = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0) * 100
    finally:
        assert gen.stdin is not None
        gen.stdin.close()
        gen.wait(timeout=60)
    return {**memory, "cpu_pct": cpu}


def _median(values: list[float]) -> float:
    """Median of the runs that produced a figure (nan when none did)."""
    done = [v for v in values if not math.isnan(v)]
    return statistics.median(done) if done else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ""), help="comma-separated scenarios")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before measuring")
    parser.add_argument(
        "--stack-root", type=Path, default=ROOT, help="checkout to run the stack from (before/after figures)"
    )
    parser.add_argument(
        "--store",
        choices=("memory", "redis", "both"),
        default=os.environ.get("BENCH_STORE", "memory"),
        help="the room service's store for our stack (redis: a redis-server of its own on a free port)",
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="directory to keep our stack's logs and both tiers' final /metrics in, one set per "
        "run and scenario (default: discarded)",
    )
    args = parser.parse_args()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    stores = ("memory", "redis") if args.store == "both" else (args.store,)
    sides = ("node", *(f"ours-{store}" for store in stores))
    results: dict[tuple[str, str], list[float]] = {}
    for run in range(args.runs):
        for scenario in chosen:
            for side in sides:
                store = side.removeprefix("ours-")
                logs = args.logs / f"run{run + 1}-{scenario.name}-{side}" if args.logs else None
                server = (
                    reference() if side == "node" else stack(scenario.clients, args.stack_root, store, logs)
                )
                with server as (url, pids):
                    figures = drive(url, pids, scenario, args.settle)
                print(f"run {run + 1} {scenario.name} {side}: {json.dumps(figures)}", file=sys.stderr)
                for key in {key for key, _ in scenario.figures} | figures.keys():
                    # A failed run (a client dropped, a deadline passed) counts as no figure.
                    results.setdefault((side, f"{scenario.name}.{key}"), []).append(
                        figures.get(key, float("nan"))
                    )
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()}; medians of {args.runs} alternating runs\n"
    )
    heads = "".join(f" this project ({store}) | ratio |" for store in stores)
    print(f"| scenario | Node, one process |{heads}")
    print("| --- | --- |" + " --- | --- |" * len(stores))
    for scenario in chosen:
        for key, label in scenario.figures:
            node = _median(results[("node", f"{scenario.name}.{key}")])
            row = f"| {label} | {node:,.1f} |"
            for store in stores:
                ours = _median(results[(f"ours-{store}", f"{scenario.name}.{key}")])
                ratio = ours / node if node else float("nan")
                row += f" {ours:,.1f} | {ratio:.2f}× |"
            print(row)
    for side in sides:
        tiers = [
            f"{key.rpartition('.kb_')[2]} {_median(values):,.1f}"
            for (who, key), values in sorted(results.items())
            if who == side and ".kb_" in key and not key.endswith(".kb_per_socket")
        ]
        if tiers:
            print(f"\n{side}, idle KB/socket per process: " + ", ".join(tiers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

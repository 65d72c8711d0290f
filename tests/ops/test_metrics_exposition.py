"""The /metrics pages of a running system, after real traffic: `promtool check metrics`
accepts them, names follow Prometheus conventions, and no label carries an identifier."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import grpc

from meeting.v1 import room_service_pb2 as pb
from meeting.v1 import room_service_pb2_grpc as pb_grpc
from tests.support.jsclient import JsClientPool
from tests.support.processes import EdgeProcess, RoomServiceProcess
from tests.support.prometheus import (
    Exposition,
    http_get_text,
    parse_exposition,
    promtool_check_metrics,
    require_tool,
)
from tests.support.room import MEETING
from tests.support.traffic import TrafficIds, drive_traffic

# Units other than the base ones (seconds, bytes, ratios) as a name component.
_NON_BASE_UNITS = re.compile(
    r"_(milli|micro|nano)?(seconds?|secs?|ms|us|ns|minutes?|hours?|days?|"
    r"kilobytes|megabytes|gigabytes|kb|mb|gb|bits|percent)(_|$)"
)
_BASE_UNIT_OK = re.compile(r"_seconds(_|$)|_bytes(_|$)")
# Anything measuring time must say so in seconds.
_TIME_WORDS = re.compile(r"duration|latency|lag|handling|elapsed|time")
_ID_LABEL_NAMES = re.compile(r"(^|_)(id|ids|sid|uuid|meeting|user|participant|socket|session)(_|$)", re.I)


async def _scrape(url: str) -> tuple[str, Exposition]:
    text = await http_get_text(url)
    return text, parse_exposition(text)


def _check_names(source: str, exposition: Exposition) -> list[str]:
    problems = []
    for name, kind in exposition.types.items():
        if kind == "counter" and not name.endswith("_total"):
            problems.append(f"{source}: counter {name} does not end in _total")
        if kind != "counter" and name.endswith("_total"):
            problems.append(f"{source}: {kind} {name} ends in _total")
        if _NON_BASE_UNITS.search(name) and not _BASE_UNIT_OK.search(name):
            problems.append(f"{source}: {name} is not in a base unit")
        if kind == "histogram" and _TIME_WORDS.search(name) and not name.endswith("_seconds"):
            problems.append(f"{source}: time histogram {name} is not in seconds")
    return problems


def _check_labels(source: str, exposition: Exposition, ids: set[str]) -> list[str]:
    problems = []
    for metric, label, value in sorted(exposition.label_values()):
        if _ID_LABEL_NAMES.search(label):
            problems.append(f"{source}: {metric} has an identifier-like label {label}={value!r}")
        leaked = [known for known in ids if known in value]
        if leaked:
            problems.append(f"{source}: {metric}{{{label}={value!r}}} carries the id(s) {leaked}")
    return problems


async def _open_watch(stub: pb_grpc.RoomServiceAsyncStub) -> tuple[Any, asyncio.Task[None]]:
    """Opens WatchRoom on the demo room and keeps reading it in the background."""
    call: Any = stub.WatchRoom(pb.WatchRoomRequest(meeting_id=MEETING))
    first = await asyncio.wait_for(call.read(), timeout=10)
    assert first is not grpc.aio.EOF, "WatchRoom ended at once"  # type: ignore[attr-defined]

    async def drain() -> None:
        # read() rather than iteration: one call may not mix the two styles.
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            while await call.read() is not grpc.aio.EOF:  # type: ignore[attr-defined]
                pass

    return call, asyncio.create_task(drain())


async def test_expositions_after_traffic_pass_promtool_and_the_naming_rules(
    room_service: RoomServiceProcess,
    edge: EdgeProcess,
    edge2: EdgeProcess,
    js: JsClientPool,
    stub: pb_grpc.RoomServiceAsyncStub,
) -> None:
    promtool = require_tool("promtool")
    ids = TrafficIds()
    await drive_traffic(js, [edge, edge2], "expo", ids)
    call, reader = await _open_watch(stub)
    try:
        pages = dict(
            zip(
                ("room service", "edge a", "edge b"),
                await asyncio.gather(
                    _scrape(room_service.metrics_url),
                    _scrape(f"{edge.url}/metrics"),
                    _scrape(f"{edge2.url}/metrics"),
                ),
                strict=True,
            )
        )
    finally:
        call.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader

    # The pages describe the traffic that just happened (so the checks below saw it).
    _, rs = pages["room service"]
    assert (rs.value("room_service_joins_total", result="ok") or 0) >= 3
    assert (rs.value("room_service_joins_total", result="INVALID_PASSWORD") or 0) >= 1
    assert (rs.value("room_service_joins_total", result="MEETING_NOT_FOUND") or 0) >= 1
    assert (rs.value("room_service_leaves_total", reason="left") or 0) >= 1
    assert (rs.value("room_service_leaves_total", reason="disconnected") or 0) >= 1
    assert (rs.value("room_service_signals_routed_total") or 0) >= 1
    # The edge still holding alice streams the room, and so does our own WatchRoom.
    assert (rs.value("room_service_watch_streams_open") or 0) >= 2
    watch = {"grpc_method": "WatchRoom", "grpc_type": "server_stream"}
    assert (rs.value("grpc_server_started_total", **watch) or 0) >= 2
    _, edge_a = pages["edge a"]
    _, edge_b = pages["edge b"]
    assert (edge_a.value("edge_gateway_events_received_total", event="chat-message") or 0) + (
        edge_b.value("edge_gateway_events_received_total", event="chat-message") or 0
    ) >= 1
    assert (edge_b.value("edge_gateway_errors_total", code="INVALID_PASSWORD") or 0) >= 1
    assert (edge_b.value("edge_gateway_errors_total", code="INVALID_PAYLOAD") or 0) >= 1
    assert (edge_a.value("edge_gateway_join_duration_seconds_count") or 0) >= 2
    assert (edge_a.value("edge_gateway_room_streams_open") or 0) >= 1

    problems: list[str] = []
    for source, (text, exposition) in pages.items():
        code, output = await promtool_check_metrics(promtool, text)
        if code != 0 or output.strip():
            problems.append(f"{source}: promtool check metrics exited {code}:\n{output}")
        problems += _check_names(source, exposition)
        problems += _check_labels(source, exposition, ids.values)
    assert ids.values >= {MEETING, "ops-alice-expo"} and len(ids.values) >= 10, ids.values
    assert not problems, "\n".join(problems)


def test_the_checks_catch_bad_names_and_leaked_ids() -> None:
    """The rules above can fail: a bad page is reported on every count."""
    bad = parse_exposition(
        '# HELP joins Joins.\n# TYPE joins counter\njoins{user_id="u-42"} 1\n'
        "# HELP join_latency_ms Join latency.\n# TYPE join_latency_ms histogram\n"
        'join_latency_ms_bucket{le="+Inf",room="m-7"} 1\njoin_latency_ms_sum 1\njoin_latency_ms_count 1\n'
    )
    assert len(_check_names("bad", bad)) == 3
    problems = _check_labels("bad", bad, {"u-42", "m-7"})
    assert any("user_id" in problem for problem in problems)
    assert any("m-7" in problem for problem in problems)

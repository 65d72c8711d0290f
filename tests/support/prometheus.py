"""Operator-side test helpers: the Prometheus tools, a real Prometheus server subprocess,
and the exposition format (the dashboard and the alert rules the chart ships are read by
`tests.support.dashboard`; the traffic that makes every exported metric move is in
`tests.support.traffic`).

Usage::

    promtool = require_tool("promtool")          # fails (never skips) when missing
    async with PrometheusServer(tmp_path, jobs={"room-service": [addr]}) as prom:
        await prom.wait_until("up", lambda result: len(result) == 1)
        result = await prom.query('sum(rate(room_service_joins_total[1m]))')

The server is ``/usr/bin/prometheus`` (Debian's ``prometheus`` package, installed by
``make install``/``make test``) on a free loopback port with its TSDB in a temporary
directory; it is stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.managed import Managed, ManagedProcess


def require_tool(name: str) -> str:
    """Path of a Prometheus tool; the test FAILS when it is absent (`make install` installs
    Debian's `prometheus` package), so a missing tool never passes as a skipped test."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make install` (it installs Debian's `prometheus` "
            f"package, which provides /usr/bin/prometheus and /usr/bin/promtool)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def http_get_text(url: str, *, within: float = 10.0) -> str:
    """GET `url` and return its body; raises on a non-2xx status."""
    timeout = aiohttp.ClientTimeout(total=within)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        return await response.text()


# -- the exposition format ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One sample line of a text exposition."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Exposition:
    """A parsed Prometheus text exposition (format 0.0.4)."""

    types: dict[str, str] = field(default_factory=dict)  # name in `# TYPE name kind` -> kind
    samples: list[Sample] = field(default_factory=list)

    def label_values(self) -> set[tuple[str, str, str]]:
        """Every (metric, label name, label value) triple."""
        return {(s.name, key, value) for s in self.samples for key, value in s.labels.items()}

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the sample `name` whose labels include `labels`, or None."""
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None


_TYPE_LINE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$")


def parse_exposition(text: str) -> Exposition:
    """Parses `text`; `# TYPE` names are kept as written (prometheus_client's parser strips
    `_total` from counter family names, which would hide a counter without it)."""
    parsed = Exposition()
    for line in text.splitlines():
        match = _TYPE_LINE.match(line)
        if match:
            parsed.types[match.group(1)] = match.group(2)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed.samples.append(Sample(sample.name, dict(sample.labels), float(sample.value)))
    return parsed


async def promtool_check_metrics(promtool: str, exposition: str) -> tuple[int, str]:
    """`promtool check metrics` on `exposition` (stdin); returns (exit code, all output)."""
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            output, _ = await proc.communicate(exposition.encode())
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, output.decode(errors="replace")


# -- a real Prometheus server ------------------------------------------------------------


class PrometheusError(RuntimeError):
    """Prometheus failed to start, or a query failed at the HTTP level."""


QueryCheck = Callable[[list[dict[str, Any]]], bool]


class PrometheusServer(Managed):
    """`prometheus` as a subprocess scraping static targets every `scrape_interval`."""

    def __init__(
        self,
        workdir: Path,
        jobs: Mapping[str, Sequence[str]],
        *,
        target_labels: Mapping[str, str] | None = None,
        rule_files: Sequence[Path] = (),
        scrape_interval: str = "1s",
        binary: str = "prometheus",
    ) -> None:
        self.workdir = workdir
        self.jobs = jobs
        self.target_labels = dict(target_labels or {})
        self.rule_files = list(rule_files)
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.port = 0
        self.process: ManagedProcess | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        """The generated prometheus.yml."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": list(targets), "labels": self.target_labels}],
                }
                for job, targets in self.jobs.items()
            ],
        }

    async def start(self, *, attempts: int = 3, ready_within: float = 20.0) -> None:
        """Starts on a free port (another one if that port was taken meanwhile) and waits
        for `/-/ready`."""
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        last_error = ""
        for attempt in range(attempts):
            self.port = free_port()
            process = ManagedProcess(
                f"prometheus-{attempt}",
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / f'data-{attempt}'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
            )
            await process.start()
            self.process = process
            try:
                await self._wait_ready(ready_within)
                return
            except PrometheusError as exc:
                last_error = f"{exc}\n{process.dump(40)}"
                await process.terminate()
        await self.stop()
        raise PrometheusError(f"prometheus did not start after {attempts} attempts:\n{last_error}")

    async def _wait_ready(self, within: float) -> None:
        assert self._session is not None and self.process is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.process.running:
                raise PrometheusError(f"prometheus exited with {self.process.returncode}")
            try:
                async with self._session.get(f"{self.url}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise PrometheusError(f"prometheus not ready within {within}s")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; closes the HTTP session."""
        if self.process is not None:
            await self.process.terminate(grace=5.0)
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def started(self) -> bool:
        return self.process is not None

    async def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET `/api/v1/<path>`; returns the whole JSON answer (`status`, `data`, `error`)."""
        if self._session is None:
            raise PrometheusError("prometheus is not running")
        async with self._session.get(f"{self.url}/api/v1/{path}", params=params) as response:
            try:
                body: dict[str, Any] = await response.json()
            except (aiohttp.ContentTypeError, ValueError) as exc:
                raise PrometheusError(f"{path}: HTTP {response.status}, not JSON") from exc
            return body

    async def query(self, expr: str) -> dict[str, Any]:
        """An instant query at now (`/api/v1/query`); the whole JSON answer."""
        return await self.api("query", query=expr)

    async def wait_until(
        self,
        expr: str,
        check: QueryCheck,
        *,
        within: float = 20.0,
        interval: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Polls `expr` until `check(result vector)` holds; returns that result. Raises
        AssertionError with the last answer after `within` seconds."""
        deadline = time.monotonic() + within
        answer: dict[str, Any] = {}
        while True:
            answer = await self.query(expr)
            if answer.get("status") == "success":
                result: list[dict[str, Any]] = answer["data"]["result"]
                if check(result):
                    return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{expr!r}: condition not met within {within}s; last answer {answer}")
            await asyncio.sleep(interval)

    async def wait_until_rules_evaluated(self, *, within: float = 20.0) -> list[dict[str, Any]]:
        """Polls `/api/v1/rules` until the rule engine has evaluated every loaded rule at
        least once; returns the rules (with `health`, `lastError`, `state`)."""
        deadline = time.monotonic() + within
        while True:
            answer = await self.api("rules")
            rules: list[dict[str, Any]] = [
                rule for group in answer.get("data", {}).get("groups", []) for rule in group["rules"]
            ]
            # A rule not evaluated yet reports Go's zero time.
            if rules and all(not rule.get("lastEvaluation", "").startswith("0001-") for rule in rules):
                return rules
            if time.monotonic() >= deadline:
                raise AssertionError(f"rules not all evaluated within {within}s: {answer}")
            await asyncio.sleep(0.25)

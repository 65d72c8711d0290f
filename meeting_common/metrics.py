"""Declaring a tier's Prometheus metrics in one registry, each known series present from the start."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Registrar:
    """Declares gauges, counters and histograms in `registry`.

    With a `label`, one series per value in `values` exists at zero from the start: a
    counter series born at its first increment hides that increment from rate() and
    increase(), so the first joins, events or errors after a start would reach neither
    dashboard nor alerts. Label values must stay bounded: no ids ever. `values` may be a
    StrEnum itself: its members are their values.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def gauge(self, name: str, documentation: str) -> Gauge:
        """A gauge without labels."""
        return Gauge(name, documentation, registry=self.registry)

    def counter(
        self, name: str, documentation: str, label: str | None = None, values: Iterable[str] = ()
    ) -> Counter:
        """A counter, labelled by `label` if given, with a zero series per value."""
        counter = Counter(name, documentation, _names(label), registry=self.registry)
        _zero_series(counter, label, values)
        return counter

    def histogram(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        label: str | None = None,
        values: Iterable[str] = (),
    ) -> Histogram:
        """A histogram over `buckets`, labelled by `label` if given, with a series per value."""
        histogram = Histogram(name, documentation, _names(label), buckets=buckets, registry=self.registry)
        _zero_series(histogram, label, values)
        return histogram


def _names(label: str | None) -> tuple[str, ...]:
    return (label,) if label is not None else ()


def _zero_series(metric: Counter | Histogram, label: str | None, values: Iterable[str]) -> None:
    if label is not None:
        for value in values:
            metric.labels(**{label: str(value)})

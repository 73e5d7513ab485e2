"""The `/metrics` text: this process's instruments, or with `serve --workers N` those of every
worker (prometheus-client's multi-process mode), plus the outbox gauges read at scrape time.

Multi-process mode is prometheus-client's own choice, made when it is first imported: on when
`PROMETHEUS_MULTIPROC_DIR` names a directory (`pushgate serve` sets a fresh one for several
workers, cli/serving.py). Each worker then writes its counters to files there and any worker
answering a scrape adds up all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, values
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from pushgate.metrics.instruments import Metrics

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The value class prometheus-client picked at import: files in the directory, or in memory.
MULTIPROCESS = values.ValueClass is not values.MutexValue


@dataclass(frozen=True, slots=True)
class OutboxGauge:
    """The outbox as one query saw it: pending rows, and how long the most overdue of them
    has been due (0 when every pending row waits for a later retry)."""

    depth: int
    oldest_seconds: float


class _Scrape(Collector):
    def __init__(self, sources: Iterable[Collector], outbox: OutboxGauge | None) -> None:
        self._sources = sources
        self._outbox = outbox

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()
        if self._outbox is None:
            return  # the database did not answer: no figure rather than a wrong one
        yield GaugeMetricFamily(
            "pushgate_outbox_depth",
            "Outbox rows waiting to be delivered (pushes, webhooks), every process's.",
            value=self._outbox.depth,
        )
        yield GaugeMetricFamily(
            "pushgate_outbox_oldest_seconds",
            "Seconds the most overdue pending outbox row has been due.",
            value=self._outbox.oldest_seconds,
        )


class Exposition:
    """What one process answers at `/metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        sources: list[Collector]
        if MULTIPROCESS:
            # Every worker's files; this process's instruments write into them too.
            sources = [MultiProcessCollector(None)]  # type: ignore[no-untyped-call]
        else:
            sources = [metrics.registry, ProcessCollector(registry=None)]
        self._sources = tuple(sources)

    def render(self, outbox: OutboxGauge | None) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(self._sources, outbox))
        return generate_latest(registry)

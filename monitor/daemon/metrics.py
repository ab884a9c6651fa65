"""The daemon's Prometheus metrics (docs/contracts.md §10), on a registry of its own.

Counters are per process (they start at 0 with the daemon, as Prometheus expects) and
are counted by the daemon as things happen, after the transaction that did them
committed: a rolled-back logs pass is read again, not counted twice. Gauges are read
from the store at scrape time (``StoreCollector``): firing alerts, health scores, the
last success of each job and waiting notifications. With a PostgreSQL store (fleet
mode) every metric also carries ``instance``.

| metric | type | labels |
|---|---|---|
| ``capi_monitor_alerts_firing`` | gauge | ``dataset_id``, ``code``, ``severity`` |
| ``capi_monitor_dataset_health_score`` | gauge | ``dataset_id`` |
| ``capi_monitor_events_read_total`` | counter | ``dataset_id``, ``format`` |
| ``capi_monitor_malformed_lines_total`` | counter | |
| ``capi_monitor_job_runs_total`` | counter | ``job``, ``outcome`` |
| ``capi_monitor_job_last_success_timestamp_seconds`` | gauge | ``job`` |
| ``capi_monitor_notifications_pending`` | gauge | ``notifier`` |
| ``capi_monitor_notifications_sent_total`` | counter | ``notifier``, ``outcome`` |
| ``capi_monitor_graph_requests_total`` | counter | ``outcome`` |
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.store import Store
from monitor.store.deliveries import notifier_totals
from monitor.store.live import firing_counts, health_scores, last_successes

log = logging.getLogger(__name__)

# Only the series of the contract: no ``*_created`` companions of the counters (a
# process-wide switch of prometheus-client; the daemon is this process).
disable_created_metrics()

PREFIX = "capi_monitor_"


class DaemonMetrics:
    """The counters of one daemon process and the store's gauges, in one registry.

    ``instance``: the label every metric carries in fleet mode (``None``: no label)."""

    def __init__(self, store: Store, instance: str | None) -> None:
        self.instance = instance
        self.registry = CollectorRegistry(auto_describe=True)
        extra = ["instance"] if instance is not None else []

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(PREFIX + name, doc, [*labels, *extra], registry=self.registry)

        self._events = counter(
            "events_read", "Events read from delivery logs.", ["dataset_id", "format"]
        )
        self._malformed = counter("malformed_lines", "Malformed delivery-log lines.", [])
        if instance is not None:
            self._malformed.labels(instance)  # shown from the start, as the unlabelled one
        self._jobs = counter("job_runs", "Job runs, by outcome.", ["job", "outcome"])
        self._sent = counter(
            "notifications_sent", "Notification deliveries, by outcome.", ["notifier", "outcome"]
        )
        self._graph = counter("graph_requests", "Graph API requests, by outcome.", ["outcome"])
        self.registry.register(StoreCollector(store, instance))

    def _labels(self, *values: str) -> list[str]:
        return [*values, *([self.instance] if self.instance is not None else [])]

    def events_read(self, dataset_id: str, fmt: str, count: int) -> None:
        if count:
            self._events.labels(*self._labels(dataset_id, fmt)).inc(count)

    def malformed_lines(self, count: int) -> None:
        if count:
            if self.instance is None:
                self._malformed.inc(count)
            else:
                self._malformed.labels(self.instance).inc(count)

    def job_run(self, job: str, ok: bool) -> None:
        self._jobs.labels(*self._labels(job, "success" if ok else "failure")).inc()

    def notification(self, notifier: str, outcome: str) -> None:
        self._sent.labels(*self._labels(notifier, outcome)).inc()

    def graph_requests(self, outcome: str, count: int) -> None:
        if count:
            self._graph.labels(*self._labels(outcome)).inc(count)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class StoreCollector(Collector):
    """The gauges, read from the store at each scrape. A store that cannot be read gives
    no gauges (the scrape still answers: the counters, and ``up`` on Prometheus' side)."""

    def __init__(self, store: Store, instance: str | None) -> None:
        self._store = store
        self._instance = instance

    def describe(self) -> list[Metric]:
        return []  # read at collect time only: nothing to describe up front

    def collect(self) -> Iterator[Metric]:
        try:
            with self._store.engine.connect() as conn:
                firing = firing_counts(conn)
                scores = health_scores(conn)
                successes = last_successes(conn, self._instance)
                pending = {n: float(t[1] or 0) for n, t in notifier_totals(conn).items()}
        except Exception:
            log.warning("metrics: cannot read the store", exc_info=True)
            return
        yield self._gauge(
            "alerts_firing",
            "Firing alerts (silenced and inhibited ones included).",
            ["dataset_id", "code", "severity"],
            {k: float(v) for k, v in firing.items()},
        )
        yield self._gauge(
            "dataset_health_score",
            "Health score (0-100) of each dataset's newest evaluation.",
            ["dataset_id"],
            {(d,): float(s) for d, s in scores.items() if s is not None},
        )
        yield self._gauge(
            "job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix seconds).",
            ["job"],
            {(j,): t for j, t in successes.items()},
        )
        yield self._gauge(
            "notifications_pending",
            "Notification deliveries waiting to be sent.",
            ["notifier"],
            {(n,): c for n, c in pending.items()},
        )

    def _gauge(
        self, name: str, doc: str, labels: list[str], values: Mapping[tuple[str, ...], float]
    ) -> GaugeMetricFamily:
        extra = [self._instance] if self._instance is not None else []
        family = GaugeMetricFamily(
            PREFIX + name, doc, labels=[*labels, *(["instance"] if extra else [])]
        )
        for key, value in sorted(values.items()):
            family.add_metric([*key, *extra], value)
        return family

"""One logs cycle's batch: rollups of every delivery read, checks of the recent ones.

The daemon's ``logs`` job (``monitor.daemon.scheduler``) and the backtest
(``monitor.tools.backtest``) feed deliveries to a ``CycleBatch`` one by one. Each delivery
adds to its dataset's hourly rollups; the part of it sent within ``[alerts] window`` of
the cycle's time is also handed to its dataset's ``DatasetAudit`` (older lines are
history: rollups and baselines only). ``reports()`` then gives one report per
configured dataset (all checks ``skipped`` without recent deliveries).

The Purchases of the datasets that name an orders source are also kept, as compact
``Purchase`` records (``purchases``): the daemon stores them for its ``orders`` job
(``monitor.daemon.orders_jobs``), which reconciles them with the paid orders.

How a dataset's audit is made is the caller's: the default hands each audit its
dataset's stored series (``series``); the backtest passes ``audit=`` to build them from
its replayed index instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping

from checks.purchases import purchases_of
from monitor.config import Settings
from monitor.engine.audit import DatasetAudit
from monitor.engine.orders_inputs import kept_since, reconciled_datasets
from monitor.engine.rollup import RollupAccumulator
from monitor.model.observations import Delivery
from monitor.model.orders import Purchase
from monitor.model.results import DatasetReport
from monitor.model.rollup import HourRollup
from monitor.model.series import VolumeHistory

log = logging.getLogger(__name__)

# Builds the audit of one dataset for one cycle: dataset id -> its DatasetAudit.
AuditFactory = Callable[[str], DatasetAudit]


def log_format(delivery: Delivery) -> str | None:
    """The sender log format ``delivery`` was read from (docs/contracts.md §7), when the
    reader names it on the delivery."""
    named = getattr(delivery, "format", None)
    return named if isinstance(named, str) and named else None


def recent_part(delivery: Delivery, since: float) -> Delivery | None:
    """The part of ``delivery`` sent at or after ``since``: by its send time, else event
    by event by ``event_time`` (docs/contracts.md §6). ``None`` when nothing is that
    recent."""
    if delivery.sent_at is not None:
        return delivery if delivery.sent_at >= since else None
    kept = [i for i, t in enumerate(delivery.times) if t >= since]
    if not kept:
        return None
    if len(kept) == len(delivery.events):
        return delivery
    return delivery.subset(kept)  # the reader's object stays whole


class CycleBatch:
    """What one logs cycle accumulates: rollups of every delivery, checks of recent ones."""

    def __init__(
        self,
        settings: Settings,
        now: float,
        series: Mapping[str, VolumeHistory] | None = None,
        *,
        audit: AuditFactory | None = None,
    ) -> None:
        """``series``: each dataset's stored hourly series as they stood before this
        cycle (``monitor.model.series.Current.ADD``), for the ``volume`` check.
        ``audit``: builds a dataset's audit (default: a ``DatasetAudit`` at ``now`` with
        its entry of ``series``)."""
        self.settings = settings
        self.now = now
        self.series = dict(series or {})
        self.since = now - settings.alerts.window
        self.rollups: dict[str, RollupAccumulator] = {}
        self.audits: dict[str, DatasetAudit] = {}
        self.deliveries = 0
        self.recent = 0
        # Events read per (dataset, log format or None when unnamed), for the metrics.
        self.events_read: Counter[tuple[str, str | None]] = Counter()
        self.rollup_failures = 0
        self._make_audit = audit or self._default_audit
        # Purchases older than the daemon keeps them are of no use to the orders job.
        self.match_fields = {d: e.match_field for d, e in reconciled_datasets(settings).items()}
        self.purchases_since = kept_since(settings, now) if self.match_fields else now
        self.purchases: dict[str, list[Purchase]] = {}

    def observe(self, delivery: Delivery) -> None:
        self.deliveries += 1
        dataset = delivery.dataset_id
        self.events_read[(dataset, log_format(delivery))] += len(delivery.events)
        rollup = self.rollups.get(dataset)
        if rollup is None:
            rollup = self.rollups[dataset] = RollupAccumulator(dataset)
        try:  # a delivery the rollup or the Purchase records cannot fold must not fail the cycle
            rollup.observe(delivery)
            field = self.match_fields.get(dataset)
            if field is not None:
                self._keep_purchases(dataset, delivery, field)
        except Exception as err:
            self.rollup_failures += 1
            log.warning(
                "rollup failed",
                extra={"dataset": dataset, "error": type(err).__name__, "line": delivery.line},
            )
        recent = recent_part(delivery, self.since)
        if recent is not None:
            self.recent += 1
            self.audit(dataset).observe(recent)

    def _keep_purchases(self, dataset: str, delivery: Delivery, field: str) -> None:
        kept = [p for p in purchases_of(delivery, field) if p.event_time >= self.purchases_since]
        if kept:
            self.purchases.setdefault(dataset, []).extend(kept)

    def audit(self, dataset: str) -> DatasetAudit:
        """The audit of ``dataset`` in this cycle (made on first use)."""
        audit = self.audits.get(dataset)
        if audit is None:
            audit = self.audits[dataset] = self._make_audit(dataset)
        return audit

    def _default_audit(self, dataset: str) -> DatasetAudit:
        return DatasetAudit(dataset, self.settings, self.now, series=self.series.get(dataset))

    def all_rollups(self) -> list[HourRollup]:
        return [r for acc in self.rollups.values() for r in acc.result()]

    def reports(self) -> list[DatasetReport]:
        """One report per configured dataset (all checks ``skipped`` without recent
        deliveries), then the unconfigured datasets that had recent deliveries."""
        for ds in self.settings.datasets:
            self.audit(ds.id)
        order = {ds.id: i for i, ds in enumerate(self.settings.datasets)}
        reports = [a.report() for a in self.audits.values()]
        for report in reports:
            acc = self.rollups.get(report.dataset_id)
            report.rollups = acc.result() if acc is not None else []
        reports.sort(key=lambda r: (order.get(r.dataset_id, len(order)), r.dataset_id))
        return reports

"""The daemon's ``orders`` job: paid orders against the Purchases the daemon has seen
(docs/contracts.md §8).

Every ``[schedule] orders_every`` (default 15 min) the job

1. reads each ``[[orders]]`` source that a dataset names, from where its last complete
   read ended minus the source's ``grace`` (a payment's status may still change while it
   is that young) up to now; a first read, or one after a long outage, starts where the
   store's memory starts (``kept_since``: the judged span and the ±48 h matching window
   around it). The reads run concurrently, outside any transaction;
2. in one write transaction: replaces the source's stored orders of the range read and
   moves its cursor (``monitor.store.orders``), forgets orders and Purchases older than
   ``kept_since``, judges every reconciled dataset with the pure ``checks.reconcile``,
   writes the hourly funnel, records the results as a run and lets the alert engine
   decide. A crash before the commit leaves the cursors where they were: the next run
   reads the same range again.

What is judged at ``now`` (``judged_span``): the ``[alerts] window`` that ended ``grace``
ago. Orders created in it without an accepted Purchase are ``ORDER_NOT_SENT``; Purchases
logged in it are judged for ``PURCHASE_WITHOUT_ORDER``, duplicates, values and missing
ids. Purchases and orders outside the span still count for matching (the ±48 h window),
so a reload inside the span of an order first sent before it is a duplicate. Orders are
judged only from the first full hour of the dataset's logs the store knows (the hour
rollups), so a fresh install does not call the orders before its logs "not sent".

The Purchases come from the ``logs`` job, which keeps them as compact records (order id,
``event_id``, ``event_time``, value, currency, Meta's answer: never the event) in its
own cycle's transaction, for the datasets that name a source.

A source that cannot be read in full gives that source's datasets ``SOURCE_UNAVAILABLE``
and ``reconcile: error``: nothing else is judged, nothing is resolved, the cursor stays,
and the next run tries again. The job itself does not fail for it, and the other sources
are judged as usual. Only this job judges ``reconcile`` alerts (``judges_orders``); its
``SOURCE_UNAVAILABLE`` is about the orders source alone and inhibits nothing
(``monitor.alerts.inhibit``).
"""

from __future__ import annotations

import asyncio
import dataclasses as dc
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from checks.purchases import paid_orders
from checks.reconcile import CHECK_ID, Reconciliation, reconcile
from monitor.config import OrdersSettings, Settings
from monitor.engine.orders_inputs import (
    HOUR,
    judged_span,
    kept_since,
    make_reader,
    reconciled_datasets,
    rules_for,
)
from monitor.model.findings import CheckResult
from monitor.model.orders import (
    FunnelHour,
    Order,
    OrdersCursor,
    OrderSnapshot,
    Outcome,
    Purchase,
)
from monitor.model.results import DatasetReport
from monitor.sources.orders import read_snapshot
from monitor.sources.orders.common import Sleep, default_sleep

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from monitor.alerts.lifecycle import AlertRecord
    from monitor.alerts.model import AlertKey


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """One orders source the job reads, and the datasets reconciled with it."""

    entry: OrdersSettings
    datasets: tuple[str, ...]


def orders_plan(settings: Settings) -> dict[str, SourcePlan]:
    """The sources to read (``[[orders]]`` name -> plan), in the order of the datasets."""
    plan: dict[str, list[str]] = {}
    entries: dict[str, OrdersSettings] = {}
    for dataset_id, entry in reconciled_datasets(settings).items():
        plan.setdefault(entry.name, []).append(dataset_id)
        entries[entry.name] = entry
    return {name: SourcePlan(entries[name], tuple(ids)) for name, ids in plan.items()}


def no_orders_source(settings: Settings) -> str | None:
    """Why the ``orders`` job is not scheduled, else ``None``."""
    if not reconciled_datasets(settings):
        return "no dataset names an [[orders]] source"
    return None


def judges_orders(key: AlertKey, prev: AlertRecord | None) -> bool:
    """The ``orders`` job's verdicts: the ``reconcile`` alerts, and nothing else."""
    return key.check == CHECK_ID


# --- reading (outside the transaction) ---------------------------------------------------


def read_since(entry: OrdersSettings, cursor: OrdersCursor | None, oldest: float) -> float:
    """Where the next read of a source starts: ``grace`` before the end of its last
    complete read (young payments may still change status), never before ``oldest``."""
    if cursor is None:
        return oldest
    return max(oldest, cursor.covered_until - entry.grace)


def read_sources(
    plan: Mapping[str, SourcePlan],
    starts: Mapping[str, float],
    now: float,
    *,
    env: Mapping[str, str],
    sleep: Sleep = default_sleep,
) -> dict[str, OrderSnapshot]:
    """One read of every planned source, from its start to ``now``, concurrently; a
    source that fails gives a snapshot that carries only its reason."""

    async def read_all() -> list[OrderSnapshot]:
        reads = [
            read_snapshot(make_reader(p.entry, env=env, sleep=sleep), starts[name], now)
            for name, p in plan.items()
        ]
        return list(await asyncio.gather(*reads))

    if not plan:
        return {}
    return dict(zip(plan, asyncio.run(read_all()), strict=True))


# --- judging (inside the transaction) ----------------------------------------------------


METRICS = ("orders_paid", "orders_sent", "accuracy")  # the check's metrics (§8)
# What a run counts (``job_runs``, the log): no labels, nothing personal.
COUNTERS = (
    "sources_read",
    "sources_failed",
    "orders_read",
    "datasets_judged",
    "orders_judged",
    "purchases_judged",
)


@dataclass(slots=True)
class OrdersRun:
    """What one run judged: a report per reconciled dataset and the funnel hours."""

    reports: list[DatasetReport] = dc.field(default_factory=list)
    funnel: list[FunnelHour] = dc.field(default_factory=list)
    counters: Counter[str] = dc.field(default_factory=lambda: Counter(dict.fromkeys(COUNTERS, 0)))


def stored_view(
    snapshot: OrderSnapshot, cursor: OrdersCursor | None, orders: list[Order]
) -> OrderSnapshot:
    """The orders the store holds for a source after this run's read: what the check
    compares with (a failed read stays the failed snapshot: never partial counts)."""
    if not snapshot.ok or cursor is None:
        return snapshot
    return OrderSnapshot(
        snapshot.source,
        snapshot.kind,
        cursor.covered_from,
        cursor.covered_until,
        orders=orders,
        without_order_id=snapshot.without_order_id,
        requests=snapshot.requests,
    )


def judge_dataset(
    settings: Settings,
    dataset_id: str,
    view: OrderSnapshot,
    purchases: list[Purchase],
    logs_start: float | None,
    now: float,
) -> Reconciliation:
    """``reconcile`` over the stored orders and Purchases of one dataset at ``now``."""
    entry = reconciled_datasets(settings)[dataset_id]
    start, end = judged_span(settings, entry, now)
    if logs_start is not None:
        start = max(start, logs_start + HOUR)  # the first full hour of logs
    window_start = None if logs_start is None else start
    return reconcile(view, purchases, rules_for(entry), now, window_start, judged=(start, end))


def dataset_report(settings: Settings, dataset_id: str, result: CheckResult) -> DatasetReport:
    """The run's report of one dataset: the ``reconcile`` result alone, no health score
    (the log cycles score the dataset; this job adds no partial score)."""
    ds = settings.dataset(dataset_id)
    return DatasetReport(
        dataset_id=dataset_id,
        name=ds.name if ds else None,
        health_score=None,
        checks=[result],
        owner=ds.owner if ds else None,
        client=ds.client if ds else None,
    )


def funnel_hours(
    dataset_id: str,
    purchases: list[Purchase],
    view: OrderSnapshot,
    since: float,
    now: float,
) -> list[FunnelHour]:
    """The funnel of every UTC hour from the first full hour after ``since`` to the hour
    of ``now``: Purchases by ``event_time`` and outcome, paid orders by creation time for
    the hours the stored orders cover fully (``None`` elsewhere: the stored count stays)."""
    first = int(-(-since // HOUR) * HOUR)
    last = int(now // HOUR * HOUR)
    counts: dict[Outcome, Counter[int]] = {o: Counter() for o in Outcome}
    for p in purchases:
        counts[p.outcome][int(p.event_time // HOUR * HOUR)] += 1
    paid: Counter[int] | None = None
    if view.ok:
        paid = Counter(int(o.created_at // HOUR * HOUR) for o in paid_orders(view.orders))
    rows = []
    for hour in range(first, last + 1, int(HOUR)):
        covered = paid is not None and view.since <= hour and hour < view.until
        rows.append(
            FunnelHour(
                dataset_id,
                hour,
                paid[hour] if covered and paid is not None else None,
                sum(counts[o][hour] for o in Outcome),
                counts[Outcome.ACCEPTED][hour],
                counts[Outcome.UNCONFIRMED][hour],
            )
        )
    return rows


def judge_all(
    conn: Connection,
    settings: Settings,
    plan: Mapping[str, SourcePlan],
    snapshots: Mapping[str, OrderSnapshot],
    now: float,
) -> OrdersRun:
    """Store the complete reads, forget what is too old, judge every planned dataset."""
    from monitor.store import orders as stored

    oldest = kept_since(settings, now)
    run = OrdersRun()
    for name, p in plan.items():
        snap = snapshots[name]
        cursor = stored.load_order_cursor(conn, name)
        if snap.ok:
            cursor = stored.save_order_read(conn, snap, now)
            run.counters["orders_read"] += len(snap.orders)
        else:
            run.counters["sources_failed"] += 1
        stored.prune_orders(conn, name, oldest)
        if cursor is not None:
            cursor = stored.load_order_cursor(conn, name)
        orders = stored.load_orders(conn, name, oldest)
        view = stored_view(snap, cursor, orders)
        for dataset_id in p.datasets:
            stored.prune_purchases(conn, dataset_id, oldest)
            purchases = stored.load_purchases(conn, dataset_id, oldest)
            logs_start = stored.logs_since(conn, dataset_id)
            rec = judge_dataset(settings, dataset_id, view, purchases, logs_start, now)
            metrics = {k: rec.metrics[k] for k in METRICS if k in rec.metrics}
            result = dc.replace(rec.result, metrics=metrics) if metrics else rec.result
            run.reports.append(dataset_report(settings, dataset_id, result))
            run.funnel.extend(funnel_hours(dataset_id, purchases, view, oldest, now))
            run.counters["datasets_judged"] += 1
            run.counters["purchases_judged"] += int(rec.metrics.get("purchases_delivered", 0))
            run.counters["orders_judged"] += int(rec.metrics.get("orders_paid", 0))
    stored.save_funnel_hours(conn, run.funnel, now)
    run.counters["sources_read"] = len(plan)
    return run

"""Store reads of the weekly report (``monitor.report.weekly``): what one window holds,
as plain rows. (Silences are read by ``monitor.alerts.silences.silences_between``.)

Every function here reads; none writes. Reads are aggregated in SQL where the daemon
makes the tables large (``check_results`` gains a row per check, dataset and 5-minute
cycle), so a report over months of history stays a few small queries.

Tables of other areas may be absent (a store created before the Graph tables existed,
or a release without them): ``table`` returns ``None`` and the caller shows "no Graph
data" instead of failing.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, func, inspect, or_, select

from monitor.model.findings import Severity
from monitor.model.orders import FunnelHour
from monitor.model.rollup import HourRollup
from monitor.store.db import Store, store_errors
from monitor.store.orders import load_funnel_hours
from monitor.store.tables.core import metadata

SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StatusSeen:
    """How often one check of one dataset had one status in a window, and when last."""

    dataset_id: str
    check_id: str
    status: str
    runs: int
    last_run_id: int


@dataclass(frozen=True, slots=True)
class CheckRow:
    dataset_id: str
    check_id: str
    status: str
    score: int | None
    summary: str
    now: float


@dataclass(slots=True)
class FindingAgg:
    """One (dataset, check, code, field) over a window: counts added up over the runs
    that reported it, the peak of one run, and the latest run's text."""

    dataset_id: str
    check_id: str
    code: str
    field: str | None
    severity: Severity
    total: int
    peak: int
    runs: int
    last_seen: float
    event_names: list[str] = dc.field(default_factory=list)
    # The send-time span of the data the reporting runs judged (None: placed by clock).
    data_from: float | None = None
    data_to: float | None = None
    message: str = ""
    remediation: str = ""
    examples: list[dict[str, Any]] = dc.field(default_factory=list)
    evidence: dict[str, Any] = dc.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertEpisode:
    """One alert episode with what the report shows of it."""

    dataset_id: str
    code: str
    check: str
    event_name: str | None
    severity: str
    fired_at: float
    resolved_at: float | None
    muted_by: str | None
    message: str


def table(store: Store, name: str) -> Table | None:
    """The table ``name`` if this release defines it and the database has it."""
    t = metadata.tables.get(name)
    if t is None:
        return None
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return t if inspect(conn).has_table(name) else None


def _rows(store: Store, query: Any) -> list[Mapping[str, Any]]:
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


# --- audit runs ------------------------------------------------------------------------

_RUNS: Table = metadata.tables["audit_runs"]
_CHECKS: Table = metadata.tables["check_results"]
_FINDINGS: Table = metadata.tables["findings"]


def run_datasets(
    store: Store, since: float, until: float
) -> list[tuple[float, tuple[float, float] | None, dict[str, Any]]]:
    """(run ``now``, the span of the data it judged, dataset summary) of every run that
    covers ``[since, until)`` (``_in_window``), in order; the summary is
    ``AuditRun.datasets``' entry (health score, name, status)."""
    query = (
        select(_RUNS.c.now, _RUNS.c.data_from, _RUNS.c.data_to, _RUNS.c.datasets)
        .where(_in_window(since, until))
        .order_by(_RUNS.c.now, _RUNS.c.id)
    )
    return [
        (float(r["now"]), _span(r), d)
        for r in _rows(store, query)
        for d in (r["datasets"] or [])
        if isinstance(d, dict) and "dataset_id" in d
    ]


def _span(row: Mapping[str, Any]) -> tuple[float, float] | None:
    a, b = row["data_from"], row["data_to"]
    return None if a is None or b is None else (float(a), float(b))


def _in_window(since: float, until: float) -> Any:
    """The runs that count for ``[since, until)``: the data their checks judged overlaps
    it (an audit of last month's logs counts for last month), or, for runs without such
    data (Graph polls, runs stored before spans were), they ran in it."""
    spanned = and_(
        _RUNS.c.data_from.is_not(None), _RUNS.c.data_from < until, _RUNS.c.data_to > since
    )
    clocked = and_(_RUNS.c.data_from.is_(None), _RUNS.c.now >= since, _RUNS.c.now < until)
    return or_(spanned, clocked)


def statuses_seen(store: Store, since: float, until: float) -> list[StatusSeen]:
    """Per dataset, check and status: how many runs in ``[since, until)`` had it."""
    query = (
        select(
            _CHECKS.c.dataset_id,
            _CHECKS.c.check_id,
            _CHECKS.c.status,
            func.count().label("runs"),
            func.max(_CHECKS.c.run_id).label("last_run_id"),
        )
        .join(_RUNS, _RUNS.c.id == _CHECKS.c.run_id)
        .where(_in_window(since, until))
        .group_by(_CHECKS.c.dataset_id, _CHECKS.c.check_id, _CHECKS.c.status)
    )
    return [
        StatusSeen(r["dataset_id"], r["check_id"], r["status"], r["runs"], r["last_run_id"])
        for r in _rows(store, query)
    ]


def latest_checks(store: Store, since: float, until: float) -> list[CheckRow]:
    """Per dataset and check, the newest result in ``[since, until)`` that was evaluated
    (not ``skipped``), else the newest result at all."""
    base = (
        select(
            _CHECKS.c.dataset_id,
            _CHECKS.c.check_id,
            func.max(_CHECKS.c.id).label("id"),
        )
        .join(_RUNS, _RUNS.c.id == _CHECKS.c.run_id)
        .where(_in_window(since, until))
        .group_by(_CHECKS.c.dataset_id, _CHECKS.c.check_id)
    )
    evaluated = base.where(_CHECKS.c.status != SKIPPED).subquery()
    anything = base.subquery()
    ids = select(evaluated.c.id).union(
        select(anything.c.id).where(
            ~select(evaluated.c.id)
            .where(
                evaluated.c.dataset_id == anything.c.dataset_id,
                evaluated.c.check_id == anything.c.check_id,
            )
            .exists()
        )
    )
    query = (
        select(_CHECKS, _RUNS.c.now)
        .join(_RUNS, _RUNS.c.id == _CHECKS.c.run_id)
        .where(_CHECKS.c.id.in_(ids))
        .order_by(_CHECKS.c.id)
    )
    return [
        CheckRow(
            r["dataset_id"], r["check_id"], r["status"], r["score"], r["summary"], float(r["now"])
        )
        for r in _rows(store, query)
    ]


def findings(store: Store, since: float, until: float) -> list[FindingAgg]:
    """The findings of ``[since, until)`` per (dataset, check, code, field), newest text."""
    query = (
        select(
            _FINDINGS.c.id,
            _FINDINGS.c.dataset_id,
            _FINDINGS.c.check_id,
            _FINDINGS.c.code,
            _FINDINGS.c.field,
            _FINDINGS.c.severity,
            _FINDINGS.c.count,
            _FINDINGS.c.event_names,
            _RUNS.c.now,
            _RUNS.c.data_from,
            _RUNS.c.data_to,
        )
        .join(_RUNS, _RUNS.c.id == _FINDINGS.c.run_id)
        .where(_in_window(since, until))
        .order_by(_RUNS.c.now, _FINDINGS.c.id)
    )
    groups: dict[tuple[str, str, str, str | None], FindingAgg] = {}
    latest: dict[tuple[str, str, str, str | None], int] = {}
    for r in _rows(store, query):
        key = (r["dataset_id"], r["check_id"], r["code"], r["field"])
        severity = Severity(r["severity"])
        agg = groups.get(key)
        if agg is None:
            agg = groups[key] = FindingAgg(*key, severity, 0, 0, 0, float(r["now"]))
        agg.total += int(r["count"])
        agg.peak = max(agg.peak, int(r["count"]))
        agg.runs += 1
        agg.last_seen = float(r["now"])
        if (span := _span(r)) is not None:
            agg.data_from = span[0] if agg.data_from is None else min(agg.data_from, span[0])
            agg.data_to = span[1] if agg.data_to is None else max(agg.data_to, span[1])
        if severity.rank > agg.severity.rank:
            agg.severity = severity
        for name in r["event_names"] or []:
            if name not in agg.event_names:
                agg.event_names.append(name)
        latest[key] = int(r["id"])
    _fill_text(store, groups, latest)
    return list(groups.values())


def _fill_text(
    store: Store,
    groups: Mapping[tuple[str, str, str, str | None], FindingAgg],
    latest: Mapping[tuple[str, str, str, str | None], int],
) -> None:
    """Message, fix, examples and evidence of each group, from its newest row."""
    ids = list(latest.values())
    by_id: dict[int, Mapping[str, Any]] = {}
    for chunk in range(0, len(ids), 500):  # bound the IN list
        query = select(_FINDINGS).where(_FINDINGS.c.id.in_(ids[chunk : chunk + 500]))
        by_id.update({int(r["id"]): r for r in _rows(store, query)})
    for key, agg in groups.items():
        row = by_id.get(latest[key])
        if row is not None:
            agg.message = row["message"]
            agg.remediation = row["remediation"]
            agg.examples = list(row["examples"] or [])
            agg.evidence = dict(row["evidence"] or {})


# --- rollups ---------------------------------------------------------------------------


def rollups(store: Store, since: float, until: float) -> list[HourRollup]:
    """Every dataset's hourly rollups of send-time hours in ``[since, until)``."""
    return store.rollups(since=since, until=until)


# --- alerts ---------------------------------------------------------------


def alert_rows(store: Store, until: float) -> list[AlertEpisode]:
    """Alert episodes that fired before ``until`` and were open at some point after the
    earliest window the caller needs (it filters): still open, or resolved."""
    t = table(store, "alerts")
    if t is None:
        return []
    query = (
        select(t)
        # Fleet alerts (no dataset: INSTANCE_SILENT) are about capi-monitor, not a dataset.
        .where(t.c.fired_at.is_not(None), t.c.fired_at < until, t.c.dataset_id.is_not(None))
        .order_by(t.c.fired_at, t.c.id)
    )
    return [
        AlertEpisode(
            dataset_id=r["dataset_id"],
            code=r["code"],
            check=r["check_id"],
            event_name=r["event_name"],
            severity=r["peak_severity"],
            fired_at=float(r["fired_at"]),
            resolved_at=None if r["resolved_at"] is None else float(r["resolved_at"]),
            muted_by=r["muted_by"],
            message=r["message"],
        )
        for r in _rows(store, query)
    ]


# --- Graph API snapshots ---------------------------------------------------------------


def _graph_window(
    store: Store, name: str, time_column: str, since: float, until: float
) -> list[Mapping[str, Any]]:
    """Rows of Graph table ``name`` with ``time_column`` in ``[since, until)``, oldest
    first; empty when the table does not exist (a store without Graph data)."""
    t = table(store, name)
    if t is None:
        return []
    column = t.c[time_column]
    query = select(t).where(column >= since, column < until).order_by(column)
    return _rows(store, query)


def graph_counts(store: Store, since: float, until: float) -> list[Mapping[str, Any]]:
    """Meta's hourly browser/server counts of ``[since, until)`` (empty without tables)."""
    return _graph_window(store, "graph_source_counts", "hour", since, until)


def graph_quality(store: Store, since: float, until: float) -> list[Mapping[str, Any]]:
    """Dataset Quality readings polled in ``[since, until)``, oldest first."""
    return _graph_window(store, "graph_quality", "polled_at", since, until)


def graph_polls(store: Store, since: float, until: float) -> list[Mapping[str, Any]]:
    """Poll rows (diagnostics, token) of ``[since, until)``, oldest first."""
    return _graph_window(store, "graph_polls", "polled_at", since, until)


# --- reconciliation --------------------------------------------------------------------


def funnel_hours(store: Store, since: float, until: float) -> list[FunnelHour]:
    """Every dataset's hourly funnel of ``[since, until)`` as the daemon's ``orders`` job
    stored it (empty without the table: a store from before it)."""
    if table(store, "funnel_hours") is None:
        return []
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return load_funnel_hours(conn, since, until)


def has_history(store: Store, until: float) -> bool:
    """Whether the store holds any monitoring data from before ``until``: a week before
    the first data is not worth a report (a fresh install has nothing to say about it)."""
    checks: list[Any] = [
        select(_RUNS.c.id).where(or_(_RUNS.c.now < until, _RUNS.c.data_from < until)).limit(1),
        select(metadata.tables["hour_rollups"].c.id)
        .where(metadata.tables["hour_rollups"].c.hour < until)
        .limit(1),
    ]
    for name, column in (("alerts", "fired_at"), ("graph_polls", "polled_at")):
        t = table(store, name)
        if t is not None:
            checks.append(select(t.c.id).where(t.c[column] < until).limit(1))
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return any(conn.execute(q).first() is not None for q in checks)

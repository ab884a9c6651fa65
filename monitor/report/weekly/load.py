"""From the store: the inputs of every dataset for a window, and the whole report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor.alerts.silences import silences_between
from monitor.config import Settings
from monitor.report import charts
from monitor.report.charts import Chart
from monitor.report.weekly.builders import build_dataset
from monitor.report.weekly.view import TREND_WEEKS, DatasetInputs, WeeklyReport, page_name
from monitor.report.window import ReportWindow
from monitor.store import Store
from monitor.store import weekly as weekly_data

# --- from the store --------------------------------------------------------------------


Run = tuple[float, tuple[float, float] | None, dict[str, Any]]


def _covers(run: Run, window: ReportWindow) -> bool:
    """Whether a run counts for ``window``: its data overlaps it, or (no data span) it
    ran in it (``monitor.store.weekly._in_window``)."""
    now, span, _ = run
    if span is None:
        return window.contains(now)
    return span[0] < window.end and span[1] > window.start


def _scores(runs: Sequence[Run], window: ReportWindow) -> dict[str, float | None]:
    """The newest non-null health score of each dataset evaluated in ``window``."""
    out: dict[str, float | None] = {}
    for run in runs:
        d = run[2]
        score = d.get("health_score")
        if _covers(run, window) and isinstance(score, int | float):
            out[d["dataset_id"]] = int(score) if float(score).is_integer() else float(score)
    return out


def _names(runs: Sequence[Run]) -> dict[str, str]:
    return {d["dataset_id"]: d["name"] for _, _, d in runs if d.get("name")}


def load_inputs(store: Store, settings: Settings, window: ReportWindow) -> list[DatasetInputs]:
    """What the store holds about every dataset to report, window by window."""
    weeks = window.weeks_back(TREND_WEEKS)
    prev = weeks[-2]
    runs = weekly_data.run_datasets(store, prev.start, window.end)
    scores_now, scores_prev = _scores(runs, window), _scores(runs, prev)
    checks_now = weekly_data.latest_checks(store, window.start, window.end)
    checks_prev = weekly_data.latest_checks(store, prev.start, prev.end)
    statuses = [weekly_data.statuses_seen(store, w.start, w.end) for w in weeks]
    found_now = weekly_data.findings(store, window.start, window.end)
    found_prev = weekly_data.findings(store, prev.start, prev.end)
    rolls = [weekly_data.rollups(store, w.start, w.end) for w in weeks]
    counts = weekly_data.graph_counts(store, window.start, window.end)
    quality = [weekly_data.graph_quality(store, w.start, w.end) for w in weeks]
    polls = weekly_data.graph_polls(store, window.start, window.end)
    alerts = weekly_data.alert_rows(store, window.end)
    silences = silences_between(store.engine, window.start, window.end)
    graph_tables = weekly_data.table(store, "graph_quality") is not None
    funnel = weekly_data.funnel_hours(store, window.start, window.end)

    seen = {c.dataset_id for c in checks_now} | {r.dataset_id for r in rolls[-1]}
    seen |= {r.dataset_id for r in rolls[-2]} | {str(c["dataset_id"]) for c in counts}
    seen |= {a.dataset_id for a in alerts if a.resolved_at is None or a.resolved_at >= prev.start}
    ids = [d.id for d in settings.datasets] + sorted(seen - {d.id for d in settings.datasets})
    names = _names(runs)

    def mine(rows: Iterable[Any], ds: str, key: str = "dataset_id") -> list[Any]:
        return [r for r in rows if (r[key] if isinstance(r, Mapping) else getattr(r, key)) == ds]

    out = []
    for ds in ids:
        conf = settings.dataset(ds)
        out.append(
            DatasetInputs(
                dataset_id=ds,
                name=(conf.name if conf else None) or names.get(ds),
                client=conf.client if conf else None,
                owner=conf.owner if conf else None,
                scores=(scores_now.get(ds), scores_prev.get(ds)),
                checks=(mine(checks_now, ds), mine(checks_prev, ds)),
                statuses=[mine(s, ds) for s in statuses],
                findings=(mine(found_now, ds), mine(found_prev, ds)),
                rollups=[mine(r, ds) for r in rolls],
                counts=mine(counts, ds),
                quality=[mine(q, ds) for q in quality],
                polls=mine(polls, ds),
                alerts=mine(alerts, ds),
                silences=mine(silences, ds),
                graph_tables=graph_tables,
                funnel=mine(funnel, ds) if conf is not None and conf.orders else None,
            )
        )
    return out


def build_weekly_report(
    store: Store,
    settings: Settings,
    window: ReportWindow,
    *,
    now: float | None = None,
) -> WeeklyReport:
    """The report of ``window`` (and the week-over-week comparison with the one before)."""
    generated = time.time() if now is None else now
    weeks = window.weeks_back(TREND_WEEKS)
    taken: set[str] = {"index.html"}
    pages = [
        build_dataset(i, window, weeks, page_name(i.dataset_id, taken), generated)
        for i in load_inputs(store, settings, window)
    ]
    report = WeeklyReport(window, weeks[-2], generated, pages)
    if pages:
        png = charts.health_chart(
            [p.title for p in pages],
            [p.score.value for p in pages],
            [p.score.previous for p in pages],
        )
        report.charts.append(
            Chart("health", "Health score by dataset", "Health score per dataset", png)
        )
    return report

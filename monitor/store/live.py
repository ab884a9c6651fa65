"""Store reads of the running daemon's live views (``/metrics`` gauges and the ``/``
page, docs/contracts.md §10). Every function takes a ``Connection`` and only reads.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

from monitor.store.tables.core import metadata

_ALERTS: Table = metadata.tables["alerts"]
_RUNS: Table = metadata.tables["audit_runs"]
_JOB_RUNS: Table = metadata.tables["job_runs"]
RUNS_SCANNED = 200  # newest audit runs searched for each dataset's latest health score


def firing_counts(conn: Connection) -> dict[tuple[str, str, str], int]:
    """Firing alerts (silenced or inhibited ones included) per (dataset id, code,
    severity); a fleet alert has dataset id ``""``."""
    a = _ALERTS.c
    query = (
        select(a.dataset_id, a.code, a.severity, func.count())
        .where(a.state == "firing")
        .group_by(a.dataset_id, a.code, a.severity)
    )
    return {(r[0] or "", r[1], r[2]): int(r[3]) for r in conn.execute(query)}


def health_scores(conn: Connection) -> dict[str, int | None]:
    """Each dataset's health score in the newest audit run that evaluated it (``None``:
    that run could not score it), from the newest ``RUNS_SCANNED`` runs."""
    query = select(_RUNS.c.datasets).order_by(_RUNS.c.id.desc()).limit(RUNS_SCANNED)
    out: dict[str, int | None] = {}
    for (datasets,) in conn.execute(query):
        for d in datasets or []:
            if isinstance(d, dict) and d.get("dataset_id") not in out and d.get("events"):
                out[str(d["dataset_id"])] = d.get("health_score")
    return out


def last_successes(conn: Connection, instance: str | None) -> dict[str, float]:
    """Per job: when its newest successful run (of ``instance``, if given) finished."""
    j = _JOB_RUNS.c
    query = select(j.job, func.max(j.finished_at)).where(j.ok.is_(True)).group_by(j.job)
    if instance is not None:
        query = query.where(j.instance == instance)
    return {r[0]: float(r[1]) for r in conn.execute(query)}


def recent_runs(
    conn: Connection, job: str, instance: str | None, limit: int
) -> list[tuple[float, bool]]:
    """The newest ``limit`` runs of ``job`` (by ``instance``, if given) as (finished_at,
    ok), newest first."""
    j = _JOB_RUNS.c
    query = select(j.finished_at, j.ok).where(j.job == job).order_by(j.id.desc()).limit(limit)
    if instance is not None:
        query = query.where(j.instance == instance)
    return [(float(f), bool(ok)) for f, ok in conn.execute(query)]

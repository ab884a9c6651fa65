"""Job runs in the store (table ``job_runs``): one row per run of a daemon job, the
newest few hundred kept per job, for ``status``, ``/healthz`` and the live page.

Every function takes a ``Connection``: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select

from monitor.store.tables.core import metadata

_JOB_RUNS: Table = metadata.tables["job_runs"]


def insert_job_run(conn: Connection, values: Mapping[str, Any], keep: int) -> None:
    """Add one run (``job``, ``ok``, ``started_at``, ``finished_at``, ``error``,
    ``counters``, ``instance``) and drop the runs of its job and instance older than the
    newest ``keep``."""
    conn.execute(insert(_JOB_RUNS).values(**values))
    same = (_JOB_RUNS.c.job == values["job"]) & _of(values.get("instance"))
    # The id of the oldest row to keep, then everything of this job below it.
    oldest_kept = (
        select(_JOB_RUNS.c.id)
        .where(same)
        .order_by(_JOB_RUNS.c.id.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(delete(_JOB_RUNS).where(same, _JOB_RUNS.c.id < oldest_kept))


def _of(instance: str | None) -> Any:
    column = _JOB_RUNS.c.instance
    return column.is_(None) if instance is None else column == instance


def latest_job_runs(conn: Connection, instance: str | None = None) -> dict[str, dict[str, Any]]:
    """The newest row of each job (of ``instance``, if given), by job name (without
    ``id``, ``job`` and ``instance``)."""
    latest = select(func.max(_JOB_RUNS.c.id)).group_by(_JOB_RUNS.c.job)
    if instance is not None:
        latest = latest.where(_of(instance))
    query = select(_JOB_RUNS).where(_JOB_RUNS.c.id.in_(latest)).order_by(_JOB_RUNS.c.job)
    rows = conn.execute(query).mappings().all()
    hidden = ("id", "job", "instance")
    return {r["job"]: {k: v for k, v in r.items() if k not in hidden} for r in rows}


def recent_job_runs(conn: Connection, job: str, instance: str, limit: int) -> list[bool]:
    """Whether each of the newest ``limit`` runs of ``job`` by ``instance`` succeeded,
    newest first."""
    query = (
        select(_JOB_RUNS.c.ok)
        .where(_JOB_RUNS.c.job == job, _of(instance))
        .order_by(_JOB_RUNS.c.id.desc())
        .limit(limit)
    )
    return [bool(ok) for ok in conn.execute(query).scalars()]

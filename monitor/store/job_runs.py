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
    ``counters``) and drop the runs of its job older than the newest ``keep``."""
    conn.execute(insert(_JOB_RUNS).values(**values))
    # The id of the oldest row to keep, then everything of this job below it.
    oldest_kept = (
        select(_JOB_RUNS.c.id)
        .where(_JOB_RUNS.c.job == values["job"])
        .order_by(_JOB_RUNS.c.id.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        delete(_JOB_RUNS).where(_JOB_RUNS.c.job == values["job"], _JOB_RUNS.c.id < oldest_kept)
    )


def latest_job_runs(conn: Connection) -> dict[str, dict[str, Any]]:
    """The newest row of each job, by job name (without ``id`` and ``job``)."""
    latest = select(func.max(_JOB_RUNS.c.id)).group_by(_JOB_RUNS.c.job)
    query = select(_JOB_RUNS).where(_JOB_RUNS.c.id.in_(latest)).order_by(_JOB_RUNS.c.job)
    rows = conn.execute(query).mappings().all()
    return {r["job"]: {k: v for k, v in r.items() if k not in ("id", "job")} for r in rows}

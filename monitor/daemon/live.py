"""What the daemon's HTTP server shows (docs/contracts.md §10): ``/healthz`` from the job
runs, ``/metrics`` from ``monitor.daemon.metrics``, and the live page ``/`` rendered
server-side from the reports' templates (``live.html.j2`` on ``base.html.j2``: inline
CSS, no script, nothing fetched; it reloads itself every ``REFRESH`` seconds).

A scheduled job (the weekly report excluded) is *late* when its last finished run,
success or failure, is older than 3 x its interval (before its first run: the daemon's
start), or when its last three runs failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from monitor.daemon.status import status
from monitor.report.format import environment
from monitor.store.live import health_scores, recent_runs

if TYPE_CHECKING:
    from monitor.daemon.scheduler import Daemon

LATE_AFTER = 3  # intervals without a finished run
FAILED_IN_A_ROW = 3
NOT_WATCHED = frozenset({"weekly_report"})  # looks every 5 min; its own claims say more
REFRESH = 30  # seconds between two reloads of the live page


def late_jobs(
    intervals: Mapping[str, float],
    runs: Mapping[str, Sequence[tuple[float, bool]]],
    started_at: float,
    now: float,
) -> list[str]:
    """The late jobs among ``intervals`` (job -> seconds), given each job's newest runs
    as (finished_at, ok), newest first (pure; module docstring)."""
    late = []
    for job, every in intervals.items():
        recent = list(runs.get(job, ()))
        last = recent[0][0] if recent else started_at
        failing = len(recent) >= FAILED_IN_A_ROW and not any(
            ok for _, ok in recent[:FAILED_IN_A_ROW]
        )
        if now - last > LATE_AFTER * every or failing:
            late.append(job)
    return late


class Views:
    """The server's answers for one running ``Daemon`` started at ``started_at``."""

    def __init__(self, daemon: Daemon, started_at: float) -> None:
        self._daemon = daemon
        self._started_at = started_at

    def metrics(self) -> bytes:
        return self._daemon.metrics.exposition()

    def _intervals(self) -> dict[str, float]:
        d = self._daemon
        return {s.name: s.every(d.settings) for s in d.jobs() if s.name not in NOT_WATCHED}

    def health(self) -> tuple[int, dict[str, Any]]:
        d = self._daemon
        intervals = self._intervals()
        with d.store.engine.connect() as conn:
            runs = {j: recent_runs(conn, j, d.fleet.name, FAILED_IN_A_ROW) for j in intervals}
        now = d.clock()
        late = late_jobs(intervals, runs, self._started_at, now)
        jobs = {j: (r[0][0] if r else None) for j, r in runs.items()}
        if late:
            return 503, {"status": "late", "late": late, "last_run": jobs}
        return 200, {"status": "ok", "last_run": jobs}

    def status(self) -> dict[str, Any]:
        d = self._daemon
        now = d.clock()
        data = status(d.store, d.settings, now, d.env)
        with d.store.engine.connect() as conn:
            scores = health_scores(conn)
        firing: dict[str, int] = {}
        for a in data["alerts"]:
            if a["state"] == "firing" and a["dataset_id"]:
                firing[a["dataset_id"]] = firing.get(a["dataset_id"], 0) + 1
        data["datasets"] = [
            {"dataset_id": ds.id, "name": ds.name, "client": ds.client,
             "health_score": scores.get(ds.id), "alerts_firing": firing.get(ds.id, 0)}
            for ds in d.settings.datasets
        ]  # fmt: skip
        _, health = self.health()
        data["late"] = health.get("late", [])
        return data

    def page(self) -> str:
        from monitor import __version__

        template = environment().get_template("live.html.j2")
        return template.render(data=self.status(), refresh=REFRESH, version=__version__)

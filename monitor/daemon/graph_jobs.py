"""The daemon's Graph API jobs: what ``graph`` and ``quality`` read, judge and may resolve.

``monitor.daemon.scheduler`` runs two jobs over the datasets that have a Graph source (``[meta]``
and a token; without one the jobs are not scheduled, docs/contracts.md §6):

- ``graph`` (``[schedule] graph_every``, default 1 h) reads ``/stats``: hourly counts by
  event name and by BROWSER/SERVER source, and match keys (``STATS_JOB``);
- ``quality`` (``quality_every``, default 6 h) reads Dataset Quality, ``da_checks`` and
  the token (``debug_token``), plus the ``aggregation=event`` totals of ``/stats``
  (``QUALITY_JOB``).

Each run polls its parts (``monitor.sources.graph.poll.poll_dataset(parts=...)``), runs every
check over the snapshot with no log deliveries (``graph_reports``: log checks report
``skipped``; a check whose parts were not read in this poll reports ``skipped`` too),
then stores the snapshot and evaluates the alerts in one transaction (the daemon).

Choices, and why:

- **Nothing is carried between the two jobs.** A Graph finding is judged only by the
  job that reads its data (``checks.graph_common.CODE_PARTS``). The one input a
  ``quality`` judgement needs from ``/stats`` is the per-name event volume of its guards
  (EMQ, coverage, freshness and dedup keys are judged for names with enough events):
  ``quality`` reads those totals itself (one paged call per dataset) rather than reuse
  the ``graph`` job's reading, which may not exist yet (``once`` in a new process, a
  restart, both jobs starting together) and which the store keeps only per split event.
  What comes from the store is history, never a stand-in for this poll: the earlier
  Dataset Quality readings (``quality``: the baselines of EMQ_DROP and MATCH_KEY_DROP)
  and the logs' hourly rollups (``graph``: SERVER_COUNT_MISMATCH compares them with
  Meta's server counts).
- **Verdicts** (``graph_judges``, ``judges_logs``: ``evaluate_cycle(judges=...)``). The
  absence of a finding resolves an alert only in a cycle that judged it: a log cycle
  never judges Graph findings and a Graph job never judges log findings, even of the
  same check (``dedup`` has both), so neither resolves the other's alerts. One code has
  both sides: ``MATCH_KEY_DROP`` of ``match_quality`` (Meta's key coverage, or the logs'
  own); an alert last seen from the logs (evidence ``source: server_log``) is the log
  cycles' to judge. A Graph job
  judges a finding when every part it is judged from was read successfully in this
  poll; for the source's own codes (``TOKEN_INVALID``, ``RATE_LIMITED``,
  ``SOURCE_UNAVAILABLE``) those are the parts that failed when the alert was last seen
  (its evidence), so a ``graph`` run that reads ``/stats`` fine does not resolve an
  alert about ``dataset_quality``. A finding that is present always counts: it was seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from checks.graph_common import CODE_PARTS, SOURCE_CODES, from_logs, is_graph_code
from monitor.config import Settings
from monitor.engine.audit import DatasetAudit
from monitor.engine.graph_inputs import graph_datasets
from monitor.model.graph import (
    QUALITY_PARTS,
    STATS_PARTS,
    DatasetGraph,
    GraphSnapshot,
    Part,
)

if TYPE_CHECKING:
    from monitor.alerts.engine import Judges
    from monitor.alerts.lifecycle import AlertRecord
    from monitor.alerts.model import AlertKey
    from monitor.model.results import DatasetReport
    from monitor.store import Store


@dataclass(frozen=True, slots=True)
class GraphJob:
    """One Graph job: the parts it polls and the stored history its checks get.

    ``history``: attach the stored Dataset Quality readings (EMQ_DROP, MATCH_KEY_DROP).
    ``rollups``: compare Meta's counts with the stored log rollups (SERVER_COUNT_MISMATCH).
    """

    name: str
    parts: frozenset[Part]
    history: bool
    rollups: bool


STATS_JOB = GraphJob("graph", STATS_PARTS, history=False, rollups=True)
# stats.event: the per-name volumes of the guards (module docstring).
QUALITY_JOB = GraphJob("quality", QUALITY_PARTS | {Part.STATS_EVENT}, history=True, rollups=False)


def no_graph_source(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """Why no Graph job can run (the daemon then does not schedule them), else ``None``."""
    if settings.meta is None:
        return "no [meta] section in the config"
    if not settings.datasets:
        return "no [[datasets]] in the config"
    if not graph_datasets(settings, os.environ if env is None else env):
        names = sorted(
            {ds.access_token_env or settings.meta.access_token_env for ds in settings.datasets}
        )
        return f"no dataset has a Graph API token (set {', '.join(names)})"
    return None


def graph_reports(
    settings: Settings,
    job: GraphJob,
    snapshots: Mapping[str, GraphSnapshot],
    *,
    now: float,
    store: Store,
) -> list[DatasetReport]:
    """Every check of each polled dataset over its snapshot and no deliveries, in the
    order of the config (``snapshots``' order). Reads history from ``store``."""
    history: Mapping[str, Any] = {}
    if job.history and snapshots:
        from monitor.store.graph import load_graph_history  # deferred: SQLAlchemy import

        window = settings.checks.match_quality.history_window
        history = load_graph_history(store, snapshots, now=now, window=window)
    reports = []
    for dataset_id, snap in snapshots.items():
        audit = DatasetAudit(
            dataset_id, settings, now, graph=DatasetGraph(snap, history.get(dataset_id))
        )
        compare = store.rollups(dataset_id, snap.window_start, now) if job.rollups else None
        report = audit.report(compare)
        report.rollups = []  # nothing observed here: the logs job stores the rollups
        reports.append(report)
    return reports


def judges_logs(key: AlertKey, prev: AlertRecord | None) -> bool:
    """A log cycle's verdicts: every alert except the Graph findings and ``reconcile``'s
    (the ``orders`` job judges those, ``monitor.daemon.orders_jobs``)."""
    return key.check != "reconcile" and not _from_graph(key, prev)


def _from_graph(key: AlertKey, prev: AlertRecord | None) -> bool:
    """Whether an alert is a Graph finding's: by its code, except that a code with a log
    side too (``MATCH_KEY_DROP``) raised from the logs stays the logs' (its evidence)."""
    if not is_graph_code(key.check, key.code):
        return False
    return prev is None or not from_logs(prev.content.evidence)


def graph_judges(snapshots: Mapping[str, GraphSnapshot]) -> Judges:
    """A Graph job's verdicts over ``snapshots`` (module docstring)."""

    def judges(key: AlertKey, prev: AlertRecord | None) -> bool:
        snap = snapshots.get(key.dataset_id) if key.dataset_id is not None else None
        if snap is None or not _from_graph(key, prev):
            return False
        needed = judged_from(key.check, key.code, prev, snap)
        return needed is not None and all(snap.ok(p) for p in needed)

    return judges


def judged_from(
    check_id: str, code: str, prev: AlertRecord | None, snap: GraphSnapshot
) -> frozenset[Part] | None:
    """The parts a Graph finding is judged from; ``None`` for an unknown one (never
    judged: an alert with no known source is kept rather than resolved by guesswork)."""
    if check_id == "diagnostics" and code in SOURCE_CODES:
        failed = _failed_parts(prev.content.evidence if prev is not None else {})
        return failed or snap.parts  # no evidence: every part this poll asked for
    return CODE_PARTS.get((check_id, code))


def _failed_parts(evidence: Mapping[str, Any]) -> frozenset[Part]:
    """The parts named in a source finding's evidence: ``["stats.event", ...]`` or
    ``[{"part": "stats.event", ...}, ...]`` (``checks.diagnostics``)."""
    names = [p.get("part") if isinstance(p, Mapping) else p for p in evidence.get("parts") or ()]
    known = {p.value for p in Part}
    return frozenset(Part(n) for n in names if n in known)


def poll_counters(snapshots: Mapping[str, GraphSnapshot]) -> dict[str, int]:
    """What a Graph job read, for ``job_runs`` and the log (no labels, nothing personal)."""
    snaps = list(snapshots.values())
    return {
        "datasets_polled": len(snaps),
        "graph_calls": sum(s.calls for s in snaps),
        "part_errors": sum(len(s.errors) for s in snaps),
        "datasets_token_invalid": sum(1 for s in snaps if s.token_invalid),
    }

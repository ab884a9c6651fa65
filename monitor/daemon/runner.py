"""The daemon: scheduled jobs over sources -> checks -> store -> alerts -> notify.

``Daemon`` wires the parts a ``Settings`` describes (log tailer, checks, store, alert
engine, outbox sender) and runs the jobs of ``JOBS``:

- ``logs`` (every ``[schedule] logs_every``): one write transaction that reads the new
  complete log lines (``monitor.sources.logs.tail``), adds the hourly rollups of *all* of them,
  runs the checks over the deliveries sent within ``[alerts] window`` of now (older lines
  are history: rollups and baselines only), records the cycle's results, lets the alert
  engine decide (``monitor.alerts.engine.evaluate_cycle``: alert and outbox rows) and
  advances the log cursors. Everything commits together or not at all, so a crash at any
  point neither loses nor duplicates an alert: the next cycle re-reads the same lines.
  A dataset without new deliveries in the window has its log checks ``skipped``, which
  never resolves an alert. Graph API findings are not judged here (``judges_logs``).
- ``graph`` (every ``[schedule] graph_every``) and ``quality`` (``quality_every``): poll
  the Graph API (``/stats``; Dataset Quality, ``da_checks``, the token) for every dataset
  with a token, run the checks over the snapshot with no deliveries (log checks
  ``skipped``), then store the snapshot and evaluate the alerts in one write transaction.
  Each judges only the Graph findings whose data it read (``monitor.daemon.graph_jobs``). Not
  scheduled without ``[meta]`` or without a dataset that has a token.
- ``notify`` (every ``[schedule] notify_every``): drains the outbox
  (``monitor.notify.sender.OutboxSender``).
- ``weekly_report`` (looks every 5 minutes whether ``[schedule] weekly_report`` has come):
  claims the due week in the store, writes, emails and posts the weekly report
  (``monitor.daemon.weekly``); each week once, across restarts and processes. Not
  scheduled with ``weekly_report = "off"`` or without a destination.

``run(stop)`` schedules the jobs with APScheduler in ``[schedule] timezone`` and returns
once ``stop`` is set (by the entry point's signal handlers) and running jobs finished or
abandoned their step; ``run_once`` runs every job once, in order (cron, tests). Every
job run is recorded in ``job_runs`` (``status`` shows the last one of each job).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, func, insert, select

from monitor.alerts.engine import CycleOutcome, Judges, evaluate_cycle
from monitor.alerts.lifecycle import AlertRecord
from monitor.config import Settings
from monitor.daemon.graph_jobs import (
    QUALITY_JOB,
    STATS_JOB,
    GraphJob,
    graph_judges,
    graph_reports,
    judges_logs,
    no_graph_source,
    poll_counters,
)
from monitor.engine.audit import DatasetAudit
from monitor.engine.graph_inputs import poll_graph
from monitor.engine.rollup import RollupAccumulator
from monitor.engine.series import load_volume_history
from monitor.errors import ConfigError, StoreError
from monitor.mask import scrub_text
from monitor.model.graph import GraphSnapshot, Part
from monitor.model.observations import Delivery, ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import HourRollup
from monitor.model.series import Current, VolumeHistory
from monitor.sources.logs.tail import LogTailer, TailRead, load_cursors
from monitor.store import Store
from monitor.store.db import upsert_rollups, write_connection
from monitor.store.graph import write_graph
from monitor.store.tables.core import metadata

log = logging.getLogger(__name__)

JOB_RUNS_KEPT = 500  # rows kept per job in ``job_runs`` (a notify run every 5 s adds up)
STOP_GRACE = 8.0  # seconds ``run`` waits for running jobs once stopped (exit within 10 s)
_PASS_STEP = 0.001  # seconds between the evaluation times of two passes of one logs job
_STOP_CHECK_EVERY = 256  # deliveries between two looks at the stop event
_MILLIS_ABOVE = 1e11  # as monitor.sources.logs.reader: larger Unix times are milliseconds
_JOB_RUNS = metadata.tables["job_runs"]
# Counters that are non-zero in an idle run too (state, not activity).
_STANDING_COUNTERS = frozenset({"datasets_skipped", "pending"})


class Evaluate(Protocol):
    """What the alert engine is to the daemon (``evaluate_cycle``; injectable: tests wrap
    it to simulate a crash)."""

    def __call__(
        self,
        conn: Connection,
        settings: Settings,
        reports: Sequence[DatasetReport],
        now: float,
        *,
        judges: Judges | None = None,
    ) -> CycleOutcome: ...


# How the Graph jobs poll (injectable): (settings, now, parts) -> snapshot per dataset.
GraphPoll = Callable[[Settings, float, frozenset[Part]], Mapping[str, GraphSnapshot]]


class Drainer(Protocol):
    """What the daemon needs of the outbox sender (``monitor.notify.sender``)."""

    def drain(self, now: float | None = None) -> Any: ...


class Abandoned(Exception):
    """The daemon is stopping: the job gave up its step (its transaction rolled back)."""


def _always(_settings: Settings) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: its name, its interval from the settings, what it runs.

    ``run(daemon, now, stop)`` returns the counters recorded in ``job_runs``;
    ``enabled(settings)`` is false for a job the settings switch off (not scheduled);
    ``needs_graph``: not scheduled without a Graph API source (``no_graph_source``)."""

    name: str
    every: Callable[[Settings], float]
    run: Callable[[Daemon, float, threading.Event], dict[str, Any]]
    summary: str
    enabled: Callable[[Settings], bool] = _always
    needs_graph: bool = False


@dataclass(slots=True)
class JobResult:
    job: str
    ok: bool
    started_at: float
    finished_at: float
    counters: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- one logs cycle --------------------------------------------------------------------


def _seconds(value: float) -> float:
    number = float(value)
    return number / 1000.0 if number > _MILLIS_ABOVE else number


def recent_part(delivery: Delivery, since: float) -> Delivery | None:
    """The part of ``delivery`` sent at or after ``since``: by its send time, else event
    by event by ``event_time`` (CONTRACTS.md §6). ``None`` when nothing is that recent."""
    if delivery.sent_at is not None:
        return delivery if delivery.sent_at >= since else None
    kept = [e for e in delivery.events if _seconds(e["event_time"]) >= since]
    if not kept:
        return None
    if len(kept) == len(delivery.events):
        return delivery
    return dataclasses.replace(delivery, events=kept)  # the reader's object stays whole


class CycleBatch:
    """What one logs cycle accumulates: rollups of every delivery, checks of recent ones."""

    def __init__(
        self, settings: Settings, now: float, series: Mapping[str, VolumeHistory] | None = None
    ) -> None:
        """``series``: each dataset's stored hourly series as they stood before this
        cycle (``monitor.engine.series.Current.ADD``), for the ``volume`` check."""
        self.settings = settings
        self.now = now
        self.series = dict(series or {})
        self.since = now - settings.alerts.window
        self.rollups: dict[str, RollupAccumulator] = {}
        self.audits: dict[str, DatasetAudit] = {}
        self.deliveries = 0
        self.recent = 0

    def observe(self, delivery: Delivery) -> None:
        self.deliveries += 1
        dataset = delivery.dataset_id
        rollup = self.rollups.get(dataset)
        if rollup is None:
            rollup = self.rollups[dataset] = RollupAccumulator(dataset)
        rollup.observe(delivery)
        recent = recent_part(delivery, self.since)
        if recent is not None:
            self.recent += 1
            self._audit(dataset).observe(recent)

    def _audit(self, dataset: str) -> DatasetAudit:
        audit = self.audits.get(dataset)
        if audit is None:
            audit = self.audits[dataset] = DatasetAudit(
                dataset, self.settings, self.now, series=self.series.get(dataset)
            )
        return audit

    def all_rollups(self) -> list[HourRollup]:
        return [r for acc in self.rollups.values() for r in acc.result()]

    def reports(self) -> list[DatasetReport]:
        """One report per configured dataset (all checks ``skipped`` without recent
        deliveries), then the unconfigured datasets that had recent deliveries."""
        for ds in self.settings.datasets:
            self._audit(ds.id)
        order = {ds.id: i for i, ds in enumerate(self.settings.datasets)}
        reports = [a.report() for a in self.audits.values()]
        for report in reports:
            acc = self.rollups.get(report.dataset_id)
            report.rollups = acc.result() if acc is not None else []
        reports.sort(key=lambda r: (order.get(r.dataset_id, len(order)), r.dataset_id))
        return reports


def _insert_job_run(conn: Connection, result: JobResult, keep: int) -> None:
    conn.execute(insert(_JOB_RUNS).values(**result.to_dict()))
    # Keep the newest ``keep`` rows of this job: find the id of the oldest to keep.
    oldest_kept = (
        select(_JOB_RUNS.c.id)
        .where(_JOB_RUNS.c.job == result.job)
        .order_by(_JOB_RUNS.c.id.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        delete(_JOB_RUNS).where(_JOB_RUNS.c.job == result.job, _JOB_RUNS.c.id < oldest_kept)
    )


def _error_text(err: BaseException, secrets: Iterable[str]) -> str:
    """One scrubbed line naming ``err`` (what ``job_runs.error`` holds)."""
    text = f"{type(err).__name__}: {err}" if not isinstance(err, StoreError) else str(err)
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return scrub_text(" ".join(text.split()))[:300]


def _plain(value: Any) -> Any:
    """``value`` as JSON-able data: dataclasses and objects with ``to_dict`` included."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


# --- the daemon ------------------------------------------------------------------------


class Daemon:
    """The jobs of one configuration over one store. Use ``Daemon.open`` (it owns the
    store and the notifiers it builds) or pass the parts (tests); close with ``close``
    or a ``with`` block. ``clock`` is the wall clock (Unix seconds)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sender: Drainer,
        *,
        clock: Callable[[], float] = time.time,
        tailer: LogTailer | None = None,
        evaluate: Evaluate = evaluate_cycle,
        secrets: Sequence[str] = (),
        closers: Sequence[Callable[[], None]] = (),
        job_runs_kept: int = JOB_RUNS_KEPT,
        notifiers: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        graph_poll: GraphPoll | None = None,
    ) -> None:
        """``env``: where the Graph API tokens are (default ``os.environ``); ``graph_poll``
        replaces ``monitor.engine.graph_inputs.poll_graph`` (tests)."""
        self.settings = settings
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._graph_poll = graph_poll or self._poll_graph
        self.store = store
        self.sender = sender
        self.notifiers = dict(notifiers or {})  # the weekly report sends through them too
        self.clock = clock
        self.tailer = tailer or LogTailer(
            settings.datasets,
            max_line_bytes=settings.input.max_line_bytes,
            max_problems=settings.input.max_problems,
        )
        self.timezone = _zone(settings.schedule.timezone)
        self._evaluate = evaluate
        self._secrets = list(secrets)
        self._closers = list(closers)
        self._job_runs_kept = max(1, job_runs_kept)
        self._idle = threading.Condition()
        self._running = 0

    @classmethod
    def open(
        cls,
        settings: Settings,
        db_url: str,
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Daemon:
        """Open the store at ``db_url``, build the configured notifiers (secrets and Graph
        API tokens from ``env``, default ``os.environ``) and their outbox sender."""
        from monitor.jsonlog import secret_values
        from monitor.notify import build_notifiers
        from monitor.notify.sender import OutboxSender

        environ = os.environ if env is None else env
        _zone(settings.schedule.timezone)  # fail on a bad zone before opening anything
        store = Store.open(db_url)
        try:
            notifiers = build_notifiers(settings, environ)
            sender = OutboxSender(store.engine, notifiers, settings, clock)
        except BaseException:
            store.close()
            raise
        closers = [c for n in notifiers.values() if callable(c := getattr(n, "close", None))]
        return cls(
            settings, store, sender, clock=clock, secrets=secret_values(settings, environ),
            closers=[store.close, *closers], notifiers=notifiers, env=environ,
        )  # fmt: skip

    def close(self) -> None:
        """Release what ``open`` built, in reverse order of creation."""
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # one failing close must not keep the others open
                log.exception("error while closing")
        self._closers.clear()

    def __enter__(self) -> Daemon:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- jobs ---------------------------------------------------------------------------

    def logs_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``logs`` job: tail, roll up, check, evaluate, advance, in one transaction
        per pass; a backlog larger than the tailer's byte budget (a first start on a big
        history) takes several passes, so that other jobs get the database in between.
        Raises ``Abandoned`` (the pass rolled back) when ``stop`` is set meanwhile."""
        totals: Counter[str] = Counter()
        for n in itertools.count():
            # Each pass is an evaluation of its own: a millisecond apart, so that two
            # passes can never produce the same outbox key (keys carry the time in ms).
            counters, more = self._logs_pass(now + n * _PASS_STEP, stop)
            totals.update(counters)
            if not more:
                totals["passes"] = n + 1
                return dict(totals)
            if stop is not None and stop.is_set():
                raise Abandoned("the daemon is stopping")
        raise AssertionError("unreachable")  # pragma: no cover

    def _logs_pass(self, now: float, stop: threading.Event | None) -> tuple[dict[str, int], bool]:
        # The series as committed before this pass: its own lines add to them (volume).
        series = load_volume_history(self.store, self.settings, now, current=Current.ADD)
        with write_connection(self.store.engine) as conn, conn.begin():
            read = self.tailer.read(conn, now)
            batch = self._consume(read, CycleBatch(self.settings, now, series), stop)
            read.save(conn)
            rollup_rows = upsert_rollups(conn, batch.all_rollups(), "add")
            reports = batch.reports()
            if batch.recent:
                self._record_results(conn, now, batch, read.stats, reports)
            # Graph findings are the Graph jobs' to judge (monitor.daemon.graph_jobs).
            outcome = self._evaluate(conn, self.settings, reports, now, judges=judges_logs)
        evaluated = sum(1 for r in reports if r.events)
        counters = {
            "deliveries": batch.deliveries,
            "recent_deliveries": batch.recent,
            "events": read.stats.events,
            "malformed_lines": read.stats.malformed_lines,
            "malformed_events": read.stats.malformed_events,
            "rollup_rows": rollup_rows,
            "datasets_evaluated": evaluated,
            "datasets_skipped": len(reports) - evaluated,
            **read.counters.to_dict(),
            **outcome.summary(),
        }
        return counters, read.exhausted

    @staticmethod
    def _consume(read: TailRead, batch: CycleBatch, stop: threading.Event | None) -> CycleBatch:
        for i, delivery in enumerate(read):
            if stop is not None and i % _STOP_CHECK_EVERY == 0 and stop.is_set():
                raise Abandoned("the daemon is stopping")
            batch.observe(delivery)
        return batch

    def _record_results(
        self,
        conn: Connection,
        now: float,
        batch: CycleBatch,
        stats: ReadStats,
        reports: list[DatasetReport],
    ) -> None:
        """The cycle's check results and findings as an audit run (reports, ``report``)."""
        report = AuditReport(
            generated_at=self.clock(), now=now, inputs=stats, datasets=reports, since=batch.since
        )
        # Private on purpose: the run must be written in this cycle's transaction.
        Store.insert_run(conn, report)

    def graph_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``graph`` job: poll ``/stats``, check, store and evaluate (``_graph_job``)."""
        return self._graph_job(STATS_JOB, now, stop)

    def quality_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``quality`` job: Dataset Quality, ``da_checks``, the token (``_graph_job``)."""
        return self._graph_job(QUALITY_JOB, now, stop)

    def _graph_job(self, job: GraphJob, now: float, stop: threading.Event | None) -> dict[str, Any]:
        """Poll ``job``'s parts of every dataset with a token, run the checks over the
        snapshots, then store them and evaluate the alerts in one write transaction: a
        crash in between stores nothing and decides nothing, and the next run polls again.
        A Graph failure is a result (``error`` checks, SOURCE_UNAVAILABLE), not a crash."""
        # Polling happens outside the transaction: it may take a while, and other jobs
        # need the database meanwhile.
        snapshots = self._graph_poll(self.settings, now, job.parts)
        if stop is not None and stop.is_set():
            raise Abandoned("the daemon is stopping")
        reports = graph_reports(self.settings, job, snapshots, now=now, store=self.store)
        with write_connection(self.store.engine) as conn, conn.begin():
            write_graph(conn, snapshots.values())
            outcome = self._evaluate(
                conn, self.settings, reports, now, judges=graph_judges(snapshots)
            )
        return {**poll_counters(snapshots), **outcome.summary()}

    def _poll_graph(
        self, settings: Settings, now: float, parts: frozenset[Part]
    ) -> Mapping[str, GraphSnapshot]:
        return poll_graph(settings, now=now, env=self.env, parts=parts)

    def notify_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``notify`` job: send what the outbox holds (retries are the sender's)."""
        stats = _plain(self.sender.drain(now))
        return stats if isinstance(stats, dict) else {"result": stats}

    # -- running ------------------------------------------------------------------------

    def run_job(
        self, spec: JobSpec, now: float | None = None, stop: threading.Event | None = None
    ) -> JobResult:
        """Run one job now (at ``now``, default the clock), record it in ``job_runs`` and
        log it. Never raises for a failing job: the result says so."""
        started = self.clock()
        when = started if now is None else now
        result = JobResult(spec.name, ok=True, started_at=started, finished_at=started)
        try:
            result.counters = spec.run(self, when, stop or threading.Event())
        except Abandoned:
            result.ok, result.error = False, "abandoned: the daemon is stopping"
        except Exception as err:
            result.ok, result.error = False, _error_text(err, self._secrets)
            log.exception("job failed", extra={"job": spec.name})
        result.finished_at = self.clock()
        self._record(result)
        # An idle run (every few seconds for notify) is not worth a line at INFO.
        level = (
            logging.WARNING if not result.ok else logging.INFO if _busy(result) else logging.DEBUG
        )
        log.log(level, "job finished", extra={"job": spec.name, **_log_fields(result)})
        return result

    def _record(self, result: JobResult) -> None:
        try:
            with write_connection(self.store.engine) as conn, conn.begin():
                _insert_job_run(conn, result, self._job_runs_kept)
        except Exception:  # bookkeeping must not take a job (or the daemon) down
            log.exception("cannot record the job run", extra={"job": result.job})

    def run_once(self, now: float | None = None) -> list[JobResult]:
        """Every job once, in ``JOBS`` order (the outbox is drained last), at ``now``."""
        self._log_not_scheduled()
        return [self.run_job(spec, now) for spec in self.jobs()]

    def jobs(self) -> list[JobSpec]:
        """The jobs of ``JOBS`` that the settings enable, in order."""
        off = not_scheduled(self.settings, self.env)
        return [spec for spec in JOBS if spec.name not in off]

    def _log_not_scheduled(self) -> None:
        for job, reason in not_scheduled(self.settings, self.env).items():
            log.info("job not scheduled", extra={"job": job, "reason": reason})

    def run(self, stop: threading.Event) -> None:
        """Schedule every job and return once ``stop`` is set and running jobs have ended
        (a logs cycle abandons its transaction; waiting is bounded by ``STOP_GRACE``)."""
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            timezone=self.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        start = datetime.now(self.timezone)
        for spec in self.jobs():
            every = spec.every(self.settings)
            scheduler.add_job(
                self._scheduled, "interval", seconds=every, args=[spec, stop], id=spec.name,
                name=spec.name, next_run_time=start,
            )  # fmt: skip
        scheduler.start()
        jobs = {s.name: s.every(self.settings) for s in self.jobs()}
        log.info("daemon started", extra={"jobs": jobs})
        self._log_not_scheduled()
        try:
            stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            if not self._wait_idle(STOP_GRACE):
                log.warning("a job is still running; stopping anyway")
            log.info("daemon stopped")

    def _scheduled(self, spec: JobSpec, stop: threading.Event) -> None:
        if stop.is_set():
            return
        with self._idle:
            self._running += 1
        try:
            self.run_job(spec, None, stop)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone: unknown time zone {name!r}") from None


def _busy(result: JobResult) -> bool:
    """Whether a run did anything: a counter other than the standing ones is non-zero."""
    return any(
        isinstance(v, int | float) and v and k not in _STANDING_COUNTERS
        for k, v in result.counters.items()
    )


def _log_fields(result: JobResult) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ok": result.ok,
        "seconds": round(result.finished_at - result.started_at, 3),
        "counters": result.counters,
    }
    if result.error:
        fields["error"] = result.error
    return fields


def _logs_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    return daemon.logs_cycle(now, stop)


def _notify_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    return daemon.notify_cycle(now, stop)


def _graph_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    return daemon.graph_cycle(now, stop)


def _quality_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    return daemon.quality_cycle(now, stop)


# The weekly job only looks whether a week is due (one SELECT) this often; the report
# time itself is [schedule] weekly_report ("mon 08:00"), see monitor.daemon.weekly.
WEEKLY_CHECK_EVERY = 300.0


def _weekly_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    from monitor.daemon.weekly import run_weekly

    return run_weekly(daemon.store, daemon.settings, now, daemon.notifiers, clock=daemon.clock)


def _weekly_enabled(settings: Settings) -> bool:
    from monitor.daemon.weekly import enabled

    return enabled(settings)


# The registry of jobs, in ``run_once`` order: the checks' jobs first, so that ``once``
# drains what they queued.
JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        "logs",
        lambda s: s.schedule.logs_every,
        _logs_job,
        "read new log lines, run the checks, evaluate alerts",
    ),
    JobSpec(
        "graph",
        lambda s: s.schedule.graph_every,
        _graph_job,
        "poll Meta's /stats (browser/server counts, match keys), run the Graph checks",
        needs_graph=True,
    ),
    JobSpec(
        "quality",
        lambda s: s.schedule.quality_every,
        _quality_job,
        "poll Dataset Quality, da_checks and the token, run the Graph checks",
        needs_graph=True,
    ),
    JobSpec("notify", lambda s: s.schedule.notify_every, _notify_job, "send queued notifications"),
    JobSpec(
        "weekly_report",
        lambda s: WEEKLY_CHECK_EVERY,
        _weekly_job,
        "generate and send the weekly report once its time has come (each week once)",
        _weekly_enabled,
    ),
)


def not_scheduled(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The jobs of ``JOBS`` that are not scheduled, each with the reason (``status``, the
    daemon's log). ``env``: where the Graph API tokens are (default ``os.environ``)."""
    graph_off = no_graph_source(settings, env)
    out = {}
    for spec in JOBS:
        if not spec.enabled(settings):
            out[spec.name] = "switched off by the settings"
        elif spec.needs_graph and graph_off:
            out[spec.name] = graph_off
    return out


# --- status ----------------------------------------------------------------------------


def last_runs(store: Store) -> dict[str, dict[str, Any]]:
    """The latest ``job_runs`` row of each job."""
    latest = select(func.max(_JOB_RUNS.c.id)).group_by(_JOB_RUNS.c.job)
    query = select(_JOB_RUNS).where(_JOB_RUNS.c.id.in_(latest)).order_by(_JOB_RUNS.c.job)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {r["job"]: {k: v for k, v in r.items() if k not in ("id", "job")} for r in rows}


def status(
    store: Store, settings: Settings, now: float, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What ``capi-monitor status`` shows: open alerts, active silences, the last run of
    each job and why a job is not scheduled, notifier health and watched files.
    Read-only; nothing personal. ``env``: as for ``not_scheduled``."""
    from monitor.alerts.queries import open_alerts
    from monitor.alerts.silences import active_silences
    from monitor.notify.sender import notifier_health

    with store.engine.connect() as conn:
        cursors = load_cursors(conn)
    runs = last_runs(store)
    return {
        "now": datetime.fromtimestamp(now, UTC).isoformat(),
        "alerts": [_alert(a) for a in open_alerts(store.engine)],
        "silences": [_plain(s) for s in active_silences(store.engine, now)],
        "jobs": {spec.name: runs.get(spec.name) for spec in JOBS},
        "not_scheduled": not_scheduled(settings, env),
        "notifiers": _plain(notifier_health(store.engine, now, _configured_notifiers(settings))),
        "log_files": {
            "watched": sum(1 for c in cursors if c.active),
            "datasets": sorted({c.dataset_id for c in cursors if c.active and c.dataset_id}),
        },
    }


def _configured_notifiers(settings: Settings) -> list[str]:
    notify = settings.notify
    return [n for n, conf in (("slack", notify.slack), ("email", notify.email)) if conf]


def _alert(record: AlertRecord) -> dict[str, Any]:
    key = record.key
    return {
        "fingerprint": key.fingerprint,
        "dataset_id": key.dataset_id,
        "check": key.check,
        "code": key.code,
        "event_name": key.event_name,
        "state": str(record.state),
        "severity": str(record.severity),
        "started_at": record.started_at,
        "fired_at": record.fired_at,
        "muted_by": record.muted_by,
    }


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def status_lines(data: Mapping[str, Any]) -> list[str]:
    """``status`` data as short lines for a terminal."""
    alerts = data["alerts"]
    lines = [f"open alerts: {len(alerts)}"]
    for a in alerts:
        name = f" {a['event_name']}" if a["event_name"] else ""
        muted = f" (muted: {a['muted_by']})" if a["muted_by"] else ""
        since = _when(a["fired_at"] or a["started_at"])
        lines.append(
            f"  {a['state'].upper()} {a['severity']} {a['dataset_id']} {a['code']}{name}"
            f" since {since}{muted}"
        )
    lines.append(f"active silences: {len(data['silences'])}")
    lines += [f"  {s}" for s in data["silences"]]
    lines.append("jobs:")
    off = data.get("not_scheduled") or {}
    for job, run in data["jobs"].items():
        if job in off:
            lines.append(f"  {job}: not scheduled ({off[job]})")
            continue
        if run is None:
            lines.append(f"  {job}: never run")
            continue
        state = "ok" if run["ok"] else f"FAILED: {run['error']}"
        lines.append(f"  {job}: last run {_when(run['finished_at'])}, {state}")
    lines.append("notifiers:" if data["notifiers"] else "notifiers: none configured")
    for n in data["notifiers"]:
        error = (
            f", last error {_when(n['last_error_at'])}: {n['last_error']}"
            if n["last_error"]
            else ""
        )
        lines.append(
            f"  {n['notifier']}: {n['status']}, last sent {_when(n['last_success_at'])},"
            f" {n['pending']} waiting, {n['failed']} failed{error}"
        )
    files = data["log_files"]
    lines.append(f"log files watched: {files['watched']}")
    return lines

"""The daemon: scheduled jobs over sources -> checks -> store -> alerts -> notify.

``Daemon`` wires the parts a ``Settings`` describes (log tailer, checks, store, alert
engine, outbox sender) and runs the jobs of ``monitor.daemon.jobs.JOBS``.

The ``logs`` job is one write transaction per pass that reads the new complete log lines
(``monitor.sources.logs.tail``), adds the hourly rollups of *all* of them, runs the
checks over the deliveries sent within ``[alerts] window`` of now
(``monitor.engine.cycle.CycleBatch``; older lines are history: rollups and baselines
only), records the cycle's results, lets the alert engine decide
(``monitor.alerts.engine.evaluate_cycle``: alert and outbox rows) and advances the log
cursors. Everything commits together or not at all, so a crash at any point neither
loses nor duplicates an alert: the next cycle re-reads the same lines. A dataset without
new deliveries in the window has its log checks ``skipped``, which never resolves an
alert. Graph API findings are not judged here (``judges_logs``); the ``graph`` and
``quality`` jobs poll first, then store the snapshot and evaluate in one transaction
(``monitor.daemon.graph_jobs``).

``run(stop)`` schedules the jobs with APScheduler in ``[schedule] timezone`` and returns
once ``stop`` is set (by the entry point's signal handlers) and running jobs finished or
abandoned their step; ``run_once`` runs every job once, in order (cron, tests). Every
job run is recorded in ``job_runs`` (``monitor.daemon.status`` shows the last one of
each job).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from monitor.alerts.engine import CycleOutcome, Judges, evaluate_cycle
from monitor.config import Settings
from monitor.daemon.fleet import NOTIFY_LEASE, Membership, notify_lease_ttl
from monitor.daemon.graph_jobs import (
    QUALITY_JOB,
    STATS_JOB,
    GraphJob,
    graph_judges,
    graph_reports,
    judges_logs,
    poll_counters,
)
from monitor.daemon.jobs import (
    JOB_RUNS_KEPT,
    JOBS,
    Abandoned,
    JobResult,
    JobSpec,
    busy,
    error_text,
    log_fields,
    not_scheduled,
    plain,
)
from monitor.daemon.live import Views
from monitor.daemon.metrics import DaemonMetrics
from monitor.daemon.reload import check_reloadable
from monitor.daemon.server import DaemonServer
from monitor.engine.cycle import CycleBatch
from monitor.engine.graph_inputs import poll_graph
from monitor.engine.orders_inputs import kept_since
from monitor.engine.series import load_volume_history
from monitor.errors import CapiMonitorError, ConfigError
from monitor.model.graph import GraphSnapshot, Part
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.series import Current
from monitor.sources.logs.tail import LogTailer, TailRead
from monitor.sources.orders.common import Sleep, default_sleep
from monitor.store import Store
from monitor.store.cursors import load_cursors, save_cursors
from monitor.store.db import upsert_rollups, write_connection
from monitor.store.graph import write_graph
from monitor.store.job_runs import insert_job_run
from monitor.store.orders import insert_purchases

log = logging.getLogger(__name__)

STOP_GRACE = 8.0  # seconds ``run`` waits for running jobs once stopped (exit within 10 s)
_PASS_STEP = 0.001  # seconds between the evaluation times of two passes of one logs job
_STOP_CHECK_EVERY = 256  # deliveries between two looks at the stop event
_GRAPH_LEASE_INTERVALS = 1.5  # a Graph or orders job's lease, in its intervals
_WAKE_EVERY = 0.2  # seconds between two looks at the reload event while running
RELOAD_WAIT = 60.0  # seconds a reload waits for running jobs to finish
_REFUSED = "config reload refused; the running config is kept"


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
        orders_sleep: Sleep | None = None,
    ) -> None:
        """``env``: where the Graph API tokens are (default ``os.environ``); ``graph_poll``
        replaces ``monitor.engine.graph_inputs.poll_graph`` (tests); ``orders_sleep``: how
        the orders readers wait between retries (tests: no waiting)."""
        self.settings = settings
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._graph_poll = graph_poll or self._poll_graph
        self._orders_sleep = orders_sleep or default_sleep
        self.store = store
        self.sender = sender
        self.notifiers = dict(notifiers or {})  # the weekly report sends through them too
        self.clock = clock
        self.tailer = tailer or LogTailer(
            settings.datasets,
            max_line_bytes=settings.input.max_line_bytes,
            max_problems=settings.input.max_problems,
            graph_hosts=settings.graph_hosts,
        )
        self.timezone = _zone(settings.schedule.timezone)
        self._evaluate = evaluate
        self._secrets = list(secrets)
        self._closers = list(closers)
        self._job_runs_kept = max(1, job_runs_kept)
        self._idle = threading.Condition()
        self._running = 0
        self.fleet = Membership(settings, store.engine)
        self._owns_notifiers = False  # built by ``open``: rebuilt on reload
        # Every metric carries the instance name in fleet mode (a PostgreSQL store).
        fleet_mode = store.engine.dialect.name == "postgresql"
        self.metrics = DaemonMetrics(store, self.fleet.name if fleet_mode else None)
        observe = getattr(sender, "observe_outcomes", None)
        if callable(observe):
            observe(self.metrics.notification)

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
        daemon = cls(
            settings, store, sender, clock=clock, secrets=secret_values(settings, environ),
            closers=[store.close, *closers], notifiers=notifiers, env=environ,
        )  # fmt: skip
        daemon._owns_notifiers = True
        return daemon

    def reload(self, new: Settings) -> None:
        """Validate ``new`` (``ConfigError``, nothing changed) and apply it: the caller has
        paused the scheduler and waited for running jobs (``monitor.daemon.reload``)."""
        from monitor.jsonlog import remember_secrets, secret_values
        from monitor.notify import build_notifiers
        from monitor.notify.sender import OutboxSender

        check_reloadable(self.settings, new)
        zone = _zone(new.schedule.timezone)
        secrets = secret_values(new, self.env)
        if self._owns_notifiers:
            notifiers = build_notifiers(new, self.env)
            sender = OutboxSender(self.store.engine, notifiers, new, self.clock)
            sender.observe_outcomes(self.metrics.notification)
            for old in self.notifiers.values():
                close = getattr(old, "close", None)
                if callable(close):
                    close()
            self.notifiers, self.sender = notifiers, sender
            self._secrets = list(secrets)
        remember_secrets(secrets)  # the log masks them from now on
        self.settings, self.timezone = new, zone
        self.tailer = LogTailer(
            new.datasets,
            max_line_bytes=new.input.max_line_bytes,
            max_problems=new.input.max_problems,
            graph_hosts=new.graph_hosts,
        )
        self.fleet.settings = new

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
            me = self.fleet.name
            read = self.tailer.read(load_cursors(conn, me), now)
            batch = self._consume(read, CycleBatch(self.settings, now, series), stop)
            save_cursors(conn, read.cursors(), read.retired_before, me)
            rollup_rows = upsert_rollups(conn, batch.all_rollups(), "add", me)
            purchases = insert_purchases(conn, batch.purchases)
            reports = batch.reports()
            if batch.recent:
                self._record_results(conn, now, batch, read.stats, reports)
            # The fleet's view: what the other live instances still see joins ours.
            fleet, fleet_counters = self.fleet.judge(conn, reports, now)
            # Graph findings are the Graph jobs' to judge (monitor.daemon.graph_jobs).
            outcome = self._evaluate(conn, self.settings, fleet, now, judges=judges_logs)
        read.keep()  # committed: sender-format calls still waiting carry over to the next pass
        # Counted once committed: a rolled-back pass is read again.
        # A delivery that does not name its format: the pass's only detected one.
        formats = read.stats.formats
        only = next(iter(formats)) if len(formats) == 1 else "unknown"
        for (dataset, fmt), count in batch.events_read.items():
            self.metrics.events_read(dataset, fmt or only, count)
        self.metrics.malformed_lines(read.stats.malformed_lines)
        evaluated = sum(1 for r in reports if r.events)
        counters = {
            "deliveries": batch.deliveries,
            "recent_deliveries": batch.recent,
            "events": read.stats.events,
            "malformed_lines": read.stats.malformed_lines,
            "malformed_events": read.stats.malformed_events,
            "skipped_lines": read.stats.skipped_lines,
            "unpaired_responses": read.stats.unpaired_responses,
            "rollup_rows": rollup_rows,
            "rollup_failures": batch.rollup_failures,
            "check_failures": sum(len(a.failures) for a in batch.audits.values()),
            "purchases_kept": purchases,
            "datasets_evaluated": evaluated,
            "datasets_skipped": len(reports) - evaluated,
            **read.counters.to_dict(),
            **outcome.summary(),
            **fleet_counters,
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
        # One instance of a fleet polls (its lease outlives one interval): Meta's answers
        # are the same for every instance, and they share the rate limits.
        every = self.settings.schedule.graph_every if job is STATS_JOB else None
        every = every or self.settings.schedule.quality_every
        if not self.fleet.holds(f"job:{job.name}", now, every * _GRAPH_LEASE_INTERVALS):
            return {"standby": 1}
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
        polled = poll_counters(snapshots)
        errors = min(polled["part_errors"], polled["graph_calls"])
        self.metrics.graph_requests("ok", polled["graph_calls"] - errors)
        self.metrics.graph_requests("error", errors)
        return {**polled, **outcome.summary()}

    def _poll_graph(
        self, settings: Settings, now: float, parts: frozenset[Part]
    ) -> Mapping[str, GraphSnapshot]:
        return poll_graph(settings, now=now, env=self.env, parts=parts)

    def orders_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``orders`` job: read the orders sources, then store, judge and evaluate in
        one transaction (``monitor.daemon.orders_jobs``). A source that cannot be read is
        a result (``SOURCE_UNAVAILABLE``), not a failed job."""
        from monitor.daemon import orders_jobs as jobs
        from monitor.store import orders as stored

        # One instance of a fleet reads the sources (the Purchases of every instance are
        # in the store): its lease outlives one interval, another takes over after that.
        every = self.settings.schedule.orders_every
        if not self.fleet.holds("job:orders", now, every * _GRAPH_LEASE_INTERVALS):
            return {"standby": 1}
        plan = jobs.orders_plan(self.settings)
        oldest = kept_since(self.settings, now)
        with self.store.engine.connect() as conn:
            starts = {
                name: jobs.read_since(p.entry, stored.load_order_cursor(conn, name), oldest)
                for name, p in plan.items()
            }
        # Reading happens outside the transaction: it may take a while.
        snapshots = jobs.read_sources(plan, starts, now, env=self.env, sleep=self._orders_sleep)
        if stop is not None and stop.is_set():
            raise Abandoned("the daemon is stopping")
        with write_connection(self.store.engine) as conn, conn.begin():
            run = jobs.judge_all(conn, self.settings, plan, snapshots, now)
            report = AuditReport(
                generated_at=self.clock(), now=now, inputs=ReadStats(), datasets=run.reports
            )
            Store.insert_run(conn, report)
            outcome = self._evaluate(
                conn, self.settings, run.reports, now, judges=jobs.judges_orders
            )
        return {**run.counters, **outcome.summary()}

    def notify_cycle(self, now: float, stop: threading.Event | None = None) -> dict[str, Any]:
        """The ``notify`` job: send what the outbox holds (retries are the sender's), when
        this instance holds the fleet's notify lease."""
        if not self.fleet.holds(NOTIFY_LEASE, now, notify_lease_ttl(self.settings)):
            return {"standby": 1}
        stats = plain(self.sender.drain(now))
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
            result.ok, result.error = False, error_text(err, self._secrets)
            log.exception("job failed", extra={"job": spec.name})
        result.finished_at = self.clock()
        self._record(result)
        self.metrics.job_run(spec.name, result.ok)
        # An idle run (every few seconds for notify) is not worth a line at INFO.
        level = (
            logging.WARNING if not result.ok else logging.INFO if busy(result) else logging.DEBUG
        )
        log.log(level, "job finished", extra={"job": spec.name, **log_fields(result)})
        return result

    def _record(self, result: JobResult) -> None:
        try:
            with write_connection(self.store.engine) as conn, conn.begin():
                values = {**result.to_dict(), "instance": self.fleet.name}
                insert_job_run(conn, values, self._job_runs_kept)
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

    def run(
        self,
        stop: threading.Event,
        reload: threading.Event | None = None,
        load: Callable[[], Settings] | None = None,
    ) -> None:
        """Join the fleet, schedule every job and return once ``stop`` is set and running
        jobs have ended (a logs cycle abandons its transaction; waiting is bounded by
        ``STOP_GRACE``), having left the fleet; serves ``[server] listen`` meanwhile.
        When ``reload`` is set (SIGHUP), ``load()`` reads the config again and the daemon
        applies it if valid (``monitor.daemon.reload``).
        ``ServerError`` when the port is busy, ``FleetError`` when this instance may not
        run (its name is taken, or another instance uses the SQLite file)."""
        from apscheduler.schedulers.background import BackgroundScheduler

        address = self.settings.server.address
        server = DaemonServer(address, Views(self, self.clock())) if address else None
        try:
            self.fleet.join(self.clock())
            try:
                if server is not None:
                    server.start()
                self._run(stop, BackgroundScheduler, reload, load)
            finally:
                self.fleet.leave(self.clock())
        finally:
            if server is not None:
                server.stop()

    def _schedule(self, scheduler: Any, stop: threading.Event) -> dict[str, float]:
        start = datetime.now(self.timezone)
        for spec in self.jobs():
            every = spec.every(self.settings)
            scheduler.add_job(
                self._scheduled, "interval", seconds=every, args=[spec, stop], id=spec.name,
                name=spec.name, next_run_time=start,
            )  # fmt: skip
        return {s.name: s.every(self.settings) for s in self.jobs()}

    def _run(
        self,
        stop: threading.Event,
        scheduler_class: Any,
        reload: threading.Event | None = None,
        load: Callable[[], Settings] | None = None,
    ) -> None:
        scheduler = scheduler_class(
            timezone=self.timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        jobs = self._schedule(scheduler, stop)
        scheduler.start()
        log.info("daemon started", extra={"jobs": jobs})
        self._log_not_scheduled()
        try:
            while not stop.wait(_WAKE_EVERY):
                if reload is not None and load is not None and reload.is_set():
                    reload.clear()
                    self._reload(scheduler, stop, load)
        finally:
            scheduler.shutdown(wait=False)
            if not self._wait_idle(STOP_GRACE):
                log.warning("a job is still running; stopping anyway")
            log.info("daemon stopped")

    def _reload(self, scheduler: Any, stop: threading.Event, load: Callable[[], Settings]) -> None:
        """SIGHUP: read and validate the config, then apply it between job runs; a bad
        config is reported and the running one kept (``monitor.daemon.reload``)."""
        try:
            new = load()
            check_reloadable(self.settings, new)
        except CapiMonitorError as err:
            log.error(
                "config reload refused; the running config is kept", extra={"error": str(err)}
            )
            return
        scheduler.pause()
        try:
            if not self._wait_idle(RELOAD_WAIT):
                log.error("config reload refused: a job is still running; try again")
                return
            try:
                self.reload(new)
            except CapiMonitorError as err:
                log.error(_REFUSED, extra={"error": str(err)})
                return
            scheduler.remove_all_jobs()
            jobs = self._schedule(scheduler, stop)
            log.info("config reloaded", extra={"jobs": jobs})
            self._log_not_scheduled()
        finally:
            scheduler.resume()

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

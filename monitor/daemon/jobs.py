"""The daemon's jobs: what each one runs, how often, and when it is not scheduled.

``JOBS`` is the registry, in ``run_once`` order (the checks' jobs first, so that
``once`` drains what they queued):

- ``logs`` (every ``[schedule] logs_every``): read the new complete log lines, roll them
  up, run the checks over the recent ones, evaluate the alerts, advance the cursors, in
  one transaction (``monitor.daemon.scheduler.Daemon.logs_cycle``).
- ``graph`` (``graph_every``) and ``quality`` (``quality_every``): poll the Graph API and
  judge the Graph findings (``monitor.daemon.graph_jobs``). Not scheduled without
  ``[meta]`` or without a dataset that has a token.
- ``orders`` (``orders_every``): read the ``[[orders]]`` sources and reconcile them with
  the Purchases the ``logs`` job kept (``monitor.daemon.orders_jobs``). Not scheduled
  when no dataset names an orders source.
- ``notify`` (``notify_every``): drain the outbox (``monitor.notify.sender``).
- ``weekly_report`` (looks every ``WEEKLY_CHECK_EVERY`` seconds whether ``[schedule]
  weekly_report`` has come): claims the due week, writes and sends the weekly report
  (``monitor.daemon.weekly``). Not scheduled with ``weekly_report = "off"`` or without a
  destination.

A run's outcome is a ``JobResult``, recorded in ``job_runs`` (``monitor.store.job_runs``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitor.config import Settings
from monitor.daemon.graph_jobs import no_graph_source
from monitor.errors import StoreError
from monitor.mask import scrub_text

if TYPE_CHECKING:
    from monitor.daemon.scheduler import Daemon

JOB_RUNS_KEPT = 500  # rows kept per job in ``job_runs`` (a notify run every 5 s adds up)
# Counters that are non-zero in an idle run too (state, not activity).
_STANDING_COUNTERS = frozenset({"datasets_skipped", "pending", "standby", "fleet_instances"})


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
    off_reason: str = "switched off by the settings"  # why ``enabled`` is false


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


def error_text(err: BaseException, secrets: Iterable[str]) -> str:
    """One scrubbed line naming ``err`` (what ``job_runs.error`` holds)."""
    text = f"{type(err).__name__}: {err}" if not isinstance(err, StoreError) else str(err)
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return scrub_text(" ".join(text.split()))[:300]


def plain(value: Any) -> Any:
    """``value`` as JSON-able data: dataclasses and objects with ``to_dict`` included."""
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def busy(result: JobResult) -> bool:
    """Whether a run did anything: a counter other than the standing ones is non-zero."""
    return any(
        isinstance(v, int | float) and v and k not in _STANDING_COUNTERS
        for k, v in result.counters.items()
    )


def log_fields(result: JobResult) -> dict[str, Any]:
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


def _orders_job(daemon: Daemon, now: float, stop: threading.Event) -> dict[str, Any]:
    return daemon.orders_cycle(now, stop)


def _orders_enabled(settings: Settings) -> bool:
    from monitor.daemon.orders_jobs import no_orders_source

    return no_orders_source(settings) is None


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
    JobSpec(
        "orders",
        lambda s: s.schedule.orders_every,
        _orders_job,
        "read the orders sources, reconcile paid orders with the Purchases sent",
        _orders_enabled,
        off_reason="no dataset names an [[orders]] source",
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
            out[spec.name] = spec.off_reason
        elif spec.needs_graph and graph_off:
            out[spec.name] = graph_off
    return out

"""The audit engine: delivery logs -> checks -> one ``AuditReport``.

Reading streams line by line; each dataset gets its own set of check instances and a
rollup accumulator, so memory is bounded by datasets × (check state), never by events.

Large inputs may be audited in parallel (``run_audit(jobs=...)``): the inputs are cut into
contiguous parts (``monitor.engine.parallel``), each part is audited by the same sequential loop
in a forked worker, and the parent merges the parts in input order. The report is the
one a sequential run gives (see ``checks.dedup.Dedup.merge`` for the one approximation).
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from checks import CHECKS, Check, CheckContext, registry
from checks.base import skipped
from checks.funnel import MetaCounts
from checks.graph_common import UsesRollups
from checks.reconcile import ReconcileCheck
from checks.volume import UsesSeries
from monitor.config import DatasetSettings, Settings
from monitor.engine.parallel import fork_available, plan_parts, run_parts
from monitor.engine.rollup import RollupAccumulator
from monitor.errors import ConfigError
from monitor.model.findings import CheckResult, Status
from monitor.model.graph import DatasetGraph, GraphSnapshot, Part
from monitor.model.observations import Delivery, ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import HourRollup
from monitor.model.series import VolumeHistory
from monitor.sources.logs.formats import AUTO
from monitor.sources.logs.formatted import resolve_format
from monitor.sources.logs.paths import DatasetResolver, InputFile, expand_paths
from monitor.sources.logs.reader import read_deliveries

if TYPE_CHECKING:
    from monitor.engine.orders_inputs import DatasetOrders

log = logging.getLogger(__name__)

# Below this, forking and merging cost more than they save (~1 s of sequential reading).
PARALLEL_MIN_BYTES = 32 * 1024 * 1024


class DatasetAudit:
    """All check instances and the rollup of one dataset, fed delivery by delivery."""

    def __init__(
        self,
        dataset_id: str,
        settings: Settings,
        now: float,
        *,
        continuation: bool = False,
        graph: DatasetGraph | None = None,
        series: VolumeHistory | None = None,
        reconcile: bool = False,
        rollups: bool = True,
    ) -> None:
        """``continuation``: this audit observes a later part of a parallel audit and will
        be merged into the audit of the part before it (see ``CheckContext``). ``graph``:
        the dataset's Graph API poll and stored history (None: no Graph source).
        ``series``: its stored hourly series for ``volume`` (None: no store).
        ``reconcile``: orders will be read for it, so ``reconcile`` keeps its Purchases.
        ``rollups``: fill the hourly rollups (for the store, ``parity`` and ``volume``);
        without any of those they would only cost time and memory that grows with the
        span of the logs, so an audit without a store nor a Graph source skips them."""
        self.dataset_id = dataset_id
        self.keep_rollups = rollups
        self.settings = settings
        self.graph = graph.snapshot if graph else None
        ctx = CheckContext(
            dataset_id, now, settings.checks, continuation,
            graph=graph.snapshot if graph else None, history=graph.history if graph else None,
            series=series,
        )  # fmt: skip
        disabled = set(settings.checks.disabled)
        self.checks = [cls(ctx) for cls in CHECKS if cls.id not in disabled]
        self.reconcile = next((c for c in self.checks if isinstance(c, ReconcileCheck)), None)
        if self.reconcile is not None:  # the Purchases are read with the dataset's match_field
            from monitor.engine.orders_inputs import dataset_rules

            self.reconcile.rules = dataset_rules(settings, dataset_id)
            self.reconcile.keep_purchases = reconcile
            ds = settings.dataset(dataset_id)
            if not reconcile and ds is not None and ds.orders:
                self.reconcile.judged_elsewhere = (
                    "reconciled by the daemon's orders job, not per log cycle"
                )
        self.rollup = RollupAccumulator(dataset_id)
        self.events = 0
        # Checks that raised (a bug, or input nobody foresaw): check id -> what happened.
        # Such a check stops observing and reports ``error``; the others go on.
        self.failures: dict[str, str] = {}
        self.rollup_failures = 0  # deliveries the rollup could not fold (see observe)
        self._observers = self._bind()

    def _bind(self) -> list[Callable[[Delivery], None]]:
        # Bound methods, looked up once: this loop runs for every line of every log.
        live: list[Callable[[Delivery], None]] = [
            c.observe for c in self.checks if c.id not in self.failures
        ]
        if self.keep_rollups:
            live.append(self.rollup.observe)
        return live

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_observers"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._observers = self._bind()

    def observe(self, delivery: Delivery) -> None:
        self.events += len(delivery.events)
        for observe in self._observers:
            try:  # free in CPython 3.11 unless something raises
                observe(delivery)
            except Exception as err:
                self._failed(observe, delivery, err)

    def _failed(self, observe: Callable[[Delivery], None], d: Delivery, err: Exception) -> None:
        """One observer raised: a check is taken out (``error`` in its result), the rollup
        skips the delivery. The reason names the exception type and the line, never its
        message (which may quote event content)."""
        owner = getattr(observe, "__self__", None)
        if owner is self.rollup:
            self.rollup_failures += 1
            log.warning("rollup failed", extra={"file": d.file, "line": d.line})
            return
        check_id = getattr(owner, "id", "?")
        self.failures[check_id] = f"{type(err).__name__} at {d.file}:{d.line}"
        log.warning(
            "check failed",
            extra={"check": check_id, "error": type(err).__name__, "file": d.file, "line": d.line},
        )
        self._observers = self._bind()

    def merge(self, later: DatasetAudit) -> None:
        """Fold in the audit of the same dataset over the input right after this one
        (same settings and clock): event counts, each check by id, the rollup."""
        self.events += later.events
        self.rollup_failures += later.rollup_failures
        for check_id, why in later.failures.items():
            self.failures.setdefault(check_id, why)
        theirs = {c.id: c for c in later.checks}
        for check in self.checks:
            if check.id not in self.failures:
                check.merge(theirs[check.id])
        self.rollup.merge(later.rollup)
        self._observers = self._bind()

    def window_start(self, since: float | None) -> float | None:
        """Where the reconciliation window starts: ``since``, else the earliest send time."""
        if since is not None:
            return since
        return self.reconcile.first_sent if self.reconcile is not None else None

    def use_orders(self, orders: DatasetOrders | None) -> None:
        """Hand ``reconcile`` the dataset's orders, read after the logs (``run_audit``)."""
        if self.reconcile is not None and orders is not None:
            self.reconcile.use_orders(orders.snapshot, orders.rules, orders.since)

    def use_series(self, series: VolumeHistory | None) -> None:
        """Hand the checks that judge hourly series (``volume``) the dataset's history,
        when it is known only after reading (``run_audit(series=...)``)."""
        for check in self.checks:
            if isinstance(check, UsesSeries):
                check.use_series(series)

    def report(
        self, compare: Sequence[HourRollup] | None = None, *, release: bool = False
    ) -> DatasetReport:
        """The dataset's results. ``compare``: the hourly rollups the checks compare Meta's
        counts with (``UsesRollups``), default this audit's own; the daemon's Graph job,
        which observes no deliveries, passes the stored ones. ``release``: the audit is
        not used afterwards, so the checks that read no rollups are let go once judged."""
        order = [c.id for c in self.checks]
        # The checks that read no rollups judge first: released, they are let go before
        # the rollups are unpacked (~1 KB a row, ~17,000 rows in a 70-day audit), so that
        # the rows reuse the memory of their state (dedup's ids, ~10 MB) instead of
        # adding to it: the peak of a long audit then stays the one of its reading.
        checks = self.checks
        judged = {c.id: self._judged(c) for c in checks if not isinstance(c, UsesRollups)}
        users = [c for c in checks if isinstance(c, UsesRollups)]
        ds = self.settings.dataset(self.dataset_id)
        funnel = None
        if self.reconcile is not None:
            tz = (ds.timezone if ds else None) or self.settings.schedule.timezone
            funnel = self.reconcile.funnel(tz, meta_counts(self.graph))
        if release:
            checks = self.checks = [c for c in checks if c.id not in judged]
            self.reconcile = None
            self._observers = []
        rollups = self.rollup.result()
        for user in users:  # rollups exist only now (checks.graph_common.UsesRollups)
            user.use_rollups(rollups if compare is None else compare)
        judged.update((c.id, self._judged(c)) for c in checks if c.id not in judged)
        results = [judged[check_id] for check_id in order]
        return DatasetReport(
            dataset_id=self.dataset_id,
            name=ds.name if ds else None,
            health_score=health_score(results),
            checks=results,
            events=self.events,
            rollups=rollups,
            owner=ds.owner if ds else None,
            client=ds.client if ds else None,
            funnel=funnel,
            data_from=min((r.hour for r in rollups), default=None),
            data_to=max((r.hour + 3600 for r in rollups), default=None),
        )

    def _judged(self, check: Check) -> CheckResult:
        # No log data is "could not evaluate", never "healthy"; checks with a Graph part
        # still judge Meta's side (their log part then reports skipped by itself).
        if self.events or check.reads_graph:
            return self._result(check)
        return skipped(check.id, "no events in the logs for this dataset")

    def _result(self, check: Check) -> CheckResult:
        """The check's result; ``error`` when it failed while observing or now."""
        why = self.failures.get(check.id)
        if why is None:
            try:
                return check.result()
            except Exception as err:
                why = f"{type(err).__name__} while judging"
                log.warning("check failed", extra={"check": check.id, "error": type(err).__name__})
        summary = f"the check failed ({why}); it did not judge this dataset"
        return CheckResult(check.id, Status.ERROR, summary, None, [])


def meta_counts(snapshot: GraphSnapshot | None) -> MetaCounts | None:
    """Meta's hourly Purchase counts by source from a Graph poll, for the funnel; None
    without a poll or when its ``event_source`` part failed."""
    if snapshot is None or not snapshot.ok(Part.STATS_EVENT_SOURCE):
        return None
    hourly = tuple(
        (c.hour.timestamp(), c.server, c.browser)
        for c in snapshot.source_counts
        if c.event == "Purchase"
    )
    return MetaCounts(snapshot.window_start, hourly)


def health_score(results: Sequence[CheckResult]) -> int | None:
    """Weighted mean of the scores of checks that ran; None when none could run."""
    weights = {c.id: c.weight for c in CHECKS}
    scored = [(weights.get(r.id, 1.0), r.score) for r in results if r.score is not None]
    total = sum(w for w, _ in scored)
    if not total:
        return None
    return round(sum(w * s for w, s in scored if s is not None) / total)


def configured_files(datasets: Iterable[DatasetSettings]) -> list[InputFile]:
    """Files matched by the datasets' ``logs`` globs, in their dataset's ``logs_format``;
    a glob matching nothing is no error here (a daemon's log directory may be empty),
    unlike a PATH given on the command line."""
    seen: set[str] = set()
    out: list[InputFile] = []
    for ds in datasets:
        for pattern in ds.logs:
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            for path in matches:
                if os.path.isfile(path) and path not in seen:
                    seen.add(path)
                    out.append(InputFile(path, fmt=ds.logs_format))
    return out


def input_files(settings: Settings, paths: Sequence[str], fmt: str = AUTO) -> list[InputFile]:
    """The inputs of an audit: PATHs, else the configured datasets' logs. ``fmt`` (the
    ``--format`` option), unless ``auto``, is the format of every input."""
    if paths:
        files = expand_paths(paths)
    elif not settings.datasets:
        raise ConfigError("nothing to audit: give log PATHs or a --config with [[datasets]]")
    else:
        files = configured_files(settings.datasets)
    if fmt != AUTO:
        files = [dataclasses.replace(f, fmt=fmt) for f in files]
    return files


# What auditing some input yields: its read counts and one audit per dataset seen.
PartAudit = tuple[ReadStats, dict[str, DatasetAudit]]


def audit_files(
    settings: Settings,
    files: Sequence[InputFile],
    *,
    now: float,
    since: float | None = None,
    until: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
    continuation: bool = False,
    graph: Mapping[str, DatasetGraph] | None = None,
    reconcile: bool = False,
    rollups: bool = True,
) -> PartAudit:
    """The sequential audit loop over ``files``: read counts and a ``DatasetAudit`` per
    dataset that had deliveries (``continuation``, ``graph``, ``rollups``: see
    ``DatasetAudit``)."""
    graph = graph or {}
    stats = ReadStats(max_problems=settings.input.max_problems)
    audits: dict[str, DatasetAudit] = {}
    deliveries = read_deliveries(
        files,
        stats,
        resolver=DatasetResolver(settings.datasets),
        max_line_bytes=settings.input.max_line_bytes,
        since=since,
        until=until,
        on_bytes=on_bytes,
        stdin=stdin,
        graph_hosts=settings.graph_hosts,
    )
    for delivery in deliveries:
        audit = audits.get(delivery.dataset_id)
        if audit is None:
            audit = audits[delivery.dataset_id] = DatasetAudit(
                delivery.dataset_id, settings, now, continuation=continuation,
                graph=graph.get(delivery.dataset_id), reconcile=reconcile, rollups=rollups,
            )  # fmt: skip
        audit.observe(delivery)
    return stats, audits


def run_audit(
    settings: Settings,
    files: Sequence[InputFile],
    *,
    now: float,
    since: float | None = None,
    until: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
    jobs: int = 1,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    graph: Mapping[str, DatasetGraph] | None = None,
    meanwhile: Callable[[], None] | None = None,
    series: Callable[[Sequence[str]], Mapping[str, VolumeHistory]] | None = None,
    orders: Callable[[Mapping[str, float | None]], Mapping[str, DatasetOrders]] | None = None,
    rollups: bool = True,
) -> AuditReport:
    """Read ``files``, run every enabled check per dataset, return the report (no I/O
    beyond reading the inputs; storing and rendering are the caller's business).

    With ``jobs > 1``, no stdin among the inputs, at least ``parallel_min_bytes`` of
    input and fork available, up to ``jobs`` worker processes audit contiguous parts of
    the input; the report is the one a sequential run gives (``monitor.engine.parallel``).

    ``graph`` maps dataset ids to their Graph API poll (``monitor.engine.graph_inputs``); the
    Graph-based checks of datasets absent from it are ``skipped``.

    ``meanwhile()``, if given, is called once before the result is built: while the
    workers read in a parallel audit (the caller's slow set-up, such as opening the
    store, then costs no wall time), else before reading. Its exception ends the audit.

    ``series(dataset_ids)``, if given, is called after reading (and after ``meanwhile``)
    and returns the stored hourly series of those datasets for ``volume``
    (``monitor.engine.series.load_volume_history``); without it ``volume`` is ``skipped``.

    ``orders(window_starts)``, if given, is called after reading with each dataset's
    reconciliation window start and returns the orders of the datasets that have a source
    (``monitor.engine.orders_inputs.orders_loader``); without it ``reconcile`` is
    ``skipped``.

    ``rollups=False``: the datasets' hourly rollups are not filled (``DatasetAudit``);
    for a caller that neither stores them nor has a Graph source.
    """
    graph = graph or {}
    unknown = set(settings.checks.disabled) - set(registry())
    if unknown:
        raise ConfigError(f"checks.disabled: unknown check id {sorted(unknown)[0]!r}")
    parts = _parts(files, jobs, parallel_min_bytes)
    if len(parts) > 1:
        stats, audits = _audit_parallel(
            settings, parts, now, since, until, on_bytes, graph, meanwhile, orders is not None,
            rollups,
        )  # fmt: skip
    else:
        if meanwhile is not None:
            meanwhile()
        stats, audits = audit_files(
            settings, files, now=now, since=since, until=until, on_bytes=on_bytes, stdin=stdin,
            graph=graph, reconcile=orders is not None, rollups=rollups,
        )  # fmt: skip
    for ds in settings.datasets:  # configured datasets are reported even without events
        if ds.id not in audits:
            audits[ds.id] = DatasetAudit(ds.id, settings, now, graph=graph.get(ds.id))
    if orders is not None:
        found = orders({i: a.window_start(since) for i, a in audits.items()})
        for dataset_id, audit in audits.items():
            audit.use_orders(found.get(dataset_id))
    if series is not None:
        histories = series(list(audits))
        for dataset_id, audit in audits.items():
            audit.use_series(histories.get(dataset_id))
    order = {ds.id: i for i, ds in enumerate(settings.datasets)}
    reports = [a.report(release=True) for a in audits.values()]
    reports.sort(key=lambda r: (order.get(r.dataset_id, len(order)), r.dataset_id))
    return AuditReport(
        generated_at=time.time(), now=now, inputs=stats, datasets=reports, since=since, until=until
    )


def _parts(files: Sequence[InputFile], jobs: int, min_bytes: int) -> list[list[InputFile]]:
    """The parts to audit: one (sequential) unless parallelism is asked for and pays."""
    if jobs <= 1 or any(f.is_stdin for f in files) or not fork_available():
        return [list(files)]
    if sum(_size(f) for f in files) < min_bytes:
        return [list(files)]
    # Only v1 files may be cut into ranges: a sender format pairs entries across lines.
    return plan_parts([resolve_format(f) for f in files], jobs)


def _size(f: InputFile) -> int:
    try:
        return os.path.getsize(f.path)
    except OSError:
        return 0  # the reader reports it when it gets there


def _audit_parallel(
    settings: Settings,
    parts: list[list[InputFile]],
    now: float,
    since: float | None,
    until: float | None,
    on_bytes: Callable[[int], None] | None,
    graph: Mapping[str, DatasetGraph] | None = None,
    meanwhile: Callable[[], None] | None = None,
    reconcile: bool = False,
    rollups: bool = True,
) -> PartAudit:
    """Audit each part in a worker; merge the parts in input order as they arrive."""
    stats = ReadStats(max_problems=settings.input.max_problems)
    audits: dict[str, DatasetAudit] = {}

    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> PartAudit:
        return audit_files(
            settings, part, now=now, since=since, until=until, on_bytes=advance,
            continuation=index > 0, graph=graph, reconcile=reconcile, rollups=rollups,
        )  # fmt: skip

    def consume(index: int, result: PartAudit) -> None:
        part_stats, part_audits = result
        stats.merge(part_stats)
        for dataset_id, audit in part_audits.items():
            mine = audits.get(dataset_id)
            if mine is None:
                audits[dataset_id] = audit
            else:
                mine.merge(audit)

    run_parts(parts, work, consume, on_bytes=on_bytes, meanwhile=meanwhile)
    return stats, audits

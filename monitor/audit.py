"""The audit engine: delivery logs -> checks -> one ``AuditReport``.

Reading streams line by line; each dataset gets its own set of check instances and a
rollup accumulator, so memory is bounded by datasets × (check state), never by events.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO

from checks import CHECKS, HEALTH_WEIGHTS, CheckContext, registry
from checks.base import skipped
from monitor.config import DatasetSettings, Settings
from monitor.errors import ConfigError
from monitor.model import CheckResult
from monitor.observations import Delivery, ReadStats
from monitor.results import AuditReport, DatasetReport
from monitor.rollup import RollupAccumulator
from monitor.sources.logs import DatasetResolver, InputFile, expand_paths, read_deliveries


class DatasetAudit:
    """All check instances and the rollup of one dataset, fed delivery by delivery."""

    def __init__(self, dataset_id: str, settings: Settings, now: float) -> None:
        self.dataset_id = dataset_id
        self.settings = settings
        ctx = CheckContext(dataset_id=dataset_id, now=now, settings=settings.checks)
        disabled = set(settings.checks.disabled)
        self.checks = [cls(ctx) for cls in CHECKS if cls.id not in disabled]
        self.rollup = RollupAccumulator(dataset_id)
        self.events = 0
        # Bound methods, looked up once: this loop runs for every line of every log.
        self._observers: list[Callable[[Delivery], None]] = [c.observe for c in self.checks]
        self._observers.append(self.rollup.observe)

    def observe(self, delivery: Delivery) -> None:
        self.events += len(delivery.events)
        for observe in self._observers:
            observe(delivery)

    def report(self) -> DatasetReport:
        if self.events:
            results = [c.result() for c in self.checks]
        else:  # no data is "could not evaluate", never "healthy"
            results = [skipped(c.id, "no events in the logs for this dataset") for c in self.checks]
        ds = self.settings.dataset(self.dataset_id)
        return DatasetReport(
            dataset_id=self.dataset_id,
            name=ds.name if ds else None,
            health_score=health_score(results),
            checks=results,
            events=self.events,
            rollups=self.rollup.result(),
            owner=ds.owner if ds else None,
            client=ds.client if ds else None,
        )


def health_score(results: Sequence[CheckResult]) -> int | None:
    """Weighted mean of the scores of checks that ran; None when none could run."""
    scored = [(HEALTH_WEIGHTS.get(r.id, 1.0), r.score) for r in results if r.score is not None]
    total = sum(w for w, _ in scored)
    if not total:
        return None
    return round(sum(w * s for w, s in scored if s is not None) / total)


def configured_files(datasets: Iterable[DatasetSettings]) -> list[InputFile]:
    """Files matched by the datasets' ``logs`` globs; a glob matching nothing is no error
    here (a daemon's log directory may be empty), unlike a PATH given on the command line."""
    seen: set[str] = set()
    out: list[InputFile] = []
    for ds in datasets:
        for pattern in ds.logs:
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            for path in matches:
                if os.path.isfile(path) and path not in seen:
                    seen.add(path)
                    out.append(InputFile(path))
    return out


def input_files(settings: Settings, paths: Sequence[str]) -> list[InputFile]:
    if paths:
        return expand_paths(paths)
    if not settings.datasets:
        raise ConfigError("nothing to audit: give log PATHs or a --config with [[datasets]]")
    return configured_files(settings.datasets)


def run_audit(
    settings: Settings,
    files: Sequence[InputFile],
    *,
    now: float,
    since: float | None = None,
    until: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
) -> AuditReport:
    """Read ``files``, run every enabled check per dataset, return the report (no I/O
    beyond reading the inputs; storing and rendering are the caller's business)."""
    unknown = set(settings.checks.disabled) - set(registry())
    if unknown:
        raise ConfigError(f"checks.disabled: unknown check id {sorted(unknown)[0]!r}")
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
    )
    for delivery in deliveries:
        audit = audits.get(delivery.dataset_id)
        if audit is None:
            audit = audits[delivery.dataset_id] = DatasetAudit(delivery.dataset_id, settings, now)
        audit.observe(delivery)
    for ds in settings.datasets:  # configured datasets are reported even without events
        if ds.id not in audits:
            audits[ds.id] = DatasetAudit(ds.id, settings, now)
    order = {ds.id: i for i, ds in enumerate(settings.datasets)}
    reports = [a.report() for a in audits.values()]
    reports.sort(key=lambda r: (order.get(r.dataset_id, len(order)), r.dataset_id))
    return AuditReport(
        generated_at=time.time(), now=now, inputs=stats, datasets=reports, since=since, until=until
    )

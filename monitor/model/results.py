"""The outcome of one audit run, in the shape of the JSON contract (docs/contracts.md §3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.model.findings import CheckResult, Finding, Status
from monitor.model.observations import ReadStats
from monitor.model.rollup import HourRollup
from monitor.timeutil import iso_utc

SCHEMA_VERSION = 1


@dataclass(slots=True)
class DatasetReport:
    dataset_id: str
    name: str | None
    health_score: int | None
    checks: list[CheckResult]
    events: int = 0
    rollups: list[HourRollup] = field(default_factory=list)
    owner: str | None = None
    client: str | None = None
    # Per-day funnel of the reconciliation (docs/contracts.md §8); None when the
    # ``reconcile`` check is disabled.
    funnel: list[dict[str, Any]] | None = None
    # The send-time span of the deliveries the checks judged, [from, to) in whole hours;
    # None without deliveries. The weekly report counts the results for the weeks it
    # overlaps, not for the week the run happened in.
    data_from: float | None = None
    data_to: float | None = None

    @property
    def findings(self) -> list[Finding]:
        out = [f for c in self.checks for f in c.findings]
        return sorted(out, key=lambda f: (-f.severity.rank, -f.count, f.code))

    @property
    def status(self) -> Status:
        ranks = {Status.CRIT: 3, Status.WARN: 2, Status.ERROR: 1}
        return max(
            (c.status for c in self.checks), key=lambda s: ranks.get(s, 0), default=Status.SKIPPED
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "name": self.name,
            "health_score": self.health_score,
            "events": self.events,
            "checks": [c.to_dict() for c in self.checks],
            "findings": [f.to_dict() for f in self.findings],
            "funnel": [dict(row) for row in self.funnel or []],
        }


@dataclass(slots=True)
class AuditReport:
    generated_at: float
    now: float
    inputs: ReadStats
    datasets: list[DatasetReport]
    since: float | None = None
    until: float | None = None
    run_id: int | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for d in self.datasets for f in d.findings]

    @property
    def data_from(self) -> float | None:
        """Where the send-time span of every dataset's judged deliveries starts (``None``:
        no deliveries)."""
        return min((d.data_from for d in self.datasets if d.data_from is not None), default=None)

    @property
    def data_to(self) -> float | None:
        """Where that span ends (exclusive)."""
        return max((d.data_to for d in self.datasets if d.data_to is not None), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": iso_utc(self.generated_at),
            "now": iso_utc(self.now),
            "since": iso_utc(self.since) if self.since is not None else None,
            "until": iso_utc(self.until) if self.until is not None else None,
            "inputs": self.inputs.to_dict(),
            "datasets": [d.to_dict() for d in self.datasets],
        }

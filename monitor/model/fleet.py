"""Fleet mode as values (docs/contracts.md §11): the instances sharing one store and
the standing verdicts each keeps for the others to see. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.model.findings import Finding


class InstanceState(StrEnum):
    LIVE = "live"  # reported within [alerts] instance_stale (or started that recently)
    SILENT = "silent"  # not stopped, yet no report for instance_stale: INSTANCE_SILENT
    STOPPED = "stopped"  # stopped by SIGTERM/SIGINT: deregistered, not silent


@dataclass(frozen=True, slots=True)
class Instance:
    """One ``capi-monitor run`` (or ``once``) of the fleet, as the store knows it."""

    name: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    last_report_at: float | None = None
    stopped_at: float | None = None

    def state(self, now: float, stale: float) -> InstanceState:
        """Stopped, else live when it reported (or, before its first report, started)
        less than ``stale`` seconds before ``now``, else silent."""
        if self.stopped_at is not None:
            return InstanceState.STOPPED
        last = self.last_report_at if self.last_report_at is not None else self.started_at
        return InstanceState.LIVE if now - last < stale else InstanceState.SILENT

    def to_dict(self, now: float, stale: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "state": str(self.state(now, stale)),
            "started_at": self.started_at,
            "last_report_at": self.last_report_at,
            "stopped_at": self.stopped_at,
        }


@dataclass(slots=True)
class Verdict:
    """An instance's latest evaluation of one log check of one dataset: when, over how
    many events, and the warn/crit findings it saw (none: it found the check clean)."""

    instance: str
    dataset_id: str
    check_id: str
    evaluated_at: float
    events: int
    findings: list[Finding] = field(default_factory=list)

"""Value types shared by sources, checks, store and reports. No I/O here."""

from __future__ import annotations

import dataclasses as dc
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARN = "warn"
    CRIT = "crit"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 1, Severity.WARN: 2, Severity.CRIT: 3}


class Status(StrEnum):
    """Outcome of one check. ``skipped``/``error`` mean "could not evaluate", never "healthy"."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    SKIPPED = "skipped"
    ERROR = "error"

    @classmethod
    def from_severity(cls, severity: Severity | None) -> Status:
        if severity is Severity.CRIT:
            return cls.CRIT
        if severity is Severity.WARN:
            return cls.WARN
        return cls.OK


@dataclass(frozen=True, slots=True)
class Example:
    """Where a defect was seen, with an already-masked value."""

    file: str
    line: int
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "value": self.value}


@dataclass(slots=True)
class Finding:
    code: str
    severity: Severity
    check: str
    count: int
    message: str
    remediation: str
    event_names: list[str] = dc.field(default_factory=list)
    field: str | None = None
    examples: list[Example] = dc.field(default_factory=list)
    evidence: dict[str, Any] = dc.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "check": self.check,
            "count": self.count,
            "event_names": list(self.event_names),
            "field": self.field,
            "examples": [e.to_dict() for e in self.examples],
            "message": self.message,
            "remediation": self.remediation,
            "evidence": dict(self.evidence),
        }


@dataclass(slots=True)
class CheckResult:
    id: str
    status: Status
    summary: str
    score: int | None = None
    findings: list[Finding] = dc.field(default_factory=list)
    # Figures a check measured, for the JSON output (``reconcile``: orders_paid,
    # orders_sent, accuracy); None for checks that publish none.
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": str(self.status),
            "score": self.score,
            "summary": self.summary,
        }
        if self.metrics is not None:
            out["metrics"] = dict(self.metrics)
        return out


def worst_severity(findings: list[Finding]) -> Severity | None:
    """The highest severity among ``findings`` (None when empty)."""
    return max((f.severity for f in findings), key=lambda s: s.rank, default=None)

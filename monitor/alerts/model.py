"""Value types of the alert path, shared by the lifecycle (``monitor.alerts``), the outbox
sender and the notifiers (``monitor.notify``). No I/O here.

An alert is identified by a stable fingerprint of its labels (dataset, check, code, event
name); measured numbers live in its evidence, never in its labels
(docs/architecture.md rule 4).
A ``Notification`` is what one outbox row carries: one dataset, one cycle, every alert of
that dataset that started firing, escalated, repeated or resolved in that cycle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.model.findings import Example, Severity


class AlertState(StrEnum):
    PENDING = "pending"  # condition seen, fewer than [alerts] for_cycles evaluations so far
    FIRING = "firing"
    RESOLVED = "resolved"


class Reason(StrEnum):
    """Why a notification mentions an alert (docs/contracts.md §6: nothing else causes a post)."""

    NEW = "new"  # started firing
    ESCALATED = "escalated"  # warn -> crit
    REPEAT = "repeat"  # still firing after repeat_interval
    FLAPPING = "flapping"  # back within [alerts] flap_window of resolving: reopened, said once
    RESOLVED = "resolved"


# The label a fleet alert (no dataset: INSTANCE_SILENT) shows where a dataset would be.
FLEET_LABEL = "capi-monitor fleet"


@dataclass(frozen=True, slots=True)
class AlertKey:
    dataset_id: str | None  # None: the alert concerns the fleet (INSTANCE_SILENT)
    check: str
    code: str
    event_name: str | None  # None: the finding concerns the dataset as a whole
    instance: str | None = None  # the instance a fleet alert is about

    @property
    def fingerprint(self) -> str:
        """Stable id: sha256 of the sorted labels, first 16 hex characters."""
        labels = sorted(self.labels().items())
        text = "\x1f".join(f"{k}={v}" for k, v in labels)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def labels(self) -> dict[str, str]:
        out = {"check": self.check, "code": self.code}
        if self.dataset_id is not None:
            out["dataset_id"] = self.dataset_id
        if self.event_name is not None:
            out["event_name"] = self.event_name
        if self.instance is not None:
            out["instance"] = self.instance
        return out


@dataclass(slots=True)
class AlertView:
    """One alert as a notification shows it. All text is already masked/scrubbed."""

    fingerprint: str
    dataset_id: str | None
    check: str
    code: str
    event_name: str | None
    severity: Severity
    state: str  # "FIRING" or "RESOLVED" (the words every post and email must show)
    reason: Reason
    since: float  # Unix seconds the alert started firing
    message: str
    remediation: str
    count: int = 0
    resolved_at: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    instance: str | None = None  # a fleet alert's instance (INSTANCE_SILENT)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "dataset_id": self.dataset_id,
            "check": self.check,
            "code": self.code,
            "event_name": self.event_name,
            "severity": str(self.severity),
            "state": self.state,
            "reason": str(self.reason),
            "since": self.since,
            "resolved_at": self.resolved_at,
            "message": self.message,
            "remediation": self.remediation,
            "count": self.count,
            "evidence": dict(self.evidence),
            "examples": [e.to_dict() for e in self.examples],
            **({"instance": self.instance} if self.instance is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertView:
        return cls(
            fingerprint=d["fingerprint"],
            dataset_id=d.get("dataset_id"),
            check=d["check"],
            code=d["code"],
            event_name=d.get("event_name"),
            severity=Severity(d["severity"]),
            state=d["state"],
            reason=Reason(d["reason"]),
            since=float(d["since"]),
            resolved_at=d.get("resolved_at"),
            message=d.get("message", ""),
            remediation=d.get("remediation", ""),
            count=int(d.get("count", 0)),
            evidence=dict(d.get("evidence") or {}),
            examples=[Example(**e) for e in d.get("examples") or []],
            instance=d.get("instance"),
        )


@dataclass(slots=True)
class Notification:
    """The content of one outbox row: one dataset, one evaluation cycle."""

    key: str  # idempotency key: stable for (dataset, cycle, notifier)
    dataset_id: str | None  # None: a fleet notification (dataset_name says so)
    dataset_name: str | None
    client: str | None
    created_at: float
    alerts: list[AlertView]
    muted_note: str | None = None  # e.g. "3 alerts muted while TOKEN_INVALID fires"

    @property
    def severity(self) -> Severity:
        firing = [a.severity for a in self.alerts if a.state == "FIRING"] or [Severity.INFO]
        return max(firing, key=lambda s: s.rank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dataset_id": self.dataset_id,
            "dataset_name": self.dataset_name,
            "client": self.client,
            "created_at": self.created_at,
            "alerts": [a.to_dict() for a in self.alerts],
            "muted_note": self.muted_note,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notification:
        return cls(
            key=d["key"],
            dataset_id=d.get("dataset_id"),
            dataset_name=d.get("dataset_name"),
            client=d.get("client"),
            created_at=float(d["created_at"]),
            alerts=[AlertView.from_dict(a) for a in d.get("alerts") or []],
            muted_note=d.get("muted_note"),
        )

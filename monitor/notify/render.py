"""Wording shared by the Slack and email messages: one ``AlertLine`` per alert.

Both channels must say the same things about an alert (docs/contracts.md §6: its code and its
state ``FIRING``/``RESOLVED``; the brief: what broke, since when, the numbers, the fix),
so the facts are put together once here and each channel only lays them out.
Free text from the alert (message, remediation, evidence, examples) is already masked by
the checks; ``scrub_secrets`` runs over it again as a last line of defence. Our own
numbers and times are not passed through ``scrub_text``: it would take a date for a phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts.model import AlertView, Notification, Reason
from monitor.mask import scrub_secrets
from monitor.model.findings import Example
from monitor.notify.base import FirstReport, ordered_alerts, top_severity
from monitor.report.format import fmt_duration, fmt_number, fmt_percent, fmt_utc

MAX_EVIDENCE_ITEMS = 6
MAX_EXAMPLES = 3
_REASON_WORDS = {
    Reason.NEW: "new",
    Reason.ESCALATED: "escalated to crit",
    Reason.REPEAT: "still firing",
    Reason.FLAPPING: "flapping: back soon after resolving; stays open until quiet for a day",
    Reason.RESOLVED: "resolved",
}


def _value(key: str, value: Any) -> str:
    """An evidence value for people: shares as percentages, numbers with separators."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float) and ("share" in key or "ratio" in key) and 0 <= value <= 1:
        return fmt_percent(value)
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_value(str(k), v)}" for k, v in list(value.items())[:5])
        return "{" + inner + (", …" if len(value) > 5 else "") + "}"
    if isinstance(value, list):
        return ", ".join(_value(key, v) for v in value[:5]) + (", …" if len(value) > 5 else "")
    return scrub_secrets(str(value))[:120]


def evidence_items(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The first ``MAX_EVIDENCE_ITEMS`` evidence entries as (name, display value)."""
    items = list(evidence.items())[:MAX_EVIDENCE_ITEMS]
    return [(str(k).replace("_", " "), _value(str(k), v)) for k, v in items]


@dataclass(slots=True)
class AlertLine:
    """Everything a message says about one alert, as display strings."""

    code: str
    state: str  # FIRING / RESOLVED
    severity: str
    reason: str  # "new", "escalated to crit", "still firing", "flapping: ...", "resolved"
    event_name: str | None
    scope: str  # "event Purchase" or "whole dataset"
    message: str
    remediation: str
    count: str
    since: str  # when it started firing (UTC)
    duration: str  # how long it has been (or was) firing
    resolved_at: str | None
    first_reported_at: str | None  # when this channel first told about it, if known
    evidence: list[tuple[str, str]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)

    @property
    def firing(self) -> bool:
        return self.state == "FIRING"


def alert_line(a: AlertView, now: float, first: FirstReport | None = None) -> AlertLine:
    """The display facts of ``a`` at ``now`` (the notification's time)."""
    end = a.resolved_at if a.state == "RESOLVED" and a.resolved_at is not None else now
    return AlertLine(
        code=a.code,
        state=a.state,
        severity=str(a.severity),
        reason=_REASON_WORDS.get(a.reason, str(a.reason)),
        event_name=a.event_name,
        scope=f"event {a.event_name}" if a.event_name else "whole dataset",
        message=scrub_secrets(a.message),
        remediation=scrub_secrets(a.remediation),
        count=fmt_number(a.count),
        since=fmt_utc(a.since),
        duration=fmt_duration(max(0.0, end - a.since)),
        resolved_at=fmt_utc(a.resolved_at) if a.resolved_at is not None else None,
        first_reported_at=fmt_utc(first.sent_at) if first else fmt_utc(a.since),
        evidence=evidence_items(a.evidence),
        examples=[
            Example(e.file, e.line, scrub_secrets(e.value)) for e in a.examples[:MAX_EXAMPLES]
        ],
    )


def alert_lines(
    n: Notification, first_reports: Mapping[str, FirstReport] | None = None
) -> list[AlertLine]:
    """``n``'s alerts in message order (firing first, most severe first)."""
    firsts = first_reports or {}
    return [alert_line(a, n.created_at, firsts.get(a.fingerprint)) for a in ordered_alerts(n)]


def counts(n: Notification) -> tuple[int, int]:
    """(firing, resolved) alert counts."""
    firing = sum(1 for a in n.alerts if a.state == "FIRING")
    return firing, len(n.alerts) - firing


def headline(n: Notification) -> str:
    """``CRIT · 2 firing, 1 resolved`` or ``RESOLVED (was CRIT) · 1 resolved``."""
    firing, resolved = counts(n)
    severity = str(top_severity(n)).upper()
    parts = [f"{firing} firing"] if firing else []
    parts += [f"{resolved} resolved"] if resolved else []
    lead = severity if firing else f"RESOLVED (was {severity})"
    return f"{lead} · {', '.join(parts) or 'no alerts'}"

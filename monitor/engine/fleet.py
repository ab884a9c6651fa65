"""The fleet's view of one logs cycle (docs/contracts.md §11): this instance's reports
plus what the other live instances still see.

Each instance evaluates only its own logs. After a logs cycle it keeps, per dataset and
log check that could evaluate, its *verdict*: the warn/crit findings it saw, or none
(``verdicts_of``; stored by ``monitor.store.fleet``). When an instance then evaluates the
alerts, every other live instance's standing verdict (evaluated within ``[alerts]
window``, the instance not silent nor stopped) joins its own findings
(``fleet_reports``), so that:

- an alert fires once for the fleet, whichever instance saw it;
- it resolves only when no live instance still sees it (one host's clean cycles do not
  resolve what another host sees);
- a finding's count is the fleet's sum: parts of the same finding (code, field, event
  names) from several instances are added up. Checks judged on fleet-wide data (the
  ``volume`` check reads the summed hourly series) are not added up: the largest part
  stands for all;
- its severity follows the fleet's share: when every part's severity is the
  ``warn``-to-``crit`` escalation of its own share (``[checks.*] warn_to_crit_share``),
  the merged finding is judged on the fleet's share, counting the events of instances
  that found the check clean; otherwise the worst part's severity stands.

With no other live instance the reports pass through unchanged: a single instance
behaves exactly as before fleet mode. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses as dc
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from checks.graph_common import is_graph_code
from monitor.config import ChecksSettings
from monitor.model.findings import CheckResult, Finding, Severity, Status
from monitor.model.fleet import Verdict
from monitor.model.results import DatasetReport

# A check's verdict counts only when it could evaluate (as the alert lifecycle's "ran").
_RAN = frozenset({Status.OK, Status.WARN, Status.CRIT})
_ALERTING = frozenset({Severity.WARN, Severity.CRIT})
# Checks whose findings come from the fleet-wide (summed) series: not added up again.
FLEET_WIDE_CHECKS = frozenset({"volume"})
# Where each check's warn-to-crit share lives.
CRIT_SHARES: Mapping[str, Callable[[ChecksSettings], float]] = {
    "delivery": lambda c: c.delivery.warn_to_crit_share,
    "payload": lambda c: c.payload.warn_to_crit_share,
    "dedup": lambda c: c.dedup.warn_to_crit_share,
    "hash_validity": lambda c: c.hash_validity.warn_to_crit_share,
}

_Identity = tuple[str, str | None, tuple[str, ...]]  # code, field, event names


def _log_findings(check: CheckResult) -> list[Finding]:
    return [
        f for f in check.findings if f.severity in _ALERTING and not is_graph_code(check.id, f.code)
    ]


def verdicts_of(instance: str, reports: Iterable[DatasetReport], now: float) -> list[Verdict]:
    """``instance``'s verdicts in this cycle: one per dataset and check that could
    evaluate, with its warn/crit log findings."""
    return [
        Verdict(instance, r.dataset_id, c.id, now, r.events, _log_findings(c))
        for r in reports
        for c in r.checks
        if c.status in _RAN
    ]


def fleet_reports(
    reports: Sequence[DatasetReport], standing: Iterable[Verdict], checks: ChecksSettings
) -> list[DatasetReport]:
    """``reports`` with the other instances' ``standing`` verdicts joined in (module
    docstring); reports without standing verdicts are returned as they are."""
    by_check: dict[tuple[str, str], list[Verdict]] = defaultdict(list)
    for v in standing:
        by_check[(v.dataset_id, v.check_id)].append(v)
    if not by_check:
        return list(reports)
    out = []
    for report in reports:
        merged = [
            _merge_check(report, c, by_check.get((report.dataset_id, c.id), []), checks)
            for c in report.checks
        ]
        out.append(dc.replace(report, checks=merged))
    return out


def _merge_check(
    report: DatasetReport, check: CheckResult, others: Sequence[Verdict], cfg: ChecksSettings
) -> CheckResult:
    if not others:
        return check
    local = _log_findings(check)
    kept = [f for f in check.findings if f not in local]
    parts: list[tuple[list[Finding], int]] = [(v.findings, v.events) for v in others]
    if check.status in _RAN:
        parts.append((local, report.events))
    else:
        parts.append((local, 0))
    return dc.replace(check, findings=kept + _merge_parts(check.id, parts, cfg))


def _identity(f: Finding) -> _Identity:
    return (f.code, f.field, tuple(f.event_names))


def _merge_parts(
    check_id: str, parts: Sequence[tuple[list[Finding], int]], cfg: ChecksSettings
) -> list[Finding]:
    """One finding per identity over every instance's part. ``parts``: each instance's
    findings with the events it evaluated (its share's denominator when clean)."""
    groups: dict[_Identity, list[Finding]] = defaultdict(list)
    for findings, _ in parts:
        for f in findings:
            groups[_identity(f)].append(f)
    merged = []
    for identity, found in groups.items():
        clean = sum(events for findings, events in parts if not _has(findings, identity))
        merged.append(_merge_one(check_id, found, clean, cfg))
    return merged


def _has(findings: Iterable[Finding], identity: _Identity) -> bool:
    return any(_identity(f) == identity for f in findings)


def _merge_one(check_id: str, found: list[Finding], clean: int, cfg: ChecksSettings) -> Finding:
    lead = max(found, key=lambda f: (f.count, f.severity.rank))
    if len(found) == 1 and not clean:
        return lead
    worst = max((f.severity for f in found), key=lambda s: s.rank)
    if check_id in FLEET_WIDE_CHECKS:
        return dc.replace(lead, severity=worst)
    total = sum(f.count for f in found)
    evidence: dict[str, Any] = {**lead.evidence, "instances": len(found)}
    severity = worst
    crit_share = CRIT_SHARES[check_id](cfg) if check_id in CRIT_SHARES else 0.0
    share = _fleet_share(found, clean, crit_share)
    if share is not None:
        severity = Severity.CRIT if share >= crit_share else Severity.WARN
        evidence["share"] = round(share, 4)
    return dc.replace(lead, count=total, severity=severity, evidence=evidence)


def _fleet_share(found: Sequence[Finding], clean: int, crit_share: float) -> float | None:
    """The fleet's share of a finding, when each part says its share and its severity is
    the escalation of that share at ``crit_share`` (else ``None``)."""
    if crit_share <= 0:
        return None
    denominator = float(clean)
    for f in found:
        share = f.evidence.get("share")
        if not isinstance(share, int | float) or share <= 0:
            return None
        expected = Severity.CRIT if share >= crit_share else Severity.WARN
        if f.severity is not expected:
            return None  # crit for another reason (e.g. clear text): not a share verdict
        total = f.evidence.get("total_events")
        denominator += float(total) if isinstance(total, int) and total > 0 else f.count / share
    return sum(f.count for f in found) / denominator if denominator > 0 else None

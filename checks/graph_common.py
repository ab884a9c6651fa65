"""What the Graph-based parts of checks share: outcomes, combining, volume guards.

A check with a Graph part (``parity``, ``diagnostics``, and the Graph parts of ``dedup``,
``match_quality``, ``latency``) judges ``ctx.graph``, one ``GraphSnapshot`` of the
dataset, in ``result()``. Like the log parts, these are pure functions of observations.

How a Graph part ends (``GraphState``), and what that does to the check's status:

- ``skipped``: no Graph source for this dataset (no ``[meta]``, no token; docs/contracts.md
  §6), or the parts it needs were not asked for in this poll (the daemon reads
  ``/stats`` and Dataset Quality in different jobs, ``GraphSnapshot.parts``). The
  check's status is its log part's status, unchanged.
- ``error``: a part of the snapshot the check needs could not be read (5xx, malformed
  JSON, permission, token, throttling). "Could not evaluate" is never ``ok``: the
  status is the worst of the log status and ``error`` (so ``warn``/``crit`` from other
  findings still show). The cause is reported once per dataset by ``diagnostics``
  (``SOURCE_UNAVAILABLE``, ``TOKEN_INVALID`` or ``RATE_LIMITED``).
- ``not_judged``: read, but nothing reached the minimum volumes: counts as skipped.
- ``evaluated``: its findings join the log findings; status = worst severity.

Volume guards (docs/meta-capi.md §11 "SERVER = 0 while BROWSER >= N"): Meta's numbers for an
event name with a handful of events a day are noise, so each Graph finding is judged only
for event names with at least a configured number of events in the ``/stats`` window.
When ``/stats`` could not be read the volume is unknown, and Meta's own aggregates
(EMQ, coverage, freshness) are judged anyway: unknown is not zero (§12).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from monitor.mask import scrub_secrets
from monitor.model.findings import CheckResult, Finding, Severity, Status, worst_severity
from monitor.model.graph import GraphErrorKind, GraphSnapshot, Part
from monitor.model.rollup import SOURCE_SERVER_LOG, HourRollup

_PENALTY = {Severity.INFO: 0, Severity.WARN: 15, Severity.CRIT: 40}
NOT_CONFIGURED = "no Graph API source for this dataset (needs [meta] and an access token)"
HOUR = 3600


class GraphState(StrEnum):
    SKIPPED = "skipped"
    ERROR = "error"
    NOT_JUDGED = "not_judged"
    EVALUATED = "evaluated"


@dataclass(slots=True)
class GraphPart:
    """The outcome of one check's Graph part (see the module docstring)."""

    state: GraphState
    summary: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def score(self) -> int | None:
        """0-100: each finding costs 15 (warn) or 40 (crit) points, as a log finding
        affecting half the events does (``checks.base.score_findings``); None unless
        judged (or, when a part failed, without findings). Meta's aggregates carry no
        share of events to scale by."""
        judged = self.state is GraphState.EVALUATED
        if not judged and not (self.state is GraphState.ERROR and self.findings):
            return None
        return max(0, 100 - sum(_PENALTY[f.severity] for f in self.findings))


def skipped_part(reason: str = NOT_CONFIGURED) -> GraphPart:
    return GraphPart(GraphState.SKIPPED, reason)


def not_polled(snapshot: GraphSnapshot, parts: Iterable[Part]) -> GraphPart | None:
    """A ``skipped`` part when none of ``parts`` was asked for in ``snapshot``'s poll."""
    needed = list(parts)
    if any(snapshot.polled(p) for p in needed):
        return None
    names = ", ".join(p.value for p in needed)
    return skipped_part(f"{names} not read from Meta in this cycle.")


def unreadable(snapshot: GraphSnapshot, parts: Iterable[Part]) -> list[Part]:
    """The ``parts`` of ``snapshot`` that were asked for but could not be read."""
    return [p for p in parts if snapshot.polled(p) and not snapshot.ok(p)]


# Which snapshot parts each Graph finding is judged from, by (check id, code): a cycle
# that did not read them has no verdict on the finding, so its absence then proves
# nothing (``monitor.daemon.graph_jobs`` tells the alert engine). Codes not listed here are log
# findings. Three codes are about the source itself and are judged from the parts that
# failed, named in their evidence: see ``SOURCE_CODES``.
CODE_PARTS: dict[tuple[str, str], frozenset[Part]] = {
    **{
        ("parity", code): frozenset({Part.STATS_EVENT_SOURCE})
        for code in (
            "PARITY_SERVER_MISSING",
            "PARITY_BROWSER_MISSING",
            "PARITY_LOW",
            "SERVER_COUNT_MISMATCH",
        )
    },
    ("parity", "EVENT_COVERAGE_LOW"): frozenset({Part.DATASET_QUALITY}),
    ("dedup", "DEDUP_KEY_COVERAGE_LOW"): frozenset({Part.DATASET_QUALITY}),
    ("match_quality", "EMQ_LOW"): frozenset({Part.DATASET_QUALITY}),
    ("match_quality", "EMQ_DROP"): frozenset({Part.DATASET_QUALITY}),
    ("match_quality", "MATCH_KEY_DROP"): frozenset({Part.DATASET_QUALITY}),
    ("latency", "FRESHNESS_SLOW"): frozenset({Part.DATASET_QUALITY}),
    ("latency", "FRESHNESS_UNRECOGNISED"): frozenset({Part.DATASET_QUALITY}),
    # da_checks entries and the EMQ diagnostics of Dataset Quality.
    ("diagnostics", "META_DIAGNOSTIC"): frozenset({Part.DA_CHECKS, Part.DATASET_QUALITY}),
    ("diagnostics", "TOKEN_EXPIRING"): frozenset({Part.TOKEN}),
}
# ``diagnostics`` codes about the Graph API source: raised by whichever parts failed.
SOURCE_CODES: frozenset[str] = frozenset({"TOKEN_INVALID", "RATE_LIMITED", "SOURCE_UNAVAILABLE"})
# Checks whose every finding comes from the Graph API.
GRAPH_ONLY_CHECKS: frozenset[str] = frozenset({"parity", "diagnostics"})


def from_logs(evidence: Mapping[str, Any]) -> bool:
    """Whether a finding of a code with a log side too (``MATCH_KEY_DROP``: Meta's key
    coverage, or the logs' own in ``checks.match_drop``) came from the delivery logs,
    by its evidence's ``source``."""
    return evidence.get("source") == SOURCE_SERVER_LOG


def is_graph_code(check_id: str, code: str) -> bool:
    """Whether findings ``code`` of ``check_id`` are judged from the Graph API (a
    snapshot), rather than from delivery logs."""
    return check_id in GRAPH_ONLY_CHECKS or (check_id, code) in CODE_PARTS


def error_text(snapshot: GraphSnapshot, failed: Sequence[Part]) -> str:
    """Why the parts could not be read, in a few words (the cause's code is in diagnostics)."""
    kinds = {e.kind for p in failed if (e := snapshot.error(p)) is not None}
    names = ", ".join(p.value for p in failed)
    # The code under which diagnostics reports these parts (one cause per part).
    code = (
        "TOKEN_INVALID"
        if GraphErrorKind.TOKEN_INVALID in kinds
        else "RATE_LIMITED"
        if GraphErrorKind.RATE_LIMITED in kinds
        else "SOURCE_UNAVAILABLE"
    )
    return (
        f"Meta's Graph API could not be read ({names}: {', '.join(sorted(kinds))}); "
        f"not evaluated, see {code} in diagnostics."
    )


_RANK = {Status.SKIPPED: 0, Status.OK: 1, Status.ERROR: 2, Status.WARN: 3, Status.CRIT: 4}


def worst_status(*statuses: Status) -> Status:
    """crit > warn > error > ok > skipped: "could not evaluate" outranks "healthy"."""
    return max(statuses, key=_RANK.__getitem__, default=Status.SKIPPED)


def _part_status(part: GraphPart) -> Status:
    by_findings = Status.from_severity(worst_severity(part.findings))
    if part.state is GraphState.ERROR:
        return worst_status(by_findings, Status.ERROR)
    if part.state is GraphState.EVALUATED:
        return by_findings
    return Status.SKIPPED


def combine(log: CheckResult, part: GraphPart) -> CheckResult:
    """The check's result from its log part and its Graph part (module docstring)."""
    if part.state is GraphState.SKIPPED:
        return log
    findings = [*log.findings, *part.findings]
    graph_status = _part_status(part)
    if log.status is Status.SKIPPED:
        if graph_status is Status.SKIPPED:
            return CheckResult(log.id, Status.SKIPPED, f"{log.summary} Meta: {part.summary}")
        return CheckResult(log.id, graph_status, f"Meta: {part.summary}", part.score, findings)
    status = worst_status(log.status, graph_status)
    scores = [s for s in (log.score, part.score) if s is not None]
    summary = f"{log.summary} Meta: {part.summary}"
    return CheckResult(log.id, status, summary, min(scores) if scores else None, findings)


def graph_only(check_id: str, part: GraphPart) -> CheckResult:
    """The result of a check that has only a Graph part (``parity``, ``diagnostics``)."""
    status = _part_status(part)
    return CheckResult(check_id, status, part.summary, part.score, list(part.findings))


def graph_finding(
    check_id: str,
    code: str,
    severity: Severity,
    count: int,
    message: str,
    remediation: str,
    *,
    event_names: Sequence[str] = (),
    field_name: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    """A finding about Meta's aggregates: no file/line examples (there are none), a
    ``count`` of at least 1 (the JSON contract's minimum). Texts quoting Meta must be
    ``scrub_text``-ed by the caller; tokens and emails are masked here once more."""
    return Finding(
        code=code,
        severity=severity,
        check=check_id,
        count=max(1, int(count)),
        message=scrub_secrets(message),
        remediation=scrub_secrets(remediation),
        event_names=list(event_names),
        field=field_name,
        evidence=evidence or {},
    )


# --------------------------------------------------------------------- volumes


def event_volumes(snapshot: GraphSnapshot) -> dict[str, int] | None:
    """Events per name over the ``/stats`` window (``aggregation=event``); None = unknown.

    A name absent from a successful read had no events Meta counted (§2: top 100 names
    per hour, so only the long tail of a dataset with more names is lost).
    """
    if not snapshot.ok(Part.STATS_EVENT):
        return None
    totals: Counter[str] = Counter()
    for b in snapshot.event_counts:
        totals[b.value] += b.count
    return dict(totals)


def enough(volumes: dict[str, int] | None, name: str, minimum: int) -> bool:
    """The volume guard: judged when the volume is unknown or at least ``minimum``."""
    return volumes is None or volumes.get(name, 0) >= minimum


def volume_count(volumes: dict[str, int] | None, name: str) -> int:
    """A finding's ``count`` for a per-name Meta aggregate: its events, at least 1."""
    return max(1, (volumes or {}).get(name, 0))


# ----------------------------------------------------------------- log rollups


@runtime_checkable
class UsesRollups(Protocol):
    """A check that also compares Meta's numbers with the logs' hourly rollups.

    The engine calls ``use_rollups`` with the dataset's ``HourRollup`` list of this audit
    after the last ``observe`` and before ``result``: rollups exist only once every
    delivery has been folded, so they cannot travel in ``CheckContext``.
    """

    def use_rollups(self, rollups: Sequence[HourRollup]) -> None: ...


def complete_hours(now: float, settle: float, window: float, floor: float) -> tuple[int, int]:
    """``[start, end)`` of the complete hours judged: ending ``settle`` before ``now``,
    spanning at most ``window``, never before ``floor`` (the /stats window start)."""
    end = int((now - settle) // HOUR * HOUR)
    start = max(int(-(-floor // HOUR) * HOUR), int(end - window // HOUR * HOUR))
    return start, end

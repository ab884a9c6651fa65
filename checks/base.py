"""The contract every check follows, and the finding tally they share.

A check is created once per dataset per evaluation with a ``CheckContext``; the engine
feeds it every ``Delivery`` of that dataset through ``observe`` and then asks for its
``result``. ``observe`` is a pure fold over what the sources observed (no I/O, no clock:
time comes from ``ctx.now``); memory must stay bounded whatever the size of the logs.
"""

from __future__ import annotations

import dataclasses as dc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from monitor.mask import mask_value
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status, worst_severity

if TYPE_CHECKING:
    from monitor.config import ChecksSettings
    from monitor.model.graph import GraphHistory, GraphSnapshot
    from monitor.model.observations import Delivery
    from monitor.model.series import VolumeHistory

MAX_EXAMPLES = 3
MAX_EVENT_NAMES = 50
_NO_VALUE: Any = object()


@dataclass(frozen=True, slots=True)
class CheckContext:
    dataset_id: str
    now: float  # Unix seconds: the run's clock (--now), never read from the system inside a check
    settings: ChecksSettings
    # True when the instance observes input that continues where another one stopped (a
    # later part of a parallel audit): checks with order-dependent state then also keep
    # what their ``merge`` needs to join the two (dedup: the first uses of ids).
    continuation: bool = False
    # This run's Graph API poll of the dataset; None = no Graph source configured for it
    # (no [meta] or no token): the Graph-based parts of checks are then ``skipped``.
    graph: GraphSnapshot | None = None
    # Stored Dataset Quality readings before this poll (EMQ_DROP, MATCH_KEY_DROP); None =
    # no store in use, so drops are not evaluated.
    history: GraphHistory | None = None
    # The dataset's hourly series (stored rollups, Meta's hourly counts) for the ``volume``
    # check; None = no store in use: volume and ratio drift are ``skipped``.
    series: VolumeHistory | None = None


class Check(Protocol):
    """One module per check in ``checks/``; registered in ``checks.CHECKS``."""

    id: ClassVar[str]
    title: ClassVar[str]
    # How much the check weighs in a dataset's health score (weighted mean of scores).
    weight: ClassVar[float]
    # Whether it judges Meta's side too: then it is asked for a result even when a
    # dataset has no log events (its log part reports skipped by itself).
    reads_graph: ClassVar[bool]

    def __init__(self, ctx: CheckContext) -> None: ...

    def observe(self, delivery: Delivery) -> None: ...

    def result(self) -> CheckResult: ...

    def merge(self, later: Self) -> None:
        """Fold in the state of an instance (same class, same context settings) that
        observed the input right after this one, so that ``result()`` is what one instance
        observing both would give; ``later`` must not be used afterwards. Order-independent
        state (counts, histograms, maxima) must merge exactly; bounded collections
        (examples, names) keep the earlier part's entries first, as a sequential run does.
        Caches may be dropped before an instance is pickled to its merging process."""
        ...


@dataclass(slots=True)
class Tally:
    """Occurrences of one (code, field): exact count, bounded names and masked examples."""

    code: str
    field: str | None
    count: int = 0
    event_names: dict[str, int] = dc.field(default_factory=dict)
    examples: list[Example] = dc.field(default_factory=list)

    def add(self, event_name: str, file: str, line: int, value: Any, n: int = 1) -> None:
        self.count += n
        names = self.event_names
        if event_name in names:
            names[event_name] += n
        elif len(names) < MAX_EVENT_NAMES:
            names[event_name] = n
        if len(self.examples) < MAX_EXAMPLES:
            shown = "" if value is _NO_VALUE else mask_value(value, self.field)
            self.examples.append(Example(file, line, shown))

    def merge(self, later: Tally) -> None:
        """Fold in the tally of the input right after this one: counts add up, names keep
        the ``MAX_EVENT_NAMES`` bound (exact unless ``later`` itself hit it), examples are
        the earlier ones first, up to ``MAX_EXAMPLES``, as a sequential run keeps them."""
        self.count += later.count
        names = self.event_names
        for name, n in later.event_names.items():
            if name in names:
                names[name] += n
            elif len(names) < MAX_EVENT_NAMES:
                names[name] = n
        room = MAX_EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(later.examples[:room])


class FindingBook:
    """Per-check collection of tallies keyed by (code, field)."""

    __slots__ = ("tallies",)

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str | None], Tally] = {}

    def hit(
        self,
        code: str,
        field: str | None,
        event_name: str,
        delivery: Delivery,
        value: Any = _NO_VALUE,
        n: int = 1,
    ) -> None:
        key = (code, field)
        tally = self.tallies.get(key)
        if tally is None:
            tally = self.tallies[key] = Tally(code, field)
        tally.add(event_name, delivery.file, delivery.line, value, n)

    def merge(self, later: FindingBook) -> None:
        """Fold in the book of the input right after this one (see ``Tally.merge``); new
        keys come after ours, in their first-seen order, as in a sequential run."""
        for key, tally in later.tallies.items():
            mine = self.tallies.get(key)
            if mine is None:
                self.tallies[key] = tally
            else:
                mine.merge(tally)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.tallies.values())

    def __len__(self) -> int:
        return len(self.tallies)


def escalate(base: Severity, share: float, crit_share: float) -> Severity:
    """``warn`` becomes ``crit`` once ``share`` reaches ``crit_share``; never lowered."""
    if base is Severity.WARN and share >= crit_share > 0:
        return Severity.CRIT
    return base


def names_text(names: list[str]) -> str:
    if not names:
        return "events"
    shown = ", ".join(names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def make_finding(
    check_id: str,
    tally: Tally,
    severity: Severity,
    message: str,
    remediation: str,
    evidence: dict[str, Any] | None = None,
) -> Finding:
    names = sorted(tally.event_names, key=lambda n: (-tally.event_names[n], n))
    return Finding(
        code=tally.code,
        severity=severity,
        check=check_id,
        count=tally.count,
        message=message,
        remediation=remediation,
        event_names=names,
        field=tally.field,
        examples=list(tally.examples),
        evidence=evidence or {},
    )


_PENALTY = {Severity.INFO: 0.0, Severity.WARN: 15.0, Severity.CRIT: 40.0}


def score_findings(findings: list[Finding], total: int) -> int:
    """0-100: each finding costs by severity, scaled up by the share of events affected."""
    penalty = 0.0
    for f in findings:
        share = min(1.0, f.count / total) if total else 1.0
        penalty += _PENALTY[f.severity] * (0.5 + share)
    return max(0, round(100 - penalty))


def result_from_findings(
    check_id: str, findings: list[Finding], total: int, summary_ok: str, summary_bad: str
) -> CheckResult:
    """Status = worst severity; score from ``score_findings``; summary picks ok/bad text."""
    status = Status.from_severity(worst_severity(findings))
    summary = summary_ok if status is Status.OK else summary_bad
    return CheckResult(check_id, status, summary, score_findings(findings, total), findings)


def skipped(check_id: str, reason: str) -> CheckResult:
    return CheckResult(check_id, Status.SKIPPED, reason, None, [])

"""The alert lifecycle as pure decisions: (previous record, this cycle's finding, now) ->
(next record, why to notify). No I/O, no clock: ``monitor.alerts.engine`` loads and
writes the rows around these functions.

States (docs/contracts.md §6, §12)::

    (none) --finding--> PENDING --for_cycles evaluations with it--> FIRING
    FIRING --resolve_after_cycles clean evaluations, absent keep_firing_for--> RESOLVED
    PENDING --clean evaluation--> (none)       a pending alert leaves no trace
    RESOLVED --finding, later than flap_window--> PENDING (a new episode, a new row)
    RESOLVED --finding, within flap_window--> FIRING, flapping (the same episode reopened)

- **Seen**: only ``warn``/``crit`` findings count. ``for_cycles`` (default 1) consecutive
  evaluations with the finding make it fire; with 1 it fires on first sight.
- **Clean**: an evaluation in which the alert's *check ran* (status ``ok``/``warn``/
  ``crit``) and the finding was absent. A check that is ``error`` or ``skipped``, or
  absent from the report, could not evaluate: it neither counts as clean nor resets the
  clean count (nor the pending count), so ``clean, error, clean`` resolves with the
  default ``resolve_after_cycles = 2``. The finding seen again resets the clean count.
- **Keep firing**: a firing alert resolves only in a clean evaluation at least
  ``keep_firing_for`` (default 1 h) after the finding was last seen: an estimate that
  hovers around its threshold, or a drop that pauses for an hour, stays one episode.
- **Flapping**: a finding back within ``flap_window`` (default 1 day) of its alert's
  resolution reopens that episode instead of starting a new one, straight to ``FIRING``
  (it has fired before), marked ``flapping``; it is said once, as flapping, and from then
  on it resolves only after its finding has been absent for ``flap_window``. A steady
  condition therefore makes at most one fire/resolve pair a day, plus one flapping notice.
- **Notify** (``Reason``), only for an alert that is not muted:
  ``NEW`` when it fires and the receivers have not been told (first firing, or the end of
  a mute: a muted alert counts as untold, so it is announced as new when the silence
  expires or the inhibiting alert resolves); ``FLAPPING`` when it is reopened (told or
  not); ``ESCALATED`` when its severity rises above the severity last notified;
  ``REPEAT`` when ``repeat_interval`` has passed since the last notification, never for a
  flapping alert; ``RESOLVED`` when it resolves, ``send_resolved`` is on and the
  receivers were told it fires. De-escalation (``crit`` -> ``warn``) posts nothing: the
  record's severity follows, the next repeat shows it, and a later rise back to ``crit``
  is no news because ``crit`` was the last severity notified. Nothing else notifies.
- **Muted** (silenced or inhibited, see ``monitor.alerts.inhibit``): state still advances
  and is stored, but no notification is made and the alert becomes untold.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.alerts.model import AlertKey, AlertState, Reason
from monitor.config import AlertSettings
from monitor.model.findings import Example, Finding, Severity, Status
from monitor.model.results import DatasetReport

# Codes that concern the dataset as a whole: their alert has ``event_name = None`` even
# when the finding lists event names (the token, throttling, a test code on production
# traffic, a source that cannot be read, Meta's upload frequency). Any other finding is
# one alert per event name it lists, or one dataset-wide alert when it lists none (e.g.
# META_DIAGNOSTIC without an event name).
DATASET_WIDE_CODES: frozenset[str] = frozenset(
    {
        "TOKEN_INVALID",
        "TOKEN_EXPIRING",
        "RATE_LIMITED",
        "SOURCE_UNAVAILABLE",
        "TEST_EVENT_CODE_PRESENT",
        "FRESHNESS_SLOW",
    }
)
ALERTING_SEVERITIES = frozenset({Severity.WARN, Severity.CRIT})
# A check "ran" when it could evaluate; skipped/error never resolve nor reset anything.
RAN_STATUSES = frozenset({Status.OK, Status.WARN, Status.CRIT})
MAX_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class Seen:
    """An alert's condition as observed in one cycle (findings with the same key merged).

    Text and examples are already masked by the checks."""

    key: AlertKey
    severity: Severity
    count: int
    message: str
    remediation: str
    evidence: Mapping[str, Any] = dc.field(default_factory=dict)
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """The stored state of one alert episode.

    ``seen_cycles``: consecutive evaluations with the finding (drives ``for_cycles``).
    ``clean_cycles``: clean evaluations since it was last seen (drives resolution).
    ``notified_severity``: severity the receivers were last told, ``None`` when they have
    not been told this episode is firing (never notified, or muted since).
    ``muted_by``: why it is muted now (``"inhibited:TOKEN_INVALID"``, ``"silence:3"``).
    ``content``: the finding as last seen (shown in repeats and resolutions).
    ``flapping``: the episode was reopened within ``flap_window`` of resolving; ``flaps``
    counts the reopenings.
    ``id``: the row id once stored.
    """

    key: AlertKey
    state: AlertState
    severity: Severity
    peak_severity: Severity
    started_at: float
    last_seen_at: float
    content: Seen
    seen_cycles: int = 1
    clean_cycles: int = 0
    fired_at: float | None = None
    resolved_at: float | None = None
    notified_severity: Severity | None = None
    last_notified_at: float | None = None
    muted_by: str | None = None
    flapping: bool = False
    flaps: int = 0
    id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def keep_for(self, cfg: AlertSettings) -> float:
        """How long the finding must be absent before this alert may resolve."""
        if self.flapping:
            return max(cfg.keep_firing_for, cfg.flap_window)
        return cfg.keep_firing_for


@dataclass(frozen=True, slots=True)
class Decision:
    """``record``: what to store (``None``: nothing to track, delete a pending row).
    ``reason``: why the alert goes into this cycle's notification (``None``: it does not).
    """

    record: AlertRecord | None
    reason: Reason | None = None


# --- the decision ----------------------------------------------------------------------


def decide(
    prev: AlertRecord | None,
    seen: Seen | None,
    check_ran: bool,
    now: float,
    cfg: AlertSettings,
    muted_by: str | None = None,
) -> Decision:
    """The next state of one alert and whether to notify about it (see module docstring).

    ``prev``: the stored record: the open one, else the key's last resolved one (history:
    its key starts anew, unless the finding is back within ``flap_window``).
    ``seen``: this cycle's finding for the key, ``None`` when absent.
    ``check_ran``: whether the alert's check could evaluate this cycle.
    ``muted_by``: set when a silence or an inhibition mutes the alert now.
    """
    if seen is not None and prev is not None and _flaps_back(prev, now, cfg):
        reopened = dc.replace(_reopen(prev, seen, now), muted_by=muted_by)
        flapping = None if muted_by is not None else Reason.FLAPPING
        return Decision(_mark(reopened, flapping, now), flapping)
    open_prev = prev if prev is not None and prev.is_open else None
    record = _transition(open_prev, seen, check_ran, now, cfg)
    if record is None:
        return Decision(None)
    record = dc.replace(record, muted_by=muted_by)
    reason = _reason(open_prev, record, now, cfg)
    return Decision(_mark(record, reason, now), reason)


def _flaps_back(prev: AlertRecord, now: float, cfg: AlertSettings) -> bool:
    """``prev`` resolved (after firing) less than ``flap_window`` before ``now``."""
    return (
        prev.state is AlertState.RESOLVED
        and prev.fired_at is not None
        and prev.resolved_at is not None
        and now - prev.resolved_at < cfg.flap_window
    )


def _reopen(prev: AlertRecord, seen: Seen, now: float) -> AlertRecord:
    """The resolved episode ``prev`` firing again, flapping (module docstring)."""
    return dc.replace(
        prev,
        state=AlertState.FIRING,
        severity=seen.severity,
        peak_severity=max(prev.peak_severity, seen.severity, key=lambda s: s.rank),
        last_seen_at=now,
        content=seen,
        seen_cycles=1,
        clean_cycles=0,
        resolved_at=None,
        flapping=True,
        flaps=prev.flaps + 1,
    )


def _transition(
    prev: AlertRecord | None, seen: Seen | None, check_ran: bool, now: float, cfg: AlertSettings
) -> AlertRecord | None:
    if seen is not None:
        return _on_seen(prev, seen, now, cfg)
    if prev is None:
        return None
    if not check_ran:
        return prev  # could not evaluate: nothing advances, nothing resets
    if prev.state is AlertState.PENDING:
        return None  # cleared before it fired
    clean = prev.clean_cycles + 1
    if clean >= cfg.resolve_after_cycles and now - prev.last_seen_at >= prev.keep_for(cfg):
        return dc.replace(prev, state=AlertState.RESOLVED, resolved_at=now, clean_cycles=clean)
    return dc.replace(prev, clean_cycles=clean)


def _on_seen(prev: AlertRecord | None, seen: Seen, now: float, cfg: AlertSettings) -> AlertRecord:
    if prev is None:
        record = AlertRecord(
            key=seen.key,
            state=AlertState.PENDING,
            severity=seen.severity,
            peak_severity=seen.severity,
            started_at=now,
            last_seen_at=now,
            content=seen,
        )
    else:
        record = dc.replace(
            prev,
            severity=seen.severity,
            peak_severity=max(prev.peak_severity, seen.severity, key=lambda s: s.rank),
            last_seen_at=now,
            content=seen,
            seen_cycles=prev.seen_cycles + 1,
            clean_cycles=0,
        )
    if record.state is AlertState.PENDING and record.seen_cycles >= cfg.for_cycles:
        record = dc.replace(record, state=AlertState.FIRING, fired_at=now)
    return record


def _reason(
    prev: AlertRecord | None, record: AlertRecord, now: float, cfg: AlertSettings
) -> Reason | None:
    if record.muted_by is not None:
        return None
    if record.state is AlertState.RESOLVED:
        told = prev is not None and prev.notified_severity is not None
        return Reason.RESOLVED if told and cfg.send_resolved else None
    if record.state is not AlertState.FIRING:
        return None
    if record.notified_severity is None:
        return Reason.NEW
    if record.severity.rank > record.notified_severity.rank:
        return Reason.ESCALATED
    last = record.last_notified_at
    if not record.flapping and last is not None and now - last >= cfg.repeat_interval:
        return Reason.REPEAT
    return None


def _mark(record: AlertRecord, reason: Reason | None, now: float) -> AlertRecord:
    """Record what the receivers now know."""
    if record.muted_by is not None:
        return dc.replace(record, notified_severity=None)  # unmuting announces it anew
    if reason is None:
        return record
    return dc.replace(record, notified_severity=record.severity, last_notified_at=now)


# --- from a dataset report to observations ---------------------------------------------


def alert_event_names(finding: Finding) -> list[str | None]:
    """The ``event_name`` label of each alert a finding makes (see ``DATASET_WIDE_CODES``)."""
    if finding.code in DATASET_WIDE_CODES or not finding.event_names:
        return [None]
    return list(dict.fromkeys(finding.event_names))


def checks_ran(report: DatasetReport) -> frozenset[str]:
    """Ids of the checks that could evaluate in ``report``."""
    return frozenset(c.id for c in report.checks if c.status in RAN_STATUSES)


def seen_alerts(report: DatasetReport) -> dict[AlertKey, Seen]:
    """This cycle's alert conditions of one dataset: its warn/crit findings by alert key.

    Findings of one key (one code may come as several findings, e.g. one per field) merge:
    worst severity, summed count, the worst finding's text, examples in order."""
    grouped: dict[AlertKey, list[Finding]] = {}
    for finding in _alerting(report):
        for name in alert_event_names(finding):
            key = AlertKey(report.dataset_id, finding.check, finding.code, name)
            grouped.setdefault(key, []).append(finding)
    return {key: _merge(key, findings) for key, findings in grouped.items()}


def _alerting(report: DatasetReport) -> Iterator[Finding]:
    # Every check's findings count, whatever its status: SOURCE_UNAVAILABLE comes with an
    # ``error`` status, and it must still alert.
    for check in report.checks:
        yield from (f for f in check.findings if f.severity in ALERTING_SEVERITIES)


def _merge(key: AlertKey, findings: list[Finding]) -> Seen:
    worst = max(findings, key=lambda f: (f.severity.rank, f.count))
    evidence = dict(worst.evidence)
    fields = sorted({f.field for f in findings if f.field})
    if fields and "field" not in evidence:
        evidence["field"] = fields[0] if len(fields) == 1 else fields
    return Seen(
        key=key,
        severity=worst.severity,
        count=sum(f.count for f in findings),
        message=worst.message,
        remediation=worst.remediation,
        evidence=evidence,
        examples=tuple(_first_examples(findings)),
    )


def _first_examples(findings: Iterable[Finding]) -> list[Example]:
    out: list[Example] = []
    for f in findings:
        out.extend(f.examples[: MAX_EXAMPLES - len(out)])
    return out

"""One evaluation cycle of the alert lifecycle: load alert rows, apply the pure decisions
(``monitor.alerts.lifecycle``), write alert rows and outbox rows.

``evaluate_cycle`` runs inside the caller's transaction and never commits: the daemon
advances its log cursors in the same transaction, so a crash before the commit rolls
back both and the next run redoes the cycle; a crash after it loses nothing either,
since the outbox rows are durable and drained by the notifiers (``monitor.notify``).

Per dataset of ``reports`` (datasets not in ``reports`` are left untouched):

1. Every open alert of the dataset and every warn/crit finding is one key.
2. Inhibitors (``monitor.alerts.inhibit.INHIBITORS``) are decided first; the ones firing
   after this cycle's decision mute the alerts that depend on them, in this same cycle
   (so a token failure never comes with a burst of volume alerts, and the cycle in which
   it resolves announces the dependants that still fire as new).
3. Active silences mute the alerts they match (inhibition is named first when both do).
   While source trouble is seen, dependent alerts are not judged clean
   (``monitor.alerts.inhibit.evaluated``).
4. One outbox row per dataset when at least one alert has a ``Reason``; its payload is
   ``Notification.to_dict()``, with a ``muted_note`` when firing alerts are muted.

A cycle may judge only some of a dataset's alerts (``judges``): the daemon's log cycles
have no verdict on Graph API findings and its Graph jobs none on log findings, even of
the same check (``dedup`` has both). For an alert a cycle does not judge, the absence of
its finding is not clean (as if its check had not run); a finding that is present still
counts, since it was observed.
"""

from __future__ import annotations

import dataclasses as dc
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from monitor.alerts import inhibit
from monitor.alerts.lifecycle import AlertRecord, Decision, checks_ran, decide, seen_alerts
from monitor.alerts.model import AlertKey, AlertState, AlertView, Notification, Reason
from monitor.alerts.queries import (
    insert_outbox,
    load_open,
    load_resolved_since,
    save,
)
from monitor.alerts.silences import Silence, load_active, silence_for, silence_id
from monitor.config import Settings
from monitor.model.results import DatasetReport
from monitor.store.db import store_errors

# Whether a cycle judges an alert: (its key, its stored open record or None) -> bool.
Judges = Callable[[AlertKey, AlertRecord | None], bool]


@dataclass(slots=True)
class CycleOutcome:
    """What one cycle did. Each list holds alert keys (``key.fingerprint`` identifies).

    ``fired``: started firing (muted or not; a reopened flapping episode too).
    ``flapping``/``escalated``/``repeated``: notified as such.
    ``resolved``: resolved (notified or not). ``muted``: firing and muted after the cycle.
    ``notified``: every alert in a notification, with its reason. ``outbox``: the keys of
    the outbox rows written (a replayed cycle writes none)."""

    fired: list[AlertKey] = dc.field(default_factory=list)
    flapping: list[AlertKey] = dc.field(default_factory=list)
    escalated: list[AlertKey] = dc.field(default_factory=list)
    repeated: list[AlertKey] = dc.field(default_factory=list)
    resolved: list[AlertKey] = dc.field(default_factory=list)
    muted: list[AlertKey] = dc.field(default_factory=list)
    notified: list[tuple[AlertKey, Reason]] = dc.field(default_factory=list)
    outbox: list[str] = dc.field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Counts for a log line (no labels, nothing personal)."""
        names = (
            "fired", "flapping", "escalated", "repeated", "resolved", "muted", "notified",
            "outbox",
        )  # fmt: skip
        return {n: len(getattr(self, n)) for n in names}


def evaluate_cycle(
    conn: Connection,
    settings: Settings,
    reports: Sequence[DatasetReport],
    now: float,
    *,
    outbox: bool = True,
    judges: Judges | None = None,
) -> CycleOutcome:
    """Advance every alert of the datasets in ``reports`` to ``now`` and queue their
    notifications, on ``conn`` inside the caller's transaction (never committed here).

    Several reports of one dataset are evaluated together (their checks are joined).
    ``outbox=False`` (backtests) records decisions but queues nothing. ``judges``: the
    alerts this cycle has a verdict on (module docstring; default: all). Database
    failures raise ``StoreError``; the caller rolls back."""
    outcome = CycleOutcome()
    merged = _by_dataset(reports)
    with store_errors("write to", conn):
        silences = load_active(conn, now)
        stored = load_open(conn, list(merged))
        resolved = load_resolved_since(conn, list(merged), now - settings.alerts.flap_window)
        for report in merged.values():
            cycle = _DatasetCycle(settings, report, stored, silences, now, judges, resolved)
            notification = cycle.run(conn, outcome)
            if notification is not None and outbox and insert_outbox(conn, notification):
                outcome.outbox.append(notification.key)
    return outcome


def _by_dataset(reports: Iterable[DatasetReport]) -> dict[str, DatasetReport]:
    out: dict[str, DatasetReport] = {}
    for r in reports:
        first = out.get(r.dataset_id)
        out[r.dataset_id] = (
            r if first is None else dc.replace(first, checks=first.checks + r.checks)
        )
    return out


def _order(key: AlertKey) -> tuple[str, str, str]:
    return (key.code, key.check, key.event_name or "")


class _DatasetCycle:
    """The decisions of one dataset in one cycle (a helper of ``evaluate_cycle``)."""

    def __init__(
        self,
        settings: Settings,
        report: DatasetReport,
        stored: Mapping[AlertKey, AlertRecord],
        silences: Sequence[Silence],
        now: float,
        judges: Judges | None = None,
        resolved: Mapping[AlertKey, AlertRecord] | None = None,
    ) -> None:
        self.settings = settings
        self.judges = judges
        self.report = report
        self.now = now
        self.seen = seen_alerts(report)
        self.ran = checks_ran(report)
        # Source trouble seen this cycle (an orders source's is its own, see inhibit).
        self.seen_codes = frozenset(
            k.code for k in self.seen if k.check not in inhibit.OWN_SOURCE_CHECKS
        )
        self.prev = {k: r for k, r in stored.items() if k.dataset_id == report.dataset_id}
        # A key seen again without an open episode: its recently resolved one may reopen
        # (flapping, ``monitor.alerts.lifecycle``). Only seen keys: the others stay history.
        for k, r in (resolved or {}).items():
            if k in self.seen and k not in self.prev:
                self.prev[k] = r
        self.silences = silences
        self.decisions: dict[AlertKey, Decision] = {}

    def run(self, conn: Connection, outcome: CycleOutcome) -> Notification | None:
        keys = sorted(set(self.seen) | set(self.prev), key=_order)
        roots = [k for k in keys if inhibit.is_inhibitor(k)]
        for key in roots:
            self._decide(key, None)
        firing = {k.code for k in roots if self._firing(k)}
        for key in keys:
            if key not in self.decisions:
                self._decide(key, inhibit.inhibited_by(key, firing))
        for key in keys:
            save(conn, self.prev.get(key), self.decisions[key].record)
            self._tally(key, outcome)
        return self._notification()

    def _decide(self, key: AlertKey, inhibited: str | None) -> None:
        silence = silence_for(key, self.silences, self.now)
        muted_by = inhibited or (silence.muted_by if silence else None)
        prev = self.prev.get(key)
        judged = key.check in self.ran and (self.judges is None or self.judges(key, prev))
        self.decisions[key] = decide(
            prev,
            self.seen.get(key),
            inhibit.evaluated(key, judged, self.seen_codes),
            self.now,
            self.settings.alerts,
            muted_by,
        )

    def _firing(self, key: AlertKey) -> bool:
        record = self.decisions[key].record
        return record is not None and record.state is AlertState.FIRING

    def _tally(self, key: AlertKey, outcome: CycleOutcome) -> None:
        d, prev = self.decisions[key], self.prev.get(key)
        record = d.record
        if record is None:
            return
        was_firing = prev is not None and prev.state is AlertState.FIRING
        if record.state is AlertState.FIRING and not was_firing:
            outcome.fired.append(key)
        if d.reason is Reason.FLAPPING:
            outcome.flapping.append(key)
        if record.state is AlertState.RESOLVED:
            outcome.resolved.append(key)
        if record.state is AlertState.FIRING and record.muted_by is not None:
            outcome.muted.append(key)
        if d.reason is Reason.ESCALATED:
            outcome.escalated.append(key)
        elif d.reason is Reason.REPEAT:
            outcome.repeated.append(key)
        if d.reason is not None:
            outcome.notified.append((key, d.reason))

    # --- the notification --------------------------------------------------------------

    def _notification(self) -> Notification | None:
        views = [
            _view(d.record, d.reason)
            for d in self.decisions.values()
            if d.record is not None and d.reason is not None
        ]
        if not views:
            return None
        views.sort(
            key=lambda v: (v.state != "FIRING", -v.severity.rank, v.code, v.event_name or "")
        )
        ds = self.settings.dataset(self.report.dataset_id)
        return Notification(
            key=self._key(views),
            dataset_id=self.report.dataset_id,
            dataset_name=self.report.name or (ds.name if ds else None),
            client=self.report.client or (ds.client if ds else None),
            created_at=self.now,
            alerts=views,
            muted_note=self._muted_note(),
        )

    def _key(self, views: Sequence[AlertView]) -> str:
        """Stable for (dataset, cycle time, content): a replayed cycle decides the same and
        gets the same key; two different notifications in one instant never collide."""
        content = "\n".join(sorted(f"{v.fingerprint}:{v.reason}" for v in views))
        digest = hashlib.sha256(content.encode()).hexdigest()[:12]
        return f"alerts:{self.report.dataset_id}:{round(self.now * 1000)}:{digest}"

    def _muted_note(self) -> str | None:
        muted = sorted(
            (
                (r.key, r.muted_by)
                for d in self.decisions.values()
                if (r := d.record) is not None and r.state is AlertState.FIRING and r.muted_by
            ),
            key=lambda m: _order(m[0]),
        )
        notes = [
            inhibit.inhibited_note(code, keys)
            for code, keys in _group(muted, inhibit.inhibitor_of).items()
        ]
        silenced = _group(muted, lambda m: "silence" if silence_id(m) is not None else None)
        notes += [_silenced_note(keys) for keys in silenced.values()]
        return "; ".join(notes) or None


def _group(
    muted: Iterable[tuple[AlertKey, str]], label: Callable[[str], str | None]
) -> dict[str, list[AlertKey]]:
    out: dict[str, list[AlertKey]] = {}
    for key, muted_by in muted:
        name = label(muted_by)
        if name is not None:
            out.setdefault(name, []).append(key)
    return out


def _silenced_note(keys: Sequence[AlertKey]) -> str:
    codes = ", ".join(sorted({k.code for k in keys}))
    noun = "alert" if len(keys) == 1 else "alerts"
    return f"{len(keys)} {noun} silenced ({codes})"


def _view(record: AlertRecord, reason: Reason) -> AlertView:
    c = record.content
    resolved = reason is Reason.RESOLVED
    return AlertView(
        fingerprint=record.key.fingerprint,
        dataset_id=record.key.dataset_id,
        check=record.key.check,
        code=record.key.code,
        event_name=record.key.event_name,
        severity=record.severity,
        state="RESOLVED" if resolved else "FIRING",
        reason=reason,
        # A firing or resolved record has fired; started_at only guards the type.
        since=record.fired_at if record.fired_at is not None else record.started_at,
        message=c.message,
        remediation=c.remediation,
        count=c.count,
        resolved_at=record.resolved_at if resolved else None,
        evidence=dict(c.evidence),
        examples=list(c.examples),
    )

"""The pure alert lifecycle, table-driven: one line of intent per case (alertmanager's
``needsUpdate`` style), plus how findings become alert keys and how inhibition picks."""

from __future__ import annotations

import dataclasses as dc
from typing import Any, NamedTuple

import pytest

from monitor.alerts.inhibit import evaluated, inhibited_by, inhibited_note
from monitor.alerts.lifecycle import AlertRecord, Seen, checks_ran, decide, seen_alerts
from monitor.alerts.model import AlertKey, AlertState, Reason
from monitor.config import AlertSettings
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.results import DatasetReport

T = 1_795_176_000.0
H = 3600.0
KEY = AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Purchase")
WARN, CRIT = Severity.WARN, Severity.CRIT
FIRING, PENDING, RESOLVED = AlertState.FIRING, AlertState.PENDING, AlertState.RESOLVED
# for_cycles 1, resolve_after_cycles 2, repeat 4h, send_resolved, keep_firing_for 1h,
# flap_window 1 day
DEFAULT = AlertSettings()
FOR2 = AlertSettings(for_cycles=2)
NO_RESOLVED = AlertSettings(send_resolved=False)


def seen(severity: Severity = WARN) -> Seen:
    return Seen(KEY, severity, 5, "5 clear-text emails", "Hash em.", {"share": 0.1})


def rec(state: AlertState = FIRING, severity: Severity = WARN, **over: Any) -> AlertRecord:
    base = AlertRecord(
        key=KEY,
        state=state,
        severity=severity,
        peak_severity=severity,
        started_at=T - H,
        last_seen_at=T - 300,
        content=seen(severity),
        fired_at=T - H if state is not PENDING else None,
        notified_severity=severity if state is FIRING else None,
        last_notified_at=T - H if state is FIRING else None,
        id=7,
    )
    return dc.replace(base, **over)


class Case(NamedTuple):
    intent: str
    prev: AlertRecord | None
    seen: Seen | None
    want_state: AlertState | None  # None: nothing stored
    want_reason: Reason | None
    ran: bool = True
    cfg: AlertSettings = DEFAULT
    muted_by: str | None = None
    want: tuple[tuple[str, Any], ...] = ()  # further attributes of the next record


CASES = [
    Case("first sight fires at once with for_cycles 1", None, seen(), FIRING, Reason.NEW,
         want=(("fired_at", T), ("started_at", T), ("id", None))),
    Case("first sight only pends with for_cycles 2", None, seen(), PENDING, None, cfg=FOR2),
    Case("pending seen again reaches for_cycles and fires", rec(PENDING), seen(), FIRING,
         Reason.NEW, cfg=FOR2, want=(("fired_at", T), ("started_at", T - H))),
    Case("pending cleared before firing leaves nothing", rec(PENDING), None, None, None,
         cfg=FOR2),
    Case("pending with its check in error neither advances nor resets", rec(PENDING), None,
         PENDING, None, ran=False, cfg=FOR2, want=(("seen_cycles", 1),)),
    Case("still firing, notified an hour ago: nothing to say", rec(), seen(), FIRING, None),
    Case("still firing after repeat_interval: repeat", rec(last_notified_at=T - 4 * H),
         seen(), FIRING, Reason.REPEAT, want=(("last_notified_at", T),)),
    Case("warn -> crit escalates", rec(), seen(CRIT), FIRING, Reason.ESCALATED,
         want=(("severity", CRIT), ("notified_severity", CRIT), ("peak_severity", CRIT))),
    Case("crit -> warn posts nothing but the severity follows", rec(severity=CRIT),
         seen(WARN), FIRING, None,
         want=(("severity", WARN), ("notified_severity", CRIT), ("peak_severity", CRIT))),
    Case("back to crit after an unposted de-escalation is no news",
         rec(severity=WARN, notified_severity=CRIT), seen(CRIT), FIRING, None),
    Case("absent once: not resolved yet", rec(), None, FIRING, None,
         want=(("clean_cycles", 1),)),
    Case("absent twice, for keep_firing_for: resolved and notified",
         rec(clean_cycles=1, last_seen_at=T - H), None, RESOLVED, Reason.RESOLVED,
         want=(("resolved_at", T), ("fired_at", T - H))),
    Case("absent twice but seen 5 minutes ago: kept firing, silently", rec(clean_cycles=1),
         None, FIRING, None, want=(("clean_cycles", 2),)),
    Case("absent twice without send_resolved: resolved silently",
         rec(clean_cycles=1, last_seen_at=T - H), None, RESOLVED, None, cfg=NO_RESOLVED),
    Case("resolving an alert nobody was told about posts nothing",
         rec(clean_cycles=1, notified_severity=None, last_seen_at=T - H), None, RESOLVED,
         None),
    Case("check error while firing: no change", rec(), None, FIRING, None, ran=False,
         want=(("clean_cycles", 0),)),
    Case("check skipped after one clean cycle: clean count kept, not advanced",
         rec(clean_cycles=1), None, FIRING, None, ran=False, want=(("clean_cycles", 1),)),
    Case("seen again after a clean cycle resets the clean count", rec(clean_cycles=1),
         seen(), FIRING, None, want=(("clean_cycles", 0),)),
    Case("check error still repeats a firing alert after repeat_interval",
         rec(last_notified_at=T - 5 * H), None, FIRING, Reason.REPEAT, ran=False),
    Case("comes back a day after resolving: a new episode",
         rec(RESOLVED, resolved_at=T - 24 * H), seen(), FIRING, Reason.NEW,
         want=(("id", None), ("started_at", T), ("fired_at", T), ("flapping", False))),
    Case("comes back within a day of resolving: reopened, said once as flapping",
         rec(RESOLVED, resolved_at=T - 3 * H), seen(), FIRING, Reason.FLAPPING,
         want=(("id", 7), ("fired_at", T - H), ("resolved_at", None), ("flapping", True),
               ("flaps", 1), ("last_notified_at", T), ("clean_cycles", 0))),
    Case("flapping with for_cycles 2: reopened at once (it fired before)",
         rec(RESOLVED, resolved_at=T - 3 * H), seen(), FIRING, Reason.FLAPPING, cfg=FOR2),
    Case("flapping and silenced: reopened without a post",
         rec(RESOLVED, resolved_at=T - 3 * H), seen(), FIRING, None, muted_by="silence:3",
         want=(("flapping", True), ("notified_severity", None))),
    Case("flapping, still seen past repeat_interval: not re-announced",
         rec(flapping=True, last_notified_at=T - 9 * H), seen(), FIRING, None),
    Case("flapping, warn -> crit still escalates", rec(flapping=True), seen(CRIT), FIRING,
         Reason.ESCALATED),
    Case("flapping, absent for two hours: kept firing",
         rec(flapping=True, clean_cycles=20, last_seen_at=T - 2 * H), None, FIRING, None),
    Case("flapping, absent for a day: resolved",
         rec(flapping=True, clean_cycles=200, last_seen_at=T - 24 * H), None, RESOLVED,
         Reason.RESOLVED),
    Case("a resolved alert stays history while absent", rec(RESOLVED), None, None, None),
    Case("silenced: tracked, not notified, becomes untold", rec(), seen(), FIRING, None,
         muted_by="silence:3",
         want=(("muted_by", "silence:3"), ("notified_severity", None))),
    Case("silenced past repeat_interval: still no repeat", rec(last_notified_at=T - 9 * H),
         seen(), FIRING, None, muted_by="silence:3"),
    Case("silence over, still firing: notified as new", rec(notified_severity=None),
         seen(), FIRING, Reason.NEW, want=(("muted_by", None), ("notified_severity", WARN))),
    Case("inhibited on first sight: fires muted", None, seen(), FIRING, None,
         muted_by="inhibited:TOKEN_INVALID",
         want=(("muted_by", "inhibited:TOKEN_INVALID"), ("fired_at", T))),
    Case("resolves while muted: no post", rec(clean_cycles=1, last_seen_at=T - H), None,
         RESOLVED, None, muted_by="inhibited:TOKEN_INVALID"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.intent for c in CASES])
def test_decide(case: Case) -> None:
    d = decide(case.prev, case.seen, case.ran, T, case.cfg, case.muted_by)
    assert d.reason is case.want_reason
    if case.want_state is None:
        assert d.record is None
        return
    assert d.record is not None
    assert d.record.state is case.want_state
    for name, value in case.want:
        assert getattr(d.record, name) == value, name


def test_decide_unchanged_record_is_equal_to_the_stored_one() -> None:
    # The engine skips the UPDATE when nothing changed: equality must hold.
    prev = rec()
    assert decide(prev, None, False, T, DEFAULT).record == prev


def test_full_walk_with_for_cycles_and_resolution() -> None:
    cfg = AlertSettings(
        for_cycles=2, resolve_after_cycles=2, repeat_interval=2 * H, keep_firing_for=0
    )
    steps = [  # (seen?, ran?, expected state, expected reason)
        (True, True, PENDING, None),
        (True, True, FIRING, Reason.NEW),
        (False, False, FIRING, None),
        (False, True, FIRING, None),
        (False, False, FIRING, None),
        (False, True, RESOLVED, Reason.RESOLVED),
    ]
    record: AlertRecord | None = None
    for i, (is_seen, ran, state, reason) in enumerate(steps):
        d = decide(record, seen() if is_seen else None, ran, T + i * 300, cfg)
        assert d.record is not None and d.record.state is state, i
        assert d.reason is reason, i
        record = d.record


# --- findings -> keys ------------------------------------------------------------------


def finding(code: str, check: str, names: list[str], sev: Severity = WARN, **kw: Any) -> Finding:
    return Finding(code, sev, check, kw.pop("count", 3), f"{code} seen", "fix it", names, **kw)


def report(*checks: CheckResult) -> DatasetReport:
    return DatasetReport("111", "Shop", 80, list(checks))


def test_findings_become_one_alert_per_event_name_or_dataset_wide() -> None:
    hv = CheckResult(
        "hash_validity",
        Status.CRIT,
        "bad",
        findings=[
            finding("HASH_PLAINTEXT", "hash_validity", ["Purchase", "Lead"], CRIT,
                    field="user_data.em", examples=[Example("a.jsonl", 1, "j***@e***.com")]),
            finding("HASH_PLAINTEXT", "hash_validity", ["Purchase"], WARN, count=2,
                    field="user_data.ph", examples=[Example("a.jsonl", 2, "***12")]),
            finding("HASH_UPPERCASE", "hash_validity", ["Lead"], Severity.INFO),
        ],
    )  # fmt: skip
    dv = CheckResult(
        "delivery",
        Status.ERROR,
        "token",
        findings=[finding("TOKEN_INVALID", "delivery", ["Purchase"], CRIT)],
    )
    meta = CheckResult(
        "diagnostics", Status.WARN, "x", findings=[finding("META_DIAGNOSTIC", "diagnostics", [])]
    )
    got = seen_alerts(report(hv, dv, meta))
    purchase = AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Purchase")
    assert set(got) == {
        purchase,
        AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Lead"),
        AlertKey("111", "delivery", "TOKEN_INVALID", None),
        AlertKey("111", "diagnostics", "META_DIAGNOSTIC", None),
    }
    merged = got[purchase]
    assert (merged.severity, merged.count) == (CRIT, 5)
    assert merged.evidence["field"] == ["user_data.em", "user_data.ph"]
    assert [e.value for e in merged.examples] == ["j***@e***.com", "***12"]
    assert checks_ran(report(hv, dv, meta)) == {"hash_validity", "diagnostics"}


def test_inhibition_map() -> None:
    volume = AlertKey("111", "volume", "VOLUME_DROP", "Purchase")
    emq = AlertKey("111", "match_quality", "EMQ_LOW", "Purchase")
    hashing = AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Purchase")
    token = AlertKey("111", "delivery", "TOKEN_INVALID", None)
    source = AlertKey("111", "diagnostics", "SOURCE_UNAVAILABLE", None)
    firing = {"TOKEN_INVALID", "SOURCE_UNAVAILABLE"}
    assert inhibited_by(volume, firing) == "inhibited:TOKEN_INVALID"
    assert inhibited_by(emq, {"SOURCE_UNAVAILABLE"}) == "inhibited:SOURCE_UNAVAILABLE"
    assert inhibited_by(hashing, firing) is None  # the sender's own logs: still true
    assert inhibited_by(token, firing) is None and inhibited_by(source, firing) is None
    assert inhibited_by(volume, set()) is None
    note = inhibited_note("TOKEN_INVALID", [volume, emq, volume])
    assert (
        note
        == "3 alerts muted while TOKEN_INVALID fires (EMQ_LOW, VOLUME_DROP depend on the token)"
    )
    # Source trouble seen this cycle: dependants are not judged clean, the rest are.
    assert evaluated(emq, True, {"RATE_LIMITED"}) is False
    assert evaluated(hashing, True, {"SOURCE_UNAVAILABLE"}) is True
    assert evaluated(emq, True, {"HASH_PLAINTEXT"}) is True
    assert evaluated(hashing, False, set()) is False

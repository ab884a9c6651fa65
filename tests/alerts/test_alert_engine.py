"""``evaluate_cycle`` over several cycles on a real SQLite store: alert rows, outbox rows
and their payloads, rollback, inhibition and silences end to end, the query helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.alerts.engine import CycleOutcome, evaluate_cycle
from monitor.alerts.model import AlertKey, Notification, Reason
from monitor.alerts.queries import ALERTS, OUTBOX, alert_episodes, insert_outbox, open_alerts
from monitor.alerts.silences import (
    SilenceError,
    active_silences,
    add_silence,
    expire_silence,
    list_silences,
)
from monitor.config import Settings, settings_from_dict
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.results import DatasetReport
from monitor.store import Store

T = 1_795_176_000.0
STEP = 300.0
H = 3600.0
CHECKS = ("hash_validity", "delivery", "volume", "match_quality")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/s.db") as s:
        yield s


def settings(**alerts: Any) -> Settings:
    """Cycle counting without the time rules (keep firing, flapping) unless asked for:
    those have their own tests below."""
    rules = {"keep_firing_for": "0s", "flap_window": "0s", **alerts}
    data = {"datasets": [{"id": "111", "name": "Shop", "client": "ACME"}], "alerts": rules}
    return settings_from_dict(data)


def f(
    code: str, check: str, names: list[str] | None = None, sev: str = "crit", **kw: Any
) -> Finding:
    return Finding(
        code=code,
        severity=Severity(sev),
        check=check,
        count=kw.pop("count", 4),
        message=kw.pop("message", f"{code}: 4 events"),
        remediation="Fix the sender.",
        event_names=list(names or []),
        **kw,
    )


def report(
    *findings: Finding, dataset: str = "111", status: dict[str, Status] | None = None
) -> DatasetReport:
    """One dataset report in which every check of ``CHECKS`` ran (unless ``status`` says
    otherwise), carrying ``findings`` under their checks."""
    status = status or {}
    checks = []
    for cid in CHECKS:
        mine = [x for x in findings if x.check == cid]
        default = Status.CRIT if mine else Status.OK
        checks.append(CheckResult(cid, status.get(cid, default), "summary", None, mine))
    return DatasetReport(dataset, None, 70, checks)


def cycle(store: Store, s: Settings, now: float, *reports: DatasetReport) -> CycleOutcome:
    with store.engine.begin() as conn:
        return evaluate_cycle(conn, s, list(reports), now)


def outbox(store: Store) -> list[Notification]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(OUTBOX).order_by(OUTBOX.c.id)).mappings().all()
    return [Notification.from_dict(r["payload"]) for r in rows]


def count(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def states(n: Notification) -> list[tuple[str, str | None, str, str]]:
    return [(a.code, a.event_name, a.state, str(a.reason)) for a in n.alerts]


HASH = f(
    "HASH_PLAINTEXT", "hash_validity", ["Purchase"], examples=[Example("a", 1, "j***@e***.com")]
)
HASH_KEY = AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Purchase")
LEAD_KEY = AlertKey("111", "hash_validity", "HASH_PLAINTEXT", "Lead")


def test_fire_stay_quiet_resolve_over_cycles(store: Store) -> None:
    s = settings()
    out = cycle(store, s, T, report(HASH))
    assert [k.fingerprint for k in out.fired] == [HASH_KEY.fingerprint]
    [n] = outbox(store)
    assert (n.dataset_id, n.dataset_name, n.client, n.created_at) == ("111", "Shop", "ACME", T)
    assert states(n) == [("HASH_PLAINTEXT", "Purchase", "FIRING", "new")]
    a = n.alerts[0]
    assert (a.severity, a.since, a.count, a.message) == (
        Severity.CRIT,
        T,
        4,
        "HASH_PLAINTEXT: 4 events",
    )
    assert a.examples == [Example("a", 1, "j***@e***.com")] and a.remediation == "Fix the sender."

    assert cycle(store, s, T + STEP, report(HASH)).outbox == []  # still firing: quiet
    assert cycle(store, s, T + 2 * STEP, report()).outbox == []  # absent once
    out = cycle(store, s, T + 3 * STEP, report())  # absent twice: resolved
    assert out.resolved == [HASH_KEY]
    n = outbox(store)[-1]
    assert states(n) == [("HASH_PLAINTEXT", "Purchase", "RESOLVED", "resolved")]
    assert n.alerts[0].resolved_at == T + 3 * STEP and n.alerts[0].since == T
    assert len(outbox(store)) == 2
    assert open_alerts(store.engine) == []
    [ep] = alert_episodes(store.engine)
    assert (ep.code, ep.event_name, ep.fired_at, ep.resolved_at) == (
        "HASH_PLAINTEXT", "Purchase", T, T + 3 * STEP,
    )  # fmt: skip
    assert ep.to_dict()["fired_at"] == "2026-11-20T12:00:00+00:00"


def test_comes_back_after_resolve_as_a_new_episode(store: Store) -> None:
    s = settings(resolve_after_cycles=1)
    cycle(store, s, T, report(HASH))
    cycle(store, s, T + STEP, report())
    cycle(store, s, T + 2 * STEP, report(HASH))
    assert [states(n)[0][2:] for n in outbox(store)] == [
        ("FIRING", "new"), ("RESOLVED", "resolved"), ("FIRING", "new"),
    ]  # fmt: skip
    eps = alert_episodes(store.engine)
    assert [(e.fired_at, e.resolved_at) for e in eps] == [(T, T + STEP), (T + 2 * STEP, None)]
    assert alert_episodes(store.engine, fired_from=T + STEP, fired_to=T + H) == eps[1:]


def test_keep_firing_for_holds_a_pausing_alert_silently(store: Store) -> None:
    s = settings(keep_firing_for="1h")
    cycle(store, s, T, report(HASH))
    for i in range(1, 12):  # absent for 55 minutes: clean cycles, still firing
        assert cycle(store, s, T + i * STEP, report()).outbox == []
    cycle(store, s, T + 12 * STEP, report(HASH))  # back: the same episode, nothing said
    for i in range(13, 24):
        cycle(store, s, T + i * STEP, report())
    assert open_alerts(store.engine) != []
    out = cycle(store, s, T + 24 * STEP, report())  # absent for an hour: resolved
    assert out.resolved == [HASH_KEY]
    assert [states(n)[0][2:] for n in outbox(store)] == [
        ("FIRING", "new"), ("RESOLVED", "resolved"),
    ]  # fmt: skip
    assert len(alert_episodes(store.engine)) == 1


def test_a_flapping_alert_is_reopened_and_said_once(store: Store) -> None:
    s = settings(keep_firing_for="1h", flap_window="1d", repeat_interval="4h")
    step = 900.0
    t = T
    # Two days of a condition that comes for two hours and goes for three.
    for k in range(48 * 4):
        t = T + k * step
        cycle(store, s, t, report(HASH) if (k // 4) % 5 < 2 else report())
    said = [states(n)[0][2:] for n in outbox(store)]
    assert said == [("FIRING", "new"), ("RESOLVED", "resolved"), ("FIRING", "flapping")]
    [ep] = alert_episodes(store.engine)
    assert (ep.fired_at, ep.resolved_at) == (T, None)
    [open_one] = open_alerts(store.engine)
    assert open_one.flapping and open_one.flaps == 1
    # Quiet for a day: resolved, and said so.
    for k in range(1, 24 * 4 + 2):
        cycle(store, s, t + k * step, report())
    assert open_alerts(store.engine) == []
    assert [states(n)[0][2:] for n in outbox(store)][-1] == ("RESOLVED", "resolved")
    assert len(outbox(store)) == 4


def test_skipped_and_error_checks_never_resolve(store: Store) -> None:
    s = settings()
    cycle(store, s, T, report(HASH))
    for i, st in enumerate([Status.SKIPPED, Status.ERROR, Status.SKIPPED], start=1):
        cycle(store, s, T + i * STEP, report(status={"hash_validity": st}))
    assert [r.key for r in open_alerts(store.engine, firing_only=True)] == [HASH_KEY]
    cycle(store, s, T + 4 * STEP, report())
    assert open_alerts(store.engine) != []  # one clean cycle is not enough
    cycle(store, s, T + 5 * STEP, report(status={"hash_validity": Status.ERROR}))
    cycle(store, s, T + 6 * STEP, report())  # the second clean cycle
    assert open_alerts(store.engine) == []


def test_repeat_escalation_and_quiet_de_escalation(store: Store) -> None:
    s = settings(repeat_interval="1h")
    warn = f("HASH_PLAINTEXT", "hash_validity", ["Purchase"], "warn")
    cycle(store, s, T, report(warn))
    assert cycle(store, s, T + STEP, report(HASH)).escalated == [HASH_KEY]
    assert cycle(store, s, T + 2 * STEP, report(warn)).outbox == []  # crit -> warn: quiet
    assert open_alerts(store.engine)[0].severity is Severity.WARN
    out = cycle(store, s, T + STEP + H, report(warn))
    assert out.repeated == [HASH_KEY]
    got = [(n.alerts[0].reason, n.alerts[0].severity) for n in outbox(store)]
    assert got == [
        (Reason.NEW, Severity.WARN),
        (Reason.ESCALATED, Severity.CRIT),
        (Reason.REPEAT, Severity.WARN),
    ]
    [ep] = alert_episodes(store.engine)
    assert ep.severity is Severity.CRIT  # the episode's peak


def test_for_cycles_two_and_one_notification_per_dataset(store: Store) -> None:
    s = settings(for_cycles=2)
    other = f("MISSING_EVENT_ID", "hash_validity", ["Lead", "Purchase"], "warn")
    assert cycle(store, s, T, report(HASH, other)).outbox == []
    assert len(open_alerts(store.engine)) == 3  # pending
    assert alert_episodes(store.engine) == []
    out = cycle(store, s, T + STEP, report(HASH, other), report(HASH, dataset="222"))
    assert len(out.fired) == 3 and len(out.outbox) == 1  # 222 is still pending
    [n] = outbox(store)
    assert states(n) == [
        ("HASH_PLAINTEXT", "Purchase", "FIRING", "new"),
        ("MISSING_EVENT_ID", "Lead", "FIRING", "new"),
        ("MISSING_EVENT_ID", "Purchase", "FIRING", "new"),
    ]
    # A pending alert that clears leaves no row.
    cycle(store, s, T + 2 * STEP, report(dataset="222"))
    assert open_alerts(store.engine, dataset_id="222") == []


def test_datasets_not_in_the_reports_are_left_alone(store: Store) -> None:
    s = settings(resolve_after_cycles=1)
    cycle(store, s, T, report(HASH), report(HASH, dataset="222"))
    cycle(store, s, T + STEP, report())  # only 111 evaluated
    assert [r.key.dataset_id for r in open_alerts(store.engine)] == ["222"]


def test_rollback_of_the_callers_transaction_leaves_nothing(store: Store) -> None:
    s = settings()
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        evaluate_cycle(conn, s, [report(HASH)], T)
        raise RuntimeError("crash before commit (e.g. while advancing cursors)")
    assert (count(store, ALERTS), count(store, OUTBOX)) == (0, 0)
    # The replayed cycle decides the same and writes exactly one row.
    out = cycle(store, s, T, report(HASH))
    assert len(out.outbox) == 1 and count(store, OUTBOX) == 1


def test_outbox_insert_is_idempotent_by_key(store: Store) -> None:
    cycle(store, settings(), T, report(HASH))
    [n] = outbox(store)
    with store.engine.begin() as conn:
        assert insert_outbox(conn, n) is False
    assert count(store, OUTBOX) == 1
    assert n.key.startswith(f"alerts:111:{round(T * 1000)}:")


def test_inhibition_mutes_dependants_and_releases_them(store: Store) -> None:
    s = settings()
    token = f("TOKEN_INVALID", "delivery", [])
    dropped = f("EVENTS_DROPPED", "delivery", ["Purchase"], "warn")
    volume = f("VOLUME_DROP", "volume", ["Purchase", "Lead"])
    out = cycle(store, s, T, report(token, dropped, volume, HASH))
    assert {k.code for k in out.muted} == {"EVENTS_DROPPED", "VOLUME_DROP"}
    [n] = outbox(store)
    assert states(n) == [
        ("HASH_PLAINTEXT", "Purchase", "FIRING", "new"),
        ("TOKEN_INVALID", None, "FIRING", "new"),
    ]
    assert n.muted_note == (
        "3 alerts muted while TOKEN_INVALID fires (EVENTS_DROPPED, VOLUME_DROP depend on the token)"
    )
    # Token fixed; volume still low. No post while the token alert is only absent once.
    assert cycle(store, s, T + STEP, report(volume, HASH)).outbox == []
    out = cycle(store, s, T + 2 * STEP, report(volume, HASH))
    n = outbox(store)[-1]
    assert states(n) == [
        ("VOLUME_DROP", "Lead", "FIRING", "new"),
        ("VOLUME_DROP", "Purchase", "FIRING", "new"),
        ("TOKEN_INVALID", None, "RESOLVED", "resolved"),
    ]
    assert n.muted_note is None and out.muted == []
    # EVENTS_DROPPED resolved while muted: nobody was told, so nobody hears of it.
    cycle(store, s, T + 3 * STEP, report(volume, HASH))
    assert len(outbox(store)) == 2
    assert {r.key.code for r in open_alerts(store.engine)} == {"VOLUME_DROP", "HASH_PLAINTEXT"}


def test_an_orders_source_outage_inhibits_nothing(store: Store) -> None:
    """reconcile's SOURCE_UNAVAILABLE is about the orders source alone: the delivery and
    volume alerts stay unmuted and may resolve while it fires."""
    s = settings()
    orders_down = f("SOURCE_UNAVAILABLE", "reconcile", [], "warn")
    dropped = f("EVENTS_DROPPED", "delivery", ["Purchase"], "warn")
    reconcile = CheckResult("reconcile", Status.ERROR, "source down", None, [orders_down])
    first = report(dropped)
    first.checks.append(reconcile)
    out = cycle(store, s, T, first)
    assert out.muted == [] and {k.code for k in out.fired} == {
        "SOURCE_UNAVAILABLE",
        "EVENTS_DROPPED",
    }
    later = report()  # the dropped events are over; the orders source is still down
    later.checks.append(reconcile)
    cycle(store, s, T + STEP, later)
    out = cycle(store, s, T + 2 * STEP, later)
    assert [k.code for k in out.resolved] == ["EVENTS_DROPPED"]


def test_silence_mutes_until_it_expires_by_itself(store: Store) -> None:
    s = settings()
    sil = add_silence(store.engine, dataset_id="111", code="HASH_PLAINTEXT", duration=H,
                      reason="deploy", author="ops", now=T - 60)  # fmt: skip
    lead = f("HASH_PLAINTEXT", "hash_validity", ["Lead"], "warn")
    other = f("MISSING_EVENT_ID", "hash_validity", ["Purchase"], "warn")
    out = cycle(store, s, T, report(HASH, lead))
    assert out.outbox == [] and set(out.muted) == {HASH_KEY, LEAD_KEY}
    rec = open_alerts(store.engine, firing_only=True)[0]
    assert rec.muted_by == f"silence:{sil.id}" and rec.fired_at == T
    # Something else fires: its post says what is silenced.
    cycle(store, s, T + STEP, report(HASH, lead, other))
    n = outbox(store)[-1]
    assert states(n) == [("MISSING_EVENT_ID", "Purchase", "FIRING", "new")]
    assert n.muted_note == "2 alerts silenced (HASH_PLAINTEXT)"
    # An hour later the silence has ended on its own: the alerts are announced as new.
    assert active_silences(store.engine, T + H) == []
    out = cycle(store, s, T + H, report(HASH, lead, other))
    assert {k for k, r in out.notified if r is Reason.NEW} == {HASH_KEY, LEAD_KEY}
    assert outbox(store)[-1].alerts[0].since == T  # first fired_at, not the unmute


def test_silence_matchers_and_expiry(store: Store) -> None:
    e = store.engine
    a = add_silence(e, dataset_id="111", duration=H, reason="a", author="x", now=T)
    b = add_silence(e, dataset_id="111", event_name="Lead", duration=2 * H, reason="b",
                    author="", now=T)  # fmt: skip
    assert b.author == "cli"
    assert [x.id for x in active_silences(e, T + 1)] == [a.id, b.id]
    assert [x.id for x in active_silences(e, T + H)] == [b.id]  # a ended by itself
    assert b.matches(AlertKey("111", "volume", "VOLUME_DROP", "Lead"))
    assert not b.matches(AlertKey("111", "volume", "VOLUME_DROP", "Purchase"))
    assert not a.matches(AlertKey("222", "volume", "VOLUME_DROP", None))
    assert expire_silence(e, b.id, T + 10) is True
    assert expire_silence(e, b.id, T + 20) is False
    assert active_silences(e, T + 11) == [a]
    assert list_silences(e, T + H) == []
    assert len(list_silences(e, T + H, include_expired=True)) == 2
    with pytest.raises(SilenceError, match="no silence with id 99"):
        expire_silence(e, 99, T)
    with pytest.raises(SilenceError, match="positive duration"):
        add_silence(e, dataset_id="111", duration=0, reason="r", author="x", now=T)


def test_no_customer_data_or_token_reaches_rows(store: Store) -> None:
    token = "EAAB" + "x" * 40
    leaky = f(
        "DELIVERY_ERRORS",
        "delivery",
        ["Purchase"],
        message=f"bad token {token} for jane.doe@example.com",
    )
    cycle(store, settings(), T, report(leaky))
    add_silence(store.engine, dataset_id="111", duration=H, reason="call jane.doe@example.com",
                author="ops", now=T)  # fmt: skip
    with store.engine.connect() as conn:
        dumped = repr(conn.execute(select(ALERTS)).all()) + repr(conn.execute(select(OUTBOX)).all())
    dumped += repr(list_silences(store.engine, T))
    assert token not in dumped and "jane.doe@example.com" not in dumped
    assert "j***@e***.com" in dumped


def test_source_trouble_never_resolves_meta_dependent_alerts(store: Store) -> None:
    # match_quality still "ran" (its log part found something) while the Graph part failed.
    s = settings()
    emq = f("EMQ_LOW", "match_quality", ["Purchase"], "warn")
    coverage = f("MATCH_KEY_COVERAGE_LOW", "match_quality", ["Lead"], "warn")
    unavailable = f("SOURCE_UNAVAILABLE", "volume", [], "warn")
    cycle(store, s, T, report(emq))
    for i in (1, 2, 3):
        cycle(store, s, T + i * STEP, report(coverage, unavailable))
    assert "EMQ_LOW" in {r.key.code for r in open_alerts(store.engine)}
    cycle(store, s, T + 4 * STEP, report(coverage))
    out = cycle(store, s, T + 5 * STEP, report(coverage))
    assert sorted(k.code for k in out.resolved) == ["EMQ_LOW", "SOURCE_UNAVAILABLE"]

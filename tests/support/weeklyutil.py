"""A store populated for the weekly report tests, written through the store's own APIs.

Two ISO weeks (2026-W46 and 2026-W47, UTC) of three datasets:

- ``111`` "Shop" (client "Acme"): hourly rollups of ``Purchase`` and of an event named
  ``<script>alert(1)</script>`` (a hostile sender), delivery errors, audit runs with a
  crit HASH_PLAINTEXT and a warn MISSING_EVENT_ID finding, alert episodes (one opened and
  resolved in W47, one opened in W46 and still open, one silenced), a silence, and
  Graph snapshots (browser/server counts, EMQ, coverage vs goal, a failed ``da_checks``
  entry and an EMQ diagnostic whose text is HTML, a token expiring in 3 days).
- ``222`` "Leads" (client "Acme"): rollups and a healthy run, no Graph data.
- ``333`` (no client, not configured): rollups only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.alerts.lifecycle import AlertRecord, Seen
from monitor.alerts.model import AlertKey, AlertState
from monitor.alerts.queries import save
from monitor.alerts.silences import add_silence
from monitor.config import Settings, settings_from_dict
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.graph import (
    DaCheck,
    DedupeFeedback,
    EmqDiagnostic,
    EventQuality,
    GraphSnapshot,
    SourceCounts,
    TokenInfo,
)
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import LATENCY_BOUNDS, MATCH_KEYS, HourRollup
from monitor.store import Store
from monitor.store.db import write_connection
from monitor.store.graph import record_graph

HOUR = 3600
DAY = 86400
W47 = datetime(2026, 11, 16, tzinfo=UTC).timestamp()  # Monday 00:00 UTC
W46 = W47 - 7 * DAY
W48 = W47 + 7 * DAY
NOW = W48 + 8 * HOUR  # Monday 2026-11-23 08:00 UTC: W47's report is due
EVIL_EVENT = "<script>alert(1)</script>"
EVIL_MESSAGE = 'clear text in em <img src=x onerror="alert(2)">'
EVIL_META = "<script>alert(3)</script> pixel declined"


def settings() -> Settings:
    return settings_from_dict(
        {
            "datasets": [
                {"id": "111", "name": "Shop", "client": "Acme", "owner": "ops"},
                {"id": "222", "name": "Leads", "client": "Acme"},
            ],
            "schedule": {"timezone": "UTC"},
        }
    )


def rollup(
    dataset: str, name: str, hour: float, events: int, *, em: int, failed: int = 0, late: int = 0
) -> HourRollup:
    r = HourRollup(dataset, name, "server_log", int(hour), events=events, with_event_id=events - 1)
    r.key_counts[MATCH_KEYS.index("em")] = em
    r.key_counts[MATCH_KEYS.index("client_ip_address")] = events
    r.key_counts[MATCH_KEYS.index("fbp")] = events // 2
    r.latency_hist[0] = events - late  # < 1 minute
    r.latency_hist[LATENCY_BOUNDS.index(3 * 3600)] = late  # 1-3 h late
    if failed:
        r.failed = failed
        r.error_codes = {"190/463": failed}
    return r


def week_rollups(
    dataset: str, start: float, *, per_hour: int, em: int, late: int
) -> list[HourRollup]:
    out = []
    for h in range(0, 7 * 24, 3):  # every third hour: enough points, few rows
        t = start + h * HOUR
        out.append(rollup(dataset, "Purchase", t, per_hour, em=em, late=late, failed=h % 24 == 0))
        out.append(rollup(dataset, EVIL_EVENT, t, 2, em=0))
    return out


def finding(code: str, severity: Severity, count: int, events: list[str]) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        check="hash_validity" if code.startswith("HASH") else "dedup",
        count=count,
        message=EVIL_MESSAGE if code.startswith("HASH") else "events without event_id",
        remediation="Hash em with SHA-256 after trimming and lower-casing it.",
        event_names=events,
        field="user_data.em" if code.startswith("HASH") else None,
        examples=[Example("logs/a.jsonl", 3, "j***@e***.com")],
        evidence={"share": 0.25, "by_event": {"Purchase": count}},
    )


def run(store: Store, now: float, shop_score: int, shop_findings: list[Finding]) -> None:
    hash_status = Status.CRIT if shop_findings else Status.OK
    shop = DatasetReport(
        "111", "Shop", shop_score,
        [CheckResult("hash_validity", hash_status, "hashing", 40 if shop_findings else 100,
                     [f for f in shop_findings if f.check == "hash_validity"]),
         CheckResult("dedup", Status.WARN if shop_findings else Status.OK, "dedup", 80,
                     [f for f in shop_findings if f.check == "dedup"]),
         CheckResult("parity", Status.SKIPPED, "no Graph access")],
        events=1000,
    )  # fmt: skip
    leads = DatasetReport(
        "222", "Leads", 96, [CheckResult("hash_validity", Status.OK, "hashing", 100)], events=50
    )
    store.record_audit(AuditReport(now, now, ReadStats(), [shop, leads]))


def alert(
    store: Store,
    code: str,
    event: str | None,
    fired: float,
    resolved: float | None,
    muted: str | None = None,
) -> None:
    key = AlertKey("111", "hash_validity", code, event)
    seen = Seen(key, Severity.CRIT, 5, f"{code} seen", "fix it")
    record = AlertRecord(
        key=key,
        state=AlertState.RESOLVED if resolved else AlertState.FIRING,
        severity=Severity.CRIT,
        peak_severity=Severity.CRIT,
        started_at=fired - 300,
        last_seen_at=resolved or fired,
        content=seen,
        fired_at=fired,
        resolved_at=resolved,
        muted_by=muted,
    )
    with write_connection(store.engine) as conn, conn.begin():
        save(conn, None, record)


def snapshot(polled_at: float, week_start: float, emq: float, coverage: float) -> GraphSnapshot:
    counts = [
        SourceCounts(datetime.fromtimestamp(week_start + h * HOUR, UTC), "Purchase", 30, 25)
        for h in range(0, 7 * 24, 6)
    ]
    quality = [
        EventQuality(
            "Purchase",
            composite_score=emq,
            match_key_coverage={"em": 80.0},
            coverage_pct=coverage,
            coverage_goal_pct=75.0,
            dedupe=[DedupeFeedback("event_id", 95.0, 88.0, 91.0)],
            diagnostics=[EmqDiagnostic(EVIL_META, affected_event_count=42)],
        )
    ]
    return GraphSnapshot(
        dataset_id="111",
        polled_at=polled_at,
        window_start=polled_at - 2 * DAY,
        window_end=polled_at,
        source_counts=counts,
        quality=quality,
        da_checks=[DaCheck("pixel_decline", EVIL_META, None, "failed")],
        token=TokenInfo(True, polled_at, expires_at=NOW + 3 * DAY),
    )


def populate(store: Store) -> None:
    """Fill ``store`` with the two weeks described in the module docstring."""
    rolls = week_rollups("111", W46, per_hour=100, em=95, late=0)
    rolls += week_rollups("111", W47, per_hour=120, em=60, late=10)
    rolls += week_rollups("222", W46, per_hour=10, em=10, late=0)
    rolls += week_rollups("222", W47, per_hour=10, em=10, late=0)
    rolls += week_rollups("333", W47, per_hour=1, em=1, late=0)
    report = AuditReport(
        W47, W47, ReadStats(), [DatasetReport("111", None, None, [], rollups=rolls)]
    )
    store.record_audit(report)  # the rollups; its run has no dataset checks
    run(store, W46 + 3 * DAY, 92, [finding("MISSING_EVENT_ID", Severity.WARN, 40, ["Purchase"])])
    hash_f = finding("HASH_PLAINTEXT", Severity.CRIT, 12, ["Purchase", EVIL_EVENT])
    run(
        store,
        W47 + 2 * DAY,
        70,
        [hash_f, finding("MISSING_EVENT_ID", Severity.WARN, 30, ["Purchase"])],
    )
    run(store, W47 + 5 * DAY, 64, [hash_f])
    alert(store, "HASH_PLAINTEXT", "Purchase", W47 + 2 * DAY, W47 + 2 * DAY + 2 * HOUR)
    alert(store, "MISSING_EVENT_ID", "Purchase", W46 + DAY, None)
    alert(store, "HASH_PLAINTEXT", EVIL_EVENT, W47 + 3 * DAY, None, muted="silence:1")
    add_silence(
        store.engine, dataset_id="111", duration=2 * DAY, reason="migration <b>window</b>",
        author="ops", now=W47 + 3 * DAY, code="HASH_PLAINTEXT",
    )  # fmt: skip
    record_graph(store, [snapshot(W46 + 4 * DAY, W46, 7.5, 85.0)])
    record_graph(store, [snapshot(W47 + 4 * DAY, W47, 6.1, 60.0)])

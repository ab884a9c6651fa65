"""The ``parity`` check: Meta's browser/server counts, event coverage, logs vs Meta.

Table-driven: each defect fires on its snapshot and not on the healthy ones next to it;
minimum volumes keep small shops quiet; absent blocks mean unknown, never a finding.
"""

from __future__ import annotations

from typing import Any

import pytest

from checks.parity import (
    EVENT_COVERAGE_LOW,
    PARITY_BROWSER_MISSING,
    PARITY_LOW,
    PARITY_SERVER_MISSING,
    SERVER_COUNT_MISMATCH,
    Parity,
)
from monitor.model.findings import Severity, Status
from monitor.model.graph import GraphErrorKind, Part, SourceCounts
from tests.support.checkutil import codes, one
from tests.support.graphutil import (
    HOUR,
    LAST_JUDGED,
    accepted,
    failure,
    hour,
    judged_hours,
    quality,
    run_graph,
    snapshot,
    sources,
)

# (intent, browser per hour, server per hour, settings, expected code, severity)
SIDES: list[tuple[str, int, int, dict[str, Any], str | None, Severity | None]] = [
    ("both sides, server sees more (ad blockers)", 40, 44, {}, None, None),
    ("server exactly at the low ratio", 40, 32, {}, None, None),
    ("no server events at all", 40, 0, {}, PARITY_SERVER_MISSING, Severity.CRIT),
    ("almost no server events", 100, 5, {}, PARITY_SERVER_MISSING, Severity.CRIT),
    ("server just above 'missing'", 100, 10, {}, PARITY_LOW, Severity.CRIT),
    ("server at 70 % of the pixel", 40, 28, {}, PARITY_LOW, Severity.WARN),
    ("server at 40 % of the pixel", 40, 16, {}, PARITY_LOW, Severity.CRIT),
    ("pixel silent, server busy", 0, 40, {}, PARITY_BROWSER_MISSING, Severity.WARN),
    ("pixel at 5 % of the server", 2, 40, {}, PARITY_BROWSER_MISSING, Severity.WARN),
    ("pixel at 10 % of the server", 4, 40, {}, None, None),
    ("server-only by design", 0, 40, {"server_only_events": ["Purchase"]}, None, None),
    ("ignored event", 40, 0, {"ignore_events": ["Purchase"]}, None, None),
    ("3 purchases a day, none server-side: below min volume", 1, 0, {}, None, None),
    ("low volume, higher guard lowered", 1, 0, {"min_browser_events": 24}, PARITY_SERVER_MISSING,
     Severity.CRIT),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "browser", "server", "cfg", "code", "severity"), SIDES)
def test_browser_server_parity(
    intent: str,
    browser: int,
    server: int,
    cfg: dict[str, Any],
    code: str | None,
    severity: Severity | None,
) -> None:
    graph = snapshot(source_counts=sources("Purchase", browser, server))
    result = run_graph(Parity, graph, {"parity": cfg})
    if code is None:
        assert not result.findings, intent
        return
    assert codes(result) == {code}, intent
    finding = one(result, code)
    assert finding.severity is severity
    assert finding.event_names == ["Purchase"]
    assert finding.count == abs(browser - server) * 24  # 24 judged hours
    assert finding.evidence["browser_events"] == browser * 24


def test_only_complete_settled_hours_are_judged() -> None:
    # The two newest hours (11:00 still settling, 12:00 current) have no server events:
    # normal lag, not a missing server side.
    recent = [LAST_JUDGED + HOUR, LAST_JUDGED + 2 * HOUR]
    counts = sources("Purchase", 40, 44) + sources("Purchase", 40, 0, recent)
    assert not run_graph(Parity, snapshot(source_counts=counts)).findings
    # ... and hours older than the 24 h window do not count either.
    old = [LAST_JUDGED - 30 * HOUR]
    counts = sources("Purchase", 40, 44) + sources("Purchase", 4000, 0, old)
    assert not run_graph(Parity, snapshot(source_counts=counts)).findings


def test_dataset_wide_counts_are_not_judged_for_parity() -> None:
    # Only when the event list failed: PageView (rarely server-side) mixed in.
    graph = snapshot(source_counts=sources(None, 400, 40))
    result = run_graph(Parity, graph)
    assert not result.findings
    assert result.status is Status.SKIPPED


# (intent, coverage block, events per hour, settings, expected severity or None)
COVERAGE: list[tuple[str, dict[str, Any], int | None, dict[str, Any], Severity | None]] = [
    ("above goal", {"coverage_pct": 81.2, "coverage_goal_pct": 75}, 10, {}, None),
    ("exactly at goal", {"coverage_pct": 75.0, "coverage_goal_pct": 75}, 10, {}, None),
    ("below goal", {"coverage_pct": 60.0, "coverage_goal_pct": 75}, 10, {}, Severity.WARN),
    ("under half the goal", {"coverage_pct": 33.3, "coverage_goal_pct": 75}, 10, {},
     Severity.CRIT),
    ("no goal sent: 75 assumed", {"coverage_pct": 70.0}, 10, {}, Severity.WARN),
    ("Meta's own goal wins", {"coverage_pct": 70.0, "coverage_goal_pct": 60}, 10, {}, None),
    ("no coverage block: unknown", {"coverage_goal_pct": 75}, 10, {}, None),
    ("too few events to judge", {"coverage_pct": 10.0}, 0, {}, None),
    ("volume unknown: judged", {"coverage_pct": 10.0}, None, {}, Severity.CRIT),
    ("ignored event", {"coverage_pct": 10.0}, 10, {"ignore_events": ["Purchase"]}, None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "block", "per_hour", "cfg", "severity"), COVERAGE)
def test_event_coverage(
    intent: str,
    block: dict[str, Any],
    per_hour: int | None,
    cfg: dict[str, Any],
    severity: Severity | None,
) -> None:
    errors = [failure(Part.STATS_EVENT)] if per_hour is None else []
    counts = sources("Purchase", per_hour or 0, per_hour or 0)
    graph = snapshot(source_counts=counts, quality_=[quality("Purchase", **block)], errors=errors)
    result = run_graph(Parity, graph, {"parity": cfg})
    found = [f for f in result.findings if f.code == EVENT_COVERAGE_LOW]
    if severity is None:
        assert not found, intent
        return
    (finding,) = found
    assert finding.severity is severity, intent
    assert finding.event_names == ["Purchase"] and finding.field == "event_coverage"
    assert finding.count >= 1


# (intent, accepted per hour in the logs, Meta's server per hour, expected severity)
MISMATCH: list[tuple[str, int, int, Severity | None]] = [
    ("Meta counts what the logs accepted", 10, 10, None),
    ("Meta counts more (other senders)", 10, 25, None),
    ("Meta counts 80 %", 10, 8, None),
    ("Meta counts 70 %", 10, 7, Severity.WARN),
    ("Meta counts 30 %", 10, 3, Severity.CRIT),
    ("too few accepted events to compare", 4, 0, None),  # 96 < 100
]


@pytest.mark.parametrize(("intent", "logged", "meta", "severity"), MISMATCH)
def test_server_count_mismatch(
    intent: str, logged: int, meta: int, severity: Severity | None
) -> None:
    graph = snapshot(source_counts=sources("Purchase", 12, meta))
    result = run_graph(Parity, graph, rollups=accepted("Purchase", logged))
    found = [f for f in result.findings if f.code == SERVER_COUNT_MISMATCH]
    if severity is None:
        assert not found, intent
        return
    (finding,) = found
    assert finding.severity is severity, intent
    assert finding.evidence["accepted_in_logs"] == logged * 24
    assert finding.evidence["meta_server_count"] == meta * 24
    assert finding.count == (logged - meta) * 24


def test_mismatch_compares_only_hours_the_logs_cover() -> None:
    # Logs cover 12 of the 24 hours; Meta's other 12 hours are not "missing" from logs,
    # and Meta's hours without log data do not dilute the comparison either.
    covered = judged_hours(12)
    graph = snapshot(
        source_counts=sources("Purchase", 12, 3, covered)
        + sources("Purchase", 12, 30, judged_hours(24)[:12])
    )
    result = run_graph(Parity, graph, rollups=accepted("Purchase", 10, covered))
    finding = one(result, SERVER_COUNT_MISMATCH)
    assert finding.evidence["hours_compared"] == 12
    assert finding.evidence["meta_server_count"] == 36


def test_mismatch_without_logs_or_for_names_meta_did_not_split() -> None:
    graph = snapshot(source_counts=sources("Purchase", 12, 0))
    assert SERVER_COUNT_MISMATCH not in codes(run_graph(Parity, graph))
    # Lead is not split by source on Meta's side: nothing to compare it with.
    result = run_graph(Parity, graph, rollups=accepted("Lead", 50))
    assert SERVER_COUNT_MISMATCH not in codes(result)


def test_mismatch_dataset_wide_when_meta_could_not_split() -> None:
    graph = snapshot(source_counts=sources(None, 100, 10))
    rollups = accepted("Purchase", 10) + accepted("Lead", 10)
    finding = one(run_graph(Parity, graph, rollups=rollups), SERVER_COUNT_MISMATCH)
    assert finding.event_names == []  # the dataset as a whole
    assert finding.evidence["accepted_in_logs"] == 20 * 24


def test_no_graph_source_is_skipped() -> None:
    result = run_graph(Parity, None)
    assert result.status is Status.SKIPPED and result.score is None
    assert "no Graph API source" in result.summary


def test_healthy_snapshot_is_ok() -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 40, 44) + sources("AddToCart", 100, 104),
        quality_=[quality("Purchase", coverage_pct=81.2, coverage_goal_pct=75)],
    )
    result = run_graph(Parity, graph, rollups=accepted("Purchase", 40))
    assert result.status is Status.OK and result.score == 100 and not result.findings
    assert "AddToCart, Purchase" in result.summary


def test_nothing_above_min_volume_is_skipped_not_ok() -> None:
    result = run_graph(Parity, snapshot(source_counts=sources("Purchase", 1, 1)))
    assert result.status is Status.SKIPPED and "too few events" in result.summary


@pytest.mark.parametrize(
    ("failed", "kind"),
    [
        ([Part.STATS_EVENT_SOURCE, Part.DATASET_QUALITY], GraphErrorKind.TRANSIENT),
        ([Part.STATS_EVENT_SOURCE, Part.DATASET_QUALITY], GraphErrorKind.TOKEN_INVALID),
        ([Part.DATASET_QUALITY], GraphErrorKind.PERMISSION),
        ([Part.STATS_EVENT_SOURCE], GraphErrorKind.RATE_LIMITED),
    ],
)
def test_unreadable_parts_are_error_never_ok(failed: list[Part], kind: GraphErrorKind) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 40, 44),
        quality_=[quality("Purchase", coverage_pct=81.2)],
        errors=[failure(p, kind) for p in failed],
    )
    result = run_graph(Parity, graph)
    assert result.status is Status.ERROR
    assert not result.findings  # the cause is reported once, by diagnostics
    assert "not evaluated" in result.summary


def test_findings_of_the_readable_part_outrank_error() -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 40, 0), errors=[failure(Part.DATASET_QUALITY)]
    )
    result = run_graph(Parity, graph)
    assert result.status is Status.CRIT
    assert codes(result) == {PARITY_SERVER_MISSING}


def test_absent_blocks_and_empty_snapshot_do_not_crash() -> None:
    graph = snapshot(quality_=[quality("Purchase"), quality("PageView")], events=[])
    result = run_graph(Parity, graph, rollups=[])
    assert result.status is Status.SKIPPED and not result.findings


# (intent, minutes past the UTC hour at which Meta's hours start, Meta's server per hour,
# expected severity): /stats hours are the ad account's local hours (docs/contracts.md §9).
OFFSETS: list[tuple[str, int, int, Severity | None]] = [
    ("+0530 account, Meta counts what the logs accepted", 30, 10, None),
    ("-0330 account (also xx:30 UTC)", 30, 10, None),
    ("+0545 account: hours at xx:15 UTC", 15, 10, None),
    ("+0530 account, Meta counts 30 %", 30, 3, Severity.CRIT),
    ("+0545 account, Meta counts 70 %", 15, 7, Severity.WARN),
]


@pytest.mark.parametrize(("intent", "minute", "meta", "severity"), OFFSETS)
def test_mismatch_compares_the_same_instants_in_half_hour_zones(
    intent: str, minute: int, meta: int, severity: Severity | None
) -> None:
    hours = judged_hours(24)
    shift = minute * 60
    # Meta's local hours cover the window and one hour beyond it on both sides.
    local = [h + shift - HOUR for h in [*hours, hours[-1] + HOUR, hours[-1] + 2 * HOUR]]
    graph = snapshot(source_counts=sources("Purchase", 12, meta, local))
    result = run_graph(Parity, graph, rollups=accepted("Purchase", 10, hours))
    found = [f for f in result.findings if f.code == SERVER_COUNT_MISMATCH]
    if severity is None:
        assert not found, intent  # the UTC-label comparison read Meta's count as 0: crit
        return
    (finding,) = found
    assert finding.severity is severity, intent
    # The first and last UTC hours are only partly covered by Meta's hours inside the
    # window: left out on both sides; the 22 others compare prorated counts.
    assert finding.evidence["hours_compared"] == 22, intent
    assert finding.evidence["accepted_in_logs"] == 10 * 22
    assert finding.evidence["meta_server_count"] == meta * 22
    assert finding.evidence["meta_hours_start_at_minute"] == minute


def test_prorating_splits_a_meta_hour_over_two_of_ours() -> None:
    hours = judged_hours(24)
    local = [h + 1800 - HOUR for h in [*hours, hours[-1] + HOUR]]
    # Meta's hours alternate 0 and 20: each of our hours overlaps half of each, so 10.
    counts = [
        SourceCounts(hour=hour(t), event="Purchase", browser=12, server=20 * (i % 2))
        for i, t in enumerate(local)
    ]
    result = run_graph(
        Parity, snapshot(source_counts=counts), rollups=accepted("Purchase", 10, hours)
    )
    assert SERVER_COUNT_MISMATCH not in codes(result)

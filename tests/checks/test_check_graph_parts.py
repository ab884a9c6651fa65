"""The Graph parts of ``dedup``, ``match_quality`` and ``latency``, and how a check's
log part and Graph part combine into one status (``checks.graph_common``)."""

from __future__ import annotations

from typing import Any

import pytest

from checks.dedup import DEDUP_KEY_COVERAGE_LOW, MISSING_EVENT_ID, Dedup
from checks.graph_common import GraphPart, GraphState, combine
from checks.latency import FRESHNESS_SLOW, FRESHNESS_UNRECOGNISED, Latency
from checks.match_quality import EMQ_DROP, EMQ_LOW, MATCH_KEY_DROP, MatchQuality
from monitor.model.findings import CheckResult, Finding, Severity, Status
from monitor.model.graph import GraphErrorKind, Part
from tests.support.checkutil import codes, delivery, event, one
from tests.support.graphutil import (
    NOW,
    context,
    dedupe,
    failure,
    history,
    quality,
    run_graph,
    snapshot,
    sources,
)

# --------------------------------------------------------------- DEDUP_KEY_COVERAGE_LOW

# (intent, dedupe feedback, browser/h, server/h, settings, expected severity)
DEDUP: list[tuple[str, list[Any] | None, int, int, dict[str, Any], Severity | None]] = [
    ("both sides at 100 %", [dedupe(100, 100)], 10, 10, {}, None),
    ("server exactly at 90 %", [dedupe(100, 90)], 10, 10, {}, None),
    ("server at 85 %", [dedupe(100, 85)], 10, 10, {}, Severity.WARN),
    ("server at 12 %", [dedupe(100, 12)], 10, 10, {}, Severity.CRIT),
    ("browser at 70 %", [dedupe(70, 100)], 10, 10, {}, Severity.WARN),
    ("only external_id low: not the event_id", [dedupe(100, 100), dedupe(10, 10,
     "external_id")], 10, 10, {}, None),
    ("block absent: dedup never set up, unknown", None, 10, 10, {}, None),
    ("block empty", [], 10, 10, {}, None),
    ("server-only event: browser side not judged", [dedupe(0, 100)], 0, 10, {}, None),
    ("too few events of the name", [dedupe(100, 12)], 0, 0, {}, None),
    ("threshold lowered", [dedupe(100, 85)], 10, 10, {"graph_min_pct": 80}, None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "fb", "browser", "server", "cfg", "severity"), DEDUP)
def test_dedup_key_coverage(
    intent: str,
    fb: list[Any] | None,
    browser: int,
    server: int,
    cfg: dict[str, Any],
    severity: Severity | None,
) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", browser, server),
        quality_=[quality("Purchase", dedupe=fb)],
    )
    result = run_graph(Dedup, graph, {"dedup": cfg})
    if severity is None:
        assert DEDUP_KEY_COVERAGE_LOW not in codes(result), intent
        return
    finding = one(result, DEDUP_KEY_COVERAGE_LOW)
    assert finding.severity is severity, intent
    assert finding.event_names == ["Purchase"] and finding.field == "event_id"


def test_dedup_side_volume_unknown_is_judged() -> None:
    # /stats by source failed: Meta's feedback is still judged (unknown is not zero).
    graph = snapshot(
        quality_=[quality("Purchase", dedupe=[dedupe(100, 40)])],
        errors=[failure(Part.STATS_EVENT_SOURCE), failure(Part.STATS_EVENT)],
    )
    assert one(run_graph(Dedup, graph), DEDUP_KEY_COVERAGE_LOW).severity is Severity.CRIT


# ------------------------------------------------------------------------- EMQ_LOW

# (intent, composite_score, events/h, settings, expected severity)
EMQ: list[tuple[str, float | None, int, dict[str, Any], Severity | None]] = [
    ("8.1 is good", 8.1, 10, {}, None),
    ("exactly 6.0", 6.0, 10, {}, None),
    ("5.3", 5.3, 10, {}, Severity.WARN),
    ("3.1", 3.1, 10, {}, Severity.CRIT),
    ("no score: unknown", None, 10, {}, None),
    ("too few events of the name", 3.1, 0, {}, None),
    ("min volume lowered to 0", 3.1, 0, {"emq_min_events": 0}, Severity.CRIT),
    ("warn threshold raised", 6.5, 10, {"emq_warn_score": 7.0}, Severity.WARN),
]


@pytest.mark.parametrize(("intent", "score", "per_hour", "cfg", "severity"), EMQ)
def test_emq_low(
    intent: str, score: float | None, per_hour: int, cfg: dict[str, Any], severity: Severity | None
) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", per_hour, per_hour),
        quality_=[quality("Purchase", composite_score=score, match_key_coverage={"em": 8.2})],
    )
    result = run_graph(MatchQuality, graph, {"match_quality": cfg})
    if severity is None:
        assert EMQ_LOW not in codes(result), intent
        return
    finding = one(result, EMQ_LOW)
    assert finding.severity is severity, intent
    assert finding.event_names == ["Purchase"]
    assert finding.count == max(1, per_hour * 2 * 24)


def test_emq_low_per_event_name() -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10) + sources("Lead", 10, 10),
        quality_=[quality("Purchase", composite_score=3.1), quality("Lead", composite_score=5.0)],
    )
    found = {f.event_names[0]: f.severity for f in run_graph(MatchQuality, graph).findings}
    assert found == {"Purchase": Severity.CRIT, "Lead": Severity.WARN}


# ---------------------------------------------------------- EMQ_DROP, MATCH_KEY_DROP

# (intent, earlier scores, current score, settings, expected severity)
DROP: list[tuple[str, list[float | None], float, dict[str, Any], Severity | None]] = [
    ("steady", [8.0, 8.2, 8.1], 8.0, {}, None),
    ("fell 0.6", [8.0, 8.2, 8.1], 7.5, {}, None),
    ("fell exactly 1.0", [8.0, 8.2, 8.1], 7.1, {}, Severity.WARN),
    ("fell 3.2", [8.0, 8.2, 8.1], 4.9, {}, Severity.CRIT),
    ("one outlier in history does not move the median", [8.1, 2.0, 8.1], 7.5, {}, None),
    ("unknown readings are skipped", [None, None, 8.1], 7.0, {}, Severity.WARN),
    ("not enough history", [8.1], 7.0, {"history_min_polls": 2}, None),
    ("no history yet", [], 3.0, {}, None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "past", "score", "cfg", "severity"), DROP)
def test_emq_drop(
    intent: str,
    past: list[float | None],
    score: float,
    cfg: dict[str, Any],
    severity: Severity | None,
) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase", composite_score=score)],
    )
    hist = history({"Purchase": [(s, {}) for s in past]})
    result = run_graph(MatchQuality, graph, {"match_quality": cfg}, hist)
    if severity is None:
        assert EMQ_DROP not in codes(result), intent
        return
    finding = one(result, EMQ_DROP)
    assert finding.severity is severity, intent
    assert finding.evidence["composite_score"] == score


def test_emq_drop_needs_a_store() -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase", composite_score=3.0)],
    )
    assert EMQ_DROP not in codes(run_graph(MatchQuality, graph, history_=None))


# (intent, earlier coverage of em, current coverage, expected field or None)
KEYS: list[tuple[str, list[dict[str, float]], dict[str, float], str | None]] = [
    ("steady", [{"em": 95.0}, {"em": 96.0}], {"em": 94.0}, None),
    ("fell 15 points", [{"em": 95.0}, {"em": 96.0}], {"em": 80.5}, None),
    ("fell 35 points", [{"em": 95.0}, {"em": 96.0}], {"em": 60.5}, "user_data.em"),
    ("the key that fell most is named", [{"em": 95.0, "ph": 90.0}, {"em": 95.0, "ph": 90.0}],
     {"em": 70.0, "ph": 20.0}, "user_data.ph"),
    ("key no longer reported: unknown, not 0", [{"em": 95.0}], {"ph": 10.0}, None),
    ("new key without history", [{}], {"em": 10.0}, None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "past", "now_cov", "field"), KEYS)
def test_match_key_drop(
    intent: str, past: list[dict[str, float]], now_cov: dict[str, float], field: str | None
) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase", composite_score=8.0, match_key_coverage=now_cov)],
    )
    hist = history({"Purchase": [(8.0, c) for c in past]})
    result = run_graph(MatchQuality, graph, history_=hist)
    if field is None:
        assert MATCH_KEY_DROP not in codes(result), intent
        return
    finding = one(result, MATCH_KEY_DROP)
    assert finding.field == field and finding.severity is Severity.WARN, intent


# ------------------------------------------------------------------ FRESHNESS_SLOW

# (intent, upload_frequency, expected code, severity)
FRESH: list[tuple[str, str | None, str | None, Severity | None]] = [
    ("real time", "real_time", None, None),
    ("hourly", "hourly", None, None),
    ("daily", "daily", FRESHNESS_SLOW, Severity.WARN),
    ("weekly", "weekly", FRESHNESS_SLOW, Severity.CRIT),
    ("unknown value: info at most", "every_fortnight", FRESHNESS_UNRECOGNISED, Severity.INFO),
    ("absent", None, None, None),
]


@pytest.mark.parametrize(("intent", "value", "code", "severity"), FRESH)
def test_freshness(
    intent: str, value: str | None, code: str | None, severity: Severity | None
) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase", upload_frequency=value)],
    )
    result = run_graph(Latency, graph)
    if code is None:
        assert not result.findings, intent
        return
    finding = one(result, code)
    assert finding.severity is severity and finding.event_names == ["Purchase"], intent
    if severity is Severity.INFO:
        assert result.status is Status.OK


def test_freshness_groups_event_names_by_value_and_respects_min_volume() -> None:
    graph = snapshot(
        source_counts=sources("AddToCart", 10, 10) + sources("InitiateCheckout", 10, 10),
        quality_=[
            quality("AddToCart", upload_frequency="weekly"),
            quality("InitiateCheckout", upload_frequency="weekly"),
            quality("Rare", upload_frequency="weekly"),  # no events in the window
        ],
    )
    finding = one(run_graph(Latency, graph), FRESHNESS_SLOW)
    assert finding.event_names == ["AddToCart", "InitiateCheckout"]


# ------------------------------------------------------------------ combining parts


def _finding(severity: Severity) -> Finding:
    return Finding("X", severity, "dedup", 1, "m", "r")


def _log(status: Status, score: int | None = 100) -> CheckResult:
    findings = [] if status in (Status.OK, Status.SKIPPED) else [_finding(Severity(status.value))]
    return CheckResult("dedup", status, "log says", score, findings)


# (intent, log status, graph state, graph finding severity, expected status)
COMBINE: list[tuple[str, Status, GraphState, Severity | None, Status]] = [
    ("no Graph source: the log result as is", Status.OK, GraphState.SKIPPED, None, Status.OK),
    ("no logs, no Graph source", Status.SKIPPED, GraphState.SKIPPED, None, Status.SKIPPED),
    ("log ok, Graph unreadable: error, never ok", Status.OK, GraphState.ERROR, None,
     Status.ERROR),
    ("no logs, Graph unreadable", Status.SKIPPED, GraphState.ERROR, None, Status.ERROR),
    ("log crit outranks Graph error", Status.CRIT, GraphState.ERROR, None, Status.CRIT),
    ("log warn outranks Graph error", Status.WARN, GraphState.ERROR, None, Status.WARN),
    ("no logs, Graph ok", Status.SKIPPED, GraphState.EVALUATED, None, Status.OK),
    ("log ok, Graph crit", Status.OK, GraphState.EVALUATED, Severity.CRIT, Status.CRIT),
    ("log crit, Graph ok", Status.CRIT, GraphState.EVALUATED, None, Status.CRIT),
    ("log ok, Graph not judged", Status.OK, GraphState.NOT_JUDGED, None, Status.OK),
    ("no logs, Graph not judged", Status.SKIPPED, GraphState.NOT_JUDGED, None, Status.SKIPPED),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "log", "state", "severity", "expected"), COMBINE)
def test_combine(
    intent: str, log: Status, state: GraphState, severity: Severity | None, expected: Status
) -> None:
    part = GraphPart(state, "meta says", [_finding(severity)] if severity else [])
    result = combine(_log(log, None if log is Status.SKIPPED else 90), part)
    assert result.status is expected, intent
    assert len(result.findings) == (log in (Status.WARN, Status.CRIT)) + (severity is not None)
    if state is GraphState.ERROR and log is Status.OK:
        assert result.score == 90  # the log part still scored what it saw


def test_log_and_graph_findings_in_one_result() -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase", dedupe=[dedupe(100, 12)])],
    )
    check = Dedup(context(graph))
    check.observe(delivery(event("Purchase"), event("Purchase", event_id="a"), sent_at=NOW))
    result = check.result()
    assert codes(result) == {MISSING_EVENT_ID, DEDUP_KEY_COVERAGE_LOW}
    assert result.status is Status.CRIT and "Meta:" in result.summary


@pytest.mark.parametrize("check_cls", [Dedup, MatchQuality, Latency])
def test_unreadable_quality_is_error(check_cls: Any) -> None:
    graph = snapshot(errors=[failure(Part.DATASET_QUALITY, GraphErrorKind.PERMISSION, 10)])
    result = run_graph(check_cls, graph)
    assert result.status is Status.ERROR and not result.findings


@pytest.mark.parametrize("check_cls", [Dedup, MatchQuality, Latency])
def test_sparse_quality_never_crashes_nor_finds(check_cls: Any) -> None:
    graph = snapshot(
        source_counts=sources("Purchase", 10, 10),
        quality_=[quality("Purchase"), quality("PageView", composite_score=7.2)],
    )
    result = run_graph(check_cls, graph, history_=history({"Purchase": [(None, {})]}))
    assert not [f for f in result.findings if f.severity is not Severity.INFO]

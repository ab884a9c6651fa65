"""The latency check (log part): LATENCY_HIGH from p95(sent_at − event_time)."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from checks.latency import LATENCY_HIGH, MAX_EVENT_NAMES, Latency, bucket_bounds
from monitor.model.findings import Severity, Status
from monitor.model.rollup import OTHER_EVENT
from tests.support.checkutil import (
    HOUR,
    NOW,
    WEIRD_NUMBERS,
    by_code,
    delivery,
    event,
    one,
    run,
    sdk_batches,
)

MIN = 60.0


def lagged(lags: list[float], name: str = "Purchase", sent: float = NOW) -> list[Any]:
    """One delivery per lag, sent at ``sent``, with ``event_time = sent − lag``."""
    return [
        delivery(event(name, sent - lag), sent_at=sent, line=i + 1) for i, lag in enumerate(lags)
    ]


# (intent, lags in seconds, expected severity or None, expected count)
P95_CASES = [
    ("all fast", [10.0] * 100, None, 0),
    ("p95 59 min is ok", [MIN] * 90 + [59 * MIN] * 10, None, 0),
    ("p95 exactly 1 h is ok (strictly greater warns)", [MIN] * 90 + [HOUR] * 10, None, 0),
    ("p95 61 min warns", [MIN] * 90 + [61 * MIN] * 10, Severity.WARN, 10),
    ("p95 23 h still warns", [MIN] * 90 + [23 * HOUR] * 10, Severity.WARN, 10),
    ("p95 25 h is crit", [MIN] * 90 + [25 * HOUR] * 10, Severity.CRIT, 10),
    ("5 % late: the p95 rank is still fast", [MIN] * 95 + [2 * HOUR] * 5, None, 0),
    ("6 % late: the p95 rank is late", [MIN] * 94 + [2 * HOUR] * 6, Severity.WARN, 6),
    ("future events count as lag 0", [-5 * HOUR] * 100, None, 0),
    ("a single event 2 h late", [2 * HOUR], Severity.WARN, 1),
]


@pytest.mark.parametrize(("intent", "lags", "severity", "count"), P95_CASES)
def test_p95_thresholds(
    intent: str, lags: list[float], severity: Severity | None, count: int
) -> None:
    _, result = run(Latency, lagged(lags))
    if severity is None:
        assert by_code(result, LATENCY_HIGH) == [], intent
        assert result.status is Status.OK
        return
    f = one(result, LATENCY_HIGH)
    assert (f.severity, f.count, f.event_names, f.field) == (
        severity,
        count,
        ["Purchase"],
        "event_time",
    ), intent
    late = max(lags)
    assert f.evidence["max_seconds"] == pytest.approx(late, abs=0.1)
    assert f.evidence["p95_seconds"] == pytest.approx(late, rel=0.01)
    assert {"p50_seconds", "warn_p95_seconds", "crit_p95_seconds"} <= set(f.evidence)
    assert f.examples and "after event_time" in f.examples[0].value
    assert str(count) in f.message


def test_event_names_lists_only_names_whose_p95_is_late() -> None:
    fast = lagged([30.0] * 1000, "Purchase")
    slow = lagged([3 * HOUR] * 10, "Lead")
    _, result = run(Latency, fast + slow)
    f = one(result, LATENCY_HIGH)
    assert (f.event_names, f.count, f.severity) == (["Lead"], 10, Severity.WARN)
    assert f.evidence["p95_seconds"] < 60  # overall p95 is fine; the finding is per name
    assert list(f.evidence["by_event_name"]) == ["Lead"]


def test_a_few_late_events_of_a_healthy_name_count_but_do_not_name_it() -> None:
    purchases = lagged([30.0] * 98 + [2 * HOUR] * 2, "Purchase")
    leads = lagged([30 * HOUR] * 5, "Lead")
    _, result = run(Latency, purchases + leads)
    f = one(result, LATENCY_HIGH)
    assert (f.event_names, f.count, f.severity) == (["Lead"], 7, Severity.CRIT)


def test_overall_p95_alone_names_no_event() -> None:
    """Five names of one late event each, under min_events: only the overall p95 judges."""
    deliveries = [delivery(event(f"E{i}", NOW - 2 * HOUR), sent_at=NOW) for i in range(5)]
    _, result = run(Latency, deliveries, {"latency": {"min_events": 5}})
    f = one(result, LATENCY_HIGH)
    assert (f.event_names, f.count, f.severity) == ([], 5, Severity.WARN)
    assert len(f.examples) == 3 and f.examples[0].value == "sent 2.0 h after event_time"
    assert f.message.startswith("Events are sent late")


@pytest.mark.parametrize(
    ("settings", "severity"),
    [
        ({"latency": {"warn_p95": "10m"}}, Severity.WARN),  # 30 min lag over a 10 min warn
        ({"latency": {"warn_p95": "10m", "crit_p95": "20m"}}, Severity.CRIT),
        ({"latency": {"min_events": 11}}, None),  # 10 late events: too few to judge
        ({"latency": {"min_events": 10, "warn_p95": "10m"}}, Severity.WARN),
    ],
)
def test_configured_thresholds(settings: dict[str, Any], severity: Severity | None) -> None:
    _, result = run(Latency, lagged([30 * MIN] * 10), settings)
    assert [f.severity for f in by_code(result, LATENCY_HIGH)] == ([severity] if severity else [])


def test_no_send_times_is_skipped() -> None:
    check, result = run(Latency, [delivery(event()), delivery(event("Lead"))])
    assert result.status is Status.SKIPPED
    assert "no send times" in result.summary
    assert check.percentiles() == {"overall": {}, "by_event_name": {}}


def test_percentiles_are_within_one_percent() -> None:
    rng = random.Random(7)
    lags = [rng.lognormvariate(math.log(600), 1.5) for _ in range(5000)]
    check, _ = run(Latency, lagged(lags))
    exact = sorted(lags)
    stats = check.percentiles()["overall"]
    for q, key in ((0.5, "p50"), (0.95, "p95")):
        assert stats[key] == pytest.approx(exact[math.ceil(q * len(exact)) - 1], rel=0.011)
    assert stats["max"] == pytest.approx(exact[-1], abs=0.1)
    assert stats["count"] == 5000
    assert check.percentiles()["by_event_name"]["Purchase"] == stats


def test_bucket_bounds_include_thresholds_exactly() -> None:
    bounds = bucket_bounds(3600.0, 86400.0, 1234.5)
    assert {3600.0, 86400.0, 1234.5} <= set(bounds)
    assert list(bounds) == sorted(bounds)
    ratios = [b / a for a, b in itertools.pairwise(bounds)]
    assert max(ratios) <= 1.02 + 1e-9


def test_event_names_are_bounded() -> None:
    deliveries = [
        delivery(event(f"Custom{i}", NOW - 10), sent_at=NOW) for i in range(MAX_EVENT_NAMES + 50)
    ]
    check, result = run(Latency, deliveries)
    names = check.percentiles()["by_event_name"]
    assert len(names) == MAX_EVENT_NAMES + 1  # the first 100 names, then "(other)"
    assert names[OTHER_EVENT]["count"] == 50
    assert result.status is Status.OK


@pytest.mark.parametrize("event_time", WEIRD_NUMBERS)
def test_weird_event_times_never_crash(event_time: float) -> None:
    check, result = run(Latency, [delivery(event("Lead", event_time), sent_at=NOW)])
    stats = check.percentiles()["overall"]
    assert stats["count"] == 1
    assert 0 <= stats["max"] <= 10 * 365 * 86400  # clamped, finite
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)


def test_milliseconds_event_times_are_judged_in_seconds() -> None:
    """An event_time in ms (the reader's Delivery.times) has its real lag, not 0."""
    late = [event("Lead", (NOW - 2 * 3600) * 1000) for _ in range(30)]
    check, result = run(Latency, [delivery(*late, sent_at=NOW)])
    assert check.percentiles()["overall"]["p50"] == pytest.approx(7200, rel=0.01)
    assert one(result, "LATENCY_HIGH").severity is Severity.WARN


def test_sdk_traffic_raises_nothing() -> None:
    """Valid SDK-made events (unique ids, sent 30 s after the batch) are healthy here."""
    _, result = run(Latency, sdk_batches())
    assert (result.status, result.findings, result.score) == (Status.OK, [], 100)

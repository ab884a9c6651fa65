"""The match_quality check (log part): estimated score and MATCH_KEY_COVERAGE_LOW."""

from __future__ import annotations

from typing import Any

import pytest

from checks.match_quality import (
    ADVICE,
    MATCH_KEY_COVERAGE_LOW,
    MAX_LAYOUTS,
    WEIGHTS,
    MatchQuality,
    estimate,
)
from monitor.model.findings import Severity, Status
from monitor.model.rollup import MATCH_KEYS
from tests.support.checkutil import (
    NOW,
    WEIRD_VALUES,
    by_code,
    delivery,
    event,
    one,
    run,
    sdk_batches,
)

H = "a" * 64  # any digest: presence is what counts here
VALUES: dict[str, Any] = {
    "em": [H],
    "ph": [H],
    "fn": [H],
    "ln": [H],
    "external_id": "cust-1",
    "client_ip_address": "2001:db8::1",
    "client_user_agent": "Mozilla/5.0",
    "fbp": "fb.1.1767000000000.1116446470",
    "fbc": "fb.1.1767258000123.IwAR2F4",
}
RICH = ("em", "ph", "client_ip_address", "client_user_agent", "fbp", "external_id", "fn", "ln")
BASIC = ("client_ip_address", "client_user_agent", "fbp")


def events(name: str, n: int, keys: tuple[str, ...], fbc_every: int = 0) -> list[Any]:
    """``n`` deliveries of ``name`` carrying ``keys``; every ``fbc_every``-th also has fbc."""
    out = []
    for i in range(n):
        ud = {k: VALUES[k] for k in keys}
        if fbc_every and i % fbc_every == 0:
            ud["fbc"] = VALUES["fbc"]
        out.append(delivery(event(name, NOW, user_data=ud), sent_at=NOW, line=i + 1))
    return out


# (intent, keys, fbc on every k-th event, events, expected severity or None, expected field)
CASES = [
    ("rich web setup with fbc on half the events is fine",
     RICH, 2, 40, None, None),
    ("em + ph + ip + ua + fbp is fine", RICH[:5], 0, 40, None, None),
    ("ip + ua + fbp only is crit, email is the key to add", BASIC, 0, 40, Severity.CRIT,
     "user_data.em"),
    ("email + ip + ua warns, fbc is worth most", ("em", *BASIC[:2]), 0, 40, Severity.WARN,
     "user_data.fbc"),
    ("no user data at all is crit", (), 0, 40, Severity.CRIT, "user_data.em"),
    ("exactly min_events (20) is judged", BASIC, 0, 20, Severity.CRIT, "user_data.em"),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "keys", "fbc", "n", "severity", "field"), CASES)
def test_coverage_low(
    intent: str,
    keys: tuple[str, ...],
    fbc: int,
    n: int,
    severity: Severity | None,
    field: str | None,
) -> None:
    _, result = run(MatchQuality, events("Purchase", n, keys, fbc))
    if severity is None:
        assert by_code(result, MATCH_KEY_COVERAGE_LOW) == [], intent
        assert result.status is Status.OK
        assert "Estimated" in result.summary
        return
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert (f.severity, f.field, f.event_names, f.count) == (severity, field, ["Purchase"], n)
    assert f.evidence["estimated"] is True
    assert f.evidence["estimated_score"] == pytest.approx(estimate(dict.fromkeys(keys, 1.0)))
    assert f.evidence["coverage_pct"]["em"] == (100.0 if "em" in keys else 0.0)
    assert "Estimated" in f.message and "not Meta's EMQ" in f.message
    assert f.remediation.startswith("To raise it, ")
    assert [e.line for e in f.examples] == [1]  # one example per distinct key layout


def test_nineteen_events_are_not_judged_and_the_summary_says_so() -> None:
    _, result = run(MatchQuality, events("Purchase", 19, BASIC))
    assert result.status is Status.SKIPPED
    assert "Purchase" in result.summary and "fewer than 20" in result.summary


def test_mixed_names_judge_each_name_on_its_own() -> None:
    deliveries = [
        *events("Purchase", 30, RICH, 2),
        *events("Lead", 25, BASIC),
        *events("Contact", 19, ()),
    ]
    check, result = run(MatchQuality, deliveries)
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert (f.event_names, f.count) == (["Lead"], 25)
    assert result.status is Status.CRIT
    assert "Not judged (fewer than 20 events): Contact." in result.summary
    assert check.estimates() == {"Contact": 0.0, "Lead": 3.25, "Purchase": 8.75}
    cov = check.coverage()
    assert cov["Purchase"]["fbc"] == 0.5 and cov["Purchase"]["em"] == 1.0
    assert cov["Lead"]["em"] == 0.0 and set(cov["Lead"]) == set(MATCH_KEYS)


def test_field_is_the_key_that_costs_most_and_count_its_absences() -> None:
    with_em = events("Purchase", 30, ("em", *BASIC))  # 5.25: warn
    without = events("Purchase", 10, ("em", "client_ip_address"))
    _, result = run(MatchQuality, with_em + without)
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert (f.field, f.count, f.severity) == ("user_data.fbc", 40, Severity.WARN)
    assert "fbc 0%" in f.message


@pytest.mark.parametrize(
    ("value", "present"),
    [
        ([H], True),
        (H, True),
        ("", False),
        ([], False),
        (None, False),
    ],
)
def test_empty_values_do_not_count(value: Any, present: bool) -> None:
    d = delivery(event(user_data={"em": value, "zz_unknown": H}), sent_at=NOW)
    check, _ = run(MatchQuality, [d])
    assert check.coverage()["Purchase"]["em"] == (1.0 if present else 0.0)


@pytest.mark.parametrize(
    ("settings", "severity"),
    [
        ({"match_quality": {"warn_score": 9.0}}, Severity.WARN),  # 8.75 < 9
        ({"match_quality": {"warn_score": 9.5, "crit_score": 9.0}}, Severity.CRIT),
        ({"match_quality": {"min_events": 41}}, None),  # 40 events: not judged
    ],
)
def test_configured_thresholds(settings: dict[str, Any], severity: Severity | None) -> None:
    _, result = run(MatchQuality, events("Purchase", 40, RICH, 2), settings)
    assert [f.severity for f in result.findings] == ([severity] if severity else [])


def test_examples_show_key_names_never_values_commonest_layout_first() -> None:
    deliveries = [
        *events("Lead", 5, ("em", *BASIC)),  # has em: no example for user_data.em
        *events("Lead", 5, ()),
        *events("Lead", 15, BASIC),
        delivery(event("Lead", user_data="not an object"), line=99),
    ]
    _, result = run(MatchQuality, deliveries)
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert f.field == "user_data.em"
    assert [e.value for e in f.examples] == [
        "has: client_ip_address,client_user_agent,fbp",
        "has: no match keys",  # 5 empty user_data + the one that is not an object
    ]
    assert all("2001:db8" not in e.value and "fb.1." not in e.value for e in f.examples)


@pytest.mark.parametrize(
    ("profile", "low", "high"),
    [
        ({**dict.fromkeys(RICH, 1.0), "fbc": 0.5}, 7.0, 9.0),  # documented: ~7-9
        (dict.fromkeys(BASIC, 1.0), 3.0, 4.0),  # documented: ~3-4
        (dict.fromkeys(MATCH_KEYS, 1.0), 10.0, 10.0),  # every key: capped at 10
        ({}, 0.0, 0.0),
    ],
)
def test_weights_calibration(profile: dict[str, float], low: float, high: float) -> None:
    assert low <= estimate(profile) <= high


def test_every_match_key_has_a_weight_and_advice() -> None:
    assert set(WEIGHTS) == set(ADVICE) == set(MATCH_KEYS)
    assert max(WEIGHTS, key=lambda k: WEIGHTS[k]) == "em"


def test_no_events_is_skipped() -> None:
    _, result = run(MatchQuality, [delivery(sent_at=NOW)])
    assert result.status is Status.SKIPPED


@pytest.mark.parametrize("weird", WEIRD_VALUES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("where", ["user_data", "user_data.em", "user_data.fbp"])
def test_weird_types_never_crash(where: str, weird: Any) -> None:
    ud: Any = dict(VALUES)
    if where == "user_data":
        ud = weird
    else:
        ud[where.split(".")[1]] = weird
    check, result = run(MatchQuality, [delivery(event(user_data=ud)) for _ in range(20)])
    assert 0.0 <= check.estimates()["Purchase"] <= 10.0
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)


def test_layout_table_is_bounded_and_coverage_stays_exact() -> None:
    """Distinct key layouts beyond the cap are counted key by key, not remembered."""
    deliveries = [
        delivery(event(user_data={"em": H, f"x{i}": 1, "fbp": "" if i % 2 else "f"}))
        for i in range(MAX_LAYOUTS * 3)
    ]
    check, _ = run(MatchQuality, deliveries)
    assert len(check._by_name["Purchase"].layouts) == MAX_LAYOUTS
    cov = check.coverage()["Purchase"]
    assert (cov["em"], cov["fbp"], cov["ph"]) == (1.0, 0.5, 0.0)


def test_sdk_traffic_raises_nothing() -> None:
    """Valid SDK-made events (unique ids, sent 30 s after the batch) are healthy here."""
    _, result = run(MatchQuality, sdk_batches())
    assert (result.status, result.findings, result.score) == (Status.OK, [], 100)

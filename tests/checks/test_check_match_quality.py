"""The match_quality check (log part): estimated score and MATCH_KEY_COVERAGE_LOW."""

from __future__ import annotations

import dataclasses as dc
from typing import Any

import pytest

from checks.match_keys import ADVICE, WEIGHTS, charged, estimate
from checks.match_quality import MATCH_KEY_COVERAGE_LOW, MAX_LAYOUTS, MatchQuality
from monitor.config import settings_from_dict
from monitor.engine.rollup import RollupAccumulator
from monitor.engine.series import build_history
from monitor.model.findings import Severity, Status
from monitor.model.rollup import (
    MATCH_KEYS,
    SOURCE_SERVER_LOG,
    HourRollup,
    key_layouts,
    present_keys,
    source_key,
)
from monitor.model.series import Current, VolumeHistory
from tests.support.checkutil import (
    HOUR,
    NOW,
    WEIRD_VALUES,
    by_code,
    context,
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


def events(
    name: str, n: int, keys: tuple[str, ...], fbc_every: int = 0, source: str | None = None
) -> list[Any]:
    """``n`` deliveries of ``name`` carrying ``keys``; every ``fbc_every``-th also has fbc;
    with ``source``, that ``action_source`` (else none)."""
    out = []
    for i in range(n):
        ud = {k: VALUES.get(k, H) for k in keys}
        if fbc_every and i % fbc_every == 0:
            ud["fbc"] = VALUES["fbc"]
        fields: dict[str, Any] = {"user_data": ud}
        if source is not None:
            fields["action_source"] = source
        out.append(delivery(event(name, NOW, **fields), sent_at=NOW, line=i + 1))
    return out


def shares(check: MatchQuality, name: str, source: str = "(none)") -> dict[str, float]:
    """The per-key coverage of one (event name, action_source) bucket."""
    return check.coverages()[(name, source)].shares()


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
    assert check.estimates() == {
        ("Contact", "(none)"): 0.0, ("Lead", "(none)"): 3.25, ("Purchase", "(none)"): 8.75,
    }  # fmt: skip
    assert shares(check, "Purchase")["fbc"] == 0.5 and shares(check, "Purchase")["em"] == 1.0
    lead = shares(check, "Lead")
    assert lead["em"] == 0.0 and set(lead) == set(MATCH_KEYS)


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
    assert shares(check, "Purchase")["em"] == (1.0 if present else 0.0)


def test_key_layouts_are_computed_once_per_delivery_and_not_inherited_by_a_subset() -> None:
    """The rollup and this check read one memo per delivery (``Delivery.layouts``)."""
    uds: list[Any] = [{"em": [H], "ph": [], "fbp": "f"}, {"em": [H], "fn": [H]}, "x", None]
    sources = ["website", None, "crm", 7]
    d = delivery(*(event(user_data=u, action_source=s) for u, s in zip(uds, sources, strict=True)))
    layouts = key_layouts(d)
    assert layouts == [
        (source_key(s), present_keys(u) if isinstance(u, dict) else ())
        for u, s in zip(uds, sources, strict=True)
    ]
    assert layouts == [("website", ("em", "fbp")), ("(none)", ("em", "fn")),
                       ("(unknown)", ()), ("(unknown)", ())]  # fmt: skip
    assert key_layouts(d) is layouts
    sub = d.subset([1])
    assert sub.layouts is None
    assert key_layouts(sub) == [layouts[1]]


@pytest.mark.parametrize(
    ("settings", "severity"),
    [
        # 8.75 < 9, judged on the estimate itself (score_z 0)
        ({"match_quality": {"warn_score": 9.0, "score_z": 0}}, Severity.WARN),
        ({"match_quality": {"warn_score": 9.5, "crit_score": 9.0, "score_z": 0}}, Severity.CRIT),
        # 8.75 ± 0.12 from 40 events: not confidently below 9
        ({"match_quality": {"warn_score": 9.0}}, None),
        ({"match_quality": {"min_events": 41}}, None),  # 40 events: not judged
    ],
)
def test_configured_thresholds(settings: dict[str, Any], severity: Severity | None) -> None:
    _, result = run(MatchQuality, events("Purchase", 40, RICH, 2), settings)
    assert [f.severity for f in result.findings] == ([severity] if severity else [])


@pytest.mark.parametrize(("calls", "expected"), [(30, None), (8000, Severity.WARN)])
def test_an_estimate_at_the_floor_needs_confidence(calls: int, expected: Severity | None) -> None:
    """CRM leads: ph, fn, ln, zp always, em on every other lead: 5.9 ± 2/√n. From a
    day's 30 leads it is not below 6.0 with confidence; from 8,000 it is."""
    deliveries = [
        *events("Lead", calls // 2, ("ph", "fn", "ln", "zp", "em"), source="system_generated"),
        *events("Lead", calls // 2, ("ph", "fn", "ln", "zp"), source="system_generated"),
    ]
    check, result = run(MatchQuality, deliveries)
    assert check.estimates()[("Lead", "system_generated")] == pytest.approx(5.9)
    assert [f.severity for f in result.findings] == ([expected] if expected else [])
    if expected:
        assert result.findings[0].evidence["upper_bound"] < 6.0


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
    assert 0.0 <= check.estimates()[("Purchase", "(none)")] <= 10.0
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)


def test_layout_table_is_bounded_and_coverage_stays_exact() -> None:
    """Distinct key layouts beyond the cap are counted key by key, not remembered."""
    deliveries = [
        delivery(event(user_data={"em": H, f"x{i}": 1, "fbp": "" if i % 2 else "f"}))
        for i in range(MAX_LAYOUTS * 3)
    ]
    check, _ = run(MatchQuality, deliveries)
    assert len(check._by_bucket[("Purchase", "(none)")].layouts) == MAX_LAYOUTS
    cov = shares(check, "Purchase")
    assert (cov["em"], cov["fbp"], cov["ph"]) == (1.0, 0.5, 0.0)


def test_sdk_traffic_raises_nothing() -> None:
    """Valid SDK-made events (unique ids, sent 30 s after the batch) are healthy here."""
    _, result = run(MatchQuality, sdk_batches())
    assert (result.status, result.findings, result.score) == (Status.OK, [], 100)


# --- docs/contracts.md §12: per action_source, conversion events, a stable window -------

STORE = ("em", "ph", "external_id", "country")  # a till sale with a loyalty card


@pytest.mark.parametrize(
    ("source", "profile", "low", "high"),
    [
        ("physical_store", dict.fromkeys(STORE, 1.0), 9.0, 9.5),
        ("system_generated", dict.fromkeys(("em", "ph", "external_id"), 1.0), 8.5, 8.5),
        ("chat", dict.fromkeys(("em", "ph"), 1.0), 6.5, 6.5),
        # a call's phone number is worth an email: phone + email 8.0, the phone alone 4.0
        ("phone_call", dict.fromkeys(("em", "ph"), 1.0), 8.0, 8.0),
        ("phone_call", dict.fromkeys(("ph",), 1.0), 4.0, 4.0),
        ("physical_store", dict.fromkeys(("em",), 1.0), 4.0, 4.0),
        ("app", dict.fromkeys(("em", "client_ip_address", "client_user_agent", "madid",
                               "anon_id"), 1.0), 8.0, 9.5),
        ("app", dict.fromkeys(("client_ip_address", "client_user_agent"), 1.0), 2.5, 3.5),
        ("website", dict.fromkeys(("em", "ph", "external_id"), 1.0), 4.0, 4.5),
    ],
)  # fmt: skip
def test_calibration_per_action_source(
    source: str, profile: dict[str, float], low: float, high: float
) -> None:
    assert low <= estimate(profile, source) <= high


def test_a_call_centres_leads_with_the_callers_number_are_fine() -> None:
    """8,000 calls, each with the caller's phone number, name and zip, an email on every
    other one: 7.4, no finding (the same leads from a CRM export score 5.9, above)."""
    deliveries = [
        *events("Lead", 4000, ("ph", "fn", "ln", "zp", "em"), source="phone_call"),
        *events("Lead", 4000, ("ph", "fn", "ln", "zp"), source="phone_call"),
    ]
    check, result = run(MatchQuality, deliveries)
    assert check.estimates()[("Lead", "phone_call")] == pytest.approx(7.4)
    assert result.findings == []


def test_sources_without_a_browser_are_never_charged_for_browser_keys() -> None:
    for source in ("physical_store", "system_generated", "phone_call", "chat", "email"):
        keys = charged(source)
        assert not {"client_ip_address", "client_user_agent", "fbp", "fbc"} & set(keys)
        assert estimate(dict.fromkeys(keys, 1.0), source) == 10.0
    assert {"madid", "anon_id"} <= set(MATCH_KEYS) - set(charged("app"))
    assert estimate({"madid": 1.0}, "app") > estimate({"madid": 1.0}, "website") == 0.0


def test_store_and_crm_purchases_with_contact_data_are_fine() -> None:
    deliveries = [
        *events("Purchase", 40, STORE, source="physical_store"),
        *events("Purchase", 40, ("em", "ph", "external_id"), source="system_generated"),
        *events("Lead", 30, ("ph", "em"), source="phone_call"),
        *events("Purchase", 40, RICH, 2, source="website"),
        *events("Purchase", 30, ("em", "client_ip_address", "client_user_agent", "madid",
                                 "anon_id"), source="app"),
    ]  # fmt: skip
    check, result = run(MatchQuality, deliveries)
    assert (result.status, result.findings) == (Status.OK, [])
    assert check.estimates()[("Purchase", "physical_store")] >= 9.0


def test_each_action_source_of_an_event_name_is_judged_on_its_own() -> None:
    deliveries = [
        *events("Purchase", 200, RICH, 2, source="website"),
        *events("Purchase", 30, ("country",), source="physical_store"),  # 0.8: crit
    ]
    _, result = run(MatchQuality, deliveries)
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert (f.event_names, f.severity, f.field) == (["Purchase"], Severity.CRIT, "user_data.em")
    assert f.evidence["action_source"] == "physical_store"
    assert "physical_store" in f.message
    assert "client_ip_address" not in f.evidence["coverage_pct"]


@pytest.mark.parametrize("name", ["PageView", "ViewContent", "AddToCart", "Search", "Custom1"])
def test_upper_funnel_and_custom_events_have_no_absolute_floor(name: str) -> None:
    check, result = run(MatchQuality, events(name, 200, BASIC, source="website"))
    assert (result.status, result.findings) == (Status.OK, [])
    assert check.estimates()[(name, "website")] == pytest.approx(3.25)
    assert "MATCH_KEY_DROP" in result.summary  # says how such events are judged


def _history(rows: list[HourRollup], current: Current = Current.ADD) -> VolumeHistory:
    return build_history(settings_from_dict({}), "123", rows, current=current)


def _row(name: str, hour: float, source: str, events: int, keys: dict[str, int]) -> HourRollup:
    counts = [events] + [keys.get(k, 0) for k in MATCH_KEYS]
    return HourRollup("123", name, SOURCE_SERVER_LOG, int(hour), events=events,
                      key_counts=counts[1:], source_keys={source: counts})  # fmt: skip


def _cycle(rows: list[HourRollup], batch: list[Any], now: float = NOW) -> Any:
    """A daemon cycle: the stored series before it, then ``batch`` (its own rollups)."""
    ctx = context(now=now)
    ctx = dc.replace(ctx, series=_history(rows))
    check = MatchQuality(ctx)
    acc = RollupAccumulator("123")
    for d in batch:
        check.observe(d)
        acc.observe(d)
    check.use_rollups(acc.result())
    return check, check.result()


GOOD = {"em": 10, "ph": 9, "client_ip_address": 10, "client_user_agent": 10, "fbp": 10}


def test_the_daemon_judges_the_last_day_not_one_batch() -> None:
    # A day of good Purchases stored; this cycle's batch alone would be crit.
    stored = [_row("Purchase", NOW - h * HOUR, "website", 10, GOOD) for h in range(1, 24)]
    batch = events("Purchase", 20, BASIC, source="website")
    check, result = _cycle(stored, batch)
    assert result.findings == []
    cov = check.coverages()[("Purchase", "website")]
    assert cov.events == 23 * 10 + 20
    # ... and a low-volume dataset is judged on its day even in a cycle with one event.
    few = [_row("Purchase", NOW - h * HOUR, "website", 1, {"client_ip_address": 1})
           for h in range(1, 24)]  # fmt: skip
    _, result = _cycle(few, events("Purchase", 1, BASIC, source="website"))
    f = one(result, MATCH_KEY_COVERAGE_LOW)
    assert (f.count, f.evidence["events"]) == (24, 24)


def test_the_window_forgets_what_is_older_than_a_day() -> None:
    old = [_row("Purchase", NOW - h * HOUR, "website", 10, {}) for h in range(25, 60)]
    _, result = _cycle(old, events("Purchase", 30, RICH, 2, source="website"))
    assert result.findings == []  # the bad days are over: only today's 30 count


def test_an_audit_judges_the_events_it_read() -> None:
    stored = [_row("Purchase", NOW - h * HOUR, "website", 10, {}) for h in range(1, 24)]
    ctx = dc.replace(context(), series=_history(stored, Current.REPLACE))
    check = MatchQuality(ctx)
    for d in events("Purchase", 30, RICH, 2, source="website"):
        check.observe(d)
    assert check.result().findings == []

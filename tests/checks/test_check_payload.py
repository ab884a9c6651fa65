"""The payload check: every code, its nearby valid variants, counts, masking, severity."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.payload import (
    _CACHE_MAX,
    CURRENCIES,
    STANDARD_EVENTS,
    Payload,
    PayloadCode,
    is_currency,
    is_number,
    standard_spelling,
)
from monitor.model.findings import Severity, Status
from tests.support.checkutil import DAY, NOW, WEIRD_VALUES, codes, context, delivery, one, run

EM = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
MS = "1767258000123"  # a 13-digit creation time in milliseconds
FBC = f"fb.1.{MS}.IwAR2F4-dbP0l7Mn1IawQQ"
FBP = f"fb.1.{MS}.1116446470"
DELETE = object()


def good(**paths: Any) -> dict[str, Any]:
    """A valid website Purchase; ``paths`` set (or DELETE) dotted keys, e.g. user_data__fbc."""
    ev: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": NOW - 60,
        "event_id": "order-1",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [EM],
            "client_ip_address": "203.0.113.5",
            "client_user_agent": UA,
            "fbc": FBC,
            "fbp": FBP,
        },
        "custom_data": {"value": 12.5, "currency": "EUR"},
    }
    for path, value in paths.items():
        *parents, leaf = path.split("__")
        target = ev
        for p in parents:
            target = target[p]
        if value is DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return ev


# (intent, event, expected code or None for "no finding")
CASES: list[tuple[str, dict[str, Any], PayloadCode | None]] = [
    ("a complete website purchase", good(), None),
    # event_time
    ("event_time in milliseconds", good(event_time=(NOW - 60) * 1000),
     PayloadCode.EVENT_TIME_MILLISECONDS),
    ("10 minutes ahead of the send time", good(event_time=NOW + 600),
     PayloadCode.EVENT_TIME_FUTURE),
    ("4 minutes ahead is within the 5-minute tolerance", good(event_time=NOW + 240), None),
    ("website event 8 days old", good(event_time=NOW - 8 * DAY), PayloadCode.EVENT_TIME_TOO_OLD),
    ("website event 6 days old", good(event_time=NOW - 6 * DAY), None),
    ("physical_store event 30 days old",
     good(event_time=NOW - 30 * DAY, action_source="physical_store"), None),
    ("physical_store event 63 days old",
     good(event_time=NOW - 63 * DAY, action_source="physical_store"),
     PayloadCode.EVENT_TIME_TOO_OLD),
    # action_source and website requirements
    ("no action_source", good(action_source=DELETE), PayloadCode.MISSING_ACTION_SOURCE),
    ("empty action_source", good(action_source=""), PayloadCode.MISSING_ACTION_SOURCE),
    ("null action_source", good(action_source=None), PayloadCode.MISSING_ACTION_SOURCE),
    ("website without event_source_url", good(event_source_url=DELETE),
     PayloadCode.MISSING_EVENT_SOURCE_URL),
    ("website with an empty event_source_url", good(event_source_url=""),
     PayloadCode.MISSING_EVENT_SOURCE_URL),
    ("app event needs no event_source_url", good(action_source="app", event_source_url=DELETE),
     None),
    ("website without client_user_agent", good(user_data__client_user_agent=DELETE),
     PayloadCode.MISSING_CLIENT_USER_AGENT),
    ("website with a numeric client_user_agent", good(user_data__client_user_agent=5),
     PayloadCode.MISSING_CLIENT_USER_AGENT),
    ("email event needs no client_user_agent",
     good(action_source="email", event_source_url=DELETE, user_data__client_user_agent=DELETE),
     None),
    # user_data
    ("app event with no user_data at all", good(action_source="app", user_data=DELETE),
     PayloadCode.MISSING_USER_DATA),
    ("app event with empty user_data", good(action_source="app", user_data={}),
     PayloadCode.MISSING_USER_DATA),
    ("app event with only empty values",
     good(action_source="app", user_data={"em": [], "ph": "", "fn": [""], "_em": EM}),
     PayloadCode.MISSING_USER_DATA),
    ("app event with user_data as a string", good(action_source="app", user_data="em=x"),
     PayloadCode.MISSING_USER_DATA),
    ("only an external_id is customer information",
     good(action_source="app", user_data={"external_id": "cust-1"}), None),
    # fbc / fbp
    ("fbc from the parameter builder (8-char appendix)", good(user_data__fbc=FBC + ".AQICAQMC"),
     None),
    ("fbc with a legacy language appendix", good(user_data__fbc=FBC + ".Ag"), None),
    ("fbc with subdomain index 3 (deep host via the builder)",
     good(user_data__fbc=f"fb.3.{MS}.IwAR2F4.AQICAQMC"), None),
    ("fbc list", good(user_data__fbc=[FBC, FBC + ".AQIAAQMC"]), None),
    ("fbc with a 10-digit (seconds) time", good(user_data__fbc="fb.1.1767258000.x"),
     PayloadCode.FBC_MALFORMED),
    ("fbc without its fbclid", good(user_data__fbc=f"fb.1.{MS}."), PayloadCode.FBC_MALFORMED),
    ("fbc with a 3-char appendix", good(user_data__fbc=FBC + ".abc"), PayloadCode.FBC_MALFORMED),
    ("bare fbclid instead of fbc", good(user_data__fbc="IwAR2F4-dbP0l7Mn1IawQQ"),
     PayloadCode.FBC_MALFORMED),
    ("empty fbc", good(user_data__fbc=""), PayloadCode.FBC_MALFORMED),
    ("one bad fbc in a list", good(user_data__fbc=[FBC, "fb.1.x"]), PayloadCode.FBC_MALFORMED),
    ("numeric fbc", good(user_data__fbc=12345), PayloadCode.FBC_MALFORMED),
    ("fbp with builder appendix", good(user_data__fbp=FBP + ".AQICAQMC"), None),
    ("fbp with a letter in the random number", good(user_data__fbp=f"fb.1.{MS}.11164a6470"),
     PayloadCode.FBP_MALFORMED),
    ("fbp with an 11-digit random number", good(user_data__fbp=f"fb.1.{MS}.11164464701"),
     PayloadCode.FBP_MALFORMED),
    ("fbp missing the fb. prefix", good(user_data__fbp=f"1.{MS}.1116446470"),
     PayloadCode.FBP_MALFORMED),
    # custom_data.value
    ("integer value", good(custom_data__value=12), None),
    ("zero value", good(custom_data__value=0), None),
    ("value as a string", good(custom_data__value="12.5"), PayloadCode.VALUE_INVALID),
    ("value as a bool", good(custom_data__value=True), PayloadCode.VALUE_INVALID),
    ("value null", good(custom_data__value=None), PayloadCode.VALUE_INVALID),
    ("value infinite", good(custom_data__value=float("inf")), PayloadCode.VALUE_INVALID),
    ("value NaN", good(custom_data__value=float("nan")), PayloadCode.VALUE_INVALID),
    ("no value at all is fine", good(custom_data__value=DELETE), None),
    # custom_data.currency
    ("lower-case currency", good(custom_data__currency="eur"), None),
    ("mixed-case currency", good(custom_data__currency="Eur"), None),
    ("currency as a word", good(custom_data__currency="EURO"), PayloadCode.CURRENCY_INVALID),
    ("currency as a symbol", good(custom_data__currency="€"), PayloadCode.CURRENCY_INVALID),
    ("unknown 3-letter currency", good(custom_data__currency="XYZ"),
     PayloadCode.CURRENCY_INVALID),
    ("numeric ISO currency code", good(custom_data__currency=978), PayloadCode.CURRENCY_INVALID),
    ("empty currency", good(custom_data__currency=""), PayloadCode.CURRENCY_INVALID),
    ("custom_data as a list is not judged", good(custom_data=[1, 2]), None),
    # event names
    ("standard name", good(event_name="AddToCart"), None),
    ("custom event name", good(event_name="NewsletterSignup"), None),
    ("snake_case custom name is not a misspelled standard", good(event_name="add_to_cart"),
     None),
    ("standard name in lower case", good(event_name="purchase"),
     PayloadCode.NONSTANDARD_EVENT_NAME),
    ("standard name in upper case", good(event_name="PAGEVIEW"),
     PayloadCode.NONSTANDARD_EVENT_NAME),
    ("standard name with a trailing space", good(event_name="Lead "),
     PayloadCode.NONSTANDARD_EVENT_NAME),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "ev", "expected"), CASES, ids=[c[0] for c in CASES])
def test_single_event(intent: str, ev: dict[str, Any], expected: PayloadCode | None) -> None:
    _, result = run(Payload, [delivery(ev, sent_at=NOW)])
    if expected is None:
        assert result.findings == [], intent
        assert result.status is Status.OK
        return
    assert codes(result) == {expected}, intent
    finding = one(result, expected)
    assert finding.count == 1
    assert finding.event_names == [ev["event_name"]]
    assert finding.field and finding.field in finding.message
    assert len(finding.examples) == 1


FIELDS = {
    PayloadCode.EVENT_TIME_MILLISECONDS: "event_time",
    PayloadCode.EVENT_TIME_FUTURE: "event_time",
    PayloadCode.EVENT_TIME_TOO_OLD: "event_time",
    PayloadCode.MISSING_ACTION_SOURCE: "action_source",
    PayloadCode.MISSING_EVENT_SOURCE_URL: "event_source_url",
    PayloadCode.MISSING_CLIENT_USER_AGENT: "user_data.client_user_agent",
    PayloadCode.MISSING_USER_DATA: "user_data",
    PayloadCode.FBC_MALFORMED: "user_data.fbc",
    PayloadCode.FBP_MALFORMED: "user_data.fbp",
    PayloadCode.VALUE_INVALID: "custom_data.value",
    PayloadCode.CURRENCY_INVALID: "custom_data.currency",
    PayloadCode.NONSTANDARD_EVENT_NAME: "event_name",
}


@pytest.mark.parametrize("case", [c for c in CASES if c[2] is not None], ids=lambda c: c[0])
def test_field_and_texts(case: tuple[str, dict[str, Any], PayloadCode]) -> None:
    """Each code names its dotted field; message and remediation are concrete sentences."""
    _, ev, code = case
    _, result = run(Payload, [delivery(ev, sent_at=NOW)])
    finding = one(result, code)
    assert finding.field == FIELDS[code]
    assert "1 of 1 events (100.0%)" in finding.message
    assert finding.message.endswith(".") and "\n" not in finding.message
    assert len(finding.remediation) > 40


# (intent, sent_at, event_time offset from NOW, expected codes)
REFERENCE_CASES: list[tuple[str, float | None, float, set[PayloadCode]]] = [
    ("age is judged at send time: 8 days before now but 6 days before sent_at",
     NOW - 2 * DAY, -8 * DAY, set()),
    ("without a send time the run's clock is the reference", None, -8 * DAY,
     {PayloadCode.EVENT_TIME_TOO_OLD}),
    ("future is judged at send time: 1 h after sent_at", NOW - 2 * 3600, -3600,
     {PayloadCode.EVENT_TIME_FUTURE}),
    ("a milliseconds time is not also reported as future", NOW, 1e12,
     {PayloadCode.EVENT_TIME_MILLISECONDS}),
    ("nor as too old when it is old in seconds too", NOW, -(NOW - (NOW - 9 * DAY) * 1000),
     {PayloadCode.EVENT_TIME_MILLISECONDS}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("intent", "sent_at", "offset", "expected"),
    REFERENCE_CASES,
    ids=[c[0] for c in REFERENCE_CASES],
)
def test_reference_time(
    intent: str, sent_at: float | None, offset: float, expected: set[PayloadCode]
) -> None:
    t = 1e12 + NOW if offset == 1e12 else NOW + offset
    _, result = run(Payload, [delivery(good(event_time=t), sent_at=sent_at)])
    assert codes(result) == expected, intent


def test_time_examples_show_the_value_as_sent() -> None:
    ms, old = int(NOW - 60) * 1000, int(NOW - 9 * DAY)
    _, result = run(Payload, [delivery(good(event_time=ms), good(event_time=old), sent_at=NOW)])
    assert one(result, PayloadCode.EVENT_TIME_MILLISECONDS).examples[0].value == str(ms)
    assert one(result, PayloadCode.EVENT_TIME_TOO_OLD).examples[0].value == str(old)


def test_too_old_is_crit_and_carries_evidence() -> None:
    events = [good(event_time=NOW - 9.5 * DAY)] + [good() for _ in range(99)]
    _, result = run(Payload, [delivery(*events, sent_at=NOW)])
    finding = one(result, PayloadCode.EVENT_TIME_TOO_OLD)
    assert finding.severity is Severity.CRIT
    assert finding.evidence["max_age_seconds"] == round(9.5 * DAY)
    assert "9.5 days" in finding.message
    assert finding.examples[0].value == str(NOW - 9.5 * DAY)


# (intent, affected of 100, settings, expected severity)
SEVERITY_CASES: list[tuple[str, int, dict[str, Any], Severity]] = [
    ("one invalid value in a hundred is warn", 1, {}, Severity.WARN),
    ("just below 10 % stays warn", 9, {}, Severity.WARN),
    ("10 % escalates to crit", 10, {}, Severity.CRIT),
    ("a higher configured share keeps it warn", 10, {"payload": {"warn_to_crit_share": 0.2}},
     Severity.WARN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("intent", "bad", "settings", "expected"), SEVERITY_CASES, ids=[c[0] for c in SEVERITY_CASES]
)
def test_severity_escalates_by_share(
    intent: str, bad: int, settings: dict[str, Any], expected: Severity
) -> None:
    events = [good(custom_data__value="9.99" if i < bad else 9.99) for i in range(100)]
    _, result = run(Payload, [delivery(*events, sent_at=NOW)], settings)
    finding = one(result, PayloadCode.VALUE_INVALID)
    assert (finding.count, finding.severity) == (bad, expected), intent
    assert f"{bad} of 100 events" in finding.message


def test_future_tolerance_is_configurable() -> None:
    ev = good(event_time=NOW + 240)
    _, result = run(Payload, [delivery(ev, sent_at=NOW)], {"payload": {"future_tolerance": "1m"}})
    finding = one(result, PayloadCode.EVENT_TIME_FUTURE)
    assert finding.evidence["max_ahead_seconds"] == 240


def test_counts_names_and_masked_cookie_examples() -> None:
    bad = [good(event_name=n, user_data__fbc="fb.1.1767258000.IwARsecretclick") for n in
           ("Purchase", "Purchase", "Lead", "AddToCart", "Purchase")]  # fmt: skip
    _, result = run(Payload, [delivery(*bad, good(), sent_at=NOW)])
    finding = one(result, PayloadCode.FBC_MALFORMED)
    assert finding.count == 5
    assert finding.event_names == ["Purchase", "AddToCart", "Lead"]
    assert len(finding.examples) == 3
    assert all("secretclick" not in ex.value for ex in finding.examples)
    assert "5 of 6 events (83.3%)" in finding.message


def test_test_event_code_counts_events_and_is_dataset_wide() -> None:
    d1 = delivery(good(), good(event_name="Lead"), sent_at=NOW, line=1)
    d1.test_event_code = "TEST12345"
    d2 = delivery(good(), sent_at=NOW, line=2)  # production request: no code
    d3 = delivery(good(), sent_at=NOW, line=3)
    d3.test_event_code = ""  # empty: not a test request
    _, result = run(Payload, [d1, d2, d3])
    finding = one(result, PayloadCode.TEST_EVENT_CODE_PRESENT)
    assert (finding.count, finding.field) == (2, "test_event_code")
    assert finding.event_names == []  # alerts for it carry no event name (CONTRACTS §6)
    assert finding.evidence["event_names"] == {"Purchase": 1, "Lead": 1}
    assert [ex.line for ex in finding.examples] == [1]
    assert "TEST12345" not in finding.examples[0].value
    assert "2 of 4 events (50.0%)" in finding.message
    assert codes(result) == {PayloadCode.TEST_EVENT_CODE_PRESENT}


def test_nonstandard_name_remediation_names_the_fix() -> None:
    _, result = run(Payload, [delivery(good(event_name="purchase"), sent_at=NOW)])
    finding = one(result, PayloadCode.NONSTANDARD_EVENT_NAME)
    assert "'purchase' -> Purchase" in finding.remediation
    assert finding.examples[0].value == "purchase"


def test_helpers() -> None:
    assert is_number(12.5) and is_number(-3) and not is_number("12.5") and not is_number(False)
    assert is_currency("usd") and is_currency("JPY") and not is_currency("US")
    assert {"EUR", "USD", "JPY", "GBP"} <= CURRENCIES
    assert all(standard_spelling(n) is None for n in STANDARD_EVENTS)
    assert standard_spelling("viewcontent") == "ViewContent"
    assert len(STANDARD_EVENTS) == 18


def test_custom_name_memo_is_bounded_and_still_correct() -> None:
    check = Payload(context())
    names = [f"custom_{i}" for i in range(_CACHE_MAX + 1000)]
    events = [good(event_name=name) for name in names] + [good(event_name="lead")]
    check.observe(delivery(*events, sent_at=NOW))
    assert len(check._names_ok) <= _CACHE_MAX
    result = check.result()
    assert one(result, PayloadCode.NONSTANDARD_EVENT_NAME).count == 1


def test_ok_and_skipped() -> None:
    _, result = run(Payload, [delivery(good(), sent_at=NOW)])
    assert (result.status, result.score) == (Status.OK, 100)
    _, empty = run(Payload, [])
    assert empty.status is Status.SKIPPED


@pytest.mark.parametrize("weird", WEIRD_VALUES, ids=[repr(w)[:30] for w in WEIRD_VALUES])
def test_never_crashes_on_odd_types(weird: Any) -> None:
    variants = [
        good(action_source=weird),
        good(event_source_url=weird),
        good(user_data=weird),
        good(custom_data=weird),
        good(custom_data__value=weird, custom_data__currency=weird),
        good(user_data__fbc=weird, user_data__fbp=weird, user_data__client_user_agent=weird),
        good(user_data={"em": weird}),
    ]
    d = delivery(*copy.deepcopy(variants), sent_at=NOW)
    d.test_event_code = weird if isinstance(weird, str) else None
    _, result = run(Payload, [d])
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)
    assert all(f.count >= 1 for f in result.findings)


# --- the per-delivery tests (times, names) against one delivery per event -------------------

_VARIANTS: list[dict[str, Any]] = [
    {},
    {"event_time": NOW - 8 * DAY},
    {"event_time": NOW + 3600},
    {"event_time": NOW - 30 * DAY, "action_source": "physical_store"},
    {"event_time": NOW - 70 * DAY, "action_source": "physical_store"},
    {"event_name": "purchase"},
    {"event_name": "my_custom"},
    {"event_name": " Lead "},
    {"action_source": DELETE},
    {"action_source": "app"},
    {"event_source_url": ""},
    {"user_data__client_user_agent": DELETE},
    {"user_data__fbc": "fb.1.123.abc"},
    {"user_data__fbp": ["fb.1.1767000000000.1116446470", 5]},
    {"user_data": {"em": [""], "external_id": None}},
    {"user_data": None},
    {"custom_data__value": "12.5"},
    {"custom_data__currency": "euro"},
    {"custom_data": {}},
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(range(len(_VARIANTS))), min_size=1, max_size=5)))
def test_batched_deliveries_judge_as_single_events(batches: list[list[int]]) -> None:
    """A delivery's times and names are tested at once: the findings are those of its
    events observed one delivery each (same file and line)."""
    batched, single = Payload(context()), Payload(context())
    for line, batch in enumerate(batches, start=1):
        events = [good(**_VARIANTS[i]) for i in batch]
        batched.observe(delivery(*events, sent_at=NOW, line=line))
        for ev in events:
            single.observe(delivery(ev, sent_at=NOW, line=line))
    assert batched.result() == single.result()

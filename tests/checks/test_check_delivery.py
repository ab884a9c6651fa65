"""The delivery check (log part): TOKEN_INVALID, RATE_LIMITED, DELIVERY_ERRORS, EVENTS_DROPPED."""

from __future__ import annotations

from typing import Any

import pytest

from checks.delivery import (
    DELIVERY_ERRORS,
    EVENTS_DROPPED,
    RATE_LIMITED,
    TOKEN_INVALID,
    DeliveryCheck,
    remediation_for,
)
from monitor.model.findings import Severity, Status
from monitor.model.observations import ResponseInfo
from tests.support.checkutil import NOW, WEIRD_VALUES, by_code, codes, delivery, event, one, run

OK = ResponseInfo(200, events_received=5)


def err(code: int | None, sub: int | None = None, status: int = 400, **kw: Any) -> ResponseInfo:
    return ResponseInfo(status, error_code=code, error_subcode=sub, **kw)


def batch(response: ResponseInfo | None, n: int = 5, name: str = "Purchase", line: int = 1):
    evs = [event(name, NOW - 60, event_id=f"e{line}-{i}") for i in range(n)]
    return delivery(*evs, sent_at=NOW, response=response, line=line)


def healthy(requests: int) -> list[Any]:
    return [batch(OK, line=100 + i) for i in range(requests)]


# (intent, failed response, expected code, field)
CLASSIFY_CASES = [
    ("HTTP 500 with code 190 is a token error, not a delivery error",
     err(190, 463, status=500), TOKEN_INVALID, "response.error"),
    ("code 190 without subcode", err(190), TOKEN_INVALID, "response.error"),
    ("code 102 is a token error", err(102), TOKEN_INVALID, "response.error"),
    ("code 17 (HTTP 500) is throttling", err(17, 2446079, status=500), RATE_LIMITED,
     "response.error"),
    ("code 4 is throttling", err(4, 1504022), RATE_LIMITED, "response.error"),
    ("code 32 is throttling", err(32), RATE_LIMITED, "response.error"),
    ("code 613 is throttling", err(613), RATE_LIMITED, "response.error"),
    ("business use case 80004 is throttling", err(80004), RATE_LIMITED, "response.error"),
    ("80014 is the last throttling code", err(80014), RATE_LIMITED, "response.error"),
    ("80015 is an ordinary error", err(80015), DELIVERY_ERRORS, "response.error.80015"),
    ("event too old is a delivery error by code/subcode",
     err(100, 2804003, error_title="Event Timestamp Too Old"), DELIVERY_ERRORS,
     "response.error.100/2804003"),
    ("an error envelope on HTTP 200 is still an error", err(100, status=200), DELIVERY_ERRORS,
     "response.error.100"),
    ("HTTP 502 without envelope", ResponseInfo(502), DELIVERY_ERRORS, "response.error.http_502"),
    ("no HTTP answer at all (timed out)", ResponseInfo(transport_error="timed_out"),
     DELIVERY_ERRORS, "response.error.no_answer"),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "response", "code", "field"), CLASSIFY_CASES)
def test_classification(intent: str, response: ResponseInfo, code: str, field: str) -> None:
    _, result = run(DeliveryCheck, [*healthy(199), batch(response, line=7)])
    assert codes(result) == {code}, intent
    f = one(result, code)
    assert (f.field, f.count, f.examples[0].line) == (field, 5, 7), intent
    # Token and throttling problems concern the dataset: no per-event-name alerts.
    assert f.event_names == ([] if code != DELIVERY_ERRORS else ["Purchase"])
    # 5 of 1000 events: under the 5 % crit share; a token error is crit at any share.
    assert f.severity is (Severity.CRIT if code == TOKEN_INVALID else Severity.WARN)
    assert f.evidence["error_rate"] == pytest.approx(5 / 1000)


@pytest.mark.parametrize(
    ("subcode", "meaning"),
    [(463, "expired"), (460, "password changed"), (467, "token invalid"), (None, "190")],
)
def test_token_message_names_the_subcode(subcode: int | None, meaning: str) -> None:
    _, result = run(DeliveryCheck, [batch(err(190, subcode))])
    f = one(result, TOKEN_INVALID)
    assert meaning in f.message
    assert "token" in f.remediation


def test_token_errors_of_several_subcodes_make_one_finding() -> None:
    deliveries = [batch(err(190, 463), line=1), batch(err(190, 460), line=2), batch(err(102))]
    _, result = run(DeliveryCheck, deliveries)
    f = one(result, TOKEN_INVALID)
    assert f.count == 15
    assert f.evidence["errors"] == {"190/463": 1, "190/460": 1, "102": 1}


def test_one_delivery_errors_finding_per_code_and_subcode() -> None:
    deliveries = [
        batch(err(100, 2804003, error_title="Event Timestamp Too Old"), line=1),
        batch(err(100, 2804003), line=2),
        batch(err(100, 2804050), n=3, name="Lead", line=3),
        *healthy(100),
    ]
    _, result = run(DeliveryCheck, deliveries)
    found = {f.field: f for f in by_code(result, DELIVERY_ERRORS)}
    assert set(found) == {"response.error.100/2804003", "response.error.100/2804050"}
    old = found["response.error.100/2804003"]
    assert (old.count, old.event_names) == (10, ["Purchase"])
    assert "Event Timestamp Too Old" in old.message and "1.9%" in old.message
    assert "7 days" in old.remediation
    assert [e.value for e in old.examples] == ["Event Timestamp Too Old"] * 2
    few = found["response.error.100/2804050"]
    assert (few.count, few.event_names) == (3, ["Lead"])
    assert "identifier" in few.remediation
    assert sum(f.count for f in by_code(result, DELIVERY_ERRORS)) == 13


@pytest.mark.parametrize(
    ("failed", "total", "settings", "severity"),
    [
        (4, 100, None, Severity.WARN),  # 4 % < the default 5 %
        (5, 100, None, Severity.CRIT),  # 5 % escalates
        (4, 100, {"delivery": {"warn_to_crit_share": 0.04}}, Severity.CRIT),  # configurable
    ],
)
@pytest.mark.parametrize("response", [err(100, 33), err(17)], ids=["error", "throttled"])
def test_escalation_by_share(
    failed: int, total: int, settings: dict[str, Any] | None, severity: Severity, response: Any
) -> None:
    deliveries = [batch(response if i < failed else OK, n=1, line=i) for i in range(total)]
    _, result = run(DeliveryCheck, deliveries, settings)
    (f,) = result.findings
    assert (f.count, f.severity) == (failed, severity)


# (intent, events sent, events_received, dropped count or None)
DROP_CASES = [
    ("events_received equal to the batch: nothing", 5, 5, None),
    ("events_received missing: unknown, nothing", 5, None, None),
    ("more received than sent: not a drop", 5, 7, None),
    ("3 of 5 received: 2 dropped", 5, 3, 2),
    ("none of 5 received: 5 dropped", 5, 0, 5),
]


@pytest.mark.parametrize(("intent", "sent", "received", "dropped"), DROP_CASES)
def test_events_dropped(intent: str, sent: int, received: int | None, dropped: int | None) -> None:
    d = batch(ResponseInfo(200, events_received=received), n=sent, line=9)
    _, result = run(DeliveryCheck, [d, *healthy(99)])
    if dropped is None:
        assert result.findings == [] and result.status is Status.OK, intent
        return
    f = one(result, EVENTS_DROPPED)
    assert (f.count, f.field, f.event_names) == (dropped, "events_received", ["Purchase"])
    assert f.examples[0].value == f"received {received} of {sent}"
    assert f.examples[0].line == 9


def test_count_includes_malformed_events_of_the_request() -> None:
    d = delivery(event(), sent_at=NOW, response=err(100, 2804003), sent_count=4)
    _, result = run(DeliveryCheck, [d])
    assert one(result, DELIVERY_ERRORS).count == 4


def test_meta_text_is_scrubbed() -> None:
    title = (
        "Bad email john.smith@example.com token EAABsbCS1iHgBAxyzxyzxyzxyzxyz123 +1 650 555 1212"
    )
    _, result = run(DeliveryCheck, [batch(err(100, 2804019, error_title=title))])
    f = one(result, DELIVERY_ERRORS)
    shown = f.message + " ".join(e.value for e in f.examples)
    for secret in ("john.smith@example.com", "EAABsbCS1iHgBA", "650 555 1212"):
        assert secret not in shown
    assert "j***@e***.com" in shown


def test_message_falls_back_to_error_message() -> None:
    _, result = run(DeliveryCheck, [batch(err(100, error_message="Invalid parameter"))])
    f = one(result, DELIVERY_ERRORS)
    assert "Invalid parameter" in f.message
    assert "error_user_msg" in f.remediation


def test_no_responses_is_skipped() -> None:
    _, result = run(DeliveryCheck, [batch(None), delivery(event())])
    assert result.status is Status.SKIPPED
    assert result.summary == "the logs carry no responses"


def test_all_successful_is_ok() -> None:
    check, result = run(DeliveryCheck, [*healthy(10), batch(None)])
    assert (result.status, result.score) == (Status.OK, 100)
    assert check.evidence()["requests_without_response"] == 1


@pytest.mark.parametrize(
    ("code", "sub", "expected"),
    [
        (100, 2804003, "7 days"),
        (100, 2804001, "fbc"),
        (100, 2804019, "fbc"),
        (100, 2804050, "identifiers"),
        (100, 999, "error_user_msg"),  # unknown subcode of 100: the generic 100 advice
        (250, None, "permission"),  # the whole 200-299 range
        (2, None, "back-off"),
        (None, None, "HTTP"),
        (12345, None, "error reference"),
    ],
)
def test_remediation_table(code: int | None, sub: int | None, expected: str) -> None:
    assert expected in remediation_for(code, sub)


@pytest.mark.parametrize("weird", WEIRD_VALUES, ids=lambda v: type(v).__name__)
def test_weird_events_in_failed_and_dropped_requests_never_crash(weird: Any) -> None:
    ev = event("Purchase", NOW, user_data=weird, custom_data=weird, event_id=weird)
    deliveries = [
        delivery(ev, sent_at=NOW, response=err(100, 2804003), line=1),
        delivery(ev, ev, sent_at=NOW, response=ResponseInfo(200, events_received=1), line=2),
    ]
    _, result = run(DeliveryCheck, deliveries)
    assert codes(result) == {DELIVERY_ERRORS, EVENTS_DROPPED}
    assert [f.count for f in result.findings] == [1, 1]


def test_no_answer_is_a_failure_with_its_own_words() -> None:
    _, result = run(DeliveryCheck, [batch(ResponseInfo(transport_error="timed_out")), *healthy(3)])
    finding = one(result, DELIVERY_ERRORS)
    assert finding.field == "response.error.no_answer"
    assert finding.count == 5
    assert "1 requests got no answer from Meta (timed out)" in finding.message
    assert "connectivity to graph.facebook.com" in finding.remediation
    assert finding.examples[0].value == "timed out"

"""The delivery check (log part): TOKEN_INVALID, RATE_LIMITED, DELIVERY_ERRORS, EVENTS_DROPPED."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from checks.delivery import (
    DELIVERY_ERRORS,
    DELIVERY_RETRIED,
    EVENTS_DROPPED,
    META_WARNING,
    RATE_LIMITED,
    TOKEN_INVALID,
    DeliveryCheck,
    remediation_for,
)
from checks.delivery_retries import event_key
from monitor.model.findings import Severity, Status
from monitor.model.observations import ResponseInfo
from tests.support.checkutil import (
    NOW,
    WEIRD_VALUES,
    by_code,
    codes,
    context,
    delivery,
    event,
    one,
    run,
)

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
    deliveries = [
        batch(err(190, 463), line=1),
        batch(err(190, 460), line=2),
        batch(err(102), line=3),
    ]
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
        (None, 502, "HTTP"),
        (None, None, "no answer"),
        (12345, None, "error reference"),
        (100, 33, "dataset <dataset id>"),  # object missing or not accessible: not payload
        (341, None, "wait and retry"),
        (368, None, "wait and retry"),
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
    # An event with a usable event_id that was accepted later is retried, not lost.
    failed = DELIVERY_RETRIED if event_key(ev) is not None else DELIVERY_ERRORS
    assert codes(result) == {failed, EVENTS_DROPPED}
    assert [f.count for f in result.findings] == [1, 1]


def test_no_answer_is_a_failure_with_its_own_words() -> None:
    _, result = run(DeliveryCheck, [batch(ResponseInfo(transport_error="timed_out")), *healthy(3)])
    finding = one(result, DELIVERY_ERRORS)
    assert finding.field == "response.error.no_answer"
    assert finding.count == 5
    assert "1 requests got no answer from Meta (timed out)" in finding.message
    assert "connectivity to graph.facebook.com" in finding.remediation
    assert finding.examples[0].value == "timed out"


# ----------------------------------------------------------------- docs/contracts.md §9


def test_object_missing_or_inaccessible_names_the_dataset_and_the_token() -> None:
    for response in (
        err(100, 33, error_type="GraphMethodException"),
        err(100, error_type="GraphMethodException"),  # same family without the subcode
    ):
        _, result = run(DeliveryCheck, [batch(response)])
        f = one(result, DELIVERY_ERRORS)
        assert "dataset 123" in f.remediation and "token" in f.remediation
        assert "fix that field in the payload" not in f.remediation


@pytest.mark.parametrize(
    ("response", "code", "wait"),
    [
        (err(341), RATE_LIMITED, True),  # the log side and the Graph side agree now
        (err(368), DELIVERY_ERRORS, True),  # a temporary block: wait and retry
    ],
)
def test_341_and_368_are_wait_and_retry(response: ResponseInfo, code: str, wait: bool) -> None:
    _, result = run(DeliveryCheck, [batch(response)])
    f = one(result, code)
    assert ("back-off" in f.remediation) is wait
    assert f.evidence["transient_requests"] == 1


def test_meta_user_title_and_message_are_shown_scrubbed() -> None:
    response = err(
        100,
        2804050,
        error_title="For få identifikatorer",
        error_user_msg="Tilføj flere kundeoplysninger for jane.doe@example.com",
    )
    _, result = run(DeliveryCheck, [batch(response)])
    f = one(result, DELIVERY_ERRORS)
    assert "For få identifikatorer" in f.message and "Tilføj flere" in f.message
    assert "jane.doe@example.com" not in f.message + str(f.evidence)
    assert f.evidence["meta_explanation"]["title"] == "For få identifikatorer"
    assert "j***@e***.com" in f.evidence["meta_explanation"]["message"]


def test_is_transient_false_overrides_the_code() -> None:
    _, result = run(DeliveryCheck, [batch(err(2, is_transient=False))])
    assert one(result, DELIVERY_ERRORS).evidence["transient_requests"] == 0
    _, result = run(DeliveryCheck, [batch(err(12345, is_transient=True))])
    assert one(result, DELIVERY_ERRORS).evidence["transient_requests"] == 1


def resend(response: ResponseInfo | None, line: int, ids: range, name: str = "Purchase") -> Any:
    """A request carrying the events ``e1-<i>`` (the ids of ``batch(..., line=1)``)."""
    evs = [event(name, NOW - 60, event_id=f"e1-{i}") for i in ids]
    return delivery(*evs, sent_at=NOW + line, response=response, line=line)


# (intent, deliveries, never accepted, retried)
RETRY_CASES: list[tuple[str, list[Any], int, int]] = [
    ("transient failure, then accepted: not lost", [batch(err(2)), resend(OK, 2, range(5))], 0, 5),
    ("three failed attempts, never accepted: each event once",
     [batch(err(2)), resend(err(2), 2, range(5)), resend(err(1), 3, range(5))], 5, 0),
    ("three failed attempts, then accepted", [batch(err(2)), resend(err(2), 2, range(5)),
     resend(OK, 3, range(5))], 0, 5),
    ("partly accepted later", [batch(err(2)), resend(OK, 2, range(3))], 2, 3),
    ("accepted before it failed: the failure is not undone",
     [resend(OK, 1, range(5)), resend(err(2), 2, range(5))], 5, 0),
    ("a payload error fixed and resent is not lost either",
     [batch(err(100, 2804050)), resend(OK, 2, range(5))], 0, 5),
    ("another event name with the same ids is another event",
     [batch(err(2)), resend(OK, 2, range(5), name="Lead")], 5, 0),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "deliveries", "lost", "retried"), RETRY_CASES)
def test_events_accepted_later_are_retried_not_lost(
    intent: str, deliveries: list[Any], lost: int, retried: int
) -> None:
    check, result = run(DeliveryCheck, deliveries)
    assert check.lost_events == lost, intent
    assert sum(f.count for f in by_code(result, DELIVERY_ERRORS)) == lost, intent
    if retried:
        f = one(result, DELIVERY_RETRIED)
        assert (f.count, f.severity, f.event_names) == (retried, Severity.INFO, ["Purchase"])
    else:
        assert DELIVERY_RETRIED not in codes(result), intent
    if not lost:
        assert result.status is Status.OK, intent


def test_events_without_event_id_cannot_be_followed() -> None:
    evs = [event("Purchase", NOW - 60) for _ in range(3)]
    deliveries = [
        delivery(*evs, sent_at=NOW, response=err(2), line=1),
        delivery(*evs, sent_at=NOW + 1, response=OK, line=2),
    ]
    _, result = run(DeliveryCheck, deliveries)
    assert one(result, DELIVERY_ERRORS).count == 3 and DELIVERY_RETRIED not in codes(result)


def test_token_and_throttling_count_only_events_never_accepted() -> None:
    deliveries = [batch(err(17)), resend(OK, 2, range(4)), batch(err(190, 463), line=5)]
    _, result = run(DeliveryCheck, deliveries)
    assert one(result, RATE_LIMITED).count == 1
    assert one(result, TOKEN_INVALID).count == 5
    assert one(result, DELIVERY_RETRIED).evidence["errors"] == {"17": 4}


def test_meta_warning_counts_requests_with_messages() -> None:
    warned = ResponseInfo(200, events_received=5, messages=("Deprecated field: foo@example.com",))
    deliveries = [batch(warned, line=1), batch(warned, line=2), *healthy(8)]
    _, result = run(DeliveryCheck, deliveries)
    f = one(result, META_WARNING)
    assert (f.count, f.severity, f.field) == (2, Severity.WARN, "response.messages")
    assert [e.line for e in f.examples] == [1, 2]
    assert "foo@example.com" not in f.message + f.examples[0].value
    assert "Deprecated field" in f.examples[0].value


def _continuing() -> Any:
    ctx = context()
    return type(ctx)(ctx.dataset_id, ctx.now, ctx.settings, continuation=True)


@pytest.mark.parametrize(("intent", "deliveries", "lost", "retried"), RETRY_CASES)
def test_parallel_parts_merge_like_a_sequential_run(
    intent: str, deliveries: list[Any], lost: int, retried: int
) -> None:
    extended = [*deliveries, resend(err(2), 9, range(2, 4)), resend(OK, 10, range(3, 4))]
    expected = run(DeliveryCheck, extended)[1].to_dict()
    for cut in range(1, len(extended)):
        earlier, later = DeliveryCheck(context()), DeliveryCheck(_continuing())
        for d in extended[:cut]:
            earlier.observe(d)
        for d in extended[cut:]:
            later.observe(d)
        earlier.merge(pickle.loads(pickle.dumps(later)))
        assert earlier.result().to_dict() == expected, f"{intent} (cut before {cut + 1})"

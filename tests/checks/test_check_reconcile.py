"""The reconcile check: every code on planted cases with exact counts, none on correct ones."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from checks.funnel import MetaCounts, build_funnel, daily_counts, purchase_buckets
from checks.purchases import Outcome, paid_orders, purchases_of
from checks.reconcile import (
    ORDER_NOT_SENT,
    PURCHASE_DUPLICATE_ORDER,
    PURCHASE_ORDER_ID_MISSING,
    PURCHASE_VALUE_MISMATCH,
    PURCHASE_WITHOUT_ORDER,
    SOURCE_UNAVAILABLE,
    ReconcileCheck,
    ReconcileRules,
    reconcile,
    value_problem,
)
from monitor.model.findings import Severity, Status
from monitor.model.observations import Delivery, ResponseInfo
from monitor.model.orders import Order, OrderSnapshot, SourceKind
from tests.support.checkutil import DAY, HOUR, NOW, context, delivery, event

OK = ResponseInfo(status=200, events_received=1)
FAILED = ResponseInfo(status=400, error_code=100, error_message="Invalid parameter")
START = NOW - 2 * DAY  # the earliest send time of the logs below


def order(
    oid: str,
    created: float,
    amount: str | None = "19.99",
    currency: str | None = "EUR",
    *,
    paid: bool = True,
    status: str | None = None,
    keys: tuple[str, ...] | None = None,
) -> Order:
    return Order(
        order_id=oid,
        keys=keys or (oid.removeprefix("#"),),
        created_at=created,
        amount=Decimal(amount) if amount is not None else None,
        currency=currency,
        status=status or ("paid" if paid else "pending"),
        paid=paid,
    )


def snapshot(*orders: Order, since: float = START - 2 * DAY, until: float = NOW) -> OrderSnapshot:
    return OrderSnapshot("shop", SourceKind.FILE, since, until, list(orders))


def purchase(
    oid: Any,
    t: float,
    value: Any = 19.99,
    currency: Any = "EUR",
    *,
    eid: str | None = "auto",
    response: ResponseInfo | None = OK,
    line: int = 1,
    sent_at: float | None = None,
) -> Delivery:
    custom: dict[str, Any] = {"value": value, "currency": currency}
    if oid is not ...:
        custom["order_id"] = oid
    fields: dict[str, Any] = {"custom_data": custom, "action_source": "website"}
    if eid == "auto":
        eid = f"ev-{oid}-{line}"
    if eid is not None:
        fields["event_id"] = eid
    sent = t + 30 if sent_at is None else sent_at
    return delivery(event("Purchase", t, **fields), sent_at=sent, response=response, line=line)


def start_marker() -> Delivery:
    """A PageView sent at START: fixes the window start of the logs."""
    return delivery(event("PageView", START - 10), sent_at=START, response=OK, line=999)


def judge(snap: OrderSnapshot | None, deliveries: list[Delivery], **rules: Any) -> ReconcileCheck:
    check = ReconcileCheck(context(), snap, ReconcileRules(**rules))
    for d in [start_marker(), *deliveries]:
        check.observe(d)
    return check


def found(check: ReconcileCheck) -> dict[str, int]:
    return {f.code: f.count for f in check.result().findings}


# ----------------------------------------------------------------------------- correct


def correct_case() -> tuple[OrderSnapshot, list[Delivery]]:
    t = NOW - DAY
    snap = snapshot(
        order("1001", t, "19.99", "EUR"),
        order("1002", t + 60, "500", "JPY"),  # zero-decimal, exact
        order("1003", t + 120, "1.250", "KWD"),  # three decimals
        order("1004", t + 180, None, "EUR", status="refunded"),  # amount unknown, still paid
        order("1005", t + 240, "42.00", "EUR", paid=False),  # pending, never sent: fine
        order("1006", NOW - HOUR, "10.00", "EUR"),  # younger than grace, not sent yet: fine
        order(
            "#1007",
            t + 300,
            "10.00",
            "EUR",
            keys=("1007", "5550001", "gid://shopify/Order/5550001"),
        ),
        order("1008", t + 360, "12.00", "EUR"),
    )
    deliveries = [
        purchase("1001", t + 5, 19.99, "EUR", line=1),
        purchase("1001", t + 5, 19.99, "EUR", line=2, eid="ev-1001-1"),  # retry, same event_id
        purchase("1002", t + 65, 500, "jpy", line=3),
        purchase("1003", t + 125, "1.25", "KWD", line=4),
        purchase("1004", t + 185, 30.0, "EUR", line=5),
        purchase("gid://shopify/Order/5550001", t + 305, 10, "EUR", line=6),  # by gid
        purchase("1008", t + 365, 12.0, "EUR", line=7, response=None),  # outcome unknown
        purchase(1008, t + 365, 12, "EUR", line=8, eid="ev-1008-7"),  # int id, same event
    ]
    return snap, deliveries


def test_a_correct_shop_raises_nothing_and_accuracy_is_one() -> None:
    snap, deliveries = correct_case()
    check = judge(snap, deliveries)
    result = check.result()
    assert result.status is Status.OK, [f.to_dict() for f in result.findings]
    assert result.findings == []
    assert check.metrics() == {"orders_paid": 6, "orders_sent": 6, "accuracy": 1.0}
    metrics = check.reconciliation().metrics
    assert metrics["sent_unconfirmed"] == 1
    assert metrics["orders_too_recent"] == 1


def test_purchases_of_failed_requests_do_not_count_as_sent() -> None:
    t = NOW - DAY
    snap = snapshot(order("2001", t))
    check = judge(snap, [purchase("2001", t + 5, response=FAILED)])
    assert found(check) == {ORDER_NOT_SENT: 1}
    assert check.reconciliation().metrics["purchases_failed"] == 1


# ----------------------------------------------------------------------------- planted


def planted_case() -> tuple[OrderSnapshot, list[Delivery]]:
    t = NOW - DAY
    orders = [
        # 10 correct orders, sent once each
        *(order(f"30{i:02d}", t + i * 60, "25.00") for i in range(10)),
        # ORDER_NOT_SENT x2 (one of them only in a failed request)
        order("4001", t + 2000),
        order("4002", t + 2100),
        # value cases
        order("5001", t + 3000, "19.99"),  # sent 1999: mismatch (minor units)
        order("5002", t + 3100, "19.99", "EUR"),  # sent in USD: mismatch
        order("5003", t + 3200, "100.00"),  # sent 101: exactly 1 %, inclusive: fine
        order("5004", t + 3300, "100.00"),  # sent 101.01: mismatch
        order("5005", t + 3400, "0"),  # free order sent 0: fine
        # duplicates
        order("6001", t + 4000, "10.00"),
        order("6002", t + 4100, "10.00"),
        # a pending order someone fired Purchase for
        order("7001", t + 5000, "10.00", paid=False),
        # created before the logs start: not judged itself, but known to the matching
        order("3100", NOW - 4 * DAY + 60, "25.00"),
    ]
    d: list[Delivery] = []
    line = iter(range(1, 1000))
    for i in range(10):
        d.append(purchase(f"30{i:02d}", t + i * 60 + 5, 25, line=next(line)))
    d.append(purchase("4002", t + 2105, response=FAILED, line=next(line)))
    d += [
        purchase("5001", t + 3005, 1999, line=next(line)),
        purchase("5002", t + 3105, 19.99, "USD", line=next(line)),
        purchase("5003", t + 3205, 101, line=next(line)),
        purchase("5004", t + 3305, 101.01, line=next(line)),
        purchase("5005", t + 3405, 0, line=next(line)),
        # 6001: a thank-you page reloaded twice (new event_id each time) -> 2 extra
        purchase("6001", t + 4005, 10, line=next(line)),
        purchase("6001", t + 4065, 10, line=next(line)),
        purchase("6001", t + 4125, 10, line=next(line)),
        # 6002: two sends without event_id -> 1 extra
        purchase("6002", t + 4105, 10, eid=None, line=next(line)),
        purchase("6002", t + 4106, 10, eid=None, line=next(line)),
        # PURCHASE_WITHOUT_ORDER x3: two unknown ids, one unpaid order
        purchase("9901", t + 6000, 10, line=next(line)),
        purchase("9902", t + 6100, 10, line=next(line)),
        purchase("7001", t + 5005, 10, line=next(line)),
        # a Purchase 49 h after its order was created: outside ±48 h -> without order
        purchase("3100", NOW - 4 * DAY + 60 + 49 * HOUR, 25, line=next(line)),
        # PURCHASE_ORDER_ID_MISSING x3 (absent, null, empty)
        purchase(..., t + 7000, 10, line=next(line)),
        purchase(None, t + 7100, 10, line=next(line)),
        purchase("  ", t + 7200, 10, line=next(line)),
        # after the orders were read: not judged
        purchase("9903", NOW + 60, 10, line=next(line)),
    ]
    return snapshot(*orders), d


def test_every_code_fires_with_exact_counts() -> None:
    snap, deliveries = planted_case()
    check = judge(snap, deliveries)
    assert found(check) == {
        ORDER_NOT_SENT: 2,
        PURCHASE_WITHOUT_ORDER: 4,
        PURCHASE_DUPLICATE_ORDER: 3,
        PURCHASE_VALUE_MISMATCH: 3,
        PURCHASE_ORDER_ID_MISSING: 3,
    }
    metrics = check.reconciliation().metrics
    # judged paid orders: 10 + 2 + 5 + 2 = 19, sent: all but 4001 and 4002
    assert check.metrics() == {"orders_paid": 19, "orders_sent": 17, "accuracy": round(17 / 19, 4)}
    assert metrics["matched_unpaid"] == 1
    assert metrics["purchases_not_judged"] == 1
    assert metrics["purchases_failed"] == 1


def test_findings_name_orders_and_severities_follow_the_shares() -> None:
    snap, deliveries = planted_case()
    result = judge(snap, deliveries).result()
    by = {f.code: f for f in result.findings}
    # not sent: 2/19 = 10.5 % >= 10 % -> crit
    assert by[ORDER_NOT_SENT].severity is Severity.CRIT
    assert by[ORDER_NOT_SENT].evidence["order_ids"] == ["4001", "4002"]
    # without order: 4 of 28 delivered = 14.3 % >= 5 % -> crit; duplicates 3/28 >= 2 % -> crit
    assert by[PURCHASE_WITHOUT_ORDER].severity is Severity.CRIT
    assert by[PURCHASE_DUPLICATE_ORDER].severity is Severity.CRIT
    assert by[PURCHASE_VALUE_MISMATCH].severity is Severity.WARN
    assert by[PURCHASE_ORDER_ID_MISSING].severity is Severity.WARN
    assert result.status is Status.CRIT
    mismatch = by[PURCHASE_VALUE_MISMATCH]
    assert mismatch.evidence["order_ids"] == ["5001", "5002", "5004"]
    assert "looks like minor units" in mismatch.examples[0].value
    assert all(f.event_names == ["Purchase"] for f in result.findings)
    for f in result.findings:
        assert f.evidence["orders_paid"] == 19
        json.dumps(f.to_dict())  # JSON-ready


def test_low_shares_stay_warn() -> None:
    t = NOW - DAY
    orders = [order(f"{i}", t + i, "5.00") for i in range(100)]
    deliveries = [purchase(f"{i}", t + i + 5, 5, line=i + 1) for i in range(1, 100)]
    deliveries.append(purchase("unknown", t + 500, 5, line=500))
    result = judge(snapshot(*orders), deliveries).result()
    by = {f.code: f for f in result.findings}
    assert by[ORDER_NOT_SENT].count == 1 and by[ORDER_NOT_SENT].severity is Severity.WARN
    assert by[PURCHASE_WITHOUT_ORDER].count == 1
    assert by[PURCHASE_WITHOUT_ORDER].severity is Severity.WARN


def test_orders_before_the_logs_or_within_grace_are_not_judged() -> None:
    snap = snapshot(
        order("old", START - HOUR),  # before the earliest send time
        order("young", NOW - HOUR),  # within grace (2 h)
        order("due", NOW - 3 * HOUR),
    )
    check = judge(snap, [])
    assert found(check) == {ORDER_NOT_SENT: 1}
    assert check.metrics()["orders_paid"] == 1
    # --since moves the window start
    check = ReconcileCheck(context(), snap, ReconcileRules(), since=START - 2 * HOUR)
    check.observe(start_marker())
    assert found(check) == {ORDER_NOT_SENT: 2}
    # a longer grace
    assert found(judge(snap, [], grace=4 * HOUR)) == {}


def test_a_judged_span_counts_only_its_purchases() -> None:
    """The daemon keeps Purchases longer than it judges them: those outside the span
    still make their order sent and give an order id its first event_id."""
    t = NOW - 10 * HOUR
    snap = snapshot(order("1", t - 60), order("2", t + 3 * HOUR - 60), order("3", t - 120))
    before = [purchase("1", t, line=1), purchase(..., t + 5, line=2), purchase("9", t, line=3)]
    inside = [
        purchase("1", t + 3 * HOUR, eid="reload", line=4),  # a reload of order 1
        purchase("2", t + 3 * HOUR, line=5),
        purchase(..., t + 3 * HOUR, line=6),
    ]
    purchases = [p for d in before + inside for p in purchases_of(d, "custom_data.order_id")]
    span = (t + 2 * HOUR, t + 4 * HOUR)
    rec = reconcile(snap, purchases, ReconcileRules(), NOW, t + 2 * HOUR - 180, judged=span)
    codes = {f.code: f.count for f in rec.result.findings}
    # Order 3 (before the window) is not judged; 1 and 2 are sent, 1 by a Purchase before
    # the span. Only the span's Purchases count: the reload, no id once, nothing else.
    assert codes == {PURCHASE_DUPLICATE_ORDER: 1, PURCHASE_ORDER_ID_MISSING: 1}
    assert rec.metrics["purchases_delivered"] == 3
    assert (rec.metrics["orders_paid"], rec.metrics["orders_sent"]) == (1, 1)
    # Without a span every Purchase counts (and order 3 is judged too).
    whole = reconcile(snap, purchases, ReconcileRules(), NOW, t - 180)
    assert {f.code: f.count for f in whole.result.findings} == {
        ORDER_NOT_SENT: 1,
        PURCHASE_DUPLICATE_ORDER: 1,
        PURCHASE_ORDER_ID_MISSING: 2,
        PURCHASE_WITHOUT_ORDER: 1,
    }


def test_several_payments_of_one_order_are_one_order() -> None:
    t = NOW - DAY
    snap = snapshot(order("8001", t, "10.00"), order("8001", t + 600, "5.50"))
    check = judge(snap, [purchase("8001", t + 5, 15.5)])
    assert found(check) == {}
    assert check.metrics()["orders_paid"] == 1
    merged = paid_orders(snap.orders)
    assert len(merged) == 1 and merged[0].amount == Decimal("15.50")


def test_a_source_that_failed_is_an_error_never_partial() -> None:
    failed = OrderSnapshot.failed("shop", SourceKind.STRIPE, 0, NOW, "Stripe timed out")
    _, deliveries = planted_case()
    check = judge(failed, deliveries)
    result = check.result()
    assert result.status is Status.ERROR
    assert [(f.code, f.severity, f.count) for f in result.findings] == [
        (SOURCE_UNAVAILABLE, Severity.WARN, 1)
    ]
    assert result.findings[0].event_names == []
    assert check.metrics() == {}


def test_without_source_or_logs_the_check_is_skipped() -> None:
    assert judge(None, []).result().status is Status.SKIPPED
    check = ReconcileCheck(context(), snapshot(order("1", NOW - DAY)))
    assert check.result().status is Status.SKIPPED


def test_merge_equals_one_pass() -> None:
    snap, deliveries = planted_case()
    whole = judge(snap, deliveries)
    a = ReconcileCheck(context(), snap, ReconcileRules())
    b = ReconcileCheck(context(), snap, ReconcileRules())
    items = [start_marker(), *deliveries]
    for d in items[:12]:
        a.observe(d)
    for d in items[12:]:
        b.observe(d)
    a.merge(b)
    assert [f.to_dict() for f in a.result().findings] == [
        f.to_dict() for f in whole.result().findings
    ]


def test_a_custom_match_field() -> None:
    t = NOW - DAY
    d = delivery(
        event("Purchase", t + 5, custom_data={"value": 19.99, "currency": "EUR"}, order_ref="A-1"),
        sent_at=t + 30,
        response=OK,
    )
    check = judge(snapshot(order("A-1", t)), [d], match_field="order_ref")
    assert found(check) == {}


def test_lowercase_purchase_and_milliseconds() -> None:
    t = NOW - DAY
    ms = delivery(
        event(
            "Purchase", (t + 5) * 1000, custom_data={"order_id": "1", "value": 1, "currency": "EUR"}
        ),
        sent_at=t + 30,
        response=OK,
    )
    other = delivery(event("purchase", t, custom_data={"order_id": "nope"}), sent_at=t, response=OK)
    purchases = list(purchases_of(ms, "custom_data.order_id"))
    assert purchases[0].event_time == t + 5
    assert list(purchases_of(other, "custom_data.order_id")) == []
    assert found(judge(snapshot(order("1", t, "1")), [ms, other])) == {}


@pytest.mark.parametrize(
    ("amount", "currency", "value", "vcur", "bad"),
    [
        ("19.99", "EUR", "19.99", "EUR", False),
        ("19.99", "EUR", "20.1899", "EUR", False),  # within 1 %
        ("100", "EUR", "99", "EUR", False),  # exactly 1 % below
        ("100", "EUR", "98.99", "EUR", True),
        ("500", "JPY", "500", "JPY", False),
        ("500", "JPY", "5", "JPY", True),
        ("1.250", "KWD", "1.25", "KWD", False),
        ("10", "EUR", None, "EUR", True),
        ("10", "EUR", "10", None, True),
        ("10", None, "10", "USD", False),  # the order has no currency: value only
        ("0", "EUR", "0", "EUR", False),
        ("0", "EUR", "1", "EUR", True),
    ],
)
def test_value_problem(
    amount: str, currency: str | None, value: str | None, vcur: str | None, bad: bool
) -> None:
    v = Decimal(value) if value is not None else None
    why = value_problem(Decimal(amount), currency, v, vcur, Decimal("0.01"))
    assert (why is not None) is bad


def test_order_ids_shown_are_masked_when_they_hold_an_email() -> None:
    t = NOW - DAY
    check = judge(snapshot(), [purchase("alice.fake@example.com", t, line=3)])
    text = json.dumps([f.to_dict() for f in check.result().findings])
    assert "alice.fake@example.com" not in text
    assert found(check) == {PURCHASE_WITHOUT_ORDER: 1}


# ----------------------------------------------------------------------------- funnel


def test_funnel_per_day() -> None:
    day0 = 1_795_132_800.0  # 2026-11-20T00:00:00Z
    snap = snapshot(
        order("1", day0 - DAY + 10),
        order("2", day0 + 10),
        order("3", day0 + 20),
        order("4", day0 + 30, paid=False),
        since=day0 - 3 * DAY,
    )
    deliveries = [
        purchase("1", day0 - DAY + 15, line=1),
        purchase("2", day0 + 15, line=2),
        purchase("3", day0 + 25, line=3, response=FAILED),
        purchase("3", day0 + 26, line=4, response=None),
    ]
    purchases = [p for d in deliveries for p in purchases_of(d, "custom_data.order_id")]
    hourly = ((day0 - DAY, 1, 3), (day0, 1, 2), (day0 + HOUR, 0, 1))
    assert daily_counts(hourly, "UTC") == {"2026-11-19": (1, 3), "2026-11-20": (1, 3)}
    meta = MetaCounts(day0 - DAY, hourly)
    buckets = purchase_buckets(purchases)
    rows = build_funnel(snap, buckets, start=day0 - DAY, end=day0 + HOUR, meta=meta)
    assert rows == [
        {
            "day": "2026-11-19",
            "orders_paid": 1,
            "purchases_sent": 1,
            "purchases_accepted": 1,
            "purchases_unconfirmed": 0,
            "meta_server": 1,
            "meta_browser": 3,
        },
        {
            "day": "2026-11-20",
            "orders_paid": 2,
            "purchases_sent": 3,
            "purchases_accepted": 1,
            "purchases_unconfirmed": 1,
            "meta_server": 1,
            "meta_browser": 3,
        },
    ]
    assert {p.outcome for p in purchases} == set(Outcome)
    unread = build_funnel(None, buckets, start=day0, end=day0, timezone="Europe/Berlin")
    assert unread[0]["orders_paid"] is None and unread[0]["meta_server"] is None
    # Meta's poll covers only the last day: earlier days are unknown, not 0
    later = build_funnel(snap, buckets, start=day0 - DAY, end=day0, meta=MetaCounts(day0, ()))
    assert [(r["meta_server"], r["meta_browser"]) for r in later] == [(None, None), (0, 0)]


def test_without_orders_the_funnel_counts_equal_those_of_kept_purchases() -> None:
    # No orders source: no Purchase record is built, yet the funnel's counts per outcome
    # and quarter hour are those the full path gives (failed, accepted, unconfirmed,
    # lowercase "purchase" not counted).
    snap, deliveries = planted_case()
    failed = delivery(
        event("Purchase", NOW - DAY, custom_data={"order_id": "x"}),
        sent_at=NOW - DAY,
        response=ResponseInfo(status=400),
    )
    silent = delivery(event("Purchase", NOW - 2 * DAY), event("purchase", NOW - 2 * DAY))
    items = [start_marker(), *deliveries, failed, silent]
    kept = ReconcileCheck(context(), snap, ReconcileRules())
    counted = ReconcileCheck(context())
    assert kept.keep_purchases and not counted.keep_purchases
    for d in items:
        kept.observe(d)
        counted.observe(d)
    assert counted.purchases == []
    assert counted.buckets == kept.buckets
    assert {outcome for outcome, _ in counted.buckets} == set(Outcome)
    assert counted.first_sent == kept.first_sent

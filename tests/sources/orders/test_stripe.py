"""Stripe orders reader against the loopback fake: paging, money, errors, retries, privacy."""

from __future__ import annotations

import asyncio
import json
import socket
from decimal import Decimal
from typing import Any

import pytest

from checks.reconcile import ReconcileCheck, ReconcileRules
from monitor.model.findings import Status
from monitor.model.observations import ResponseInfo
from monitor.sources.orders import OrdersError, read_snapshot
from monitor.sources.orders.common import RetryPolicy, from_minor
from monitor.sources.orders.stripe import StripeOrders, metadata_key
from monitor.testing.fakestripe import CUSTOMER_VALUES, FakePayment, FakeStripe
from tests.support.checkutil import DAY, NOW, context, delivery, event

KEY = "rk_test_51FakeRestrictedKey0123456789abcdefSECRET"
T0 = int(NOW - DAY)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def reader(url: str, sleeps: Sleeps | None = None, **kw: Any) -> StripeOrders:
    kw.setdefault("policy", RetryPolicy(max_retries=2, backoff_base=0.1, backoff_max=30))
    return StripeOrders(name="pay", api_key=KEY, api_url=url, sleep=sleeps or Sleeps(), **kw)


def read(r: StripeOrders, since: float = T0 - DAY, until: float = NOW) -> Any:
    return asyncio.run(r.read(since, until))


def payments(n: int) -> list[FakePayment]:
    return [FakePayment(f"pi_{i:04d}", T0 + i, 1000 + i, "eur", order_id=f"o{i}") for i in range(n)]


def test_pages_through_every_payment_with_the_documented_parameters() -> None:
    with FakeStripe(KEY, payments(250)) as fake:
        snap = read(reader(fake.url))
    assert len(snap.orders) == 250
    assert {o.order_id for o in snap.orders} == {f"o{i}" for i in range(250)}
    assert snap.requests == 3
    first, second, third = fake.requests
    assert first.params["limit"] == ["100"]
    assert first.params["created[gte]"] == [str(T0 - int(DAY))]
    assert first.params["created[lt]"] == [str(int(NOW))]
    assert "starting_after" not in first.params
    # newest first: page two starts after the last id of page one
    assert second.params["starting_after"] == ["pi_0150"]
    assert third.params["starting_after"] == ["pi_0050"]
    assert all(r.authorized for r in fake.requests)
    assert not any(k.startswith("expand") for r in fake.requests for k in r.params)


def test_the_time_range_is_applied() -> None:
    with FakeStripe(KEY, payments(10)) as fake:
        snap = read(reader(fake.url), since=T0 + 3, until=T0 + 7)
    assert sorted(o.order_id for o in snap.orders) == ["o3", "o4", "o5", "o6"]


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [
        (1999, "eur", "19.99"),
        (500, "jpy", "500"),
        (12345, "krw", "12345"),
        (1250, "kwd", "1.250"),
        (5120, "bhd", "5.120"),
        (50000, "isk", "500.00"),  # ISK keeps two decimals in Stripe's API
        (1, "usd", "0.01"),
    ],
)
def test_minor_units_become_exact_major_units(amount: int, currency: str, major: str) -> None:
    assert from_minor(amount, currency) == Decimal(major)
    with FakeStripe(KEY, [FakePayment("pi_1", T0, amount, currency, order_id="x")]) as fake:
        (o,) = read(reader(fake.url)).orders
    assert o.amount == Decimal(major) and str(o.amount) == major
    assert o.currency == currency.upper()


def test_only_succeeded_payments_are_paid_and_unkeyed_ones_are_counted() -> None:
    pays = [
        FakePayment("pi_a", T0, 1000, order_id="a"),
        FakePayment("pi_b", T0 + 1, 1000, status="requires_capture", order_id="b"),
        FakePayment("pi_c", T0 + 2, 1000, status="canceled", order_id="c"),
        FakePayment("pi_d", T0 + 3, 1000, status="requires_payment_method", order_id="d"),
        FakePayment("pi_e", T0 + 4, 700, order_id=None),  # not an order of the shop
        FakePayment("pi_f", T0 + 5, 700, status="canceled", order_id=None),
        FakePayment("pi_g", T0 + 6, 2000, amount_received=1500, order_id="g"),
    ]
    with FakeStripe(KEY, pays) as fake:
        snap = read(reader(fake.url))
    paid = {o.order_id: o for o in snap.orders if o.paid}
    assert sorted(paid) == ["a", "g"]
    assert paid["g"].amount == Decimal("15.00")  # amount_received, not amount
    assert {o.order_id: o.status for o in snap.orders if not o.paid} == {
        "b": "requires_capture",
        "c": "canceled",
        "d": "requires_payment_method",
    }
    assert snap.without_order_id == 1


def test_the_payment_intent_id_can_be_the_order_id() -> None:
    assert metadata_key("id") is None
    with pytest.raises(ValueError):
        metadata_key("receipt_email")
    with FakeStripe(KEY, payments(2)) as fake:
        snap = read(reader(fake.url, order_id_from="id"))
    assert sorted(o.order_id for o in snap.orders) == ["pi_0000", "pi_0001"]


def test_429_honours_retry_after() -> None:
    sleeps = Sleeps()
    with FakeStripe(KEY, payments(150)) as fake:
        fake.rate_limit(2, retry_after=3, later_pages_only=True)
        snap = read(reader(fake.url, sleeps))
    assert len(snap.orders) == 150
    assert sleeps.calls == [3.0, 3.0]
    assert [r.status for r in fake.requests] == [200, 429, 429, 200]


def test_stripe_should_retry_false_stops_at_once() -> None:
    sleeps = Sleeps()
    with FakeStripe(KEY, payments(5)) as fake:
        fake.fail(1, status=500, should_retry=False)
        with pytest.raises(OrdersError) as err:
            read(reader(fake.url, sleeps))
    assert err.value.status == 500 and "api_error" in str(err.value)
    assert sleeps.calls == [] and len(fake.requests) == 1


def test_a_429_without_headers_backs_off_and_a_should_retry_true_409_is_retried() -> None:
    sleeps = Sleeps()
    with FakeStripe(KEY, payments(5)) as fake:
        fake.rate_limit(1)
        fake.fail(1, status=409, should_retry=True)
        snap = read(reader(fake.url, sleeps))
    assert len(snap.orders) == 5
    assert len(sleeps.calls) == 2 and all(0 <= s <= 0.2 for s in sleeps.calls)


def test_a_failed_later_page_fails_the_whole_read() -> None:
    sleeps = Sleeps()
    with FakeStripe(KEY, payments(150)) as fake:
        fake.fail(10, status=502, later_pages_only=True)
        r = reader(fake.url, sleeps)
        with pytest.raises(OrdersError):
            read(r)
        snap = asyncio.run(read_snapshot(r, T0 - DAY, NOW))
    assert snap.error is not None and "HTTP 502" in snap.error
    assert snap.orders == []  # never partial
    assert len(sleeps.calls) == 4  # two retries per read


@pytest.mark.parametrize("mode", ["wrong_key", "forbidden"])
def test_auth_errors_never_show_the_key(mode: str) -> None:
    with FakeStripe(KEY, payments(3)) as fake:
        if mode == "forbidden":
            fake.forbid()
            r = reader(fake.url)
        else:
            r = StripeOrders(name="pay", api_key=KEY[:-6] + "WRONG1", api_url=fake.url)
        snap = asyncio.run(read_snapshot(r, T0 - DAY, NOW))
    assert snap.error is not None
    assert ("401" if mode == "wrong_key" else "403") in snap.error
    assert "rk_test" not in snap.error and "SECRET" not in snap.error and "WRONG1" not in snap.error
    assert len(fake.requests) == 1  # never retried


def test_unreachable_is_retried_then_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    snap = asyncio.run(read_snapshot(reader(f"http://127.0.0.1:{port}", sleeps), 0, NOW))
    assert snap.error == "Stripe unreachable (ConnectError)"
    assert len(sleeps.calls) == 2


def test_no_customer_field_is_kept_or_shown() -> None:
    with FakeStripe(KEY, payments(120)) as fake:
        snap = read(reader(fake.url))
    text = repr(snap) + json.dumps([repr(o) for o in snap.orders])
    for value in CUSTOMER_VALUES:
        assert value not in text


def test_end_to_end_a_correct_jpy_order_and_a_pending_one_raise_nothing() -> None:
    t = T0 + 600
    pays = [
        FakePayment("pi_jp", t, 500, "jpy", order_id="A-1"),
        FakePayment("pi_eu", t + 60, 1999, "eur", order_id="A-2"),
        FakePayment("pi_pending", t + 120, 4200, "eur", "processing", order_id="A-3"),
        FakePayment("pi_free", t + 180, 900, "eur", order_id=None),
    ]
    ok = ResponseInfo(status=200, events_received=1)
    jpy = {"order_id": "A-1", "value": 500, "currency": "JPY"}
    eur = {"order_id": "A-2", "value": 19.99, "currency": "EUR"}
    deliveries = [
        delivery(
            event("Purchase", t + 5, event_id="e1", custom_data=jpy), sent_at=t - 60, response=ok
        ),
        delivery(
            event("Purchase", t + 65, event_id="e2", custom_data=eur), sent_at=t + 70, response=ok
        ),
    ]
    with FakeStripe(KEY, pays) as fake:
        snap = read(reader(fake.url), since=t - 3 * DAY)
    check = ReconcileCheck(context(), snap, ReconcileRules())
    for d in deliveries:
        check.observe(d)
    result = check.result()
    assert result.status is Status.OK, [f.to_dict() for f in result.findings]
    assert check.metrics() == {"orders_paid": 2, "orders_sent": 2, "accuracy": 1.0}
    assert check.reconciliation().metrics["payments_without_order_id"] == 1

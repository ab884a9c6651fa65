"""Shopify orders reader against the loopback fake: paging, paid states, cost throttle, privacy."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from monitor.sources.orders import OrdersError, read_snapshot
from monitor.sources.orders.common import RetryPolicy
from monitor.sources.orders.shopify import (
    ORDERS_QUERY,
    ShopifyOrders,
    default_api_url,
    parse_order,
    search_query,
)
from monitor.testing.fakeshopify import CUSTOMER_FIELDS, CUSTOMER_VALUES, FakeOrder, FakeShopify
from tests.support.checkutil import DAY, NOW

TOKEN = "shpat_0123456789abcdef0123456789abcdef"
T0 = NOW - DAY


class Clock:
    """The fake's clock and the reader's sleep: a sleep advances time at once."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.t += seconds


def reader(url: str, clock: Clock, **kw: Any) -> ShopifyOrders:
    kw.setdefault("policy", RetryPolicy(max_retries=2, backoff_base=0.1))
    return ShopifyOrders(
        name="shop", shop="fake.myshopify.com", token=TOKEN, api_url=url, sleep=clock.sleep, **kw
    )


def read(r: ShopifyOrders, since: float = T0 - DAY, until: float = NOW) -> Any:
    return asyncio.run(r.read(since, until))


def orders(n: int) -> list[FakeOrder]:
    return [FakeOrder(5_000_000 + i, f"#{1000 + i}", T0 + i * 60, "19.99") for i in range(n)]


def test_pages_through_the_connection() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(25), clock=clock) as fake:
        snap = read(reader(fake.url, clock, page_size=10))
    assert [o.order_id for o in snap.orders] == [f"#{1000 + i}" for i in range(25)]
    assert snap.requests == 3 and fake.requests == 3
    assert [v["after"] is None for v in fake.variables] == [True, False, False]
    assert all(v["first"] == 10 for v in fake.variables)
    assert fake.variables[0]["query"] == search_query(T0 - DAY, NOW)
    assert fake.throttled == 0


def test_the_time_filter_is_sent_and_applied() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(10), clock=clock) as fake:
        snap = read(reader(fake.url, clock), since=T0 + 120, until=T0 + 300)
    assert [o.order_id for o in snap.orders] == ["#1002", "#1003", "#1004"]
    assert search_query(0, 86400) == (
        "created_at:>='1970-01-01T00:00:00Z' AND created_at:<'1970-01-02T00:00:00Z'"
    )


def test_keys_amounts_and_paid_states() -> None:
    rows = [
        FakeOrder(1, "#1", T0, "19.99", "EUR", "PAID"),
        FakeOrder(2, "#2", T0, "500", "JPY", "PAID"),
        FakeOrder(3, "#3", T0, "5.00", "EUR", "PARTIALLY_REFUNDED"),
        FakeOrder(4, "#4", T0, "0.00", "EUR", "REFUNDED"),
        FakeOrder(5, "#5", T0, "10.00", "EUR", "PENDING"),
        FakeOrder(6, "#6", T0, "10.00", "EUR", "AUTHORIZED"),
        FakeOrder(7, "#7", T0, "10.00", "EUR", "VOIDED"),
        FakeOrder(8, "#8", T0, "10.00", "EUR", "EXPIRED"),
        FakeOrder(9, "#9", T0, "10.00", "EUR", "PARTIALLY_PAID"),
        FakeOrder(10, "#10", T0, "10.00", "EUR", "PAID", test=True),
        FakeOrder(11, "#11", T0, "10.00", "EUR", "PAID", cancelled=True),
    ]
    clock = Clock()
    with FakeShopify(TOKEN, rows, clock=clock) as fake:
        snap = read(reader(fake.url, clock))
    by = {o.order_id: o for o in snap.orders}
    assert sorted((k for k, o in by.items() if o.paid), key=lambda k: int(k[1:])) == [
        "#1",
        "#2",
        "#3",
        "#4",
    ]
    assert by["#1"].keys == ("1", "gid://shopify/Order/1")  # name "1" == legacy id "1"
    assert by["#2"].amount == Decimal("500") and by["#2"].currency == "JPY"
    # what is left after a refund is not what was paid: not compared
    assert by["#3"].amount is None and by["#4"].amount is None
    assert by["#5"].status == "pending" and by["#5"].amount == Decimal("10.00")
    assert by["#10"].status == "test" and by["#11"].status == "cancelled"


def test_keys_of_a_typical_order() -> None:
    node = FakeOrder(5550001, "#1007", T0, "10.00").node()
    assert parse_order(node).keys == ("1007", "5550001", "gid://shopify/Order/5550001")


def test_waits_for_the_missing_cost_before_the_next_page() -> None:
    clock = Clock()
    # a page of 10 requests 2 + 3*10 = 32 points; the bucket holds 40, refills 8/s
    with FakeShopify(TOKEN, orders(30), maximum=40, restore_rate=8, clock=clock) as fake:
        snap = read(reader(fake.url, clock, page_size=10))
    assert len(snap.orders) == 30
    assert fake.throttled == 0
    # after page 1: 40 - 32 = 8 left, 24 missing at 8/s = 3 s; page 2 then empties the
    # bucket (32 - 32): 32 missing = 4 s; no wait after the last page
    assert clock.sleeps == [3.0, 4.0]


def test_a_throttled_answer_is_retried_after_the_restore_time() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(5), maximum=100, restore_rate=10, clock=clock) as fake:
        fake.graphql_error("THROTTLED", "Throttled", times=1)  # as if another app drained it
        snap = read(reader(fake.url, clock, page_size=10))
    assert len(snap.orders) == 5
    assert fake.requests == 2
    # requested 32 <= 100 available: the wait is 0 -> the backoff of the policy is not used
    assert clock.sleeps == [0.0]


def test_a_drained_bucket_throttles_and_the_reader_waits_exactly() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(5), maximum=100, restore_rate=10, clock=clock) as fake:
        fake._available = 12.0  # another app used the bucket
        snap = read(reader(fake.url, clock, page_size=10))
    assert len(snap.orders) == 5
    assert fake.throttled == 1
    assert clock.sleeps == [2.0]  # (32 - 12) / 10


def test_http_429_honours_retry_after_and_5xx_is_retried() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(3), clock=clock) as fake:
        fake.http_error(429, 1, retry_after=1.5)
        fake.http_error(503, 1)
        snap = read(reader(fake.url, clock))
    assert len(snap.orders) == 3
    assert clock.sleeps[0] == 1.5 and len(clock.sleeps) == 2


@pytest.mark.parametrize(
    ("trouble", "expect"),
    [
        ("token", "HTTP 401"),
        ("denied", "ACCESS_DENIED"),
        ("down", "HTTP 502"),
    ],
)
def test_failures_make_the_source_unavailable_without_the_token(trouble: str, expect: str) -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(30), clock=clock) as fake:
        token = TOKEN
        if trouble == "token":
            token = TOKEN[:-4] + "beef"
        elif trouble == "denied":
            msg = f"Access denied for orders field. Required access: `read_orders`. Token {TOKEN}"
            fake.graphql_error("ACCESS_DENIED", msg, times=1)
        else:
            fake.http_error(502, 100)
        r = ShopifyOrders(
            name="shop",
            shop="fake.myshopify.com",
            token=token,
            api_url=fake.url,
            sleep=clock.sleep,
            policy=RetryPolicy(max_retries=2),
        )
        snap = asyncio.run(read_snapshot(r, T0 - DAY, NOW))
    assert snap.error is not None and expect in snap.error
    assert "shpat_" not in snap.error and TOKEN not in snap.error
    assert snap.orders == []


def test_a_failed_later_page_fails_the_whole_read() -> None:
    clock = Clock()
    with FakeShopify(TOKEN, orders(30), clock=clock) as fake:
        fake.fail_from(2)
        snap = asyncio.run(read_snapshot(reader(fake.url, clock, page_size=10), T0 - DAY, NOW))
    assert not snap.ok and snap.orders == []
    assert snap.error is not None and "HTTP 500" in snap.error
    assert fake.requests == 4  # page 1, then page 2 and its two retries


def test_no_customer_field_is_requested_kept_or_shown() -> None:
    for word in CUSTOMER_FIELDS:
        assert word not in ORDERS_QUERY
    clock = Clock()
    with FakeShopify(TOKEN, orders(12), clock=clock) as fake:
        snap = read(reader(fake.url, clock, page_size=5))
    assert not fake.customer_fields_requested
    text = repr(snap) + json.dumps([repr(o) for o in snap.orders])
    for value in CUSTOMER_VALUES:
        assert value not in text


def test_default_url() -> None:
    assert default_api_url("example.myshopify.com") == "https://example.myshopify.com"
    assert default_api_url("http://127.0.0.1:1/") == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        ShopifyOrders(name="s", shop="x", token="")


def test_a_bad_answer_shape_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_order({"id": "", "createdAt": "2026-01-01T00:00:00Z"})
    with pytest.raises(OrdersError):
        clock = Clock()
        with FakeShopify(TOKEN, orders(1), clock=clock) as fake:
            bad = FakeOrder(1, "#1", T0, "not money")
            fake.orders = [bad]
            read(reader(fake.url, clock))

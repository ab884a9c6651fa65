"""Shopify as an orders source: the Admin GraphQL ``orders`` connection (docs/contracts.md §8).

What Shopify's Admin GraphQL reference documents and this reader relies on:

- **Endpoint**: ``POST https://{shop}/admin/api/{version}/graphql.json`` with the JSON
  body ``{"query", "variables"}`` and the ``X-Shopify-Access-Token`` header (an Admin API
  access token with ``read_orders``; orders older than 60 days also need
  ``read_all_orders``). The token comes from an environment variable and is scrubbed
  from every message.
- **Orders**: ``orders(first:, after:, query:, sortKey: CREATED_AT)`` is a connection with
  ``pageInfo { hasNextPage endCursor }``; ``query`` takes the search syntax
  ``created_at:>='…' AND created_at:<'…'``. Only ``id`` (the gid), ``legacyResourceId``,
  ``name`` (``#1001``), ``createdAt``, ``displayFinancialStatus``, ``test``,
  ``cancelledAt`` and ``currentTotalPriceSet { shopMoney { amount currencyCode } }``
  are requested — no customer, email, address or line item. Money amounts are decimal
  strings in major units.
- **Paid** (the contract): ``PAID``, ``PARTIALLY_REFUNDED`` and ``REFUNDED`` (the purchase
  happened), not ``PENDING``, ``AUTHORIZED``, ``PARTIALLY_PAID``, ``VOIDED``,
  ``EXPIRED``; never a test order or a cancelled one. The current total of a (partially)
  refunded order is what is left after the refund, not what was paid, so its amount is
  ``None`` (not compared with the Purchase value).
- **Cost throttle**: every answer carries ``extensions.cost`` with ``requestedQueryCost``,
  ``actualQueryCost`` and ``throttleStatus {maximumAvailable, currentlyAvailable,
  restoreRate}`` (points per second). A query costing more than is available is
  answered (HTTP 200) with ``errors: [{"message": "Throttled", "extensions": {"code":
  "THROTTLED"}}]`` and no data. The reader waits for the missing points at the restore
  rate — ``(requested − available) / restoreRate`` — before retrying, and before sending
  the next page when the bucket is already too low for it. HTTP 429 (with
  ``Retry-After``) and 5xx are retried with bounded backoff; 401, 402, 403, 404, 423 and
  any other GraphQL error (``ACCESS_DENIED``...) fail the read.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.model.orders import Order, OrderSnapshot, SourceKind, order_key
from monitor.sources.orders.common import (
    OrdersError,
    RetryPolicy,
    Sleep,
    default_sleep,
    parse_major,
    retry_after,
    scrub,
)
from monitor.timeutil import parse_iso

DEFAULT_API_VERSION = "2025-10"
PAGE_SIZE = 100  # the connection allows 250; 100 keeps a page's cost well under a bucket
MAX_PAGES = 100_000
PAID_STATUSES = frozenset({"PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
_AMOUNT_KNOWN = frozenset({"PAID"})  # the current total is what was paid

ORDERS_QUERY = """\
query CapiMonitorOrders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      legacyResourceId
      name
      createdAt
      displayFinancialStatus
      test
      cancelledAt
      currentTotalPriceSet { shopMoney { amount currencyCode } }
    }
  }
}
"""


def default_api_url(shop: str) -> str:
    """``example.myshopify.com`` -> ``https://example.myshopify.com`` (the contract's default)."""
    shop = shop.strip().rstrip("/")
    return shop if "://" in shop else f"https://{shop}"


def search_query(since: float, until: float) -> str:
    return f"created_at:>='{_iso(since)}' AND created_at:<'{_iso(until)}'"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_order(node: Any) -> Order:
    """An ``Order`` from one node of the connection; raises ``ValueError`` on a shape that
    is not the one requested. Reads only the requested fields, whatever else is there."""
    if not isinstance(node, dict):
        raise ValueError("an order node is not an object")
    gid, legacy, name = node.get("id"), node.get("legacyResourceId"), node.get("name")
    created, status = node.get("createdAt"), node.get("displayFinancialStatus")
    if not isinstance(gid, str) or not isinstance(created, str):
        raise ValueError("an order lacks id or createdAt")
    money = ((node.get("currentTotalPriceSet") or {}).get("shopMoney")) or {}
    if not isinstance(money, dict):
        raise ValueError("an order's currentTotalPriceSet is not an object")
    keys = tuple(dict.fromkeys(k for k in map(order_key, (name, legacy, gid)) if k))
    if not keys:
        raise ValueError("an order has an empty id")
    status_text = status if isinstance(status, str) else "UNKNOWN"
    test, cancelled = node.get("test") is True, node.get("cancelledAt") is not None
    paid = status_text in PAID_STATUSES and not test and not cancelled
    amount = None
    if status_text in _AMOUNT_KNOWN or not paid:
        amount = parse_major(money["amount"]) if "amount" in money else None
    currency = money.get("currencyCode")
    return Order(
        order_id=str(name) if isinstance(name, str) and name else keys[0],
        keys=keys,
        created_at=parse_iso(created),
        amount=amount,
        currency=currency.upper() if isinstance(currency, str) else None,
        status="test" if test else "cancelled" if cancelled else status_text.lower(),
        paid=paid,
    )


@dataclass(frozen=True, slots=True)
class Cost:
    """``extensions.cost`` of one answer."""

    requested: float
    available: float
    restore_rate: float

    def wait_for(self, needed: float) -> float:
        """Seconds until ``needed`` points are available at the restore rate."""
        missing = needed - self.available
        if missing <= 0 or self.restore_rate <= 0:
            return 0.0
        return missing / self.restore_rate


def parse_cost(body: Any) -> Cost | None:
    try:
        cost = body["extensions"]["cost"]
        throttle = cost["throttleStatus"]
        return Cost(
            float(cost["requestedQueryCost"]),
            float(throttle["currentlyAvailable"]),
            float(throttle["restoreRate"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


class ShopifyOrders:
    """Reads the orders of one shop (one ``[[orders]] kind = "shopify"``)."""

    kind = SourceKind.SHOPIFY

    def __init__(
        self,
        *,
        name: str,
        shop: str,
        token: str,
        api_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = default_sleep,
        rng: random.Random | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not token:
            raise ValueError("a Shopify Admin API access token is required")
        self.name = name
        self._token = token
        base = (api_url or default_api_url(shop)).rstrip("/")
        self._url = f"{base}/admin/api/{api_version}/graphql.json"
        self._policy = policy or RetryPolicy()
        self._client = client
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._page_size = max(1, min(250, page_size))

    async def read(self, since: float, until: float) -> OrderSnapshot:
        """Every order created in ``[since, until)``; raises ``OrdersError`` when any page
        cannot be read (no partial snapshot)."""
        snap = OrderSnapshot(self.name, self.kind, since, until)
        variables: dict[str, Any] = {
            "first": self._page_size,
            "after": None,
            "query": search_query(since, until),
        }
        client = self._client or httpx.AsyncClient(
            transport=self._transport, timeout=self._policy.timeout
        )
        try:
            for _ in range(MAX_PAGES):
                connection, cost = await self._page(client, variables, snap)
                for node in connection["nodes"]:
                    try:
                        snap.orders.append(parse_order(node))
                    except (ValueError, KeyError) as err:
                        raise OrdersError(f"Shopify answered an unexpected shape: {err}") from None
                info = connection["pageInfo"]
                if not info.get("hasNextPage"):
                    return snap
                if not info.get("endCursor"):
                    raise OrdersError("Shopify said hasNextPage but sent no endCursor")
                variables["after"] = info["endCursor"]
                if cost is not None:  # wait now rather than be throttled on the next page
                    await self._pause(cost.wait_for(cost.requested))
            raise OrdersError("Shopify kept sending pages: gave up")
        finally:
            if self._client is None:
                await client.aclose()

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._sleep(self._policy.capped(seconds))

    async def _page(
        self, client: httpx.AsyncClient, variables: dict[str, Any], snap: OrderSnapshot
    ) -> tuple[dict[str, Any], Cost | None]:
        attempt = 0
        while True:
            snap.requests += 1
            outcome, wait = await self._attempt(client, variables)
            if not isinstance(outcome, OrdersError):
                return outcome
            attempt += 1
            if not outcome.retryable or attempt > self._policy.max_retries:
                raise outcome
            delay = wait if wait is not None else self._policy.backoff(attempt, self._rng)
            await self._sleep(self._policy.capped(delay))

    async def _attempt(
        self, client: httpx.AsyncClient, variables: dict[str, Any]
    ) -> tuple[tuple[dict[str, Any], Cost | None] | OrdersError, float | None]:
        headers = {"X-Shopify-Access-Token": self._token, "Content-Type": "application/json"}
        payload = {"query": ORDERS_QUERY, "variables": variables}
        problem: str | None = None
        try:
            resp = await client.post(self._url, json=payload, headers=headers)
        except httpx.TimeoutException:
            problem = "timed out"
        except httpx.TransportError as err:
            problem = f"unreachable ({type(err).__name__})"
        if problem is not None:
            return OrdersError(f"Shopify {problem}", retryable=True), None
        if resp.status_code != 200:
            return self._http_error(resp), retry_after(resp.headers.get("Retry-After"))
        try:
            body = json.loads(resp.content)
        except ValueError:
            return OrdersError("Shopify answered 200 with a body that is not JSON"), None
        return self._graphql(body)

    def _graphql(
        self, body: Any
    ) -> tuple[tuple[dict[str, Any], Cost | None] | OrdersError, float | None]:
        cost = parse_cost(body)
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                wait = cost.wait_for(cost.requested) if cost else None
                return OrdersError("Shopify throttled the query", retryable=True), wait
            text = "; ".join(_error_messages(errors)) or "an error"
            label = f" ({', '.join(sorted(codes))})" if codes else ""
            return OrdersError(scrub(f"Shopify answered{label}: {text}", [self._token])), None
        try:
            connection = body["data"]["orders"]
            if not isinstance(connection["nodes"], list) or not isinstance(
                connection["pageInfo"], dict
            ):
                raise TypeError
        except (KeyError, TypeError):
            return OrdersError("Shopify answered without an orders connection"), None
        return (connection, cost), None

    def _http_error(self, resp: httpx.Response) -> OrdersError:
        status = resp.status_code
        what = {
            401: "refused the access token",
            402: "says the shop is frozen (payment required)",
            403: "refused access: the token needs the read_orders scope",
            404: "has no such shop or API version",
            423: "says the shop is locked",
            429: "is rate limiting the requests",
        }.get(status, "answered an error")
        text = f"Shopify {what} (HTTP {status})"
        detail = _http_detail(resp)
        if detail:
            text += f": {detail}"
        retryable = status == 429 or status >= 500
        return OrdersError(scrub(text, [self._token]), status=status, retryable=retryable)


def _error_codes(errors: Any) -> set[str]:
    codes: set[str] = set()
    for err in errors if isinstance(errors, list) else []:
        ext = err.get("extensions") if isinstance(err, dict) else None
        if isinstance(ext, dict) and isinstance(ext.get("code"), str):
            codes.add(ext["code"])
    return codes


def _error_messages(errors: Any) -> list[str]:
    if isinstance(errors, str):
        return [errors]
    out = []
    for err in errors if isinstance(errors, list) else []:
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            out.append(err["message"])
    return out[:3]


def _http_detail(resp: httpx.Response) -> str:
    """Shopify's ``{"errors": "..."}`` (REST-style, on 401/404) or GraphQL errors."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    return "; ".join(_error_messages(errors))

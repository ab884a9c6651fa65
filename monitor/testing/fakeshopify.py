"""A fake Shopify Admin GraphQL API on loopback: the ``orders`` connection and its throttle.

    with FakeShopify(token="shpat_...", orders=[FakeOrder(...), ...]) as shop:
        reader = ShopifyOrders(name="shop", shop="x.myshopify.com", token=..., api_url=shop.url)

Served: ``POST /admin/api/{YYYY-MM}/graphql.json`` with ``X-Shopify-Access-Token``
(missing or wrong: 401 ``{"errors": "[API] Invalid API key or access token ..."}``).
The ``orders(first:, after:, query:)`` variables are honoured: ``first`` 1-250,
opaque cursors, ``pageInfo {hasNextPage endCursor}``, ``created_at:>='…'``/``<'…'``
filters, oldest first (``sortKey: CREATED_AT``). The fake does not parse the selection
set: every node carries everything, including ``customer { email displayName phone }``,
``email`` and ``billingAddress`` with ``alice.fake@example.com`` / ``Alice Fakename``, so
a reader that keeps more than it asked for is caught; ``customer_fields_requested`` says
whether any query text asked for such a field.

The calculated-cost throttle is a leaky bucket of ``maximum`` points refilled at
``restore_rate`` points per second on ``clock`` (inject one to make waits instant and
exact). A query costs ``2 + 3 × first`` points requested and ``2 + 3 × nodes returned``
actually; when the bucket holds less than requested the answer is HTTP 200 with
``errors: [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]`` and no data.
Every answer carries ``extensions.cost`` with ``throttleStatus``.

Trouble on demand: ``http_error(status, times, retry_after=...)``,
``graphql_error(code, message, times)`` (e.g. ``ACCESS_DENIED``) and ``fail_from(n)``
(every request from the n-th on fails).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.testing.loopback import LoopbackServer, Reply, Request

CUSTOMER_EMAIL = "alice.fake@example.com"
CUSTOMER_NAME = "Alice Fakename"
CUSTOMER_PHONE = "+15550100987"
CUSTOMER_STREET = "17 Fakestreet"
CUSTOMER_VALUES = (CUSTOMER_EMAIL, CUSTOMER_NAME, CUSTOMER_PHONE, CUSTOMER_STREET, "Alice")
CUSTOMER_FIELDS = ("customer", "email", "phone", "billingAddress", "shippingAddress", "displayName")
NODE_COST = 3
_PATH = re.compile(r"^/admin/api/(\d{4}-\d{2}|unstable)/graphql\.json$")
_FILTER = re.compile(r"created_at:(>=|<=|>|<)'?([0-9T:.Z+-]+)'?")


@dataclass(slots=True)
class FakeOrder:
    """One order; ``amount`` is the current total in major units, as Shopify shows it."""

    legacy_id: int
    name: str
    created_at: float
    amount: str
    currency: str = "EUR"
    status: str = "PAID"  # displayFinancialStatus
    test: bool = False
    cancelled: bool = False

    def node(self) -> dict[str, Any]:
        created = _iso(self.created_at)
        money = {"amount": self.amount, "currencyCode": self.currency}
        return {
            "id": f"gid://shopify/Order/{self.legacy_id}",
            "legacyResourceId": str(self.legacy_id),
            "name": self.name,
            "createdAt": created,
            "displayFinancialStatus": self.status,
            "test": self.test,
            "cancelledAt": created if self.cancelled else None,
            "currentTotalPriceSet": {"shopMoney": money, "presentmentMoney": money},
            "email": CUSTOMER_EMAIL,
            "phone": CUSTOMER_PHONE,
            "customer": {
                "id": "gid://shopify/Customer/1",
                "email": CUSTOMER_EMAIL,
                "displayName": CUSTOMER_NAME,
                "phone": CUSTOMER_PHONE,
            },
            "billingAddress": {"name": CUSTOMER_NAME, "address1": CUSTOMER_STREET},
        }


class FakeShopify(LoopbackServer):
    def __init__(
        self,
        token: str,
        orders: list[FakeOrder] | None = None,
        *,
        maximum: float = 2000.0,
        restore_rate: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.token = token
        self.orders = list(orders or [])
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._clock = clock
        self._available = maximum
        self._stamp = clock()
        self.requests = 0
        self.throttled = 0
        self.queries: list[str] = []
        self.variables: list[dict[str, Any]] = []
        self._http: list[tuple[int, int, float | None]] = []  # status, times, retry_after
        self._gql: list[tuple[str, str, int]] = []  # code, message, times
        self._fail_from: tuple[int, int] | None = None  # request number, status

    @property
    def customer_fields_requested(self) -> bool:
        words = re.compile(r"\b(" + "|".join(CUSTOMER_FIELDS) + r")\b")
        return any(words.search(q) for q in self.queries)

    def http_error(self, status: int, times: int = 1, *, retry_after: float | None = None) -> None:
        with self.lock:
            self._http.append((status, times, retry_after))

    def fail_from(self, request_number: int, status: int = 500) -> None:
        """Answer ``status`` to every request from the ``request_number``-th (1-based) on:
        a shop that goes down in the middle of a read."""
        with self.lock:
            self._fail_from = (request_number, status)

    def graphql_error(self, code: str, message: str, times: int = 1) -> None:
        with self.lock:
            self._gql.append((code, message, times))

    def available(self) -> float:
        """Points in the bucket now."""
        with self.lock:
            return self._refill()

    def _refill(self) -> float:
        now = self._clock()
        self._available = min(
            self.maximum, self._available + (now - self._stamp) * self.restore_rate
        )
        self._stamp = now
        return self._available

    # -- serving

    def handle(self, request: Request) -> Reply:
        with self.lock:
            self.requests += 1
            fail = self._fail_from is not None and self.requests >= self._fail_from[0]
        if fail and self._fail_from is not None:
            return Reply(self._fail_from[1], {"errors": "Internal Server Error"})
        token = request.headers.get("x-shopify-access-token")
        if request.method != "POST" or not _PATH.match(request.path.split("?", 1)[0]):
            return Reply(404, {"errors": "Not Found"})
        if token != self.token:
            msg = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            return Reply(401, {"errors": msg})
        http = self._take_http()
        if http is not None:
            status, retry_after = http
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return Reply(
                status, {"errors": "Exceeded limit" if status == 429 else "Error"}, headers
            )
        try:
            payload = json.loads(request.body)
            query, variables = payload["query"], payload.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return Reply(400, {"errors": {"query": "Required parameter missing or invalid"}})
        with self.lock:
            self.queries.append(query)
            self.variables.append(dict(variables))
        return self._orders(variables)

    def _take_http(self) -> tuple[int, float | None] | None:
        with self.lock:
            for i, (status, times, retry_after) in enumerate(self._http):
                if times > 0:
                    self._http[i] = (status, times - 1, retry_after)
                    return status, retry_after
        return None

    def _take_gql(self) -> tuple[str, str] | None:
        with self.lock:
            for i, (code, message, times) in enumerate(self._gql):
                if times > 0:
                    self._gql[i] = (code, message, times - 1)
                    return code, message
        return None

    def _orders(self, variables: dict[str, Any]) -> Reply:
        first = variables.get("first")
        if not isinstance(first, int) or not 1 <= first <= 250:
            return self._gql_errors("BAD_USER_INPUT", "first must be between 1 and 250", 0)
        requested = 2 + NODE_COST * first
        if requested > self.maximum:
            msg = f"Query cost is {requested}, which exceeds the single query max cost limit"
            return self._gql_errors("MAX_COST_EXCEEDED", msg, requested)
        gql = self._take_gql()
        if gql is not None:
            return self._gql_errors(gql[0], gql[1], requested)
        with self.lock:
            throttled = self._refill() < requested
            self.throttled += throttled
        if throttled:
            return self._gql_errors("THROTTLED", "Throttled", requested)
        nodes, has_next, end = self._page(first, variables.get("after"), variables.get("query"))
        actual = 2 + NODE_COST * len(nodes)
        with self.lock:
            self._available -= actual
        data = {
            "orders": {
                "pageInfo": {"hasNextPage": has_next, "endCursor": end},
                "nodes": nodes,
                "edges": [{"cursor": c, "node": n} for c, n in nodes_with_cursors(nodes, end)],
            }
        }
        return Reply(200, {"data": data, "extensions": self._cost(requested, actual)})

    def _page(
        self, first: int, after: Any, query: Any
    ) -> tuple[list[dict[str, Any]], bool, str | None]:
        with self.lock:
            orders = sorted(self.orders, key=lambda o: (o.created_at, o.legacy_id))
        orders = [o for o in orders if _matches(o.created_at, query)]
        start = _uncursor(after) if isinstance(after, str) else 0
        page = orders[start : start + first]
        end = _cursor(start + len(page)) if page else None
        return [o.node() for o in page], start + first < len(orders), end

    def _cost(self, requested: float, actual: float | None) -> dict[str, Any]:
        with self.lock:
            available = self._refill()
        throttle = {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": available,
            "restoreRate": self.restore_rate,
        }
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": throttle,
            }
        }

    def _gql_errors(self, code: str, message: str, requested: float) -> Reply:
        err = {
            "message": message,
            "extensions": {"code": code, "documentation": "https://shopify.dev/api/usage/limits"},
        }
        return Reply(200, {"errors": [err], "extensions": self._cost(requested, None)})


def nodes_with_cursors(
    nodes: list[dict[str, Any]], end: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """Edges of a page: only the last cursor matters to a reader (``endCursor``)."""
    last = _uncursor(end) if end else len(nodes)
    return [(_cursor(last - len(nodes) + i + 1), n) for i, n in enumerate(nodes)]


def _matches(created: float, query: Any) -> bool:
    if not isinstance(query, str):
        return True
    for op, text in _FILTER.findall(query):
        bound = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        ok = {
            ">=": created >= bound,
            "<=": created <= bound,
            ">": created > bound,
            "<": created < bound,
        }[op]
        if not ok:
            return False
    return True


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last": index}).encode()).decode()


def _uncursor(cursor: str) -> int:
    try:
        return int(json.loads(base64.b64decode(cursor))["last"])
    except (ValueError, KeyError, TypeError):
        return 0

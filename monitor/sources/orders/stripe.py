"""Stripe as an orders source: PaymentIntents through the REST API (docs/contracts.md §8).

What Stripe's API reference documents and this reader relies on:

- **List PaymentIntents**: ``GET /v1/payment_intents`` with ``limit`` (1-100),
  ``created[gte]``/``created[lt]`` (Unix seconds) and cursor paging by
  ``starting_after=<id of the last object of the previous page>``; the answer is
  ``{"object": "list", "data": [...], "has_more": bool, "url": "/v1/payment_intents"}``,
  newest first. There is no status filter: every PaymentIntent of the range is read and
  ``status == "succeeded"`` makes a payment (``requires_capture`` is only authorised).
- **Authentication**: ``Authorization: Bearer <key>``; a restricted key with read access
  to PaymentIntents is enough. The key comes from an environment variable, travels only
  in that header and is scrubbed from every message.
- **Errors**: ``{"error": {"type", "code", "message", ...}}`` with the HTTP status saying
  what happened (401 bad key, 403 key lacks permission, 404/400 bad request, 429 too
  many requests, 5xx Stripe's side). ``Stripe-Should-Retry: true|false`` overrides our
  own judgement; ``Retry-After``, when sent, is honoured (capped). 429, 409 and 5xx are
  retried with bounded backoff; anything else fails the read.
- **Amounts** are integers in the currency's minor unit (``amount_received`` of a
  succeeded PaymentIntent): zero-decimal currencies such as JPY have none, the
  three-decimal ones (KWD, BHD, ...) have thousandths; see ``common.from_minor``.

Why not Stripe's own ``stripe`` package: its ``HTTPXClient`` builds its own
``httpx.AsyncClient`` (no transport or shared client can be injected, so the loopback
fakes and our connection limits cannot be used), its retries ignore ``Retry-After`` and
retry a 429 only when ``Stripe-Should-Retry`` says so, and it keeps every field of every
object (receipt emails, shipping names) in its objects. This reader asks for less and
keeps less: one ``GET`` per page with ``httpx``, and only ``id``, ``created``,
``status``, the amount, ``currency`` and the one metadata key are looked at — never
``receipt_email``, ``shipping``, ``customer`` or ``description``; no ``expand[]``.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import httpx

from monitor.model.orders import Order, OrderSnapshot, SourceKind, order_key
from monitor.sources.orders.common import (
    OrdersError,
    RetryPolicy,
    Sleep,
    default_sleep,
    from_minor,
    retry_after,
    scrub,
)

DEFAULT_API_URL = "https://api.stripe.com"
PAGE_SIZE = 100  # Stripe's maximum
MAX_PAGES = 100_000  # a guard against a server that never says has_more: false
_RETRY_STATUSES = frozenset({409, 429})


def metadata_key(order_id_from: str) -> str | None:
    """``"metadata.order_id"`` -> ``"order_id"``; ``"id"`` -> ``None`` (the PaymentIntent
    id itself). Anything else is refused: no other field of a PaymentIntent is an order
    id, and most of the others are about the customer."""
    if order_id_from == "id":
        return None
    prefix, _, key = order_id_from.partition(".")
    if prefix != "metadata" or not key:
        raise ValueError(
            f"order_id_from must be 'id' or 'metadata.<key>' for Stripe, got {order_id_from!r}"
        )
    return key


def parse_payment_intent(obj: Any, meta_key: str | None) -> tuple[Order | None, bool]:
    """(the order, whether it is a succeeded payment without the order-id key).

    Reads only ``id``, ``created``, ``status``, ``amount``/``amount_received``,
    ``currency`` and ``metadata[meta_key]``. Raises ``ValueError`` for an object that is
    not a PaymentIntent of the documented shape."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        raise ValueError("an item of data is not a PaymentIntent")
    status = obj.get("status")
    created = obj.get("created")
    currency = obj.get("currency")
    paid = status == "succeeded"
    amount = obj.get("amount_received" if paid else "amount")
    if not isinstance(status, str) or not isinstance(currency, str):
        raise ValueError("a PaymentIntent lacks status or currency")
    if not isinstance(created, int) or not isinstance(amount, int):
        raise ValueError("a PaymentIntent lacks an integer created or amount")
    if meta_key is None:
        raw_id: Any = obj["id"]
    else:
        metadata = obj.get("metadata")
        raw_id = metadata.get(meta_key) if isinstance(metadata, dict) else None
    key = order_key(raw_id)
    if key is None:
        return None, paid
    order = Order(
        order_id=key,
        keys=(key,),
        created_at=float(created),
        amount=from_minor(amount, currency),
        currency=currency.upper(),
        status=status,
        paid=paid,
    )
    return order, False


class StripeOrders:
    """Reads the PaymentIntents of one Stripe account (one ``[[orders]] kind = "stripe"``).

    ``client`` (an ``httpx.AsyncClient``) or ``transport`` may be injected; ``sleep`` and
    ``rng`` make the retry waits testable."""

    kind = SourceKind.STRIPE

    def __init__(
        self,
        *,
        name: str,
        api_key: str,
        api_url: str = DEFAULT_API_URL,
        order_id_from: str = "metadata.order_id",
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = default_sleep,
        rng: random.Random | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if not api_key:
            raise ValueError("a Stripe API key is required")
        self.name = name
        self._key = api_key
        self._url = api_url.rstrip("/") + "/v1/payment_intents"
        self._meta_key = metadata_key(order_id_from)
        self._policy = policy or RetryPolicy()
        self._client = client
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._page_size = max(1, min(PAGE_SIZE, page_size))

    async def read(self, since: float, until: float) -> OrderSnapshot:
        """Every PaymentIntent created in ``[since, until)``; raises ``OrdersError`` when
        any page cannot be read (no partial snapshot)."""
        snap = OrderSnapshot(self.name, self.kind, since, until)
        params = {
            "limit": str(self._page_size),
            "created[gte]": str(math.floor(since)),
            "created[lt]": str(math.ceil(until)),
        }
        client = self._client or httpx.AsyncClient(
            transport=self._transport, timeout=self._policy.timeout
        )
        try:
            for _ in range(MAX_PAGES):
                page = await self._page(client, params, snap)
                last = self._fold(page["data"], snap)
                if not page["has_more"]:
                    return snap
                if last is None:
                    raise OrdersError("Stripe said has_more but sent an empty page")
                params["starting_after"] = last
            raise OrdersError("Stripe kept sending pages: gave up")
        finally:
            if self._client is None:
                await client.aclose()

    def _fold(self, data: list[Any], snap: OrderSnapshot) -> str | None:
        last: str | None = None
        for obj in data:
            try:
                order, unkeyed = parse_payment_intent(obj, self._meta_key)
            except ValueError as err:
                raise OrdersError(f"Stripe answered an unexpected shape: {err}") from None
            last = obj["id"]
            if order is not None:
                snap.orders.append(order)
            elif unkeyed:
                snap.without_order_id += 1
        return last

    async def _page(
        self, client: httpx.AsyncClient, params: dict[str, str], snap: OrderSnapshot
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        attempt = 0
        while True:
            snap.requests += 1
            failure, wait = await self._attempt(client, params, headers)
            if isinstance(failure, dict):
                return failure
            attempt += 1
            if not failure.retryable or attempt > self._policy.max_retries:
                raise failure
            delay = wait if wait is not None else self._policy.backoff(attempt, self._rng)
            await self._sleep(self._policy.capped(delay))

    async def _attempt(
        self, client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[dict[str, Any] | OrdersError, float | None]:
        """One GET: the page, or the error with the wait Stripe asked for (if any)."""
        problem: str | None = None
        try:
            resp = await client.get(self._url, params=params, headers=headers)
        except httpx.TimeoutException:
            problem = "timed out"
        except httpx.TransportError as err:
            problem = f"unreachable ({type(err).__name__})"
        if problem is not None:  # built outside the except block: no chained URL
            return OrdersError(f"Stripe {problem}", retryable=True), None
        if resp.status_code == 200:
            return self._body(resp), None
        return self._error(resp), retry_after(resp.headers.get("Retry-After"))

    def _body(self, resp: httpx.Response) -> dict[str, Any] | OrdersError:
        try:
            body = json.loads(resp.content)
        except ValueError:
            return OrdersError("Stripe answered 200 with a body that is not JSON")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("data"), list)
            or not isinstance(body.get("has_more"), bool)
        ):
            return OrdersError("Stripe answered 200 without a list object")
        return body

    def _error(self, resp: httpx.Response) -> OrdersError:
        status = resp.status_code
        kind, code, message = _envelope(resp)
        should = resp.headers.get("Stripe-Should-Retry", "").strip().lower()
        retryable = status in _RETRY_STATUSES or status >= 500
        if should in ("true", "false"):
            retryable = should == "true"
        what = {
            401: "refused the API key",
            403: "refused access: the restricted key needs read access to PaymentIntents",
            429: "is rate limiting the requests",
        }.get(status, "answered an error")
        detail = ", ".join(x for x in (kind, code) if x)
        text = f"Stripe {what} (HTTP {status}{': ' + detail if detail else ''})"
        if message:
            text += f": {message}"
        return OrdersError(scrub(text, [self._key]), status=status, retryable=retryable)


def _envelope(resp: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(type, code, message) of Stripe's error envelope, each ``None`` when absent."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return None, None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    parts = (error.get("type"), error.get("code"), error.get("message"))
    return tuple(p if isinstance(p, str) and p else None for p in parts)  # type: ignore[return-value]

"""A fake Stripe API on loopback: ``GET /v1/payment_intents`` as Stripe documents it.

    with FakeStripe(api_key="rk_test_...", payments=[FakePayment(...), ...]) as stripe:
        reader = StripeOrders(name="shop", api_key="rk_test_...", api_url=stripe.url)

Served like the real list endpoint: ``limit`` 1-100 (default 10), ``created[gte|gt|lt|
lte]``, cursor paging with ``starting_after`` (an unknown id is a ``resource_missing``
400), newest first, ``{"object": "list", "url", "has_more", "data"}``; unknown parameters
are a 400 ``parameter_unknown``. Bearer (or Basic) authentication: no key or a wrong key
is a 401 whose message shows the key half-starred, as Stripe's does.

Each PaymentIntent carries the customer fields a real one may have — ``receipt_email``
``alice.fake@example.com``, ``shipping.name`` ``Alice Fakename``, a phone, an address,
``customer``, a description and a metadata email — so tests can prove that none of them
is kept or shown (``CUSTOMER_VALUES``).

Trouble on demand, for the next ``times`` list requests (optionally only pages after the
first): ``rate_limit`` (429 ``rate_limit``, optional ``Retry-After`` and
``Stripe-Should-Retry``), ``fail`` (5xx ``api_error``), ``forbid`` (403: the restricted
key lacks the PaymentIntents read permission).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.testing.loopback import LoopbackServer, Reply, Request

CUSTOMER_EMAIL = "alice.fake@example.com"
CUSTOMER_NAME = "Alice Fakename"
CUSTOMER_PHONE = "+15550100987"
CUSTOMER_STREET = "17 Fakestreet"
CUSTOMER_VALUES = (CUSTOMER_EMAIL, CUSTOMER_NAME, CUSTOMER_PHONE, CUSTOMER_STREET, "Alice")
_ALLOWED = {"limit", "starting_after", "ending_before", "customer", "expand[]"} | {
    f"created[{op}]" for op in ("gt", "gte", "lt", "lte")
}


@dataclass(slots=True)
class FakePayment:
    """One PaymentIntent; ``amount`` in the currency's minor unit, as Stripe stores it."""

    id: str
    created: int
    amount: int
    currency: str = "eur"
    status: str = "succeeded"
    order_id: str | None = None  # metadata.order_id; None = no such key
    amount_received: int | None = None  # default: amount when succeeded, else 0

    def to_object(self) -> dict[str, Any]:
        received = self.amount_received
        if received is None:
            received = self.amount if self.status == "succeeded" else 0
        metadata: dict[str, str] = {"buyer_email": CUSTOMER_EMAIL}
        if self.order_id is not None:
            metadata["order_id"] = self.order_id
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_received": received,
            "capture_method": "automatic",
            "client_secret": f"{self.id}_secret_fakeclientsecret",
            "created": self.created,
            "currency": self.currency.lower(),
            "customer": "cus_FakeAlice0001",
            "description": f"Order for {CUSTOMER_NAME}",
            "latest_charge": f"ch_{self.id[3:]}",
            "livemode": False,
            "metadata": metadata,
            "payment_method": "pm_fakecard",
            "receipt_email": CUSTOMER_EMAIL,
            "shipping": {
                "name": CUSTOMER_NAME,
                "phone": CUSTOMER_PHONE,
                "address": {
                    "line1": CUSTOMER_STREET,
                    "city": "Fakeville",
                    "postal_code": "12345",
                    "country": "DE",
                },
            },
            "status": self.status,
        }


@dataclass(slots=True)
class _Fault:
    status: int
    body: dict[str, Any]
    times: int
    later_pages_only: bool
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """A request as the fake saw it (no key): path, query, whether a key was right."""

    path: str
    params: dict[str, list[str]]
    authorized: bool
    status: int


class FakeStripe(LoopbackServer):
    def __init__(self, api_key: str, payments: list[FakePayment] | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.payments: list[FakePayment] = list(payments or [])
        self.requests: list[SeenRequest] = []
        self._faults: list[_Fault] = []

    # -- trouble

    def rate_limit(
        self,
        times: int = 1,
        *,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        later_pages_only: bool = False,
    ) -> None:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        body = _error(
            "invalid_request_error",
            "Request rate limit exceeded. Retry with exponential backoff.",
            code="rate_limit",
        )
        self._add(_Fault(429, body, times, later_pages_only, headers))

    def fail(
        self,
        times: int = 1,
        *,
        status: int = 500,
        should_retry: bool | None = None,
        later_pages_only: bool = False,
    ) -> None:
        headers = {}
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        body = _error("api_error", "Something went wrong on Stripe's end.")
        self._add(_Fault(status, body, times, later_pages_only, headers))

    def forbid(self, times: int = 1_000_000) -> None:
        message = (
            f"The provided key '{_starred(self.api_key)}' does not have the required "
            "permissions for this endpoint on account 'acct_FakeShop'. Having the "
            "'rak_payment_intent_read' permission would allow this request to continue."
        )
        self._add(_Fault(403, _error("invalid_request_error", message), times, False))

    def _add(self, fault: _Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    # -- serving

    def handle(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        params = parse_qs(parts.query, keep_blank_values=True)
        key = _presented_key(request.headers.get("authorization", ""))
        authorized = key == self.api_key
        reply = self._answer(request.method, parts.path, params, key, authorized)
        with self.lock:
            self.requests.append(SeenRequest(parts.path, params, authorized, reply.status))
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, list[str]],
        key: str | None,
        authorized: bool,
    ) -> Reply:
        if not key:
            msg = (
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY')."
            )
            return Reply(401, _error("invalid_request_error", msg))
        if not authorized:
            msg = f"Invalid API Key provided: {_starred(key)}"
            return Reply(401, _error("invalid_request_error", msg))
        if method != "GET" or path != "/v1/payment_intents":
            msg = f"Unrecognized request URL ({method}: {path})."
            return Reply(404, _error("invalid_request_error", msg))
        fault = self._take_fault("starting_after" in params)
        if fault is not None:
            return Reply(fault.status, fault.body, dict(fault.headers))
        return self._list(params)

    def _take_fault(self, later_page: bool) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.times > 0 and (later_page or not fault.later_pages_only):
                    fault.times -= 1
                    return fault
        return None

    def _list(self, params: dict[str, list[str]]) -> Reply:
        unknown = sorted(set(params) - _ALLOWED)
        if unknown:
            msg = f"Received unknown parameter: {unknown[0]}"
            return Reply(400, _error("invalid_request_error", msg, "parameter_unknown", unknown[0]))
        one = {k: v[-1] for k, v in params.items()}
        try:
            limit = int(one.get("limit", "10"))
            bounds = {k: int(v) for k, v in one.items() if k.startswith("created[")}
        except ValueError:
            msg = "Invalid integer"
            return Reply(400, _error("invalid_request_error", msg, "parameter_invalid_integer"))
        if not 1 <= limit <= 100:
            msg = "This value must be greater than or equal to 1 and less than or equal to 100."
            return Reply(400, _error("invalid_request_error", msg, "parameter_invalid_integer"))
        with self.lock:
            items = sorted(self.payments, key=lambda p: (p.created, p.id), reverse=True)
        items = [p for p in items if _within(p.created, bounds)]
        after = one.get("starting_after")
        if after is not None:
            ids = [p.id for p in items]
            if after not in ids:
                msg = f"No such payment_intent: '{after}'"
                return Reply(404, _error("invalid_request_error", msg, "resource_missing"))
            items = items[ids.index(after) + 1 :]
        page = items[:limit]
        body = {
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": len(items) > limit,
            "data": [p.to_object() for p in page],
        }
        return Reply(200, body, {"Request-Id": "req_fake"})


def _within(created: int, bounds: dict[str, int]) -> bool:
    checks = {
        "created[gt]": lambda b: created > b,
        "created[gte]": lambda b: created >= b,
        "created[lt]": lambda b: created < b,
        "created[lte]": lambda b: created <= b,
    }
    return all(checks[k](v) for k, v in bounds.items())


def _error(
    type_: str, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {"type": type_, "message": message, "request_log_url": "https://x"}
    if code:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        err["param"] = param
    return {"error": err}


def _starred(key: str) -> str:
    """How Stripe shows a key in its messages: the prefix, stars, the last four."""
    prefix = key[:8]
    return prefix + "*" * max(0, len(key) - 12) + key[-4:]


def _presented_key(header: str) -> str | None:
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip()).decode().split(":", 1)[0]
        except ValueError:
            return None
        return user or None
    return None

"""What an orders source read: value types only, no I/O (docs/contracts.md §8).

An ``Order`` keeps the five things the reconciliation may keep about a purchase — its
id, creation time, amount, currency and status — and nothing about the customer. Amounts
are ``Decimal`` in the currency's *major* unit (19.99 EUR, 500 JPY, 1.250 KWD), converted
exactly from whatever the source uses; ``None`` when the source cannot tell what was
paid (a refunded Shopify order's current total is what is left after the refund).

``Purchase`` is what the reconciliation keeps of one Purchase event of the delivery logs
(its order id, ``event_id``, time, value, currency and whether Meta accepted it), again
nothing about the customer: the daemon stores these for the matching window.

``OrderSnapshot`` is one read of one source over a time range: every order found in it
(paid or not, so a Purchase can be told apart as "no order" or "order not paid"), the
number of payments that carried no order id, and — when the read failed — a scrubbed
reason instead of orders. A failed read never carries partial orders.
"""

from __future__ import annotations

import dataclasses as dc
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    STRIPE = "stripe"
    SHOPIFY = "shopify"
    FILE = "file"


def order_key(value: Any) -> str | None:
    """An order id as the reconciliation compares it: a trimmed string without a leading
    ``#`` (Shopify names are ``#1001``); ``None`` for null, empty or non-scalar values."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1001.0 from a JSON sender is order 1001
    text = str(value).strip().removeprefix("#").strip()
    return text or None


class Outcome(StrEnum):
    """What became of the request that carried a Purchase."""

    ACCEPTED = "accepted"  # a 2xx answer without an error body
    UNCONFIRMED = "unconfirmed"  # no logged response: counts as sent
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Purchase:
    """What the reconciliation needs of one Purchase event; nothing about the customer.

    ``key`` is the normalised order id read from the dataset's ``match_field`` (``None``
    when missing or empty); ``file`` and ``line`` say where it was logged (examples)."""

    file: str
    line: int
    key: str | None
    event_id: str | None
    event_time: float  # Unix seconds
    value: Decimal | None
    currency: str | None
    outcome: Outcome

    @property
    def delivered(self) -> bool:
        """Accepted, or sent with an unknown outcome (docs/contracts.md §8)."""
        return self.outcome is not Outcome.FAILED


@dataclass(frozen=True, slots=True)
class Order:
    """One order or payment as read from a source.

    ``order_id`` is the id shown to users (Stripe: the ``order_id_from`` value, Shopify: the
    order name, file: the ``order_id`` column); ``keys`` are every normalised id a Purchase
    may carry for it (Shopify: name, ``legacyResourceId`` and gid). ``paid`` follows the
    contract's definition for the source (succeeded, PAID/REFUNDED..., not test or
    cancelled); ``status`` is the source's own word for it, lower-cased.
    """

    order_id: str
    keys: tuple[str, ...]
    created_at: float  # Unix seconds
    amount: Decimal | None  # major units, exact; None = unknown purchase amount
    currency: str | None  # ISO 4217, upper case
    status: str
    paid: bool


@dataclass(slots=True)
class OrderSnapshot:
    """One read of one orders source covering orders created in ``[since, until)``."""

    source: str  # the [[orders]] name (or the file name for ``audit --orders``)
    kind: SourceKind
    since: float
    until: float
    orders: list[Order] = dc.field(default_factory=list)
    without_order_id: int = 0  # payments without the order-id key: not orders of the shop
    error: str | None = None  # scrubbed reason the read failed; then ``orders`` is empty
    requests: int = 0  # HTTP calls made (or files read)

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(
        cls, source: str, kind: SourceKind, since: float, until: float, error: str
    ) -> OrderSnapshot:
        return cls(source, kind, since, until, error=error)


@dataclass(frozen=True, slots=True)
class OrdersCursor:
    """How far the daemon has read one orders source: every order created in
    ``[covered_from, covered_until)`` is in the store as the latest read saw it."""

    source: str
    kind: SourceKind
    covered_from: float
    covered_until: float
    read_at: float  # when it was last read in full


@dataclass(frozen=True, slots=True)
class FunnelHour:
    """One UTC hour of a dataset's funnel as the daemon stores it: paid orders by creation
    time (``None`` where the source was not read), Purchases by ``event_time`` and what
    became of them. The weekly report adds Meta's counts of the same hours."""

    dataset_id: str
    hour: int  # Unix seconds of the UTC hour start
    orders_paid: int | None
    purchases_sent: int
    purchases_accepted: int
    purchases_unconfirmed: int

"""What reconciliation reads of each side: Purchase records folded from deliveries, and
the paid orders of a source (one per order id). Compact on purpose: a check keeps one
``Purchase`` per Purchase event, never the event. ``Purchase`` and ``Outcome`` are value
types of ``monitor.model.orders`` (the daemon's store keeps them too)."""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from monitor.model.observations import Delivery
from monitor.model.orders import Order, Outcome, Purchase, order_key

PURCHASE = "Purchase"


def outcome_of(delivery: Delivery) -> Outcome:
    r = delivery.response
    if r is None:
        return Outcome.UNCONFIRMED
    if r.is_error or (r.status is not None and not 200 <= r.status < 300):
        return Outcome.FAILED
    return Outcome.ACCEPTED


def purchases_of(delivery: Delivery, match_field: str) -> Iterable[Purchase]:
    """The Purchase events of one delivery (exact event name: ``purchase`` is another)."""
    outcome: Outcome | None = None
    path = match_field.split(".")
    for ev, event_time in zip(delivery.events, delivery.times, strict=True):
        if ev.get("event_name") != PURCHASE:
            continue
        outcome = outcome or outcome_of(delivery)
        custom = ev.get("custom_data")
        custom = custom if isinstance(custom, dict) else {}
        currency = custom.get("currency")
        event_id = ev.get("event_id")
        yield Purchase(
            file=delivery.file,
            line=delivery.line,
            key=order_key(_dig(ev, path)),
            event_id=str(event_id) if event_id not in (None, "") else None,
            event_time=event_time,  # seconds: the reader normalised milliseconds
            value=_decimal(custom.get("value")),
            currency=currency.strip().upper() if isinstance(currency, str) else None,
            outcome=outcome,
        )


def _dig(obj: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


# ----------------------------------------------------------------------------- orders


@dataclass(slots=True)
class PaidOrder:
    """Paid payments of one order id, merged."""

    order_id: str
    keys: set[str]
    created_at: float
    amount: Decimal | None
    currency: str | None
    purchases: list[Purchase] = dc.field(default_factory=list)


def paid_orders(orders: Iterable[Order]) -> list[PaidOrder]:
    """Paid orders merged by id: earliest creation, amounts added (``None`` when a part
    has no amount or the currencies differ)."""
    merged: dict[str, PaidOrder] = {}
    for o in orders:
        if not o.paid:
            continue
        mine = merged.get(o.keys[0])
        if mine is None:
            merged[o.keys[0]] = PaidOrder(
                o.order_id, set(o.keys), o.created_at, o.amount, o.currency
            )
            continue
        mine.keys.update(o.keys)
        mine.created_at = min(mine.created_at, o.created_at)
        same = mine.currency == o.currency
        known = mine.amount is not None and o.amount is not None
        mine.amount = mine.amount + o.amount if same and known else None  # type: ignore[operator]
    return list(merged.values())

"""Orders sources: the payments or shop orders that Purchases are reconciled with.

Three readers with one interface (``OrdersReader``): ``stripe.StripeOrders``
(PaymentIntents), ``shopify.ShopifyOrders`` (Admin GraphQL orders) and
``file.FileOrders`` (CSV or JSON-lines exports). ``read_snapshot`` turns a failed read
into a snapshot that carries only its scrubbed reason, which the ``reconcile`` check
reports as ``SOURCE_UNAVAILABLE`` (docs/contracts.md §8).
"""

from __future__ import annotations

from typing import Protocol

from monitor.model.orders import Order, OrderSnapshot, SourceKind, order_key
from monitor.sources.orders.common import OrdersError

__all__ = [
    "Order",
    "OrderSnapshot",
    "OrdersError",
    "OrdersReader",
    "SourceKind",
    "order_key",
    "read_snapshot",
]


class OrdersReader(Protocol):
    name: str
    kind: SourceKind

    async def read(self, since: float, until: float) -> OrderSnapshot:
        """Orders created in ``[since, until)``; raises ``OrdersError`` (never partial)."""
        ...


async def read_snapshot(reader: OrdersReader, since: float, until: float) -> OrderSnapshot:
    """``reader.read`` with a failure kept as ``OrderSnapshot.error`` instead of raised."""
    try:
        return await reader.read(since, until)
    except OrdersError as err:
        return OrderSnapshot.failed(reader.name, reader.kind, since, until, str(err))

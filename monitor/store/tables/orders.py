"""Store tables of the orders area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

What the daemon's ``orders`` job (``monitor.daemon.orders_jobs``) keeps to reconcile
Purchases with paid orders (docs/contracts.md §8). Only what the matching window needs,
and only for datasets that name an orders source:

- ``order_facts``: the orders read from each source: order id (and the other ids a
  Purchase may carry for it), creation time, amount, currency, status. Nothing about the
  customer. A read of ``[since, until)`` *replaces* the source's rows of that range.
- ``order_cursors``: per source, the range the stored orders cover.
- ``purchase_facts``: the Purchase events of the delivery logs, one row each: order id,
  ``event_id``, ``event_time``, value, currency and what Meta answered (written by the
  ``logs`` job in its cycle's transaction). No other field of the event.
- ``funnel_hours``: per dataset and UTC hour, paid orders and Purchases sent, accepted and
  unconfirmed: the weekly report's funnel, kept after the facts are pruned.

Amounts and values are decimal text (``"19.99"``), exact as read.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class OrderFactRow(StoreModel, table=True):
    """One order or payment as a source reported it (``monitor.model.orders.Order``)."""

    __tablename__ = "order_facts"
    __table_args__ = (Index(None, "source", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str  # the [[orders]] name
    order_id: str
    keys: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: float
    amount: str | None = None
    currency: str | None = None
    status: str
    paid: bool


class OrderCursorRow(StoreModel, table=True):
    """The range of creation times ``order_facts`` holds for one source."""

    __tablename__ = "order_cursors"
    __table_args__ = (UniqueConstraint("source"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    kind: str  # a monitor.model.orders.SourceKind value
    covered_from: float
    covered_until: float
    read_at: float


class PurchaseFactRow(StoreModel, table=True):
    """One Purchase event of a reconciled dataset (``monitor.model.orders.Purchase``)."""

    __tablename__ = "purchase_facts"
    __table_args__ = (Index(None, "dataset_id", "event_time"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    order_key: str | None = None
    event_id: str | None = None
    event_time: float
    value: str | None = None
    currency: str | None = None
    outcome: str  # a monitor.model.orders.Outcome value
    file: str
    line: int = Field(sa_type=BigInteger)


class FunnelHourRow(StoreModel, table=True):
    """One hour of one dataset's funnel (``monitor.model.orders.FunnelHour``)."""

    __tablename__ = "funnel_hours"
    __table_args__ = (UniqueConstraint("dataset_id", "hour"), Index(None, "hour"))

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    hour: int = Field(sa_type=BigInteger)
    orders_paid: int | None = Field(default=None, sa_type=BigInteger)
    purchases_sent: int = Field(default=0, sa_type=BigInteger)
    purchases_accepted: int = Field(default=0, sa_type=BigInteger)
    purchases_unconfirmed: int = Field(default=0, sa_type=BigInteger)
    updated_at: float

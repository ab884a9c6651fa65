"""Orders and Purchases of the matching window, and the hourly funnel (tables in
``monitor.store.tables.orders``), for the daemon's reconciliation (docs/contracts.md §8).

Every function takes the caller's ``Connection``: the ``logs`` job adds Purchases in its
cycle's transaction, the ``orders`` job replaces a source's orders, judges and writes the
funnel in one transaction of its own. Nothing here keeps a customer field: the value
types (``monitor.model.orders``) have none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from monitor.model.orders import (
    FunnelHour,
    Order,
    OrdersCursor,
    OrderSnapshot,
    Outcome,
    Purchase,
    SourceKind,
)
from monitor.store.tables.core import metadata

_ORDERS: Table = metadata.tables["order_facts"]
_CURSORS: Table = metadata.tables["order_cursors"]
_PURCHASES: Table = metadata.tables["purchase_facts"]
_FUNNEL: Table = metadata.tables["funnel_hours"]
_ROLLUPS: Table = metadata.tables["hour_rollups"]
_CHUNK = 500  # rows per INSERT statement


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _insert_chunks(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(table), list(rows[start : start + _CHUNK]))


# --- orders ----------------------------------------------------------------------------


def load_order_cursor(conn: Connection, source: str) -> OrdersCursor | None:
    row = conn.execute(select(_CURSORS).where(_CURSORS.c.source == source)).mappings().first()
    if row is None:
        return None
    return OrdersCursor(
        row["source"],
        SourceKind(row["kind"]),
        float(row["covered_from"]),
        float(row["covered_until"]),
        float(row["read_at"]),
    )


def save_order_read(conn: Connection, snapshot: OrderSnapshot, read_at: float) -> OrdersCursor:
    """Replace the source's stored orders created in ``[snapshot.since, snapshot.until)``
    with the snapshot's, and extend its cursor; returns the new cursor. The snapshot must
    be a complete read (``snapshot.ok``)."""
    if not snapshot.ok:
        raise ValueError("a failed read replaces nothing")
    source = snapshot.source
    conn.execute(
        delete(_ORDERS).where(
            _ORDERS.c.source == source,
            _ORDERS.c.created_at >= snapshot.since,
            _ORDERS.c.created_at < snapshot.until,
        )
    )
    rows = [
        {
            "source": source,
            "order_id": o.order_id,
            "keys": list(o.keys),
            "created_at": o.created_at,
            "amount": _text(o.amount),
            "currency": o.currency,
            "status": o.status,
            "paid": o.paid,
        }
        for o in snapshot.orders
        if snapshot.since <= o.created_at < snapshot.until
    ]
    _insert_chunks(conn, _ORDERS, rows)
    old = load_order_cursor(conn, source)
    contiguous = old is not None and old.covered_from <= snapshot.since <= old.covered_until
    cursor = OrdersCursor(
        source,
        snapshot.kind,
        old.covered_from if old is not None and contiguous else snapshot.since,
        snapshot.until,
        read_at,
    )
    values = {
        "kind": str(cursor.kind),
        "covered_from": cursor.covered_from,
        "covered_until": cursor.covered_until,
        "read_at": read_at,
    }
    if old is None:
        conn.execute(insert(_CURSORS).values(source=source, **values))
    else:
        conn.execute(update(_CURSORS).where(_CURSORS.c.source == source).values(**values))
    return cursor


def load_orders(conn: Connection, source: str, since: float) -> list[Order]:
    """The stored orders of ``source`` created at or after ``since``, oldest first."""
    query = (
        select(_ORDERS)
        .where(_ORDERS.c.source == source, _ORDERS.c.created_at >= since)
        .order_by(_ORDERS.c.created_at, _ORDERS.c.id)
    )
    return [
        Order(
            order_id=r["order_id"],
            keys=tuple(r["keys"] or (r["order_id"],)),
            created_at=float(r["created_at"]),
            amount=_decimal(r["amount"]),
            currency=r["currency"],
            status=r["status"],
            paid=bool(r["paid"]),
        )
        for r in conn.execute(query).mappings()
    ]


def prune_orders(conn: Connection, source: str, before: float) -> None:
    """Forget the orders of ``source`` created before ``before``; its cursor then covers
    from ``before`` at the earliest."""
    conn.execute(delete(_ORDERS).where(_ORDERS.c.source == source, _ORDERS.c.created_at < before))
    conn.execute(
        update(_CURSORS)
        .where(_CURSORS.c.source == source, _CURSORS.c.covered_from < before)
        .values(covered_from=before)
    )


# --- Purchases -------------------------------------------------------------------------


def insert_purchases(conn: Connection, purchases: Mapping[str, Iterable[Purchase]]) -> int:
    """Add the Purchases of each dataset (dataset id -> Purchases); returns how many."""
    rows = [
        {
            "dataset_id": dataset_id,
            "order_key": p.key,
            "event_id": p.event_id,
            "event_time": p.event_time,
            "value": _text(p.value),
            "currency": p.currency,
            "outcome": str(p.outcome),
            "file": p.file,
            "line": p.line,
        }
        for dataset_id, items in purchases.items()
        for p in items
    ]
    _insert_chunks(conn, _PURCHASES, rows)
    return len(rows)


def load_purchases(conn: Connection, dataset_id: str, since: float) -> list[Purchase]:
    """The stored Purchases of ``dataset_id`` with ``event_time`` at or after ``since``,
    in the order they were logged."""
    query = (
        select(_PURCHASES)
        .where(_PURCHASES.c.dataset_id == dataset_id, _PURCHASES.c.event_time >= since)
        .order_by(_PURCHASES.c.id)
    )
    return [
        Purchase(
            file=r["file"],
            line=int(r["line"]),
            key=r["order_key"],
            event_id=r["event_id"],
            event_time=float(r["event_time"]),
            value=_decimal(r["value"]),
            currency=r["currency"],
            outcome=Outcome(r["outcome"]),
        )
        for r in conn.execute(query).mappings()
    ]


def prune_purchases(conn: Connection, dataset_id: str, before: float) -> None:
    conn.execute(
        delete(_PURCHASES).where(
            _PURCHASES.c.dataset_id == dataset_id, _PURCHASES.c.event_time < before
        )
    )


def logs_since(conn: Connection, dataset_id: str) -> float | None:
    """The start of the earliest hour with a delivery of ``dataset_id`` in the store's
    rollups: where its logs, as far as the store knows them, begin."""
    hour = conn.execute(
        select(func.min(_ROLLUPS.c.hour)).where(_ROLLUPS.c.dataset_id == dataset_id)
    ).scalar()
    return None if hour is None else float(hour)


# --- funnel ----------------------------------------------------------------------------


def save_funnel_hours(conn: Connection, rows: Sequence[FunnelHour], updated_at: float) -> None:
    """Write each hour of ``rows`` (replacing the stored counts of that dataset and hour);
    an ``orders_paid`` of ``None`` keeps whatever count the hour had."""
    by_dataset: dict[str, list[FunnelHour]] = {}
    for row in rows:
        by_dataset.setdefault(row.dataset_id, []).append(row)
    for dataset_id, hours in by_dataset.items():
        query = select(_FUNNEL.c.id, _FUNNEL.c.hour).where(
            _FUNNEL.c.dataset_id == dataset_id,
            _FUNNEL.c.hour >= min(h.hour for h in hours),
            _FUNNEL.c.hour <= max(h.hour for h in hours),
        )
        stored = {int(r["hour"]): int(r["id"]) for r in conn.execute(query).mappings()}
        new = []
        for h in hours:
            values: dict[str, Any] = {
                "purchases_sent": h.purchases_sent,
                "purchases_accepted": h.purchases_accepted,
                "purchases_unconfirmed": h.purchases_unconfirmed,
                "updated_at": updated_at,
            }
            if h.orders_paid is not None:
                values["orders_paid"] = h.orders_paid
            row_id = stored.get(h.hour)
            if row_id is None:
                new.append(
                    {"dataset_id": dataset_id, "hour": h.hour, "orders_paid": None, **values}
                )
            else:
                conn.execute(update(_FUNNEL).where(_FUNNEL.c.id == row_id).values(**values))
        _insert_chunks(conn, _FUNNEL, new)


def load_funnel_hours(conn: Connection, since: float, until: float) -> list[FunnelHour]:
    """Every dataset's funnel hours starting in ``[since, until)``, oldest first."""
    query = (
        select(_FUNNEL)
        .where(_FUNNEL.c.hour >= since, _FUNNEL.c.hour < until)
        .order_by(_FUNNEL.c.dataset_id, _FUNNEL.c.hour)
    )
    return [
        FunnelHour(
            r["dataset_id"],
            int(r["hour"]),
            None if r["orders_paid"] is None else int(r["orders_paid"]),
            int(r["purchases_sent"]),
            int(r["purchases_accepted"]),
            int(r["purchases_unconfirmed"]),
        )
        for r in conn.execute(query).mappings()
    ]

"""Notification deliveries in the store (tables ``outbox`` and ``notify_deliveries``):
the queries of ``monitor.notify.sender``, which decides what they mean.

Every function takes a ``Connection``: the caller owns the transaction (a claim is its
own short write transaction; reads need none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, case, exists, func, insert, select, update

from monitor.store.tables.core import metadata
from monitor.store.tables.notify import DeliveryState

OUTBOX: Table = metadata.tables["outbox"]
DELIVERIES: Table = metadata.tables["notify_deliveries"]
OPEN_STATES = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)

Row = Mapping[Any, Any]  # a result row (RowMapping)


def unplanned_outbox(conn: Connection, limit: int) -> Sequence[Row]:
    """The oldest ``limit`` outbox rows that have no delivery rows yet."""
    has_delivery = exists().where(DELIVERIES.c.outbox_id == OUTBOX.c.id)
    query = select(OUTBOX).where(~has_delivery).order_by(OUTBOX.c.id).limit(limit)
    return conn.execute(query).mappings().all()


def insert_deliveries(conn: Connection, values: Sequence[Mapping[str, Any]]) -> None:
    if values:
        conn.execute(insert(DELIVERIES), list(values))


def queued_notifiers(conn: Connection) -> list[str]:
    """The notifiers with open (pending or sending) deliveries, sorted."""
    query = select(DELIVERIES.c.notifier).where(DELIVERIES.c.state.in_(OPEN_STATES))
    return sorted(set(conn.execute(query.distinct()).scalars()))


def open_deliveries(conn: Connection, notifier: str) -> list[Row]:
    """``notifier``'s open deliveries in outbox order, each with its outbox row's
    ``key``, ``dataset_id``, ``payload`` and ``queued_at`` (the outbox row's time)."""
    query = (
        select(
            DELIVERIES,
            OUTBOX.c.key,
            OUTBOX.c.dataset_id,
            OUTBOX.c.payload,
            OUTBOX.c.created_at.label("queued_at"),
        )
        .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.outbox_id)
        .where(DELIVERIES.c.notifier == notifier, DELIVERIES.c.state.in_(OPEN_STATES))
        .order_by(DELIVERIES.c.outbox_id, DELIVERIES.c.id)
    )
    return list(conn.execute(query).mappings().all())


def claim_delivery(conn: Connection, row: Row, now: float, lease: float) -> bool:
    """Compare-and-set delivery ``row`` to ``sending`` for ``lease`` seconds; ``False``
    when its state or attempt count changed since it was read."""
    stmt = (
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id == row["id"],
            DELIVERIES.c.state == row["state"],
            DELIVERIES.c.attempts == row["attempts"],
        )
        .values(
            state=DeliveryState.SENDING.value,
            attempts=DELIVERIES.c.attempts + 1,
            last_attempt_at=now,
            next_attempt_at=now + lease,
        )
    )
    return bool(conn.execute(stmt).rowcount == 1)


def update_delivery(conn: Connection, delivery_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values))


def sent_before(conn: Connection, row: Row, limit: int) -> Sequence[Row]:
    """Messages sent earlier by ``row``'s notifier to its target about its dataset
    (``payload``, ``external_ref``, ``sent_at``, ``min_severity``), newest first."""
    query = (
        select(OUTBOX.c.payload, DELIVERIES.c.external_ref, DELIVERIES.c.sent_at,
               DELIVERIES.c.min_severity)
        .join(OUTBOX, OUTBOX.c.id == DELIVERIES.c.outbox_id)
        .where(
            DELIVERIES.c.notifier == row["notifier"],
            DELIVERIES.c.state == DeliveryState.SENT.value,
            DELIVERIES.c.external_ref.is_not(None),
            DELIVERIES.c.target.is_not_distinct_from(row["target"]),
            OUTBOX.c.dataset_id == row["dataset_id"],
            OUTBOX.c.id < row["outbox_id"],
        )
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    return conn.execute(query).mappings().all()


def count_open(conn: Connection) -> int:
    query = select(func.count()).where(DELIVERIES.c.state.in_(OPEN_STATES))
    return int(conn.execute(query).scalar_one())


def notifier_totals(conn: Connection) -> dict[str, tuple[Any, ...]]:
    """Per notifier with deliveries: (last ``sent_at``, open count, failed count, oldest
    open ``created_at``)."""
    d = DELIVERIES.c
    is_open = d.state.in_(OPEN_STATES)
    totals = select(
        d.notifier,
        func.max(d.sent_at),
        func.sum(case((is_open, 1), else_=0)),
        func.sum(case((d.state == DeliveryState.FAILED.value, 1), else_=0)),
        func.min(case((is_open, d.created_at))),
    ).group_by(d.notifier)
    return {r[0]: tuple(r[1:]) for r in conn.execute(totals)}


def latest_errors(
    conn: Connection, notifiers: Iterable[str]
) -> dict[str, tuple[str | None, float | None]]:
    """Per notifier: its latest recorded error and when, ``(None, None)`` if none."""
    d = DELIVERIES.c
    out: dict[str, tuple[str | None, float | None]] = {}
    for notifier in notifiers:
        query = (
            select(d.last_error, d.last_error_at)
            .where(d.notifier == notifier, d.last_error_at.is_not(None))
            .order_by(d.last_error_at.desc(), d.id.desc())
            .limit(1)
        )
        row = conn.execute(query).first()
        out[notifier] = (row[0], row[1]) if row else (None, None)
    return out

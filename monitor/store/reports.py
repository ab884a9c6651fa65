"""Claims of weekly reports (table ``report_claims``): each week is delivered once.

A process that wants to send week ``2026-W47`` first *claims* it: an INSERT that the
unique ``week`` lets only one process win, even two daemons on one database. The winner
records each channel it delivered to (``record_delivery``) and then the outcome
(``finish``). Everybody else leaves the week alone, so a restart never sends a week
twice. A claim is taken over only when its holder cannot be working on it any more:

- ``claimed`` for longer than ``LEASE`` (the process died mid-way): taken over, and only
  the channels not yet recorded are sent again;
- ``failed`` (SMTP or Slack refused or was down) with fewer than ``MAX_ATTEMPTS``
  attempts, ``RETRY_AFTER`` × attempts after the last one.

Take-overs are compare-and-set updates on the state and attempt count, so two processes
never take over the same claim either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.mask import scrub_text
from monitor.store.db import Store, store_errors, write_connection
from monitor.store.tables.core import metadata

LEASE = 1800.0  # seconds a claim protects a week being generated and sent
MAX_ATTEMPTS = 5
RETRY_AFTER = 600.0  # seconds, times the attempts so far, between two tries of a week
_T: Table = metadata.tables["report_claims"]


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # a process is generating and sending it
    SENT = "sent"  # every configured channel got it
    FAILED = "failed"  # a channel failed; retried up to MAX_ATTEMPTS
    SKIPPED = "skipped"  # nothing to report (no data before the week ended), or too old


@dataclass(frozen=True, slots=True)
class Claim:
    week: str
    state: ClaimState
    claimed_at: float
    claimed_by: str
    attempts: int
    updated_at: float
    sent_at: float | None
    error: str | None
    deliveries: dict[str, Any]


def _claim(row: Mapping[Any, Any]) -> Claim:
    return Claim(
        week=row["week"],
        state=ClaimState(row["state"]),
        claimed_at=float(row["claimed_at"]),
        claimed_by=row["claimed_by"],
        attempts=int(row["attempts"]),
        updated_at=float(row["updated_at"]),
        sent_at=None if row["sent_at"] is None else float(row["sent_at"]),
        error=row["error"],
        deliveries=dict(row["deliveries"] or {}),
    )


@contextmanager
def _transaction(store: Store) -> Iterator[Connection]:
    """One write transaction (SQLite's write lock taken up front, see ``monitor.store.db``)."""
    with (
        store_errors("write to", store.engine.url),
        write_connection(store.engine) as conn,
        conn.begin(),
    ):
        yield conn


def _read(conn: Connection, week: str) -> Claim | None:
    row = conn.execute(select(_T).where(_T.c.week == week)).mappings().first()
    return None if row is None else _claim(row)


def _stale(c: Claim, now: float) -> bool:
    if c.state is ClaimState.CLAIMED:
        return c.claimed_at <= now - LEASE
    if c.state is ClaimState.FAILED:
        return c.attempts < MAX_ATTEMPTS and c.updated_at <= now - RETRY_AFTER * c.attempts
    return False


def claim_week(store: Store, week: str, owner: str, now: float) -> Claim | None:
    """Claim ``week`` for ``owner``; the claim, or ``None`` if another holds or finished it."""
    insert = postgresql.insert if store.engine.dialect.name == "postgresql" else sqlite.insert
    values = {
        "week": week, "claimed_at": now, "claimed_by": owner, "state": ClaimState.CLAIMED.value,
        "attempts": 1, "updated_at": now, "deliveries": {},
    }  # fmt: skip
    stmt = insert(_T).values(**values).on_conflict_do_nothing(index_elements=[_T.c.week])
    with _transaction(store) as conn:
        if conn.execute(stmt).rowcount:
            return _read(conn, week)
        current = _read(conn, week)
        if current is None or not _stale(current, now):
            return None
        taken = conn.execute(
            update(_T)
            .where(
                _T.c.week == week,
                _T.c.state == current.state.value,
                _T.c.attempts == current.attempts,
            )
            .values(
                state=ClaimState.CLAIMED.value,
                claimed_at=now,
                claimed_by=owner,
                attempts=current.attempts + 1,
                updated_at=now,
            )
        )
        return _read(conn, week) if taken.rowcount else None


def record_delivery(
    store: Store, week: str, owner: str, channel: str, ref: Any, now: float
) -> None:
    """Note that ``channel`` got ``week`` (``ref``: the message id or path), at once: a
    crash after this never sends that channel again."""
    with _transaction(store) as conn:
        current = _read(conn, week)
        if current is None or current.claimed_by != owner:
            return
        deliveries = {**current.deliveries, channel: {"at": now, "ref": ref}}
        conn.execute(
            update(_T)
            .where(_T.c.week == week, _T.c.claimed_by == owner)
            .values(deliveries=deliveries, updated_at=now)
        )


def finish(
    store: Store, week: str, owner: str, state: ClaimState, now: float, error: str | None = None
) -> None:
    """Record the outcome of ``owner``'s claim on ``week`` (``error``: one line, scrubbed)."""
    values: dict[str, Any] = {"state": state.value, "updated_at": now, "error": None}
    if state is ClaimState.SENT:
        values["sent_at"] = now
    if error:
        values["error"] = scrub_text(" ".join(error.split()))[:300]
    with _transaction(store) as conn:
        conn.execute(update(_T).where(_T.c.week == week, _T.c.claimed_by == owner).values(**values))


def claims(store: Store) -> list[Claim]:
    """Every claim, oldest week first."""
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return [_claim(r) for r in conn.execute(select(_T).order_by(_T.c.week)).mappings()]


def get_claim(store: Store, week: str) -> Claim | None:
    with store_errors("read", store.engine.url), store.engine.connect() as conn:
        return _read(conn, week)

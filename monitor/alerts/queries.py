"""Alert rows <-> lifecycle records, the outbox insert, and the read-only queries other
parts use: ``open_alerts`` (status), ``alert_episodes`` (backtest, weekly report).

Everything here takes an ``Engine`` (opens its own connection) or, where it says so, a
``Connection`` inside the caller's transaction. Database failures become ``StoreError``
with the URL's password masked. Text is scrubbed again on its way into a row: the
checks mask examples already, this is the last line of defence (as ``monitor.store.db``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from monitor.alerts.lifecycle import AlertRecord, Seen
from monitor.alerts.model import AlertKey, AlertState, Notification
from monitor.mask import scrub_deep, scrub_secrets
from monitor.model.findings import Example, Severity
from monitor.store.db import store_errors
from monitor.store.tables.alerts import AlertRow, OutboxRow
from monitor.timeutil import iso_utc

ALERTS = AlertRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
OPEN_STATES = (str(AlertState.PENDING), str(AlertState.FIRING))


# --- alert rows ------------------------------------------------------------------------


def _severity(value: str | None) -> Severity | None:
    return None if value is None else Severity(value)


def record_values(r: AlertRecord) -> dict[str, Any]:
    """The ``alerts`` row of a record (text scrubbed)."""
    c = r.content
    return {
        "fingerprint": r.key.fingerprint,
        "dataset_id": r.key.dataset_id,
        "check_id": r.key.check,
        "code": r.key.code,
        "event_name": r.key.event_name,
        "instance": r.key.instance,
        "state": str(r.state),
        "severity": str(r.severity),
        "peak_severity": str(r.peak_severity),
        "started_at": r.started_at,
        "fired_at": r.fired_at,
        "resolved_at": r.resolved_at,
        "last_seen_at": r.last_seen_at,
        "seen_cycles": r.seen_cycles,
        "clean_cycles": r.clean_cycles,
        "notified_severity": None if r.notified_severity is None else str(r.notified_severity),
        "last_notified_at": r.last_notified_at,
        "muted_by": r.muted_by,
        "flapping": r.flapping,
        "flaps": r.flaps,
        "count": c.count,
        "message": scrub_secrets(c.message),
        "remediation": scrub_secrets(c.remediation),
        "evidence": scrub_deep(dict(c.evidence)),
        "examples": scrub_deep([e.to_dict() for e in c.examples]),
    }


def record_from_row(row: Mapping[Any, Any]) -> AlertRecord:
    """The lifecycle record of an ``alerts`` row."""
    key = AlertKey(
        row["dataset_id"], row["check_id"], row["code"], row["event_name"], row["instance"]
    )
    severity = Severity(row["severity"])
    content = Seen(
        key=key,
        severity=severity,
        count=int(row["count"]),
        message=row["message"],
        remediation=row["remediation"],
        evidence=dict(row["evidence"] or {}),
        examples=tuple(Example(e["file"], int(e["line"]), e["value"]) for e in row["examples"]),
    )
    return AlertRecord(
        key=key,
        state=AlertState(row["state"]),
        severity=severity,
        peak_severity=Severity(row["peak_severity"]),
        started_at=float(row["started_at"]),
        last_seen_at=float(row["last_seen_at"]),
        content=content,
        seen_cycles=int(row["seen_cycles"]),
        clean_cycles=int(row["clean_cycles"]),
        fired_at=row["fired_at"],
        resolved_at=row["resolved_at"],
        notified_severity=_severity(row["notified_severity"]),
        last_notified_at=row["last_notified_at"],
        muted_by=row["muted_by"],
        flapping=bool(row["flapping"]),
        flaps=int(row["flaps"] or 0),
        id=int(row["id"]),
    )


def load_open(conn: Connection, dataset_ids: Sequence[str]) -> dict[AlertKey, AlertRecord]:
    """The open (pending or firing) alerts of ``dataset_ids``, by key, read on ``conn``."""
    query = select(ALERTS).where(
        ALERTS.c.dataset_id.in_(list(dataset_ids)), ALERTS.c.state.in_(OPEN_STATES)
    )
    records = (record_from_row(r) for r in conn.execute(query.order_by(ALERTS.c.id)).mappings())
    # Later rows win should a key ever have two open rows (one writer makes that moot).
    return {r.key: r for r in records}


def load_resolved_since(
    conn: Connection, dataset_ids: Sequence[str], since: float
) -> dict[AlertKey, AlertRecord]:
    """Per key, the latest episode of ``dataset_ids`` that fired and resolved at or after
    ``since`` (what a flapping alert reopens), read on ``conn``."""
    query = select(ALERTS).where(
        ALERTS.c.dataset_id.in_(list(dataset_ids)),
        ALERTS.c.state == str(AlertState.RESOLVED),
        ALERTS.c.fired_at.is_not(None),
        ALERTS.c.resolved_at >= since,
    )
    rows = conn.execute(query.order_by(ALERTS.c.resolved_at, ALERTS.c.id)).mappings()
    return {r.key: r for r in (record_from_row(row) for row in rows)}


def load_open_fleet(conn: Connection, code: str) -> dict[AlertKey, AlertRecord]:
    """The open fleet alerts (no dataset) of ``code``, by key, read on ``conn``."""
    query = select(ALERTS).where(
        ALERTS.c.dataset_id.is_(None), ALERTS.c.code == code, ALERTS.c.state.in_(OPEN_STATES)
    )
    records = (record_from_row(r) for r in conn.execute(query.order_by(ALERTS.c.id)).mappings())
    return {r.key: r for r in records}


def save(conn: Connection, prev: AlertRecord | None, nxt: AlertRecord | None) -> None:
    """Write one decision: insert a new episode, update it, or delete a dropped pending
    row. ``prev`` must be the stored open record (with its ``id``) or ``None``."""
    if nxt is None:
        if prev is not None and prev.id is not None:
            conn.execute(delete(ALERTS).where(ALERTS.c.id == prev.id))
        return
    if nxt == prev:
        return
    if nxt.id is None:
        conn.execute(insert(ALERTS).values(**record_values(nxt)))
    else:
        conn.execute(update(ALERTS).where(ALERTS.c.id == nxt.id).values(**record_values(nxt)))


# --- outbox ----------------------------------------------------------------------------


def insert_outbox(conn: Connection, notification: Notification) -> bool:
    """Queue ``notification`` unless a row with its key exists; True if it was written.

    Insert-or-ignore on the unique ``key``: replaying a cycle never queues it twice."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(OUTBOX).values(
        key=notification.key,
        dataset_id=notification.dataset_id,
        created_at=notification.created_at,
        payload=scrub_deep(notification.to_dict()),
    )
    result = conn.execute(stmt.on_conflict_do_nothing(index_elements=[OUTBOX.c.key]))
    return bool(result.rowcount)


# --- read-only queries -----------------------------------------------------------------


@contextmanager
def _reading(bind: Engine | Connection) -> Iterator[Connection]:
    with store_errors("read", bind):
        if isinstance(bind, Connection):
            yield bind
        else:
            with bind.connect() as conn:
                yield conn


def open_alerts(
    bind: Engine | Connection, *, dataset_id: str | None = None, firing_only: bool = False
) -> list[AlertRecord]:
    """Pending and firing alerts (only firing ones with ``firing_only``), oldest first."""
    states = [str(AlertState.FIRING)] if firing_only else list(OPEN_STATES)
    query = select(ALERTS).where(ALERTS.c.state.in_(states))
    if dataset_id is not None:
        query = query.where(ALERTS.c.dataset_id == dataset_id)
    with _reading(bind) as conn:
        rows = conn.execute(query.order_by(ALERTS.c.started_at, ALERTS.c.id)).mappings()
        return [record_from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class AlertEpisode:
    """One firing episode: from the evaluation at which it fired to the one at which it
    resolved (``resolved_at`` ``None``: still firing). ``severity``: its peak."""

    fingerprint: str
    dataset_id: str
    check: str
    code: str
    event_name: str | None
    severity: Severity
    fired_at: float
    resolved_at: float | None
    # The alert's last message and evidence (what it said when last seen): not in
    # ``to_dict`` (the contract's entry), nor in equality and hashing (an episode is its
    # firing); ``capi-monitor backtest --explain`` prints them.
    message: str = field(default="", compare=False)
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The backtest entry (docs/contracts.md §4): times as ISO 8601 with offset."""
        return {
            "fired_at": iso_utc(self.fired_at, zulu=False),
            "resolved_at": None
            if self.resolved_at is None
            else iso_utc(self.resolved_at, zulu=False),
            "dataset_id": self.dataset_id,
            "code": self.code,
            "event_name": self.event_name,
            "severity": str(self.severity),
            "check": self.check,
            "fingerprint": self.fingerprint,
        }


def alert_episodes(
    bind: Engine | Connection,
    *,
    fired_from: float | None = None,
    fired_to: float | None = None,
    dataset_id: str | None = None,
) -> list[AlertEpisode]:
    """Episodes whose ``fired_at`` is in [``fired_from``, ``fired_to``), by firing time.

    Repeats add no episodes; pending alerts that never fired are not episodes."""
    query = select(ALERTS).where(ALERTS.c.fired_at.is_not(None))
    if fired_from is not None:
        query = query.where(ALERTS.c.fired_at >= fired_from)
    if fired_to is not None:
        query = query.where(ALERTS.c.fired_at < fired_to)
    if dataset_id is not None:
        query = query.where(ALERTS.c.dataset_id == dataset_id)
    with _reading(bind) as conn:
        rows = conn.execute(query.order_by(ALERTS.c.fired_at, ALERTS.c.id)).mappings()
        return [_episode(r) for r in rows]


def _episode(row: Mapping[Any, Any]) -> AlertEpisode:
    return AlertEpisode(
        fingerprint=row["fingerprint"],
        dataset_id=row["dataset_id"],
        check=row["check_id"],
        code=row["code"],
        event_name=row["event_name"],
        severity=Severity(row["peak_severity"]),
        fired_at=float(row["fired_at"]),
        resolved_at=None if row["resolved_at"] is None else float(row["resolved_at"]),
        message=row["message"],
        evidence=dict(row["evidence"] or {}),
    )

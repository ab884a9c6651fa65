"""Silences: operator mutes with a matcher and an end (``capi-monitor silence``, docs/daemon.md).

A silence matches the alerts of one dataset, narrowed by a finding code and/or an event
name when given (``None`` matches any). It is active while ``created_at <= now < ends_at``
and stops muting by itself at ``ends_at``: nothing has to run to expire it. Expiring one
early moves ``ends_at`` to that moment (the row stays, for the record). A silenced alert
keeps its lifecycle; when the silence ends while it still fires it is notified as new
(``monitor.alerts.lifecycle``).

The reason is free text typed by an operator: it is scrubbed (emails, phones, tokens
masked) before it is stored. The author is ``$USER`` or ``"cli"``.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from monitor.alerts.model import AlertKey
from monitor.errors import CapiMonitorError
from monitor.mask import scrub_text
from monitor.store.db import store_errors
from monitor.store.tables.alerts import SilenceRow
from monitor.timeutil import iso_utc

MAX_REASON = 500
SILENCE_PREFIX = "silence:"
_T = SilenceRow.__table__  # type: ignore[attr-defined]


class SilenceError(CapiMonitorError):
    """A silence cannot be created or found (bad matcher, duration, unknown id)."""


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    dataset_id: str
    code: str | None
    event_name: str | None
    created_at: float
    ends_at: float
    reason: str
    author: str

    def active(self, now: float) -> bool:
        return self.created_at <= now < self.ends_at

    def matches(self, key: AlertKey) -> bool:
        """Whether the matcher covers ``key`` (activity is checked separately)."""
        return (
            key.dataset_id == self.dataset_id
            and self.code in (None, key.code)
            and self.event_name in (None, key.event_name)
        )

    def describe(self) -> str:
        """One line for a terminal: matcher, end and reason (already scrubbed)."""
        what = f"dataset {self.dataset_id}, code {self.code or 'any'}, "
        what += f"event {self.event_name or 'any'}"
        return f"{what}, until {iso_utc(float(int(self.ends_at)))} ({self.reason})"

    @property
    def muted_by(self) -> str:
        """The ``AlertRecord.muted_by`` value of an alert this silence mutes."""
        return f"{SILENCE_PREFIX}{self.id}"


_FIELDS = tuple(f.name for f in dc.fields(Silence))


def silence_for(key: AlertKey, silences: Iterable[Silence], now: float) -> Silence | None:
    """The active silence that mutes ``key`` longest, if any (pure)."""
    matching = [s for s in silences if s.active(now) and s.matches(key)]
    return max(matching, key=lambda s: (s.ends_at, s.id), default=None)


def silence_id(muted_by: str | None) -> int | None:
    """The silence id in a ``muted_by`` value, ``None`` when not muted by a silence."""
    if muted_by is None or not muted_by.startswith(SILENCE_PREFIX):
        return None
    return int(muted_by.removeprefix(SILENCE_PREFIX))


# --- rows ------------------------------------------------------------------------------


def _from_row(row: Mapping[Any, Any]) -> Silence:
    return Silence(
        id=int(row["id"]),
        dataset_id=row["dataset_id"],
        code=row["code"],
        event_name=row["event_name"],
        created_at=float(row["created_at"]),
        ends_at=float(row["ends_at"]),
        reason=row["reason"],
        author=row["author"],
    )


def load_active(conn: Connection, now: float) -> list[Silence]:
    """Active silences, read on ``conn`` (inside the caller's transaction)."""
    query = select(_T).where(_T.c.created_at <= now, _T.c.ends_at > now).order_by(_T.c.id)
    return [_from_row(r) for r in conn.execute(query).mappings()]


def _validate(dataset_id: str, duration: float, reason: str) -> None:
    if not dataset_id.strip():
        raise SilenceError("a silence needs a dataset id")
    if not duration > 0:
        raise SilenceError("a silence needs a positive duration (e.g. --for 2h)")
    if not reason.strip():
        raise SilenceError("a silence needs a reason")


# --- public API ------------------------------------------------------------------------


def add_silence(
    engine: Engine,
    *,
    dataset_id: str,
    duration: float,
    reason: str,
    author: str,
    now: float,
    code: str | None = None,
    event_name: str | None = None,
) -> Silence:
    """Create a silence active from ``now`` for ``duration`` seconds; returns it."""
    _validate(dataset_id, duration, reason)
    silence = Silence(
        id=0,
        dataset_id=dataset_id.strip(),
        code=code or None,
        event_name=event_name or None,
        created_at=now,
        ends_at=now + duration,
        reason=scrub_text(reason.strip())[:MAX_REASON],
        author=scrub_text(author)[:100] or "cli",
    )
    values = {f: getattr(silence, f) for f in _FIELDS if f != "id"}
    with store_errors("write to", engine), engine.begin() as conn:
        key = conn.execute(insert(_T).values(**values)).inserted_primary_key
    if key is None:  # pragma: no cover - every supported backend reports the new id
        raise SilenceError("the database did not return the new silence's id")
    return dc.replace(silence, id=int(key[0]))


def list_silences(engine: Engine, now: float, *, include_expired: bool = False) -> list[Silence]:
    """Silences by id: the active ones and those still to start, or every one."""
    query = select(_T).order_by(_T.c.id)
    if not include_expired:
        query = query.where(_T.c.ends_at > now)
    with store_errors("read", engine), engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def silences_between(engine: Engine, since: float, until: float) -> list[Silence]:
    """Silences in force at some moment of ``[since, until)``, by id."""
    query = select(_T).where(_T.c.created_at < until, _T.c.ends_at > since).order_by(_T.c.id)
    with store_errors("read", engine), engine.connect() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def active_silences(engine: Engine, now: float) -> list[Silence]:
    """The silences muting alerts at ``now``."""
    with store_errors("read", engine), engine.connect() as conn:
        return load_active(conn, now)


def expire_silence(engine: Engine, silence_id: int, now: float) -> bool:
    """End silence ``silence_id`` at ``now``. True if it was still running, False if it had
    already ended; ``SilenceError`` if there is no such silence."""
    # The UPDATE comes first: on SQLite a transaction that writes before it reads cannot
    # deadlock with the daemon's writer (the busy timeout applies).
    stmt = update(_T).where(_T.c.id == silence_id, _T.c.ends_at > now).values(ends_at=now)
    with store_errors("write to", engine), engine.begin() as conn:
        if conn.execute(stmt).rowcount:
            return True
        exists = conn.execute(select(_T.c.id).where(_T.c.id == silence_id)).first()
    if exists is None:
        raise SilenceError(f"no silence with id {silence_id}")
    return False

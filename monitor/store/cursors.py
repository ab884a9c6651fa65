"""Log cursors in the store (table ``log_cursors``): loaded before a logs cycle, saved in
its transaction (``monitor.sources.logs.tail`` decides what they hold).

Every function takes the caller's ``Connection``: cursors move together with whatever
the cycle did with the lines they cover. In a fleet each instance has its own cursors
(each reads the files of its own host); rows written before fleet mode belong to no
instance yet, and the first instance to load them takes them over.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from monitor.model.cursors import Cursor
from monitor.store.tables.core import metadata

_TABLE: Table = metadata.tables["log_cursors"]
_COLUMNS = tuple(c.name for c in _TABLE.columns if c.name not in ("id", "instance"))


def _values(cursor: Cursor) -> dict[str, Any]:
    return {name: getattr(cursor, name) for name in _COLUMNS}


def load_cursors(conn: Connection, instance: str | None = None) -> list[Cursor]:
    """The cursors of ``instance`` (and those of no instance yet), active and retired,
    oldest first; every stored cursor when ``instance`` is ``None``."""
    query = select(_TABLE).order_by(_TABLE.c.id)
    if instance is not None:
        query = query.where(or_(_TABLE.c.instance == instance, _TABLE.c.instance.is_(None)))
    rows = conn.execute(query).mappings()
    return [Cursor(id=r["id"], **{name: r[name] for name in _COLUMNS}) for r in rows]


def save_cursors(
    conn: Connection,
    cursors: Iterable[Cursor],
    retired_before: float,
    instance: str | None = None,
) -> None:
    """Write ``instance``'s ``dirty`` cursors (new ones get their id; every cursor loaded
    without an instance is claimed) and delete its rows retired before
    ``retired_before``."""
    for cursor in cursors:
        if not cursor.dirty:
            continue
        values = {**_values(cursor), "instance": instance}
        if cursor.id is None:
            key = conn.execute(insert(_TABLE).values(**values)).inserted_primary_key
            cursor.id = int(key[0]) if key else None
        else:
            conn.execute(update(_TABLE).where(_TABLE.c.id == cursor.id).values(**values))
        cursor.dirty = False
    if instance is not None:
        unclaimed = _TABLE.c.instance.is_(None)
        conn.execute(update(_TABLE).where(unclaimed).values(instance=instance))
    mine = _TABLE.c.instance == instance if instance is not None else _TABLE.c.instance.is_(None)
    conn.execute(delete(_TABLE).where(_TABLE.c.retired_at < retired_before, mine))

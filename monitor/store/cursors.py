"""Log cursors in the store (table ``log_cursors``): loaded before a logs cycle, saved in
its transaction (``monitor.sources.logs.tail`` decides what they hold).

Every function takes the caller's ``Connection``: cursors move together with whatever
the cycle did with the lines they cover.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from monitor.model.cursors import Cursor
from monitor.store.tables.core import metadata

_TABLE: Table = metadata.tables["log_cursors"]
_COLUMNS = tuple(c.name for c in _TABLE.columns if c.name != "id")


def _values(cursor: Cursor) -> dict[str, Any]:
    return {name: getattr(cursor, name) for name in _COLUMNS}


def load_cursors(conn: Connection) -> list[Cursor]:
    """Every stored cursor, active and retired, oldest first."""
    rows = conn.execute(select(_TABLE).order_by(_TABLE.c.id)).mappings()
    return [Cursor(id=r["id"], **{name: r[name] for name in _COLUMNS}) for r in rows]


def save_cursors(conn: Connection, cursors: Iterable[Cursor], retired_before: float) -> None:
    """Write the ``dirty`` cursors (new ones get their id) and delete the rows retired
    before ``retired_before``."""
    for cursor in cursors:
        if not cursor.dirty:
            continue
        if cursor.id is None:
            key = conn.execute(insert(_TABLE).values(**_values(cursor))).inserted_primary_key
            cursor.id = int(key[0]) if key else None
        else:
            conn.execute(update(_TABLE).where(_TABLE.c.id == cursor.id).values(**_values(cursor)))
        cursor.dirty = False
    conn.execute(delete(_TABLE).where(_TABLE.c.retired_at < retired_before))

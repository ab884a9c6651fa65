"""The store's schema: the newest migration, creating a new database, migrating an old one.

``migrate(engine)`` (called by ``monitor.store.db.Store.open``) brings a database to the
newest migration in one write transaction: a database without tables is created from
the table classes (``metadata.create_all``) and stamped, any other is migrated by
Alembic. Telling whether a database is already at head needs no Alembic import.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    inspect,
)

from monitor.errors import StoreError
from monitor.store.db import store_errors, write_connection
from monitor.store.tables.core import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*[\"']?(\w+)", re.MULTILINE)


def schema_head() -> str | None:
    """The newest migration id, read from the migration files without importing Alembic
    (whose import costs ~0.3 s on every command); None if it cannot be told."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("v*.py"):
        for kind, rev in _REVISION_LINE.findall(path.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else parents).add(rev)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_revision(engine: Engine, head: str | None) -> bool:
    """Whether the database is already at ``head`` (the common case: nothing to migrate)."""
    if head is None:
        return False
    with engine.connect() as conn:
        if not conn.dialect.has_table(conn, "alembic_version"):
            return False
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [r[0] for r in rows] == [head]


def is_at_head(engine: Engine) -> bool:
    """Whether the database's schema is the newest migration (read only, no migrating)."""
    return _at_revision(engine, schema_head())


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the store's migrations, bound to ``connection`` if given.

    New migration (developers): ``command.revision(alembic_config(conn), "add x",
    autogenerate=True)`` with ``conn`` on a database at head, then review the file.
    """
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolates "%": escape it in the path.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _check_known_revision(conn: Connection, script: ScriptDirectory) -> None:
    from alembic.runtime.migration import MigrationContext

    known = {s.revision for s in script.walk_revisions()}
    for rev in MigrationContext.configure(conn).get_current_heads():
        if rev not in known:
            raise StoreError(
                f"database schema {rev} is newer than this capi-monitor "
                f"(it knows up to {script.get_current_head()}); upgrade capi-monitor"
            )


# Alembic's own version table, as ``alembic stamp`` creates it (name, type, key name).
_ALEMBIC_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _create_fresh(engine: Engine, head: str) -> bool:
    """On a database without any table: create the tables of ``metadata`` and stamp
    ``head``, in one write transaction; False (nothing done) if it has any table.

    Equivalent to running every migration (``tests/store``: the two schemas are compared
    table by table) without importing Alembic and replaying its history: ~0.15 s less
    for each new database (a CI job's audit, a benchmark)."""
    with write_connection(engine) as conn, conn.begin():
        if inspect(conn).get_table_names():
            return False
        metadata.create_all(conn)
        _ALEMBIC_VERSION.create(conn)
        conn.execute(insert(_ALEMBIC_VERSION).values(version_num=head))
    return True


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration, in one write transaction: a database
    without tables is created at head at once, any other is migrated by Alembic."""
    head = schema_head()
    if _at_revision(engine, head):
        return
    if head is not None:
        with store_errors("migrate", engine.url):
            if _create_fresh(engine, head):
                return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    with (
        store_errors("migrate", engine.url, (CommandError,)),
        write_connection(engine) as conn,
        conn.begin(),
    ):
        cfg = alembic_config(conn)
        _check_known_revision(conn, ScriptDirectory.from_config(cfg))
        command.upgrade(cfg, "head")

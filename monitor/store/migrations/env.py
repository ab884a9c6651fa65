"""Alembic environment: migrates the connection handed over by ``monitor.store.db``.

``config.attributes["connection"]`` is an open connection inside the caller's write
transaction (``Store.open``); without it, ``sqlalchemy.url`` is used (offline SQL
generation or a developer's ad-hoc run). Logging is left to the application.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from monitor.store.tables.core import metadata


def _configure(**kwargs: Any) -> None:
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead (SQLite only).
    context.configure(target_metadata=metadata, render_as_batch=True, compare_type=True, **kwargs)


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(url: str) -> None:
    _configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with_url(url: str) -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url to migrate")
    if context.is_offline_mode():
        _run_offline(url)
    else:
        _run_with_url(url)


run()

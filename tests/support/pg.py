"""PostgreSQL for the tests: the server named by ``CAPI_MONITOR_TEST_PG_URL``.

``.ci/run`` always gives one (``scripts/throwaway-pg`` starts a throwaway cluster when
none is reachable); without it, the PostgreSQL variants skip, saying why. Each test gets
a database of its own (``fresh_database``), created on that server and dropped after, so
tests never see each other's rows and two test runs can share one server.

``BACKENDS`` parametrizes a fixture over SQLite and PostgreSQL::

    @pytest.fixture(params=BACKENDS)
    def db(request, tmp_path): return database_url(request.param, tmp_path) ...
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("CAPI_MONITOR_TEST_PG_URL") or None
NO_PG = "CAPI_MONITOR_TEST_PG_URL is not set: no PostgreSQL to test on (.ci/run starts one)"

# Marks of a test (or a parameter) that runs on PostgreSQL.
ON_PG = (pytest.mark.postgres, pytest.mark.skipif(PG_URL is None, reason=NO_PG))
BACKENDS = ("sqlite", pytest.param("postgres", marks=ON_PG))


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards (with
    whatever connections are still open to it)."""
    assert PG_URL is not None, NO_PG
    name = f"capi_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL of ``backend`` (``sqlite``: a file under ``tmp_path``)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'capi.db'}"
        return
    with fresh_database() as url:
        yield url

"""Fixtures shared by the daemon's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.store import Store
from tests.support.pg import BACKENDS, database


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store on each backend: SQLite, and PostgreSQL when one is configured."""
    with database(request.param, tmp_path) as url, Store.open(url) as s:
        yield s

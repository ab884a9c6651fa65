"""Alembic migrations of the store (``env.py``, ``versions/``).

Run programmatically by ``monitor.store.schema.migrate``; no ``alembic.ini`` is needed. Each
file in ``versions/`` is one revision named ``vNNNN_<what>.py`` with ``revision = "NNNN"``.
Migrations are written for SQLite (batch mode) and PostgreSQL alike, and must leave the
schema equal to ``monitor.store.tables.core.metadata`` (checked by ``tests/store/test_store.py``).
"""

"""The store: audit runs, check results, findings and hourly rollups (SQLite or PostgreSQL).

``Store.open(url)`` opens and migrates; see ``monitor.store.db`` for the contract and
``monitor.store.tables.core`` for the schema conventions.
"""

from monitor.store.db import RollupMode, Store
from monitor.store.tables.core import AuditRun, CheckResultRow, FindingRow, RollupRow

__all__ = ["AuditRun", "CheckResultRow", "FindingRow", "RollupMode", "RollupRow", "Store"]

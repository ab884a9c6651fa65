"""Store tables of fleet mode (docs/contracts.md §11), on the shared ``metadata`` of
``monitor.store.tables.core`` (same conventions: Unix-seconds floats, JSON columns, no
customer data).

- ``instances``: one row per instance name. ``last_report_at`` is when it last finished
  a ``logs`` cycle; ``stopped_at`` is set when it stopped cleanly (SIGTERM/SIGINT) and
  cleared when it starts again. An instance that is not stopped and has not reported
  for ``[alerts] instance_stale`` is silent (``INSTANCE_SILENT``).
- ``instance_checks``: per instance, dataset and log check, the instance's latest
  verdict: when it last evaluated the check, over how many events, and the warn/crit
  findings it saw then (scrubbed, as ``findings`` rows are). Other instances add these
  standing findings to their own when they evaluate the fleet's alerts
  (``monitor.engine.fleet``).
- ``leases``: named leases (``notify``, ``job:graph`` ...) held by one instance until
  ``expires_at``; the holder renews its lease, another instance takes it once expired.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class InstanceRow(StoreModel, table=True):
    __tablename__ = "instances"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    last_report_at: float | None = None
    stopped_at: float | None = None


class InstanceCheckRow(StoreModel, table=True):
    __tablename__ = "instance_checks"
    __table_args__ = (
        UniqueConstraint("instance", "dataset_id", "check_id"),
        Index(None, "dataset_id", "evaluated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance: str
    dataset_id: str
    check_id: str
    evaluated_at: float
    events: int = Field(default=0, sa_type=BigInteger)
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class LeaseRow(StoreModel, table=True):
    __tablename__ = "leases"

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: float
    expires_at: float

"""Store tables of the alerts area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

- ``alerts``: one row per alert *episode* (pending -> firing -> resolved). The open
  episode of a fingerprint is its row whose ``state`` is not ``resolved``; a resolved
  alert that comes back starts a new row, so the rows with a ``fired_at`` are the
  episode history (``monitor.alerts.queries.alert_episodes``). A pending alert whose
  finding goes away before it fires leaves no row.
- ``silences``: operator mutes with a matcher (dataset, optional code and event name)
  and an end; expiring one moves ``ends_at`` to the moment of expiry.
- ``outbox``: one row per dataset per evaluation cycle that has something to say; the
  payload is ``monitor.alerts.model.Notification.to_dict()``. ``key`` is unique so a
  replayed cycle cannot queue the same notification twice. Rows are written in the
  transaction that changes the alerts, and drained by the notifiers (``monitor.notify``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint, false, text
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class AlertRow(StoreModel, table=True):
    """One alert episode. Labels identify it; the last seen finding content is kept so a
    repeat or a resolution can be shown without the finding (all text masked/scrubbed).

    ``state``/``severity`` columns hold ``AlertState``/``Severity`` values. See
    ``monitor.alerts.lifecycle.AlertRecord`` for the meaning of the counters.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(None, "fingerprint"),
        Index(None, "dataset_id", "state"),
        Index(None, "fired_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str
    dataset_id: str | None = None  # None: a fleet alert (INSTANCE_SILENT)
    check_id: str
    code: str
    event_name: str | None = None
    state: str
    severity: str
    peak_severity: str
    started_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_seen_at: float
    seen_cycles: int
    clean_cycles: int
    notified_severity: str | None = None
    last_notified_at: float | None = None
    muted_by: str | None = None
    count: int = Field(default=0, sa_type=BigInteger)
    message: str
    remediation: str
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    examples: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # Columns added by later migrations, last and with the server defaults those gave
    # them: a new database is created from these classes and must equal a migrated one.
    flapping: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    flaps: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    instance: str | None = None  # the instance an INSTANCE_SILENT alert is about


class SilenceRow(StoreModel, table=True):
    """A silence: mutes the alerts of ``dataset_id`` (and ``code``/``event_name`` when set)
    while ``created_at <= now < ends_at``. ``reason`` is scrubbed free text."""

    __tablename__ = "silences"
    __table_args__ = (Index(None, "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    code: str | None = None
    event_name: str | None = None
    created_at: float
    ends_at: float
    reason: str
    author: str


class OutboxRow(StoreModel, table=True):
    """One notification waiting to be delivered (``Notification.to_dict()`` as payload)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("key"), Index(None, "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    key: str
    dataset_id: str | None = None  # None: a fleet notification (INSTANCE_SILENT)
    created_at: float
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

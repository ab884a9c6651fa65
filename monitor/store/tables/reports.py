"""Store tables of the report area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

- ``report_claims``: one row per weekly report *week* (``2026-W47``), unique, so that
  of two daemons (or a daemon and its restart) only one ever delivers a week. The row
  is written before anything is generated (the claim) and then carries the outcome:
  ``state`` is a ``monitor.report.claims.ClaimState`` value, ``deliveries`` maps each
  channel that got the report (``email``, ``slack``, ``files``) to when it did, so a
  retry after a partial failure only sends what is missing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class ReportClaim(StoreModel, table=True):
    """The claim and delivery record of one weekly report.

    ``claimed_by`` names the process (host and pid) holding or last holding the claim;
    ``claimed_at`` is when it took it (a claim older than the lease whose ``state`` is
    still ``claimed`` belongs to a process that died). ``error`` is one scrubbed line.
    """

    __tablename__ = "report_claims"
    __table_args__ = (UniqueConstraint("week"), Index(None, "state"))

    id: int | None = Field(default=None, primary_key=True)
    week: str
    claimed_at: float
    claimed_by: str
    state: str
    attempts: int = 0
    updated_at: float
    sent_at: float | None = None
    error: str | None = None
    deliveries: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

"""The store's tables (SQLModel, ``table=True``). Schema changes go through a migration.

Conventions, for every table here and every table added later:

- **Time** is Unix seconds (UTC) in ``Float`` columns, and whole hours in ``BigInteger``
  ``hour`` columns, exactly as the engine's value types carry them (``AuditReport.now``,
  ``HourRollup.hour``). No naive or zoned datetimes: nothing to convert, and SQLite and
  PostgreSQL compare them the same way.
- **Enumerations** (severity, status) are stored as their string values, not as database
  enum types, so a release may add a value without a migration.
- **JSON** columns use SQLAlchemy's ``JSON`` type: TEXT on SQLite, ``JSON`` on PostgreSQL.
- **No raw events or customer data.** Finding examples are masked before they get here
  (and free text is scrubbed again on the way in, see ``monitor.store.db``).
- Constraint and index names follow ``NAMING_CONVENTION`` so that migrations can name
  them on every backend (SQLite batch mode needs names to alter a table).

Adding a table: define it on ``StoreModel`` in its area's module (imported by the
package) and add one migration under ``migrations/versions``;
``tests/store/test_store.py`` checks that the two agree. A new database is created from
these classes (``metadata.create_all``, then stamped at the newest migration), so a
column added to an existing table goes last in its class, with the server default its
migration gives it: the test compares the created schema with the migrated one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from monitor.model.findings import Example, Finding, Severity

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A registry of our own keeps these tables out of ``SQLModel.metadata``, which any other
# SQLModel user in the same process shares.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StoreModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of every capi-monitor table."""


def _run_fk() -> Any:
    # Findings and check results die with their run (pruning old runs is one DELETE).
    return Column(Integer, ForeignKey("audit_runs.id", ondelete="CASCADE"), nullable=False)


class AuditRun(StoreModel, table=True):
    """One ``audit`` run (or one daemon cycle): when it ran, what it read, per-dataset totals.

    ``inputs`` holds the counters of ``ReadStats`` only (files, lines, events, malformed
    lines/events, bytes), never the problem list. ``datasets`` holds one summary per
    dataset: ``{"dataset_id", "name", "health_score", "events", "status"}``.
    """

    __tablename__ = "audit_runs"
    __table_args__ = (Index(None, "generated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    generated_at: float
    now: float
    since: float | None = None
    until: float | None = None
    inputs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    datasets: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    # Send-time span of the deliveries its checks judged (None: none, e.g. a Graph poll):
    # the weekly report counts the run for the weeks this overlaps. Last, as the
    # migration that added them left them (a new database is created from these classes).
    data_from: float | None = None
    data_to: float | None = None


class CheckResultRow(StoreModel, table=True):
    """The outcome of one check on one dataset in one run."""

    __tablename__ = "check_results"
    # A check id appears once per dataset in a run (the check registry rejects duplicates).
    __table_args__ = (UniqueConstraint("run_id", "dataset_id", "check_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=_run_fk())
    dataset_id: str
    check_id: str
    status: str  # a monitor.model.findings.Status value
    score: int | None = None
    summary: str


class FindingRow(StoreModel, table=True):
    """One finding of one run; ``examples`` are masked ``Example`` dicts."""

    __tablename__ = "findings"
    __table_args__ = (Index(None, "run_id"), Index(None, "dataset_id", "code"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(sa_column=_run_fk())
    dataset_id: str
    check_id: str
    code: str
    severity: str  # a monitor.model.findings.Severity value
    count: int = Field(sa_type=BigInteger)
    event_names: list[str] = Field(default_factory=list, sa_type=JSON)
    field: str | None = None
    examples: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    message: str
    remediation: str
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)

    def to_finding(self) -> Finding:
        """The stored finding as the engine's value type."""
        return Finding(
            code=self.code,
            severity=Severity(self.severity),
            check=self.check_id,
            count=self.count,
            message=self.message,
            remediation=self.remediation,
            event_names=list(self.event_names),
            field=self.field,
            examples=[Example(e["file"], e["line"], e["value"]) for e in self.examples],
            evidence=dict(self.evidence),
        )


class RollupRow(StoreModel, table=True):
    """One ``monitor.engine.rollup.HourRollup``: dataset × event name × source × UTC hour.

    ``key_counts`` maps match-key names to counts (a mapping, not a list, so that adding a
    key to ``MATCH_KEYS`` leaves old rows readable). ``latency_hist`` is positional over
    ``LATENCY_BOUNDS`` plus the open last bucket. ``error_codes`` maps an error key to the
    number of failed events.
    """

    __tablename__ = "hour_rollups"
    __table_args__ = (
        UniqueConstraint("dataset_id", "event_name", "source", "hour", "instance"),
        Index(None, "dataset_id", "hour"),
        Index(None, "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    event_name: str
    source: str
    hour: int = Field(sa_type=BigInteger)
    events: int = Field(default=0, sa_type=BigInteger)
    failed: int = Field(default=0, sa_type=BigInteger)
    with_event_id: int = Field(default=0, sa_type=BigInteger)
    key_counts: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    latency_hist: list[int] = Field(default_factory=list, sa_type=JSON)
    error_codes: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    # custom_data.value of Purchase-like events: sum and number of events carrying one
    # Columns added by later migrations, with the server defaults those gave them: a new
    # database is created from these classes and must equal a migrated one.
    value_sum: float = Field(default=0.0, sa_column_kwargs={"server_default": text("0")})
    value_count: int = Field(
        default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": text("0")}
    )
    # Fleet mode: each instance keeps its own counts, summed when read ("" outside a
    # daemon: an audit's rollups, a single instance before fleet mode existed).
    instance: str = Field(default="", sa_column_kwargs={"server_default": text("''")})
    # per action_source: {"website": {"events": n, "em": k, ...}} (the match_quality window)
    source_keys: dict[str, dict[str, int]] = Field(
        default_factory=dict, sa_type=JSON, sa_column_kwargs={"server_default": text("'{}'")}
    )
    # the latest send time (Unix seconds) of the row's accepted events; 0: not known
    last_sent: float = Field(default=0.0, sa_column_kwargs={"server_default": text("0")})

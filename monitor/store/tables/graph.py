"""Store tables of the graph area, on the shared ``metadata`` of ``monitor.store.tables.core``
(same conventions: Unix-seconds floats, string enums, JSON columns, no customer data).

What one Graph API poll of a dataset (``monitor.model.graph.GraphSnapshot``)
leaves behind; written by ``monitor.store.graph.record_graph``:

- ``graph_source_counts``: Meta's hourly browser/server counts per dataset × event name
  × hour (pre-deduplication, docs/meta-capi.md §2). Unique by (dataset, event, hour) and
  upserted: re-reading an hour *replaces* Meta's numbers for it, never adds to them.
  ``event_name`` is ``""`` for dataset-wide counts.
- ``graph_quality``: one Dataset Quality reading per dataset × event name × poll
  (docs/meta-capi.md §3): the baseline of EMQ_DROP and MATCH_KEY_DROP.
- ``graph_polls``: one row per dataset × poll: the window read, ``da_checks`` results,
  what ``debug_token`` said (never the token), failed parts, calls and usage.

A poll is identified by its ``polled_at`` (the run's ``--now``): re-running an audit with
the same clock replaces that poll's rows instead of adding a second reading.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from monitor.store.tables.core import StoreModel


class GraphSourceCountRow(StoreModel, table=True):
    """Meta's ``/stats?aggregation=event_source`` counts of one event name in one hour.

    ``other`` maps source values other than BROWSER/SERVER to counts, verbatim.
    ``polled_at`` is when these numbers were last read.
    """

    __tablename__ = "graph_source_counts"
    __table_args__ = (
        UniqueConstraint("dataset_id", "event_name", "hour"),
        Index(None, "dataset_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    event_name: str  # "" = dataset-wide
    hour: int = Field(sa_type=BigInteger)
    browser: int = Field(default=0, sa_type=BigInteger)
    server: int = Field(default=0, sa_type=BigInteger)
    other: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    polled_at: float


class GraphQualityRow(StoreModel, table=True):
    """One ``dataset_quality`` reading of one event name (``EventQuality``).

    ``match_key_coverage`` maps canonical keys (``em``, ``client_ip_address``...) to %;
    ``dedupe`` is a list of ``{key, browser_pct, server_pct, overall_pct}`` or null when
    Meta sent no block; ``diagnostics`` holds the EMQ diagnostics (Meta's own text,
    scrubbed). Null numbers are unknown, never 0.
    """

    __tablename__ = "graph_quality"
    __table_args__ = (
        UniqueConstraint("dataset_id", "event_name", "polled_at"),
        Index(None, "dataset_id", "polled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    event_name: str
    polled_at: float
    composite_score: float | None = None
    match_key_coverage: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    coverage_pct: float | None = None
    coverage_goal_pct: float | None = None
    dedupe: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    upload_frequency: str | None = None
    acr_pct: float | None = None
    diagnostics: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class GraphPollRow(StoreModel, table=True):
    """One poll of one dataset: what was read, what failed, Meta's diagnostics.

    ``da_checks``: ``[{key, title, result, action_uri}]`` or null when unreadable.
    ``token``: ``{valid, type, expires_at, data_access_expires_at, scopes, app_id, error,
    code, subcode}`` or null; never the token itself. ``errors``: ``[{part, kind, code,
    subcode, http_status, attempts, message}]`` with scrubbed messages. ``usage``: the
    rate-limit usage percentages seen last.
    """

    __tablename__ = "graph_polls"
    __table_args__ = (
        UniqueConstraint("dataset_id", "polled_at"),
        Index(None, "polled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: str
    polled_at: float
    window_start: float
    window_end: float
    calls: int = 0
    da_checks: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    token: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    errors: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    usage: dict[str, Any] | None = Field(default=None, sa_type=JSON)

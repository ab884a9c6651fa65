"""Writing and reading Graph API snapshots (tables in ``monitor.store.tables.graph``).

``record_graph`` stores what one poll observed, in one write transaction:

- hourly browser/server counts are upserted by (dataset, event name, hour): Meta's
  numbers for an hour *replace* the stored ones, so overlapping windows (each poll
  re-reads the last 48 hours) never double count;
- quality readings and the poll row are upserted by (dataset[, event name], polled_at):
  re-running an audit with the same ``--now`` replaces its own poll.

``write_graph`` does the same on the caller's connection (the daemon: one transaction
with the alert evaluation). ``load_graph_history`` reads the readings before a poll
(``GraphHistory``) for EMQ_DROP and MATCH_KEY_DROP. Nothing stored is a token:
``TokenInfo`` carries none, and every text from Meta passes the store's scrubbing once
more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy import select as select_core
from sqlalchemy.dialects import postgresql, sqlite

from monitor.mask import scrub_deep
from monitor.model.graph import (
    ALL_PARTS,
    EventQuality,
    GraphHistory,
    GraphSnapshot,
    Part,
    QualityPoint,
    SourceCounts,
)
from monitor.store.db import Store, store_errors, write_connection
from monitor.store.tables.core import metadata

_COUNTS: Table = metadata.tables["graph_source_counts"]
_QUALITY: Table = metadata.tables["graph_quality"]
_POLLS: Table = metadata.tables["graph_polls"]
DATASET_WIDE = ""  # event_name of counts Meta gave for the whole dataset


def _upsert(
    conn: Connection, table: Table, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE every other column (SQLite, PostgreSQL)."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    values = [c.name for c in table.columns if c.name not in (*keys, "id")]
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys], set_={k: stmt.excluded[k] for k in values}
    )
    conn.execute(stmt, rows)


def _count_values(snap: GraphSnapshot, sc: SourceCounts) -> dict[str, Any]:
    return {
        "dataset_id": snap.dataset_id,
        "event_name": sc.event if sc.event is not None else DATASET_WIDE,
        "hour": int(sc.hour.timestamp()),
        "browser": sc.browser,
        "server": sc.server,
        "other": dict(sc.other),
        "polled_at": snap.polled_at,
    }


def _quality_values(snap: GraphSnapshot, q: EventQuality) -> dict[str, Any]:
    dedupe = (
        None
        if q.dedupe is None
        else [
            {
                "key": d.key,
                "browser_pct": d.browser_pct,
                "server_pct": d.server_pct,
                "overall_pct": d.overall_pct,
            }
            for d in q.dedupe
        ]
    )
    diagnostics = [
        {
            "name": d.name,
            "percentage": d.percentage,
            "affected_event_count": d.affected_event_count,
            "total_event_count": d.total_event_count,
        }
        for d in q.diagnostics
    ]
    return {
        "dataset_id": snap.dataset_id,
        "event_name": q.event_name,
        "polled_at": snap.polled_at,
        "composite_score": q.composite_score,
        "match_key_coverage": dict(q.match_key_coverage),
        "coverage_pct": q.coverage_pct,
        "coverage_goal_pct": q.coverage_goal_pct,
        "dedupe": dedupe,
        "upload_frequency": q.upload_frequency,
        "acr_pct": q.acr_pct,
        "diagnostics": scrub_deep(diagnostics),
    }


def _poll_values(snap: GraphSnapshot) -> dict[str, Any]:
    checks = (
        None
        if snap.da_checks is None
        else [
            {"key": c.key, "title": c.title, "result": c.result, "action_uri": c.action_uri}
            for c in snap.da_checks
        ]
    )
    t = snap.token
    token = (
        None
        if t is None
        else {
            "valid": t.valid,
            "type": t.type,
            "expires_at": t.expires_at,
            "data_access_expires_at": t.data_access_expires_at,
            "scopes": list(t.scopes),
            "app_id": t.app_id,
            "error": t.error,
            "code": t.code,
            "subcode": t.subcode,
        }
    )
    errors = [
        {
            "part": e.part.value,
            "kind": e.kind.value,
            "code": e.code,
            "subcode": e.subcode,
            "http_status": e.http_status,
            "attempts": e.attempts,
            "message": e.message_scrubbed,
        }
        for e in snap.errors
    ]
    u = snap.usage
    usage = (
        None
        if u is None
        else {
            "app_pct": u.app_pct,
            "business_pct": u.business_pct,
            "ad_account_pct": u.ad_account_pct,
            "regain_access_s": u.regain_access_s,
        }
    )
    return {
        "dataset_id": snap.dataset_id,
        "polled_at": snap.polled_at,
        "window_start": snap.window_start,
        "window_end": snap.window_end,
        "calls": snap.calls,
        "da_checks": scrub_deep(checks),
        "token": scrub_deep(token),
        "errors": scrub_deep(errors),
        "usage": usage,
    }


def record_graph(store: Store, snapshots: Iterable[GraphSnapshot]) -> int:
    """Store ``snapshots`` (one transaction); returns the number of polls written.

    Only parts that were read are stored: a failed part leaves the stored hours and
    readings as they were (its data is unknown, not zero).
    """
    snaps = list(snapshots)
    if not snaps:
        return 0
    engine = store.engine
    with store_errors("write to", engine.url), write_connection(engine) as conn, conn.begin():
        return write_graph(conn, snaps)


def write_graph(conn: Connection, snapshots: Iterable[GraphSnapshot]) -> int:
    """``record_graph`` on ``conn``, inside the caller's transaction (the daemon stores a
    poll in the transaction that evaluates its alerts). Never commits.

    A poll of some parts (``GraphSnapshot.parts``, the daemon's ``graph`` and ``quality``
    jobs) whose ``polled_at`` equals a stored poll's (``once --now`` runs every job at one
    instant) is merged into that row: the columns of its parts replace, the others stay.
    """
    snaps = list(snapshots)
    if not snaps:
        return 0
    counts = {}
    for snap in snaps:
        for sc in snap.source_counts:
            row = _count_values(snap, sc)
            # One row per key even if a snapshot repeated an hour: the last one wins.
            counts[(row["dataset_id"], row["event_name"], row["hour"])] = row
    quality = {
        (snap.dataset_id, q.event_name): _quality_values(snap, q)
        for snap in snaps
        for q in snap.quality or ()
    }
    polls = {(s.dataset_id, s.polled_at): _merged_poll(conn, s) for s in snaps}
    _upsert(conn, _COUNTS, ("dataset_id", "event_name", "hour"), list(counts.values()))
    _upsert(conn, _QUALITY, ("dataset_id", "event_name", "polled_at"), list(quality.values()))
    _upsert(conn, _POLLS, ("dataset_id", "polled_at"), list(polls.values()))
    return len(snaps)


def _merged_poll(conn: Connection, snap: GraphSnapshot) -> dict[str, Any]:
    """The poll row of ``snap``, merged into a stored row of the same instant when
    ``snap`` read only some parts (see ``write_graph``)."""
    new = _poll_values(snap)
    if snap.parts == ALL_PARTS:
        return new
    query = select_core(_POLLS).where(
        _POLLS.c.dataset_id == snap.dataset_id, _POLLS.c.polled_at == snap.polled_at
    )
    old = conn.execute(query).mappings().first()
    if old is None:
        return new
    kept_errors = [e for e in old["errors"] or () if e.get("part") not in snap.parts]
    return {
        **new,
        "calls": int(old["calls"] or 0) + snap.calls,
        "da_checks": new["da_checks"] if snap.polled(Part.DA_CHECKS) else old["da_checks"],
        "token": new["token"] if snap.polled(Part.TOKEN) else old["token"],
        "errors": [*kept_errors, *new["errors"]],
        "usage": new["usage"] or old["usage"],
    }


def load_graph_history(
    store: Store, dataset_ids: Iterable[str], *, now: float, window: float
) -> dict[str, GraphHistory]:
    """The stored quality readings of each dataset in ``[now - window, now)``.

    The poll at ``now`` itself is excluded, so a run never compares itself with itself.
    Every requested dataset gets a ``GraphHistory`` (possibly empty).
    """
    ids = sorted(set(dataset_ids))
    since = now - window
    out = {ds: GraphHistory(ds, since, now) for ds in ids}
    if not ids:
        return out
    query = (
        select_core(_QUALITY)
        .where(
            _QUALITY.c.dataset_id.in_(ids),
            _QUALITY.c.polled_at >= since,
            _QUALITY.c.polled_at < now,
        )
        .order_by(_QUALITY.c.dataset_id, _QUALITY.c.polled_at, _QUALITY.c.event_name)
    )
    engine = store.engine
    with store_errors("read", engine.url), engine.connect() as conn:
        for row in conn.execute(query).mappings():
            point = QualityPoint(
                polled_at=float(row["polled_at"]),
                composite_score=row["composite_score"],
                match_key_coverage={
                    str(k): float(v) for k, v in (row["match_key_coverage"] or {}).items()
                },
            )
            out[row["dataset_id"]].points.setdefault(row["event_name"], []).append(point)
    return out


def stored_source_counts(
    store: Store, dataset_id: str, since: float | None = None, until: float | None = None
) -> list[SourceCounts]:
    """Stored hourly counts of ``dataset_id`` (hour in ``[since, until)``), by hour, name."""
    query = select_core(_COUNTS).where(_COUNTS.c.dataset_id == dataset_id)
    if since is not None:
        query = query.where(_COUNTS.c.hour >= since)
    if until is not None:
        query = query.where(_COUNTS.c.hour < until)
    query = query.order_by(_COUNTS.c.hour, _COUNTS.c.event_name)
    engine = store.engine
    with store_errors("read", engine.url), engine.connect() as conn:
        return [
            SourceCounts(
                hour=datetime.fromtimestamp(int(r["hour"]), UTC),
                event=r["event_name"] or None,
                browser=int(r["browser"]),
                server=int(r["server"]),
                other={str(k): int(v) for k, v in (r["other"] or {}).items()},
            )
            for r in conn.execute(query).mappings()
        ]


def stored_polls(store: Store, dataset_id: str | None = None) -> list[dict[str, Any]]:
    """Stored poll rows (as dicts), oldest first, optionally of one dataset."""
    query = select_core(_POLLS)
    if dataset_id is not None:
        query = query.where(_POLLS.c.dataset_id == dataset_id)
    query = query.order_by(_POLLS.c.polled_at, _POLLS.c.dataset_id)
    engine = store.engine
    with store_errors("read", engine.url), engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]

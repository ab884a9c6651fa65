"""Opening, migrating, writing and reading the store.

``Store.open(url)`` accepts a SQLAlchemy URL (``sqlite:////abs/path.db``,
``postgresql+psycopg://user:pass@host/db``) or a bare file path (taken as SQLite). It
creates a SQLite file's directory, enables WAL and a busy timeout (the daemon and
``audit`` may share one file) and brings the schema to the newest migration
(``monitor.store.schema``). Every failure surfaces as ``StoreError`` whose message
shows the URL with its password masked.

Write transactions are serialised: SQLite takes its write lock at ``BEGIN IMMEDIATE``,
PostgreSQL takes a transaction-scoped advisory lock. That makes the read-merge-write of
``rollup_mode="add"`` and concurrent first-time migrations safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert
from sqlalchemy import select as select_core
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from monitor.errors import StoreError
from monitor.mask import scrub_deep, scrub_secrets
from monitor.model.findings import CheckResult, Finding
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import LATENCY_BOUNDS, MATCH_KEYS, HourRollup, source_keys_from
from monitor.store.tables.core import AuditRun, CheckResultRow, FindingRow, metadata

RollupMode = Literal["replace", "add"]

SUPPORTED_BACKENDS = frozenset({"sqlite", "postgresql"})
SQLITE_BUSY_TIMEOUT_MS = 30_000
UPSERT_SLICE = 500  # rollup rows per upsert statement (``upsert_rollups``)
PG_CONNECT_TIMEOUT_S = 10
# Arbitrary constant shared by every capi-monitor process writing to one PostgreSQL db.
_PG_WRITE_LOCK = 0x6361_706D
_WRITE = "capi_monitor_write"  # execution option: this transaction writes

_ROLLUPS: Table = metadata.tables["hour_rollups"]
_ROLLUP_KEY = ("dataset_id", "event_name", "source", "hour", "instance")
_ROLLUP_VALUES = (
    "events", "failed", "with_event_id", "key_counts", "latency_hist", "error_codes",
    "value_sum", "value_count", "source_keys", "last_sent",
)  # fmt: skip
# What opening may raise (ValueError: a URL such as "host:notaport"); reads and writes
# wrap only database errors, so that a programming error stays visible as itself.
_OPEN_ERRORS = (SQLAlchemyError, OSError, ImportError, ValueError)
_IO_ERRORS = (SQLAlchemyError, OSError)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)@")

RollupKey = tuple[str, str, str, int]


# --- URLs and errors -------------------------------------------------------------------


def parse_url(url: str) -> URL:
    """A SQLAlchemy URL; a string without ``://`` is a SQLite file path."""
    if "://" not in url:
        return URL.create("sqlite", database=str(Path(url).expanduser()))
    return make_url(url)


def mask_url(url: str | URL) -> str:
    """``url`` fit for messages: its password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except _OPEN_ERRORS:
        # Unparseable: mask whatever sits between "user:" and "@" by hand.
        return _URL_PASSWORD.sub(r"\1***@", url)


def _raw_password(url: str) -> str | None:
    m = _URL_PASSWORD.search(url)
    return (m.group(2) or None) if m else None


def _reason(err: BaseException, password: str | None) -> str:
    """One line saying why ``err`` happened: the driver's words, without secrets."""
    orig = getattr(err, "orig", None) or err
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    text = lines[0] if lines else type(orig).__name__
    if password:
        text = text.replace(password, "***")
    return scrub_secrets(text)[:300]


@contextmanager
def store_errors(
    doing: str,
    where: URL | str | Engine | Connection,
    errors: tuple[type[BaseException], ...] = _IO_ERRORS,
) -> Iterator[None]:
    """Turn ``errors`` into ``StoreError("cannot <doing> <masked url>: why")``; ``where``
    is the store's URL or an engine/connection of it."""
    url = where if isinstance(where, URL | str) else where.engine.url
    try:
        yield
    except StoreError:
        raise
    except errors as err:
        password = url.password if isinstance(url, URL) else _raw_password(url)
        message = f"cannot {doing} {mask_url(url)}: {_reason(err, password)}"
        if password and password in str(err):
            # The cause would carry the secret into any printed traceback.
            raise StoreError(message) from None
        raise StoreError(message) from err


# --- engine ----------------------------------------------------------------------------


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _on_begin): pysqlite's legacy mode would run DDL
    # outside transactions and never lock for plain SELECTs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    write = bool(conn.get_execution_options().get(_WRITE, False))
    if conn.dialect.name == "sqlite":
        # IMMEDIATE: take the write lock up front, so waiting happens under busy_timeout
        # instead of failing when a deferred reader upgrades to a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
    elif write and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")


def _prepare_sqlite_path(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _pg_connect_args(url: URL) -> dict[str, Any]:
    # libpq waits forever for an unreachable host by default; psycopg passes this through.
    if url.get_driver_name() not in ("psycopg", "psycopg2") or "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": PG_CONNECT_TIMEOUT_S}


def create_store_engine(url: URL) -> Engine:
    """An engine for ``url`` with the store's connection settings (hooks, timeouts)."""
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(f"unsupported database {mask_url(url)}: use sqlite or postgresql")
    if backend == "sqlite":
        _prepare_sqlite_path(url)
        engine = create_engine(url)
        event.listen(engine, "connect", _on_sqlite_connect)
    else:
        engine = create_engine(url, connect_args=_pg_connect_args(url), pool_pre_ping=True)
    event.listen(engine, "begin", _on_begin)
    return engine


def write_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{_WRITE: True})


# --- rows <-> value types --------------------------------------------------------------


def _inputs(stats: ReadStats) -> dict[str, Any]:
    # Counters only: the problem list names files and lines, which the run does not need.
    return {
        "files": stats.files,
        "lines": stats.lines,
        "events": stats.events,
        "malformed_lines": stats.malformed_lines,
        "malformed_events": stats.malformed_events,
        "bytes_read": stats.bytes_read,
        "formats": dict(stats.formats),
        "skipped_lines": stats.skipped_lines,
        "unpaired_responses": stats.unpaired_responses,
    }


def _dataset_summary(ds: DatasetReport) -> dict[str, Any]:
    return {
        "dataset_id": ds.dataset_id,
        "name": ds.name,
        "health_score": ds.health_score,
        "events": ds.events,
        "status": str(ds.status),
    }


def _run_values(report: AuditReport) -> dict[str, Any]:
    return {
        "generated_at": report.generated_at,
        "now": report.now,
        "since": report.since,
        "until": report.until,
        "data_from": report.data_from,
        "data_to": report.data_to,
        "inputs": _inputs(report.inputs),
        "datasets": [_dataset_summary(d) for d in report.datasets],
    }


def _check_values(run_id: int, dataset_id: str, check: CheckResult) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "dataset_id": dataset_id,
        "check_id": check.id,
        "status": str(check.status),
        "score": check.score,
        "summary": scrub_deep(check.summary),
    }


def _finding_values(run_id: int, dataset_id: str, f: Finding) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "dataset_id": dataset_id,
        "check_id": f.check,
        "code": f.code,
        "severity": str(f.severity),
        "count": f.count,
        "event_names": list(f.event_names),
        "field": f.field,
        "examples": scrub_deep([e.to_dict() for e in f.examples]),
        "message": scrub_deep(f.message),
        "remediation": scrub_deep(f.remediation),
        "evidence": scrub_deep(f.evidence),
    }


def _rollup_values(r: HourRollup, instance: str) -> dict[str, Any]:
    return {
        "instance": instance,
        "dataset_id": r.dataset_id,
        "event_name": r.event_name,
        "source": r.source,
        "hour": r.hour,
        "events": r.events,
        "failed": r.failed,
        "with_event_id": r.with_event_id,
        # Only keys that occurred: rows stay small and readable if MATCH_KEYS grows.
        "key_counts": {k: n for k, n in r.key_coverage().items() if n},
        "latency_hist": list(r.latency_hist),
        "error_codes": dict(r.error_codes),
        "value_sum": r.value_sum,
        "value_count": r.value_count,
        "source_keys": r.source_coverage(),
        "last_sent": r.last_sent,
    }


def _fit_hist(values: list[int]) -> list[int]:
    """``values`` at the current bucket count (extra buckets fold into the open last one)."""
    n = len(LATENCY_BOUNDS) + 1
    if len(values) <= n:
        return [*values, *([0] * (n - len(values)))]
    return [*values[: n - 1], sum(values[n - 1 :])]


def _rollup_from(row: Mapping[Any, Any]) -> HourRollup:
    counts = row["key_counts"] or {}
    return HourRollup(
        dataset_id=row["dataset_id"],
        event_name=row["event_name"],
        source=row["source"],
        hour=int(row["hour"]),
        events=row["events"],
        failed=row["failed"],
        with_event_id=row["with_event_id"],
        key_counts=[int(counts.get(k, 0)) for k in MATCH_KEYS],
        latency_hist=_fit_hist(list(row["latency_hist"] or [])),
        error_codes={str(k): int(v) for k, v in (row["error_codes"] or {}).items()},
        value_sum=float(row["value_sum"] or 0.0),
        value_count=int(row["value_count"] or 0),
        source_keys=source_keys_from(row["source_keys"]),
        last_sent=float(row["last_sent"] or 0.0),
    )


def _summed(rollups: Iterable[HourRollup]) -> list[HourRollup]:
    """Rollups in key order with the rows of one key (one per instance) merged; the input
    comes ordered by key, so equal keys are adjacent."""
    out: list[HourRollup] = []
    for r in rollups:
        if out and _key(out[-1]) == _key(r):
            out[-1].merge(r)
        else:
            out.append(r)
    return out


def _key(r: HourRollup) -> RollupKey:
    return (r.dataset_id, r.event_name, r.source, r.hour)


# --- rollup upsert ---------------------------------------------------------------------


def _batch(rollups: Iterable[HourRollup]) -> dict[RollupKey, HourRollup]:
    """One rollup per key: duplicates within a report are parts of the same hour."""
    out: dict[RollupKey, HourRollup] = {}
    for r in rollups:
        key = _key(r)
        if key in out:
            out[key].merge(r)
        else:
            out[key] = r.copy()  # never mutate the caller's report
    return out


def _add_stored(conn: Connection, batch: dict[RollupKey, HourRollup], instance: str) -> None:
    """Fold the stored counts of ``batch``'s keys into it, with one SELECT."""
    hours = [k[3] for k in batch]
    query = select_core(_ROLLUPS).where(
        _ROLLUPS.c.dataset_id.in_(sorted({k[0] for k in batch})),
        _ROLLUPS.c.hour.between(min(hours), max(hours)),
        _ROLLUPS.c.instance == instance,
    )
    for row in conn.execute(query).mappings():
        key = (row["dataset_id"], row["event_name"], row["source"], int(row["hour"]))
        new = batch.get(key)
        if new is not None:
            merged = _rollup_from(row)
            merged.merge(new)
            batch[key] = merged


def _upsert_statement(dialect: str) -> Any:
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_ROLLUPS)
    return stmt.on_conflict_do_update(
        index_elements=[_ROLLUPS.c[k] for k in _ROLLUP_KEY],
        set_={k: stmt.excluded[k] for k in _ROLLUP_VALUES},
    )


def _check_mode(mode: str) -> None:
    if mode not in ("replace", "add"):
        raise ValueError(f"rollup_mode must be 'replace' or 'add', not {mode!r}")


def upsert_rollups(
    conn: Connection, rollups: Iterable[HourRollup], mode: RollupMode, instance: str = ""
) -> int:
    """Write ``rollups`` by (dataset, event name, source, hour) as ``instance``'s counts;
    returns the rows written.

    ``replace`` overwrites stored hours (re-auditing the same logs never double counts);
    ``add`` increments them (the daemon's incremental cycles). Call inside a write
    transaction so that ``add`` cannot interleave with another writer. Each instance of a
    fleet keeps its own rows (``""``: no instance, e.g. ``audit --db``); reads sum them.
    """
    _check_mode(mode)
    batch = _batch(rollups)
    if not batch:
        return 0
    if mode == "add":
        _add_stored(conn, batch, instance)
    # In slices: the parameter rows of a long audit's rollups (weeks × event names) would
    # otherwise all exist at once, several times over, next to the rows themselves.
    statement = _upsert_statement(conn.dialect.name)
    rows = list(batch.values())
    for i in range(0, len(rows), UPSERT_SLICE):
        conn.execute(statement, [_rollup_values(r, instance) for r in rows[i : i + UPSERT_SLICE]])
    return len(batch)


# --- the store -------------------------------------------------------------------------


class Store:
    """The capi-monitor database: audit runs, check results, findings, hourly rollups.

    Open with ``Store.open(url)``; close with ``close()`` or a ``with`` block. Times are
    Unix seconds (see ``monitor.store.tables.core``). Nothing stored is raw event or customer
    data.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is already at head; prefer ``Store.open``."""
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating and migrating as needed) the database at ``url`` or file path."""
        with store_errors("open database", url, _OPEN_ERRORS):
            parsed = parse_url(url)
        with store_errors("open database", parsed, _OPEN_ERRORS):
            engine = create_store_engine(parsed)
            try:
                from monitor.store.schema import migrate  # it imports this module

                migrate(engine)
            except BaseException:
                engine.dispose()
                raise
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return mask_url(self._engine.url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def record_audit(self, report: AuditReport, *, rollup_mode: RollupMode = "replace") -> int:
        """Store ``report`` (run, check results, findings, rollups) in one transaction.

        Sets and returns ``report.run_id``. See ``upsert_rollups`` for ``rollup_mode``.
        """
        _check_mode(rollup_mode)
        with (
            store_errors("write to", self._engine.url),
            write_connection(self._engine) as conn,
            conn.begin(),
        ):
            run_id = self.insert_run(conn, report)
            upsert_rollups(conn, (r for d in report.datasets for r in d.rollups), rollup_mode)
        report.run_id = run_id
        return run_id

    @staticmethod
    def insert_run(conn: Connection, report: AuditReport) -> int:
        key = conn.execute(insert(AuditRun).values(**_run_values(report))).inserted_primary_key
        if key is None:  # pragma: no cover - every supported backend reports the new id
            raise StoreError("the database did not return the new run's id")
        run_id = int(key[0])
        checks = [_check_values(run_id, d.dataset_id, c) for d in report.datasets for c in d.checks]
        findings = [
            _finding_values(run_id, d.dataset_id, f)
            for d in report.datasets
            for c in d.checks
            for f in c.findings
        ]
        if checks:
            conn.execute(insert(CheckResultRow), checks)
        if findings:
            conn.execute(insert(FindingRow), findings)
        return run_id

    def runs(self, limit: int = 20) -> list[AuditRun]:
        """The latest ``limit`` runs, newest first."""
        query = select(AuditRun).order_by(col(AuditRun.id).desc()).limit(limit)
        with store_errors("read", self._engine.url), Session(self._engine) as session:
            return list(session.exec(query).all())

    def findings(self, run_id: int) -> list[FindingRow]:
        """The findings of run ``run_id`` in the order they were recorded."""
        query = select(FindingRow).where(FindingRow.run_id == run_id).order_by(col(FindingRow.id))
        with store_errors("read", self._engine.url), Session(self._engine) as session:
            return list(session.exec(query).all())

    def check_results(self, run_id: int) -> list[CheckResultRow]:
        """The check results of run ``run_id`` in the order they were recorded."""
        query = (
            select(CheckResultRow)
            .where(CheckResultRow.run_id == run_id)
            .order_by(col(CheckResultRow.id))
        )
        with store_errors("read", self._engine.url), Session(self._engine) as session:
            return list(session.exec(query).all())

    def rollups(
        self,
        dataset_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[HourRollup]:
        """Stored rollups, by dataset, hour, event name and source; the counts of a
        fleet's instances summed (each instance keeps its own rows).

        ``since`` (inclusive) and ``until`` (exclusive) bound the hour start, in Unix seconds.
        """
        query = select_core(_ROLLUPS)
        if dataset_id is not None:
            query = query.where(_ROLLUPS.c.dataset_id == dataset_id)
        if since is not None:
            query = query.where(_ROLLUPS.c.hour >= since)
        if until is not None:
            query = query.where(_ROLLUPS.c.hour < until)
        query = query.order_by(
            *(_ROLLUPS.c[k] for k in ("dataset_id", "hour", "event_name", "source"))
        )
        with store_errors("read", self._engine.url), self._engine.connect() as conn:
            return _summed(_rollup_from(row) for row in conn.execute(query).mappings())

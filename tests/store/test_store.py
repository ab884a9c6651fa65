"""The store on real SQLite files: round trips, upsert modes, migrations, errors, no PII.

Tests taking the ``db`` fixture also run against PostgreSQL, each on a fresh database of
the server ``CAPI_MONITOR_TEST_PG_URL`` names (``tests.support.pg``; ``.ci/run`` starts a
throwaway one).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from monitor.errors import StoreError
from monitor.mask import mask_value
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import LATENCY_BOUNDS, MATCH_KEYS, HourRollup
from monitor.store import Store
from monitor.store.db import create_store_engine, parse_url, upsert_rollups, write_connection
from monitor.store.schema import alembic_config
from monitor.store.tables.core import metadata
from tests.support.pg import BACKENDS, ON_PG, database, fresh_database

H = 1_700_000_000 // 3600 * 3600  # an hour start
EMAIL = "jane.doe@example.com"


# The newest migration: every later release adds one, and these tests must keep passing.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def rollup(
    dataset: str = "111",
    name: str = "Purchase",
    hour: int = H,
    events: int = 10,
    *,
    em: int = 0,
    lat0: int = 0,
    errors: dict[str, int] | None = None,
) -> HourRollup:
    r = HourRollup(dataset, name, "server_log", hour, events=events, failed=1, with_event_id=7)
    r.key_counts[MATCH_KEYS.index("em")] = em
    r.key_counts[MATCH_KEYS.index("fbp")] = 3
    r.latency_hist[0] = lat0
    r.latency_hist[-1] = 2
    r.error_codes = dict(errors or {"100/2804019": 1})
    return r


def finding(code: str = "HASH_PLAINTEXT", *, example: str = "j***@e***.com") -> Finding:
    return Finding(
        code=code,
        severity=Severity.CRIT,
        check="hash_validity",
        count=12,
        message="12 events carry a clear-text email in user_data.em",
        remediation="Hash em with SHA-256 after normalising it.",
        event_names=["Purchase", "Lead"],
        field="user_data.em",
        examples=[Example("logs/a.jsonl", 3, example)],
        evidence={"share": 0.25, "by_event": {"Purchase": 9, "Lead": 3}},
    )


def report(*rollups: HourRollup, findings: list[Finding] | None = None) -> AuditReport:
    checks = [
        CheckResult("hash_validity", Status.CRIT, "clear-text values", 40, findings or []),
        CheckResult("dedup", Status.OK, "all events have event_id", 100),
        CheckResult("parity", Status.SKIPPED, "no Graph access"),
    ]
    ds = DatasetReport("111", "Shop", 70, checks, events=42, rollups=list(rollups))
    other = DatasetReport("222", None, None, [CheckResult("volume", Status.ERROR, "boom")])
    stats = ReadStats(files=2, lines=50, events=42, malformed_lines=1, bytes_read=9000)
    stats.problem("logs/a.jsonl", 9, "not JSON")
    return AuditReport(H + 7200.5, H + 7200.0, stats, [ds, other], since=H - 86400.0, until=None)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'capi.db'}"


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(db: str) -> Iterator[Store]:
    with Store.open(db) as s:
        yield s


def version(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


# --- round trip ------------------------------------------------------------------------


def test_record_audit_round_trip(store: Store) -> None:
    rep = report(rollup(em=4, lat0=5), rollup(name="Lead", events=3), findings=[finding()])
    run_id = store.record_audit(rep)

    assert rep.run_id == run_id
    [run] = store.runs()
    assert (run.id, run.generated_at, run.now) == (run_id, H + 7200.5, H + 7200.0)
    assert (run.since, run.until) == (H - 86400.0, None)
    assert run.inputs == {
        "files": 2,
        "lines": 50,
        "events": 42,
        "malformed_lines": 2,
        "malformed_events": 0,
        "bytes_read": 9000,
        "formats": {},
        "skipped_lines": 0,
        "unpaired_responses": 0,
    }  # counters only: the problem list (file names, reasons) is not kept
    assert run.datasets == [
        {"dataset_id": "111", "name": "Shop", "health_score": 70, "events": 42, "status": "crit"},
        {"dataset_id": "222", "name": None, "health_score": None, "events": 0, "status": "error"},
    ]
    checks = store.check_results(run_id)
    assert [(c.dataset_id, c.check_id, c.status, c.score, c.summary) for c in checks] == [
        ("111", "hash_validity", "crit", 40, "clear-text values"),
        ("111", "dedup", "ok", 100, "all events have event_id"),
        ("111", "parity", "skipped", None, "no Graph access"),
        ("222", "volume", "error", None, "boom"),
    ]
    [row] = store.findings(run_id)
    assert (row.run_id, row.dataset_id, row.check_id) == (run_id, "111", "hash_validity")
    assert row.to_finding().to_dict() == finding().to_dict()
    stored = sorted((r.to_dict() for r in store.rollups()), key=lambda d: d["event_name"])
    assert stored == sorted(
        (r.to_dict() for r in rep.datasets[0].rollups), key=lambda d: d["event_name"]
    )


def test_runs_newest_first_and_limited(store: Store) -> None:
    ids = [store.record_audit(report()) for _ in range(3)]
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs(limit=2)] == ids[:0:-1]
    assert store.findings(ids[0]) == []
    assert store.check_results(12345) == []


def test_rollup_filters(store: Store) -> None:
    rows = [rollup(hour=H), rollup(hour=H + 3600), rollup("222", hour=H + 7200)]
    store.record_audit(report(*rows))
    assert [(r.dataset_id, r.hour) for r in store.rollups("111")] == [("111", H), ("111", H + 3600)]
    assert [r.hour for r in store.rollups(since=H + 3600)] == [H + 3600, H + 7200]
    assert [r.hour for r in store.rollups(since=H, until=H + 3600)] == [H]
    assert store.rollups("333") == []


# --- replace vs add --------------------------------------------------------------------


def test_replace_overwrites_hours_instead_of_double_counting(store: Store) -> None:
    store.record_audit(report(rollup(events=10, em=4)))
    store.record_audit(report(rollup(events=10, em=4)))
    store.record_audit(report(rollup(events=6, em=1, errors={"190": 2})))
    [r] = store.rollups()
    assert (r.events, r.key_coverage()["em"], r.error_codes) == (6, 1, {"190": 2})


def test_add_increments_counts_and_merges_json_columns(store: Store) -> None:
    first = rollup(events=10, em=4, lat0=5, errors={"100/2804019": 1})
    store.record_audit(report(first, rollup(name="Lead")), rollup_mode="add")
    second = rollup(events=3, em=2, lat0=1, errors={"100/2804019": 2, "190": 1})
    new_hour = rollup(hour=H + 3600, events=1)
    rep = report(second, new_hour)
    store.record_audit(rep, rollup_mode="add")

    got = {(r.event_name, r.hour): r for r in store.rollups()}
    purchase = got[("Purchase", H)]
    assert (purchase.events, purchase.failed, purchase.with_event_id) == (13, 2, 14)
    assert purchase.key_coverage()["em"] == 6
    assert purchase.key_coverage()["fbp"] == 6
    assert purchase.latency_hist[0] == 6 and purchase.latency_hist[-1] == 4
    assert len(purchase.latency_hist) == len(LATENCY_BOUNDS) + 1
    assert purchase.error_codes == {"100/2804019": 3, "190": 1}
    assert got[("Lead", H)].events == 10  # untouched by the second cycle
    assert got[("Purchase", H + 3600)].events == 1
    assert rep.datasets[0].rollups[0].events == 3  # the caller's report is not mutated


def test_the_latest_send_time_of_an_hour_is_the_latest_of_cycles_and_instances(
    db: str,
) -> None:
    # intent: counts add up across cycles and fleet instances; the time of the hour's
    # last event is the latest any of them saw, whatever the order they wrote in
    def at(events: int, last_sent: float) -> HourRollup:
        r = rollup(events=events)
        r.last_sent = last_sent
        return r

    with Store.open(db) as store:
        for instance, r in (
            ("a", at(2, H + 600.5)),
            ("b", at(3, H + 1800.0)),
            ("a", at(1, H + 90)),
        ):
            with write_connection(store.engine) as conn, conn.begin():
                upsert_rollups(conn, [r], "add", instance)
        [got] = store.rollups()
    assert (got.events, got.last_sent) == (6, H + 1800.0)


def test_duplicate_keys_within_one_report_are_summed(store: Store) -> None:
    store.record_audit(report(rollup(events=2), rollup(events=5)))
    [r] = store.rollups()
    assert r.events == 7


def test_unknown_rollup_mode_is_rejected_and_nothing_is_written(store: Store) -> None:
    with pytest.raises(ValueError, match="rollup_mode"):
        store.record_audit(report(rollup()), rollup_mode="merge")  # type: ignore[arg-type]
    assert store.runs() == []


def test_thousands_of_rollups_upsert_quickly(store: Store) -> None:
    rows = [rollup(name=f"E{i % 50}", hour=H + 3600 * (i // 50), em=1) for i in range(5000)]
    started = time.monotonic()
    store.record_audit(report(*rows))
    store.record_audit(report(*rows), rollup_mode="add")
    elapsed = time.monotonic() - started
    stored = store.rollups()
    assert len(stored) == 5000 and {r.events for r in stored} == {20}
    assert elapsed < 20


# --- migrations ------------------------------------------------------------------------


def test_migrations_create_exactly_the_table_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def schema(url: str) -> dict[str, dict[str, Any]]:
    """What the inspector tells of every table (columns in order, keys, indexes,
    constraints), and the stamped revision."""
    engine = create_store_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            tables: dict[str, dict[str, Any]] = {
                name: {
                    "columns": [{**c, "type": str(c["type"])} for c in insp.get_columns(name)],
                    "pk": insp.get_pk_constraint(name),
                    "fks": sorted(map(repr, insp.get_foreign_keys(name))),
                    "indexes": sorted(map(repr, insp.get_indexes(name))),
                    "uniques": sorted(map(repr, insp.get_unique_constraints(name))),
                    "checks": sorted(map(repr, insp.get_check_constraints(name))),
                }
                for name in insp.get_table_names()
            }
            revision = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()
    return {"tables": tables, "revision": {"alembic_version": revision}}


@pytest.fixture(params=BACKENDS)
def two_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with database(request.param, tmp_path / "a") as a, database(request.param, tmp_path / "b") as b:
        yield a, b


def test_a_new_database_is_created_as_the_migrations_would_leave_it(
    two_dbs: tuple[str, str],
) -> None:
    """``Store.open`` creates an empty database from the table classes and stamps the
    head instead of replaying every migration: the schema must be the migrated one."""
    migrated, created = two_dbs
    engine = create_store_engine(parse_url(migrated))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    Store.open(created).close()
    assert schema(created) == schema(migrated)
    assert schema(created)["revision"] == {"alembic_version": [HEAD]}


def test_a_new_sqlite_database_is_created_without_importing_alembic(sqlite_db: str) -> None:
    code = (
        "import sys; from monitor.store import Store; Store.open(sys.argv[1]).close(); "
        "assert 'alembic' not in sys.modules, 'alembic imported'"
    )
    done = subprocess.run([sys.executable, "-c", code, sqlite_db], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Store.open(sqlite_db) as s:
        assert version(s) == [HEAD]


def test_reopening_is_a_noop_migration(db: str) -> None:
    with Store.open(db) as s:
        run_id = s.record_audit(report(rollup()))
        head = version(s)
    with Store.open(db) as s:
        assert version(s) == head == [HEAD]
        assert [r.id for r in s.runs()] == [run_id]
        assert len(s.rollups()) == 1


def test_older_database_is_upgraded_with_its_data(db: str) -> None:
    engine = create_store_engine(parse_url(db))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(
                text(
                    "INSERT INTO audit_runs (generated_at, now, since, until, inputs, datasets)"
                    " VALUES (1.5, 2.5, NULL, NULL, '{\"files\": 1}', '[]')"
                )
            )
            assert "hour_rollups" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()

    with Store.open(db) as s:
        assert version(s) == [HEAD]
        [run] = s.runs()
        assert (run.generated_at, run.now, run.inputs) == (1.5, 2.5, {"files": 1})
        s.record_audit(report(rollup()))
        assert len(s.rollups()) == 1


def test_database_from_a_newer_release_is_refused(db: str) -> None:
    with Store.open(db) as s, s.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(StoreError, match=r"database schema 0099 is newer than this capi-monitor"):
        Store.open(db)


def test_sqlite_uses_wal_busy_timeout_and_foreign_keys(sqlite_db: str) -> None:
    with Store.open(sqlite_db) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_two_stores_share_one_file(db: str) -> None:
    with Store.open(db) as a, Store.open(db) as b:
        a.record_audit(report(rollup(events=1)), rollup_mode="add")
        b.record_audit(report(rollup(events=2)), rollup_mode="add")
        assert [r.events for r in a.rollups()] == [3]
        assert len(b.runs()) == 2


def test_concurrent_add_cycles_lose_no_counts(db: str) -> None:
    def cycles(store: Store) -> None:
        for _ in range(15):
            store.record_audit(report(rollup(events=1, em=1)), rollup_mode="add")

    with Store.open(db) as a, Store.open(db) as b:
        threads = [threading.Thread(target=cycles, args=(s,)) for s in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        [r] = a.rollups()
    assert (r.events, r.key_coverage()["em"]) == (60, 60)


def test_instances_starting_together_migrate_a_fresh_database_once(db: str) -> None:
    """Several processes opening one new database at once: one migrates, the others wait
    for it (the write lock) and find the schema at head."""
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_store() -> None:
        try:
            start.wait()
            with Store.open(db) as s:
                s.record_audit(report(rollup(events=1)), rollup_mode="add")
        except BaseException as err:  # collected: a thread's failure must fail the test
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Store.open(db) as s:
        assert version(s) == [HEAD]
        assert [r.events for r in s.rollups()] == [6]


@pytest.mark.postgres
@ON_PG[1]
def test_processes_starting_together_migrate_a_fresh_postgres() -> None:
    code = "import sys; from monitor.store import Store; Store.open(sys.argv[1]).close()"
    with fresh_database() as url:
        procs = [
            subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        with Store.open(url) as s:
            assert version(s) == [HEAD]


# --- opening: paths, URLs, errors ------------------------------------------------------


def test_bare_path_opens_sqlite_and_creates_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "capi.db"
    with Store.open(str(path)) as s:
        assert s.url == f"sqlite:///{path}"
    assert path.is_file()


def assert_clean(err: StoreError, *secrets: str) -> None:
    message = str(err)
    assert "Traceback" not in message and "\n" not in message
    # What a printed traceback would show besides source lines: every chained message.
    shown, cause = "", err.__cause__ or err.__context__
    while cause is not None:
        shown += "".join(traceback.format_exception_only(cause))
        cause = cause.__cause__ or cause.__context__
    for secret in secrets:
        assert secret not in message
        assert secret not in shown


def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot open database sqlite:///") as info:
        Store.open(str(blocker / "capi.db"))
    assert_clean(info.value)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a sqlite file at all" * 100)
    with pytest.raises(StoreError, match="cannot open database") as info:
        Store.open(str(junk))
    assert_clean(info.value)


def test_postgres_error_masks_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store.open("postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    assert time.monotonic() - started < 15
    assert "postgresql+psycopg://u:***@127.0.0.1:1/x" in str(info.value)
    assert_clean(info.value, "s3cret")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:s3cret@db.example:notaport/x",
        "mysql://u:s3cret@127.0.0.1/x",
        "nosuchdialect://u:s3cret@host/x",
    ],
)
def test_bad_urls_are_store_errors_without_the_password(url: str) -> None:
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert "***" in str(info.value)
    assert_clean(info.value, "s3cret")


# --- no customer data ------------------------------------------------------------------


def test_no_raw_email_reaches_the_database_file(sqlite_db: str, tmp_path: Path) -> None:
    masked = mask_value(EMAIL, "user_data.em")
    leaky = finding(example=masked)
    leaky.message = f"clear-text email such as {EMAIL} in user_data.em"  # a buggy check
    leaky.evidence = {"sample": EMAIL}
    with Store.open(sqlite_db) as s:
        run_id = s.record_audit(report(rollup(), findings=[leaky]))
        [row] = s.findings(run_id)
    assert row.examples[0]["value"] == masked != EMAIL
    assert EMAIL not in row.message

    files = list((tmp_path / "state").iterdir())
    assert files
    raw = b"".join(p.read_bytes() for p in files)
    assert masked.encode() in raw  # the masked example is really stored
    assert EMAIL.encode() not in raw
    assert b"jane.doe" not in raw


def test_schema_head_is_read_without_alembic() -> None:
    """The fast "already migrated?" path must agree with Alembic about the newest revision."""
    from monitor.store.schema import schema_head

    assert schema_head() == HEAD

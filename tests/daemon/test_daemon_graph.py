"""The daemon's Graph API jobs (``graph``, ``quality``) against the REAL fake Graph API (a
loopback HTTP server) and a real SQLite store: alerts fire and resolve from Meta's data,
inhibition by TOKEN_INVALID, log and Graph cycles never resolve each other's alerts,
no Graph call without a Graph source, and the token never leaks."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from checks.graph_common import CODE_PARTS, SOURCE_CODES
from monitor import jsonlog
from monitor.alerts.lifecycle import AlertRecord, Seen
from monitor.alerts.model import AlertKey, AlertState
from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.daemon.graph_jobs import (
    QUALITY_JOB,
    STATS_JOB,
    graph_judges,
    graph_reports,
    judges_logs,
)
from monitor.daemon.jobs import JOBS, JobResult
from monitor.daemon.scheduler import Daemon, GraphPoll
from monitor.daemon.status import last_runs, status, status_lines
from monitor.engine.graph_inputs import poll_graph
from monitor.jsonlog import secret_values
from monitor.model.findings import Severity, Status
from monitor.model.graph import GraphErrorKind, GraphSnapshot, Part, PartError
from monitor.store import Store
from monitor.store.graph import stored_polls, stored_source_counts
from monitor.testing.fakegraph import FakeGraph
from tests.daemon.test_daemon import NOW, FakeSender, append, line, outbox

HOUR = 3600.0
TOKEN_A = "EAAGdaemonGraphTokenAlpha0123456789abcdef"
TOKEN_B = "EAAGdaemonGraphTokenBravo0123456789abcdef"
ENV = {"CAPI_TEST_TOKEN_A": TOKEN_A, "CAPI_TEST_TOKEN_B": TOKEN_B}
SHOP, OTHER = "2001", "2002"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(
        {SHOP: "server_missing", OTHER: "healthy"}, tokens={SHOP: TOKEN_A, OTHER: TOKEN_B}
    ) as fg:
        yield fg


def make_settings(
    url: str | None, tmp_path: Path, *, ids: tuple[str, ...] = (SHOP,), logs: bool = False
) -> Settings:
    envs = {SHOP: "CAPI_TEST_TOKEN_A", OTHER: "CAPI_TEST_TOKEN_B"}
    datasets = [
        {
            "id": i,
            "name": f"ds {i}",
            "access_token_env": envs[i],
            "logs": [str(tmp_path / "logs" / "*.jsonl")] if logs else [],
        }
        for i in ids
    ]
    data: dict[str, Any] = {
        "datasets": datasets,
        # Cycle semantics only (keep firing and flapping: tests/alerts).
        "alerts": {
            "window": "1h",
            "resolve_after_cycles": 2,
            "for_cycles": 1,
            "keep_firing_for": "0s",
            "flap_window": "0s",
        },
        # Daemon.run would serve on the default port, shared by every test run on the host.
        "server": {"listen": "off"},
    }
    if url is not None:
        data["meta"] = {"graph_url": url, "concurrency": 4}
    return settings_from_dict(data)


def daemon(settings: Settings, store: Store, env: Mapping[str, str] = ENV, **kw: Any) -> Daemon:
    return Daemon(
        settings, store, FakeSender(), clock=lambda: NOW, env=env,
        secrets=secret_values(settings, env), **kw,
    )  # fmt: skip


async def no_sleep(_: float) -> None:
    """Back-off and slow-down without waiting (throttled scenarios)."""


def fast_poll(env: Mapping[str, str]) -> GraphPoll:
    def poll(s: Settings, now: float, parts: frozenset[Part]) -> dict[str, GraphSnapshot]:
        return poll_graph(s, now=now, env=env, parts=parts, sleep=no_sleep)

    return poll


def run(d: Daemon, job: str, now: float) -> JobResult:
    spec = next(s for s in JOBS if s.name == job)
    result = d.run_job(spec, now)
    assert result.ok, result.error
    return result


def firing(store: Store, dataset_id: str = SHOP) -> dict[str, str | None]:
    """Firing alert code -> what mutes it."""
    alerts = open_alerts(store.engine, dataset_id=dataset_id, firing_only=True)
    return {a.key.code: a.muted_by for a in alerts}


def states(payload: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(a["code"], a["state"]) for a in payload["alerts"]}


def test_once_fires_from_meta_and_graph_cycles_resolve_what_they_judge(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    d = daemon(make_settings(fake.url, tmp_path), store)
    results = d.run_once(NOW)
    assert [r.job for r in results] == ["logs", "graph", "quality", "notify"]
    assert all(r.ok for r in results), [r.error for r in results]
    assert {"PARITY_SERVER_MISSING", "EVENT_COVERAGE_LOW"} <= set(firing(store))
    (first, second) = outbox(store)  # one notification per job that had news
    assert ("PARITY_SERVER_MISSING", "FIRING") in states(first)
    assert ("EVENT_COVERAGE_LOW", "FIRING") in states(second)
    assert results[1].counters["datasets_polled"] == 1 and results[1].counters["fired"] >= 1

    fake.set_scenario(SHOP, "healthy")
    run(d, "graph", NOW + HOUR)
    assert "PARITY_SERVER_MISSING" in firing(store)  # one clean evaluation of two
    run(d, "graph", NOW + 2 * HOUR)
    assert "PARITY_SERVER_MISSING" not in firing(store)
    assert ("PARITY_SERVER_MISSING", "RESOLVED") in states(outbox(store)[-1])
    # /stats says nothing about Dataset Quality: only the quality job resolves that one.
    assert "EVENT_COVERAGE_LOW" in firing(store)
    run(d, "quality", NOW + 3 * HOUR)
    run(d, "quality", NOW + 4 * HOUR)
    assert firing(store) == {}


def test_rereading_hours_does_not_double_count(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    d = daemon(make_settings(fake.url, tmp_path), store)

    def totals(until: float) -> tuple[int, int]:
        rows = stored_source_counts(store, SHOP, NOW - 24 * HOUR, until)
        return sum(r.browser for r in rows), sum(r.server for r in rows)

    run(d, "graph", NOW)
    before = totals(NOW - 2 * HOUR)
    assert before[0] > 0
    run(d, "graph", NOW + HOUR)  # reads 47 of the same hours again
    assert totals(NOW - 2 * HOUR) == before
    assert len(stored_polls(store, SHOP)) == 2


def test_once_merges_the_two_polls_of_one_instant(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    fake.set_scenario(SHOP, "token_invalid")
    daemon(make_settings(fake.url, tmp_path), store).run_once(NOW)
    (poll,) = stored_polls(store, SHOP)
    parts = {e["part"] for e in poll["errors"]}
    assert parts == {p.value for p in Part} - {Part.TOKEN.value}  # the probe answered
    assert poll["token"]["valid"] is False


def test_token_invalid_fires_and_mutes_the_alerts_that_depend_on_the_token(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    d = daemon(make_settings(fake.url, tmp_path, ids=(SHOP, OTHER)), store)
    d.run_once(NOW)
    assert "PARITY_SERVER_MISSING" in firing(store)
    assert firing(store, OTHER) == {}
    fake.set_scenario(SHOP, "token_invalid")
    for k in (1, 2, 3):  # parity cannot be read: neither clean nor resolved, but muted
        d.run_once(NOW + k * HOUR)
    now_firing = firing(store)
    assert now_firing["TOKEN_INVALID"] is None
    assert now_firing["PARITY_SERVER_MISSING"] == "inhibited:TOKEN_INVALID"
    assert now_firing["EVENT_COVERAGE_LOW"] == "inhibited:TOKEN_INVALID"
    news = [p for p in outbox(store) if any(a["code"] == "TOKEN_INVALID" for a in p["alerts"])]
    assert len(news) == 1  # announced once, with the muted ones named, not re-posted
    assert states(news[0]) == {("TOKEN_INVALID", "FIRING")}
    assert "muted while TOKEN_INVALID fires" in news[0]["muted_note"]
    assert firing(store, OTHER) == {}  # another token, another dataset: untouched


def test_graph_cycles_never_resolve_log_alerts_nor_log_cycles_graph_alerts(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    fake.set_scenario(SHOP, "dedup_broken")
    (tmp_path / "logs").mkdir()
    log_file = tmp_path / "logs" / "capi.jsonl"
    bad = line(NOW - 60, email="jane.doe@example.com").replace(b'"event_id"', b'"no_event_id"')
    append(log_file, bad)
    d = daemon(make_settings(fake.url, tmp_path, logs=True), store)
    d.run_once(NOW)
    expected = {"HASH_PLAINTEXT", "MISSING_EVENT_ID", "DEDUP_KEY_COVERAGE_LOW"}
    assert expected <= set(firing(store))
    for k in (1, 2, 3):  # Meta's side is judged (dedup runs), the logs' side is not
        run(d, "graph", NOW + k * 60)
        run(d, "quality", NOW + k * 60)
    assert expected <= set(firing(store))
    for k in (4, 5, 6):  # clean new log lines: the log alerts resolve, Meta's does not
        append(log_file, line(NOW + k * 60 - 30))
        run(d, "logs", NOW + k * 60)
    assert "DEDUP_KEY_COVERAGE_LOW" in firing(store)
    assert not {"HASH_PLAINTEXT", "MISSING_EVENT_ID"} & set(firing(store))


def test_graph_only_reports_skip_log_checks_and_parts_not_read(
    fake: FakeGraph, store: Store, tmp_path: Path
) -> None:
    s = make_settings(fake.url, tmp_path)
    d = daemon(s, store)
    for job in (STATS_JOB, QUALITY_JOB):
        snaps = d._graph_poll(s, NOW, job.parts)
        (report,) = graph_reports(s, job, snaps, now=NOW, store=store)
        st = {c.id: c.status for c in report.checks}
        parity = {f.code for c in report.checks if c.id == "parity" for f in c.findings}
        assert st["hash_validity"] is Status.SKIPPED and st["payload"] is Status.SKIPPED
        assert st["delivery"] is Status.SKIPPED
        assert st.get("volume", Status.SKIPPED) is Status.SKIPPED  # the logs job's to judge
        needs_quality = ("match_quality", "latency", "dedup")
        if job is STATS_JOB:
            assert all(st[c] is Status.SKIPPED for c in needs_quality), st
            assert st["diagnostics"] is Status.OK
            assert parity == {"PARITY_SERVER_MISSING"}
        else:
            assert all(st[c] is not Status.SKIPPED for c in needs_quality), st
            assert parity == {"EVENT_COVERAGE_LOW"}


def test_every_graph_finding_is_judged_from_known_parts(tmp_path: Path, store: Store) -> None:
    """A Graph finding missing from CODE_PARTS would never be resolved by the daemon."""
    scenarios = [
        "healthy", "server_missing", "emq_low", "coverage_low", "dedup_broken",
        "slow_freshness", "da_checks_failed", "token_invalid", "server_error",
        "rate_limited", "malformed_json",
    ]  # fmt: skip
    ids = [str(3000 + i) for i in range(len(scenarios))]
    tokens = {i: f"EAAGscenarioToken{i}abcdefghijklmnop" for i in ids}
    env = {f"TOKEN_{i}": t for i, t in tokens.items()}
    data = {
        "datasets": [{"id": i, "access_token_env": f"TOKEN_{i}"} for i in ids],
        "meta": {"graph_url": "", "concurrency": 8, "max_retries": 0},
    }
    seen: set[tuple[str, str]] = set()
    with FakeGraph(dict(zip(ids, scenarios, strict=True)), tokens=tokens) as fg:
        data["meta"]["graph_url"] = fg.url  # type: ignore[index]
        s = settings_from_dict(data)
        d = daemon(s, store, env=env, graph_poll=fast_poll(env))
        for job in (STATS_JOB, QUALITY_JOB):
            snaps: Mapping[str, GraphSnapshot] = d._graph_poll(s, NOW, job.parts)
            for report in graph_reports(s, job, snaps, now=NOW, store=store):
                seen |= {
                    (f.check, f.code)
                    for c in report.checks
                    for f in c.findings
                    if f.severity is not Severity.INFO
                }
    unknown = {k for k in seen if k not in CODE_PARTS and k[1] not in SOURCE_CODES}
    assert not unknown
    assert ("parity", "PARITY_SERVER_MISSING") in seen and ("diagnostics", "TOKEN_INVALID") in seen


def test_run_schedules_the_graph_jobs(fake: FakeGraph, store: Store, tmp_path: Path) -> None:
    d = daemon(make_settings(fake.url, tmp_path), store)
    stop = threading.Event()
    thread = threading.Thread(target=d.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 60  # generous: CI machines may be loaded
        while not {"graph", "quality"} <= last_runs(store).keys():
            assert time.monotonic() < deadline, last_runs(store)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    runs = last_runs(store)
    assert runs["graph"]["ok"] and runs["quality"]["ok"], runs
    assert "PARITY_SERVER_MISSING" in firing(store)


def test_no_graph_source_no_graph_job_and_no_call(
    fake: FakeGraph, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.daemon.scheduler")
    without_meta = make_settings(None, tmp_path)
    results = daemon(without_meta, store).run_once(NOW)
    assert [r.job for r in results] == ["logs", "notify"]
    skipped = {
        (getattr(r, "job", None), getattr(r, "reason", None))
        for r in caplog.records
        if r.msg == "job not scheduled"
    }
    assert ("graph", "no [meta] section in the config") in skipped
    data = status(store, without_meta, NOW, env=ENV)
    assert data["not_scheduled"]["graph"] == "no [meta] section in the config"
    assert "  quality: not scheduled (no [meta] section in the config)" in status_lines(data)

    no_token = make_settings(fake.url, tmp_path)
    results = daemon(no_token, store, env={}).run_once(NOW)
    assert [r.job for r in results] == ["logs", "notify"]
    reason = status(store, no_token, NOW, env={})["not_scheduled"]["graph"]
    assert "no dataset has a Graph API token" in reason and "CAPI_TEST_TOKEN_A" in reason
    assert fake.total_requests == 0


def test_the_token_never_leaks(
    fake: FakeGraph, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.set_scenario(OTHER, "token_invalid")
    s = make_settings(fake.url, tmp_path, ids=(SHOP, OTHER))
    caplog.set_level(logging.DEBUG)
    d = daemon(s, store)
    d.run_once(NOW)
    d.run_once(NOW + HOUR)
    assert firing(store, OTHER).keys() >= {"TOKEN_INVALID"}
    assert "HTTP Request" in caplog.text  # httpx did log its requests (redacted)
    real_logs = caplog.text

    def leaking_poll(*_: Any) -> dict[str, GraphSnapshot]:
        raise RuntimeError(f"proxy refused https://graph.example/?access_token={TOKEN_A}")

    stream = io.StringIO()
    with jsonlog.configured(s, ENV, stream=stream, level=logging.DEBUG):
        failed = daemon(s, store, graph_poll=leaking_poll).run_job(JOBS[1], NOW + 2 * HOUR)
    assert not failed.ok and "[redacted]" in (failed.error or "")
    assert status(store, s, NOW, env=ENV)["jobs"]["graph"]["ok"] is False
    store.close()  # checkpoint the WAL: everything is in the file
    db = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    for token in (TOKEN_A, TOKEN_B):
        assert token not in real_logs
        assert token not in stream.getvalue()  # the daemon's own log handler scrubs
        assert token.encode() not in db


# --- which alerts a cycle judges (pure) --------------------------------------------------


def snapshot(parts: frozenset[Part], failed: tuple[Part, ...] = ()) -> GraphSnapshot:
    errors = [PartError(p, GraphErrorKind.TRANSIENT, None, None, "HTTP 503") for p in failed]
    return GraphSnapshot(SHOP, NOW, NOW - 48 * HOUR, NOW, errors=errors, parts=parts)


def record(key: AlertKey, evidence: dict[str, Any]) -> AlertRecord:
    seen = Seen(key, Severity.WARN, 1, "msg", "fix", evidence)
    return AlertRecord(key, AlertState.FIRING, Severity.WARN, Severity.WARN, NOW, NOW, seen)


STATS_OK = snapshot(STATS_JOB.parts)
QUALITY_OK = snapshot(QUALITY_JOB.parts)
QUALITY_DOWN = snapshot(QUALITY_JOB.parts, failed=(Part.DATASET_QUALITY,))
DQ_FAILED = {"parts": [{"part": "dataset_quality", "kind": "transient"}]}
PROBE_SAID_INVALID = {"parts": ["debug_token"]}


@pytest.mark.parametrize(
    ("check", "code", "evidence", "snap", "judged"),
    [
        # A Graph finding is judged by the job that reads its data, successfully.
        ("parity", "PARITY_SERVER_MISSING", {}, STATS_OK, True),
        ("parity", "PARITY_SERVER_MISSING", {}, QUALITY_OK, False),
        ("parity", "EVENT_COVERAGE_LOW", {}, QUALITY_OK, True),
        ("parity", "EVENT_COVERAGE_LOW", {}, QUALITY_DOWN, False),
        ("match_quality", "EMQ_LOW", {}, STATS_OK, False),
        ("diagnostics", "META_DIAGNOSTIC", {}, QUALITY_OK, True),
        # The source's own codes: by the parts that failed when last seen.
        ("diagnostics", "SOURCE_UNAVAILABLE", DQ_FAILED, STATS_OK, False),
        ("diagnostics", "SOURCE_UNAVAILABLE", DQ_FAILED, QUALITY_DOWN, False),
        ("diagnostics", "SOURCE_UNAVAILABLE", DQ_FAILED, QUALITY_OK, True),
        ("diagnostics", "TOKEN_INVALID", PROBE_SAID_INVALID, STATS_OK, False),
        ("diagnostics", "TOKEN_INVALID", PROBE_SAID_INVALID, QUALITY_OK, True),
        ("diagnostics", "RATE_LIMITED", {}, STATS_OK, True),  # no evidence: what was read
        # Log findings, even of a check with a Graph part, never.
        ("dedup", "MISSING_EVENT_ID", {}, QUALITY_OK, False),
        ("delivery", "TOKEN_INVALID", {}, QUALITY_OK, False),
        ("parity", "SOME_FUTURE_CODE", {}, STATS_OK, False),
        # MATCH_KEY_DROP has both sides: Meta's key coverage, or the logs' own.
        ("match_quality", "MATCH_KEY_DROP", {}, QUALITY_OK, True),
        ("match_quality", "MATCH_KEY_DROP", {"source": "server_log"}, QUALITY_OK, False),
    ],
)
def test_graph_judges(
    check: str, code: str, evidence: dict[str, Any], snap: GraphSnapshot, judged: bool
) -> None:
    key = AlertKey(SHOP, check, code, None)
    assert graph_judges({SHOP: snap})(key, record(key, evidence)) is judged
    assert graph_judges({})(key, record(key, evidence)) is False  # dataset not polled


@pytest.mark.parametrize(
    ("check", "code", "judged"),
    [
        ("hash_validity", "HASH_PLAINTEXT", True),
        ("dedup", "MISSING_EVENT_ID", True),
        ("delivery", "TOKEN_INVALID", True),
        ("volume", "VOLUME_DROP", True),
        ("dedup", "DEDUP_KEY_COVERAGE_LOW", False),
        ("latency", "FRESHNESS_SLOW", False),
        ("diagnostics", "TOKEN_INVALID", False),
        ("parity", "PARITY_LOW", False),
    ],
)
def test_judges_logs(check: str, code: str, judged: bool) -> None:
    assert judges_logs(AlertKey(SHOP, check, code, None), None) is judged


def test_a_key_drop_from_the_logs_is_judged_by_log_cycles() -> None:
    key = AlertKey(SHOP, "match_quality", "MATCH_KEY_DROP", "PageView")
    assert judges_logs(key, record(key, {"source": "server_log"})) is True
    assert judges_logs(key, record(key, {"dropped_keys": {}})) is False  # Meta's
    assert judges_logs(key, None) is False  # unknown: a present finding still counts

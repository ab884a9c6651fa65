"""The Graph-based checks end to end through the REAL fake Graph API (a loopback HTTP
server): ``collect_graph`` + ``run_audit`` per scenario, history across stored polls, the
logs/Meta cross-check, and ``capi-monitor audit --config`` as a user runs it (no secret
in the JSON, the HTML or the SQLite file)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from monitor.config import Settings, settings_from_dict
from monitor.engine.audit import run_audit
from monitor.engine.graph_inputs import collect_graph, store_graph
from monitor.model.findings import Severity, Status
from monitor.model.results import AuditReport, DatasetReport
from monitor.sources.logs.paths import InputFile
from monitor.store import Store
from monitor.store.graph import stored_polls
from monitor.testing.fakegraph import FakeGraph
from monitor.testing.fakegraph.scenarios import SERVER_SHARE, hourly_count

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "audit-output-v1.schema.json").read_text())
NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
NOW_ISO = "2026-11-20T12:00:00Z"
TOKEN = "EAAGfaketokenForTheFakeGraphApi0123456789"
TOKEN_ENV = "CAPI_TEST_META_TOKEN"
ENV = {TOKEN_ENV: TOKEN}
GRAPH_CHECKS = ("dedup", "latency", "match_quality", "parity", "diagnostics")
NEEDS_QUALITY = ("dedup", "latency", "match_quality", "parity")

# dataset id -> scenario of the fake, one dataset per scenario
SCENARIOS = {
    "1001": "healthy",
    "1002": "server_missing",
    "1003": "emq_low",
    "1004": "coverage_low",
    "1005": "dedup_broken",
    "1006": "slow_freshness",
    "1007": "da_checks_failed",
    "1008": "token_invalid",
    "1009": "server_error",
    "1010": "rate_limited",
    "1011": "malformed_json",
    "1012": "flaky",
}


async def no_sleep(_: float) -> None:
    """Retries and throttling back-off without waiting (the fake never recovers anyway)."""


def settings(url: str | None, ids: list[str], **extra: Any) -> Settings:
    data: dict[str, Any] = {"datasets": [{"id": i, "name": f"ds {i}"} for i in ids], **extra}
    if url is not None:
        data["meta"] = {"graph_url": url, "access_token_env": TOKEN_ENV, "concurrency": 8}
    return settings_from_dict(data)


def audit(
    s: Settings,
    *,
    now: float = NOW,
    files: list[InputFile] | None = None,
    store: Store | None = None,
    env: dict[str, str] = ENV,
) -> AuditReport:
    graph = collect_graph(s, now=now, store=store, env=env, sleep=no_sleep)
    report = run_audit(s, files or [], now=now, graph=graph)
    if store is not None:
        store.record_audit(report)
        store_graph(store, graph)
    return report


def dataset(report: AuditReport, dataset_id: str) -> DatasetReport:
    return next(d for d in report.datasets if d.dataset_id == dataset_id)


def statuses(ds: DatasetReport) -> dict[str, Status]:
    return {c.id: c.status for c in ds.checks}


def alarms(ds: DatasetReport) -> set[str]:
    return {f.code for f in ds.findings if f.severity is not Severity.INFO}


@pytest.fixture(scope="module")
def report() -> Iterator[AuditReport]:
    with FakeGraph(SCENARIOS, token=TOKEN) as fg:
        yield audit(settings(fg.url, list(SCENARIOS)))


# (scenario, codes expected among the warn/crit findings, checks expected `error`)
EXPECTED: list[tuple[str, set[str], tuple[str, ...]]] = [
    ("healthy", set(), ()),
    ("server_missing", {"PARITY_SERVER_MISSING", "EVENT_COVERAGE_LOW"}, ()),
    ("emq_low", {"EMQ_LOW", "META_DIAGNOSTIC"}, ()),
    ("coverage_low", {"EVENT_COVERAGE_LOW"}, ()),
    ("dedup_broken", {"DEDUP_KEY_COVERAGE_LOW"}, ()),
    ("slow_freshness", {"FRESHNESS_SLOW"}, ()),
    ("da_checks_failed", {"META_DIAGNOSTIC"}, ()),
    ("token_invalid", {"TOKEN_INVALID"}, NEEDS_QUALITY),
    ("server_error", {"SOURCE_UNAVAILABLE"}, NEEDS_QUALITY),
    ("rate_limited", {"RATE_LIMITED"}, NEEDS_QUALITY),
    ("malformed_json", {"SOURCE_UNAVAILABLE"}, NEEDS_QUALITY),
    ("flaky", set(), ()),  # recovers within the client's retries
]


@pytest.mark.parametrize(("scenario", "codes", "errors"), EXPECTED)
def test_scenario(
    report: AuditReport, scenario: str, codes: set[str], errors: tuple[str, ...]
) -> None:
    ds_id = next(k for k, v in SCENARIOS.items() if v == scenario)
    ds = dataset(report, ds_id)
    assert alarms(ds) == codes
    st = statuses(ds)
    for check in GRAPH_CHECKS:
        if check in errors:
            assert st[check] is Status.ERROR, check
        else:
            assert st[check] is not Status.ERROR, check
        assert st[check] is not Status.SKIPPED, check  # Meta's side was there to judge
    if not codes:
        assert all(st[c] is Status.OK for c in GRAPH_CHECKS)
    # Log-only checks of a dataset without logs stay skipped, never "healthy".
    assert st["hash_validity"] is Status.SKIPPED and st["payload"] is Status.SKIPPED


def test_findings_name_events_and_dataset_wide_codes_none(report: AuditReport) -> None:
    parity = dataset(report, "1002").findings
    missing = next(f for f in parity if f.code == "PARITY_SERVER_MISSING")
    assert missing.event_names == ["Purchase"] and missing.severity is Severity.CRIT
    token = next(f for f in dataset(report, "1008").findings if f.code == "TOKEN_INVALID")
    assert token.event_names == [] and token.severity is Severity.CRIT
    emq = [f for f in dataset(report, "1003").findings if f.code == "EMQ_LOW"]
    assert {n for f in emq for n in f.event_names} == {"Purchase", "InitiateCheckout", "AddToCart"}


def test_no_meta_section_makes_no_call_and_skips() -> None:
    with FakeGraph(SCENARIOS, token=TOKEN) as fg:
        without_meta = audit(settings(None, ["1002"]))
        # [meta] present but the dataset's token variable is unset: no call either.
        no_token = audit(settings(fg.url, ["1002"]), env={})
        assert fg.total_requests == 0
    for rep in (without_meta, no_token):
        st = statuses(rep.datasets[0])
        assert st["parity"] is Status.SKIPPED and st["diagnostics"] is Status.SKIPPED
        assert set(st.values()) == {Status.SKIPPED}  # no logs either
        assert rep.datasets[0].health_score is None


def test_per_dataset_token_override() -> None:
    tokens = {"1001": TOKEN, "1003": TOKEN + "Other"}
    with FakeGraph(SCENARIOS, tokens=tokens) as fg:
        s = settings_from_dict(
            {
                "meta": {"graph_url": fg.url, "access_token_env": TOKEN_ENV},
                "datasets": [{"id": "1001"}, {"id": "1003", "access_token_env": "OTHER"}],
            }
        )
        rep = audit(s, env={TOKEN_ENV: TOKEN, "OTHER": TOKEN + "Other"})
    assert not alarms(dataset(rep, "1001"))
    assert "EMQ_LOW" in alarms(dataset(rep, "1003"))


def _purchase_log(path: Path, dataset_id: str, per_hour: dict[int, int]) -> InputFile:
    """Accepted server Purchases: ``per_hour[hour]`` events sent in each hour."""
    lines = []
    for h, n in per_hour.items():
        events = [
            {"event_name": "Purchase", "event_time": h + 60 + i, "event_id": f"o-{h}-{i}",
             "action_source": "website", "event_source_url": "https://shop.example.com/t",
             "user_data": {"client_ip_address": "203.0.113.9", "client_user_agent": "UA"}}
            for i in range(n)
        ]  # fmt: skip
        if events:
            rec = {
                "sent_at": h + 600,
                "dataset_id": dataset_id,
                "request": {"data": events},
                "response": {"status": 200, "body": {"events_received": n, "messages": []}},
            }
            lines.append(orjson.dumps(rec))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return InputFile(str(path))


def _hours() -> list[int]:
    last = int(NOW) - 2 * 3600  # the newest hour the parity check judges (settle 1 h)
    return [last - i * 3600 for i in range(24)]


def test_logs_and_graph_cross_check(tmp_path: Path) -> None:
    # 1001 (healthy): the logs show exactly what Meta counts server-side -> no mismatch.
    # 1002 (server_missing): the logs accepted Purchases that Meta never counted.
    meta = {h: round(hourly_count("1001", "Purchase", h) * SERVER_SHARE) for h in _hours()}
    assert sum(meta.values()) >= 100  # enough to be judged
    files = [
        _purchase_log(tmp_path / "a.jsonl", "1001", meta),
        _purchase_log(tmp_path / "b.jsonl", "1002", {h: 6 for h in _hours()}),
    ]
    with FakeGraph(SCENARIOS, token=TOKEN) as fg:
        rep = audit(settings(fg.url, ["1001", "1002"]), files=files)
    healthy, broken = dataset(rep, "1001"), dataset(rep, "1002")
    assert healthy.events == sum(meta.values()) and broken.events == 144
    assert "SERVER_COUNT_MISMATCH" not in alarms(healthy)
    assert "Purchase" in next(c for c in healthy.checks if c.id == "parity").summary
    mismatch = next(f for f in broken.findings if f.code == "SERVER_COUNT_MISMATCH")
    assert mismatch.severity is Severity.CRIT and mismatch.event_names == ["Purchase"]
    assert mismatch.evidence["accepted_in_logs"] == 144
    assert mismatch.evidence["meta_server_count"] == 0
    # Log checks ran alongside the Graph ones.
    assert statuses(broken)["hash_validity"] is not Status.SKIPPED


def test_cross_check_in_half_hour_zones_compares_instants(tmp_path: Path) -> None:
    # 2001: an ad account in India (+0530): Meta's hours start at xx:30 UTC. The logs
    # accepted exactly what Meta counts, over the same instants -> no mismatch (compared
    # by UTC-hour label, Meta's count read as 0: a false crit). 2002: Nepal (+0545), and
    # Meta counts no server Purchase at all -> crit, over the 22 fully covered hours.
    def server(t: float) -> int:
        return round(hourly_count("2001", "Purchase", t) * SERVER_SHARE)

    logged = {h: round((server(h - 1800) + server(h + 1800)) / 2) for h in _hours()}
    files = [
        _purchase_log(tmp_path / "a.jsonl", "2001", logged),
        _purchase_log(tmp_path / "b.jsonl", "2002", {h: 6 for h in _hours()}),
    ]
    scenarios = {"2001": "healthy@+0530", "2002": "server_missing@+0545"}
    with FakeGraph(scenarios, token=TOKEN) as fg:
        s = settings(fg.url, ["2001", "2002"])
        graph = collect_graph(s, now=NOW, store=None, env=ENV, sleep=no_sleep)
        rep = run_audit(s, files, now=NOW, graph=graph)
    minutes = {
        g.snapshot.dataset_id: {c.hour.minute for c in g.snapshot.source_counts}
        for g in graph.values()
    }
    assert minutes == {"2001": {30}, "2002": {15}}
    india, nepal = dataset(rep, "2001"), dataset(rep, "2002")
    assert "SERVER_COUNT_MISMATCH" not in alarms(india)
    mismatch = next(f for f in nepal.findings if f.code == "SERVER_COUNT_MISMATCH")
    assert mismatch.severity is Severity.CRIT
    assert mismatch.evidence["hours_compared"] == 22
    assert mismatch.evidence["meta_hours_start_at_minute"] == 15


def test_a_dataset_the_token_cannot_see_names_the_dataset_and_the_token() -> None:
    with FakeGraph({"3001": "no_access"}, token=TOKEN) as fg:
        rep = audit(settings(fg.url, ["3001"]))
    ds = dataset(rep, "3001")
    finding = next(f for f in ds.findings if f.code == "SOURCE_UNAVAILABLE")
    assert "dataset 3001" in finding.remediation and "token" in finding.remediation
    assert {p["code"] for p in finding.evidence["parts"]} == {100}
    assert {p["kind"] for p in finding.evidence["parts"]} == {"not_found"}


def test_emq_drop_through_two_stored_polls(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'capi.db'}"
    with Store.open(db) as store:
        with FakeGraph({"1003": "healthy"}, token=TOKEN) as fg:
            first = audit(settings(fg.url, ["1003"]), now=NOW - 86400, store=store)
        assert not alarms(first.datasets[0])
        with FakeGraph({"1003": "emq_low"}, token=TOKEN) as fg:
            second = audit(settings(fg.url, ["1003"]), now=NOW, store=store)
        assert len(stored_polls(store, "1003")) == 2
    ds = second.datasets[0]
    drops = [f for f in ds.findings if f.code == "EMQ_DROP"]
    assert {n for f in drops for n in f.event_names} >= {"Purchase"}
    purchase = next(f for f in drops if f.event_names == ["Purchase"])
    assert purchase.evidence["median"] == 8.1 and purchase.evidence["composite_score"] == 3.1
    assert purchase.severity is Severity.CRIT
    key = next(f for f in ds.findings if f.code == "MATCH_KEY_DROP" and "Purchase" in f.event_names)
    assert key.field == "user_data.em"  # 96.4 % -> 8.2 %


def test_a_broken_transport_never_crashes_the_audit() -> None:
    class Exploding(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            raise RuntimeError("boom")

    s = settings("http://127.0.0.1:9", ["1001"])
    graph = collect_graph(s, now=NOW, store=None, env=ENV, transport=Exploding(), sleep=no_sleep)
    rep = run_audit(s, [], now=NOW, graph=graph)
    ds = rep.datasets[0]
    assert "SOURCE_UNAVAILABLE" in alarms(ds)
    assert all(statuses(ds)[c] is Status.ERROR for c in NEEDS_QUALITY)


def test_parallel_audit_with_graph_is_the_sequential_one(tmp_path: Path) -> None:
    big = {h: 40 for h in _hours()}
    files = [_purchase_log(tmp_path / f"{i}.jsonl", "1002", big) for i in range(3)]
    with FakeGraph(SCENARIOS, token=TOKEN) as fg:
        s = settings(fg.url, ["1002"])
        graph = collect_graph(s, now=NOW, store=None, env=ENV, sleep=no_sleep)
    seq = run_audit(s, files, now=NOW, graph=graph)
    par = run_audit(s, files, now=NOW, graph=graph, jobs=2, parallel_min_bytes=0)
    assert par.datasets[0].to_dict() == seq.datasets[0].to_dict()
    assert "SERVER_COUNT_MISMATCH" in alarms(seq.datasets[0])


# ------------------------------------------------------------------ the command line


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", TOKEN_ENV: TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_audit_config_with_graph_and_no_secrets(tmp_path: Path) -> None:
    scenarios = {"1002": "server_missing", "1008": "token_invalid", "1001": "healthy"}
    log = _purchase_log(tmp_path / "shop.jsonl", "1002", {h: 6 for h in _hours()})
    db = tmp_path / "store" / "capi.db"
    with FakeGraph(scenarios, token=TOKEN) as fg:
        (tmp_path / "cfg.toml").write_text(
            f'[storage]\nurl = "sqlite:///{db}"\n\n'
            f'[meta]\ngraph_url = "{fg.url}"\naccess_token_env = "{TOKEN_ENV}"\n\n'
            f'[[datasets]]\nid = "1002"\nlogs = ["{log.path}"]\n\n'
            '[[datasets]]\nid = "1008"\n\n[[datasets]]\nid = "1001"\n'
        )
        proc = cli(
            "audit", "--config", "cfg.toml", "--now", NOW_ISO, "--json", "out.json",
            "--html", "out.html", "-q", cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr.decode()  # crit findings, --fail-on crit
    doc = json.loads((tmp_path / "out.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    by_id = {d["dataset_id"]: d for d in doc["datasets"]}
    assert list(by_id) == ["1002", "1008", "1001"]  # config order, logs or not
    shop_codes = {f["code"] for f in by_id["1002"]["findings"]}
    assert {"PARITY_SERVER_MISSING", "SERVER_COUNT_MISMATCH"} <= shop_codes
    token_checks = {c["id"]: c["status"] for c in by_id["1008"]["checks"]}
    assert token_checks["parity"] == "error" and token_checks["diagnostics"] == "crit"
    assert "TOKEN_INVALID" in {f["code"] for f in by_id["1008"]["findings"]}
    assert not [f for f in by_id["1001"]["findings"] if f["severity"] != "info"]
    # The snapshot went to the same store as the run.
    with Store.open(f"sqlite:///{db}") as store:
        assert {p["dataset_id"] for p in stored_polls(store)} == {"1001", "1002", "1008"}
        assert len(store.runs()) == 1
    # No secret anywhere a user or an attacker could read.
    secret = TOKEN.encode()
    assert secret not in (tmp_path / "out.json").read_bytes()
    assert secret not in (tmp_path / "out.html").read_bytes()
    assert secret not in proc.stdout + proc.stderr
    for f in db.parent.iterdir():
        assert secret not in f.read_bytes(), f.name


def test_cli_config_with_graph_but_no_logs_audits_meta(tmp_path: Path) -> None:
    with FakeGraph({"1003": "emq_low"}, token=TOKEN) as fg:
        (tmp_path / "cfg.toml").write_text(
            f'[meta]\ngraph_url = "{fg.url}"\naccess_token_env = "{TOKEN_ENV}"\n\n'
            '[[datasets]]\nid = "1003"\n'
        )
        proc = cli(
            "audit", "--config", "cfg.toml", "--now", NOW_ISO, "--json", "-", "--no-store",
            "--fail-on", "never", cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    (ds,) = json.loads(proc.stdout)["datasets"]
    assert "EMQ_LOW" in {f["code"] for f in ds["findings"]}
    assert ds["events"] == 0 and ds["health_score"] is not None


def test_demo_setup_is_deterministic(tmp_path: Path) -> None:
    """What scripts/demo runs: the sample logs plus the fake, twice, same --now."""
    config = tmp_path / "config-demo.toml"
    docs = []
    with FakeGraph({"1234567890": "server_missing", "9876543210": "emq_low"}, token=TOKEN) as fg:
        config.write_text(
            (REPO / "samples" / "config.toml").read_text()
            + f'\n[meta]\ngraph_url = "{fg.url}"\naccess_token_env = "{TOKEN_ENV}"\n'
        )
        for _ in range(2):
            proc = cli(
                "audit", "--config", str(config), "--now", NOW_ISO, "--json", "-", "-q",
                "--db", f"sqlite:///{tmp_path / 'demo.db'}", "--fail-on", "never", cwd=REPO,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr.decode()
            doc = json.loads(proc.stdout)
            doc.pop("generated_at")
            docs.append(doc)
    assert docs[0] == docs[1]
    codes = {d["dataset_id"]: {f["code"] for f in d["findings"]} for d in docs[0]["datasets"]}
    assert {"PARITY_SERVER_MISSING", "EVENT_COVERAGE_LOW"} <= codes["1234567890"]
    assert {"EMQ_LOW", "META_DIAGNOSTIC"} <= codes["9876543210"]
    assert "EMQ_DROP" not in codes["9876543210"]  # a re-run never compares with itself

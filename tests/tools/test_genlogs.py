"""The benchmark/sample log generator: deterministic, well-shaped, clean unless asked not to be.

The clean-output assertions restate Meta's rules (docs/meta-capi.md §6-§8) independently of the
checks, so a generator bug cannot hide behind a matching check bug.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import bench_audit
from monitor.tools import genlogs

START = genlogs.parse_iso("2026-10-01T00:00:00Z")
MUST_HASH = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
HEX64 = re.compile(r"[0-9a-f]{64}")
FBC = re.compile(
    r"fb\.(\d)\.(\d{13})\.([A-Za-z0-9_\-]+)(?:\.([A-Za-z0-9_\-]{2}|[A-Za-z0-9_\-]{8}))?"
)
FBP = re.compile(r"fb\.(\d)\.(\d{13})\.(\d{1,10})(?:\.([A-Za-z0-9_\-]{2}|[A-Za-z0-9_\-]{8}))?")
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CURRENCIES = {"EUR", "USD", "GBP", "CHF"}


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("gen") / "clean.jsonl"
    return path, genlogs.generate(path, 6000, seed=3, start=START)


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("gen") / "defects.jsonl"
    return path, genlogs.generate(path, 20000, seed=3, start=START, defects=0.05)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    genlogs.generate(a, 800, seed=3, start=START, defects=0.05)
    genlogs.generate(b, 800, seed=3, start=START, defects=0.05)
    genlogs.generate(c, 800, seed=4, start=START, defects=0.05)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_writes_exactly_the_requested_events_as_shape_a_records(
    clean: tuple[Path, dict[str, Any]],
) -> None:
    path, counts = clean
    records = _records(path)
    assert counts["events"] == 6000
    assert counts["records"] == counts["lines"] == len(records)
    assert counts["bytes"] == path.stat().st_size
    assert sum(len(r["request"]["data"]) for r in records) == 6000
    for rec in records:
        assert ISO_Z.fullmatch(rec["sent_at"])
        assert rec["dataset_id"] == "1234567890"
        body = rec["response"]["body"]
        assert rec["response"]["status"] == 200
        assert body["events_received"] == len(rec["request"]["data"])
        assert body["messages"] == [] and body["fbtrace_id"]
        assert isinstance(rec["duration_ms"], int) and rec["duration_ms"] > 0
        assert "test_event_code" not in rec["request"]
    assert counts["first_sent_at"] == records[0]["sent_at"]
    assert counts["last_sent_at"] == records[-1]["sent_at"]


def test_about_one_kilobyte_per_event(clean: tuple[Path, dict[str, Any]]) -> None:
    _, counts = clean
    assert 600 <= counts["bytes"] / counts["events"] <= 1600


def test_batches_are_1_to_50_events_and_mostly_small(clean: tuple[Path, dict[str, Any]]) -> None:
    sizes = [len(r["request"]["data"]) for r in _records(clean[0])]
    assert min(sizes) >= 1 and max(sizes) <= 50
    assert statistics.median(sizes) == 1
    assert 2.5 <= statistics.mean(sizes) <= 7
    assert any(s > 20 for s in sizes)


def test_sent_at_advances_at_the_requested_rate(tmp_path: Path) -> None:
    counts = genlogs.generate(tmp_path / "r.jsonl", 4000, seed=3, start=START, events_per_hour=500)
    hours = (counts["last_sent_ts"] - START) / 3600
    assert 6.5 <= hours <= 9.5  # 4000 events at 500/h = 8 h, Poisson noise aside


def test_clean_output_follows_metas_rules(clean: tuple[Path, dict[str, Any]]) -> None:
    event_ids: set[str] = set()
    names: Counter[str] = Counter()
    full_keys = 0
    for rec in _records(clean[0]):
        sent_at = genlogs.parse_iso(rec["sent_at"])
        for ev in rec["request"]["data"]:
            names[ev["event_name"]] += 1
            assert 0 <= sent_at - ev["event_time"] < 3600  # seconds, not ms; never ahead
            assert ev["event_id"] not in event_ids
            event_ids.add(ev["event_id"])
            assert ev["action_source"] == "website"
            assert ev["event_source_url"].startswith("https://shop.example.com/")
            ud = ev["user_data"]
            for key in MUST_HASH:
                for value in _values(ud.get(key, [])):
                    assert HEX64.fullmatch(value), (key, value)
            assert HEX64.fullmatch(ud["external_id"][0])
            assert "." in ud["client_ip_address"] or ":" in ud["client_ip_address"]
            assert len(ud["client_user_agent"]) > 60
            cookies = [(FBP, ud["fbp"])] + ([(FBC, ud["fbc"])] if "fbc" in ud else [])
            for pattern, cookie in cookies:
                m = pattern.fullmatch(cookie)
                assert m, cookie
                created = int(m.group(2)) / 1000
                assert ev["event_time"] - 90 * 86400 < created <= ev["event_time"]
            full_keys += {"em", "ph", "fn", "ln", "external_id", "fbp"} <= ud.keys()
            cd = ev.get("custom_data", {})
            if "value" in cd:
                assert isinstance(cd["value"], float) and cd["currency"] in CURRENCIES
    assert len(event_ids) == 6000
    assert set(names) == {n for n, _ in genlogs.SHOP.event_weights}
    assert names["PageView"] > names["ViewContent"] > names["Purchase"]
    assert full_keys / 6000 > 0.75  # strong match keys on most events


def test_defects_are_injected_at_roughly_the_requested_rate(
    defective: tuple[Path, dict[str, Any]],
) -> None:
    _, counts = defective
    assert 0.04 <= counts["defective_events"] / counts["events"] <= 0.06
    assert 0.03 <= counts["defective_records"] / counts["records"] <= 0.07
    assert set(counts["defects"]) == set(genlogs.EVENT_DEFECTS) | set(genlogs.RECORD_DEFECTS)
    assert sum(counts["defects"].values()) == (
        counts["defective_events"] + counts["defective_records"]
    )


def test_the_file_contains_exactly_the_defects_reported(
    defective: tuple[Path, dict[str, Any]],
) -> None:
    path, counts = defective
    seen: Counter[str] = Counter()
    events = 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            seen["malformed"] += 1
            continue
        assert isinstance(rec, dict)
        sent_at = genlogs.parse_iso(rec["sent_at"])
        seen["test_event_code"] += "test_event_code" in rec["request"]
        error = rec["response"]["body"].get("error")
        if error:
            code = {190: "error_190", 17: "error_17"}.get(error["code"], "error_2804003")
            seen[code] += 1
        for ev in rec["request"]["data"]:
            events += 1
            ud = ev["user_data"]
            em = _values(ud["em"])[0]
            seen["plaintext_email"] += "@" in em
            seen["md5_email"] += len(em) == 32
            seen["uppercase_hash"] += em.isupper()
            seen["ms_event_time"] += ev["event_time"] > sent_at * 100
            seen["missing_event_id"] += "event_id" not in ev
            seen["missing_user_agent"] += "client_user_agent" not in ud
    assert events == counts["events"]
    assert counts["malformed_lines"] == seen["malformed"]
    assert {k: v for k, v in seen.items() if v} == counts["defects"]


def test_defect_rate_zero_is_clean_and_bad_rates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        genlogs.generate(tmp_path / "x.jsonl", 10, start=START, defects=1.5)
    counts = genlogs.generate(tmp_path / "y.jsonl", 500, start=START)
    assert counts["defects"] == {} and counts["malformed_lines"] == 0


def test_gzip_is_reproducible_and_dataset_id_can_be_omitted(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "leads.jsonl.gz", tmp_path / "b" / "leads.jsonl.gz"
    for path in (a, b):
        path.parent.mkdir()
        genlogs.generate(path, 300, start=START, gzip=True, dataset_id=None, site=genlogs.LEADGEN)
    assert a.read_bytes() == b.read_bytes()  # no mtime in the gzip header
    records = [orjson.loads(x) for x in gzip.decompress(a.read_bytes()).splitlines()]
    assert sum(len(r["request"]["data"]) for r in records) == 300
    assert all("dataset_id" not in r for r in records)
    assert all(r["request"]["partner_agent"] == "formbridge" for r in records)
    # The lead-gen sender writes plain strings, not the SDK's one-element lists.
    assert all(
        isinstance(ev["user_data"]["em"], str) for r in records for ev in r["request"]["data"]
    )


def test_cli_writes_the_file_and_prints_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.jsonl"
    assert genlogs.main([str(out), "--events", "250", "--seed", "3", "--defects", "0.02"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["events"] == 250 and out.stat().st_size == counts["bytes"]


def test_benchmark_quick_run_with_a_stand_in_audit_command(tmp_path: Path) -> None:
    # The real CLI is exercised by running the benchmark itself; here a stand-in audit
    # (a plain parse) checks the harness: caching, timing, wait4 RSS, table and JSON.
    stand_in = "{python} -c 'import sys; open(sys.argv[1], \"rb\").read()' {file}"
    out = tmp_path / "audit.json"
    argv = [
        "--events",
        "1500",
        "--scale",
        "2",
        "--runs",
        "1",
        "--seed",
        "3",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(out),
        "--audit-cmd",
        stand_in,
    ]
    bench_audit.main(argv)
    result = json.loads(out.read_text())
    assert result["events"] == 1500 and result["scale"] == 2
    assert result["bare"]["events_counted"] == 1500
    assert result["audit"]["rss_kib"] > 0 and result["audit_scaled"]["rss_kib"] > 0
    assert {m["metric"] for m in result["metrics"]} >= {"audit_vs_bare", "rss_growth"}
    assert sorted(p.name for p in tmp_path.glob("events-*.jsonl")) == [
        "events-1500-seed3.jsonl",
        "events-3000-seed3.jsonl",
    ]


def test_benchmark_fails_on_an_audit_that_crashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A traceback exits 1 too, as findings do: the harness must not time a crash.
    crash = "{python} -c '1 / 0' {file}"
    out = tmp_path / "audit.json"
    argv = ["--events", "300", "--scale", "2", "--runs", "1", "--seed", "3"]
    argv += ["--data-dir", str(tmp_path), "--out", str(out), "--audit-cmd", crash]
    assert bench_audit.main(argv) == 2
    err = capsys.readouterr().err
    assert "crashed" in err and "ZeroDivisionError" in err
    assert json.loads(out.read_text())["metrics"] == []

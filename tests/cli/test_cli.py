"""`capi-monitor audit` end to end, as a user runs it: a real process, real files, a real
SQLite store. Exit codes, JSON contract, one-line errors, stdin, HTML output."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "audit-output-v1.schema.json").read_text())
NOW = "2026-11-20T12:00:00Z"
T0 = 1795176000  # 2026-11-20T12:00:00Z


def sha(v: str) -> str:
    return hashlib.sha256(v.encode()).hexdigest()


def event(i: int, **over: object) -> dict[str, object]:
    ev: dict[str, object] = {
        "event_name": "Purchase",
        "event_time": T0 - 3600 + i,
        "event_id": f"order-{i}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [sha(f"user{i}@example.com")],
            "ph": [sha(f"1650555{i:04d}")],
            "fn": [sha("mary")],
            "ln": [sha("smith")],
            "external_id": [sha(f"cust-{i}")],
            "client_ip_address": "203.0.113.9",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
            "fbp": "fb.1.1795170000000.1116446470",
            "fbc": "fb.1.1795170000000.IwAR2F4dbP0l7Mn1IawQQ",
        },
        "custom_data": {"currency": "EUR", "value": 42.5},
    }
    ev.update(over)
    return ev


def record(events: list[dict[str, object]], **over: object) -> bytes:
    rec: dict[str, object] = {
        "sent_at": "2026-11-20T11:00:30Z",
        "dataset_id": "1234567890",
        "request": {"data": events},
        "response": {"status": 200, "body": {"events_received": len(events), "messages": []}},
    }
    rec.update(over)
    return orjson.dumps(rec) + b"\n"


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def clean_log(tmp_path: Path) -> Path:
    p = tmp_path / "clean.jsonl"
    p.write_bytes(b"".join(record([event(i * 10 + j) for j in range(10)]) for i in range(30)))
    return p


@pytest.fixture
def bad_log(tmp_path: Path) -> Path:
    bad = event(1)
    bad["user_data"]["em"] = ["Jane.Doe@Example.com"]  # type: ignore[index]
    lines = [record([event(i) for i in range(2, 40)]), record([bad]), b"{not json\n"]
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b"".join(lines))
    return p


def audit_json(*args: str, store: bool = False) -> tuple[int, dict[str, Any], str]:
    proc = run("audit", *args, "--json", "-", "--now", NOW, *([] if store else ["--no-store"]))
    return proc.returncode, json.loads(proc.stdout), proc.stderr.decode()


def test_clean_log_exits_0_and_matches_schema(clean_log: Path) -> None:
    code, doc, _ = audit_json(str(clean_log))
    jsonschema.validate(doc, SCHEMA)
    assert code == 0
    assert doc["inputs"] == doc["inputs"] | {
        "files": 1,
        "lines": 30,
        "events": 300,
        "malformed_lines": 0,
    }
    (ds,) = doc["datasets"]
    assert ds["dataset_id"] == "1234567890"
    assert not [f for f in ds["findings"] if f["severity"] != "info"]
    assert {c["id"] for c in ds["checks"]} >= {
        "hash_validity", "payload", "dedup", "latency", "delivery", "match_quality"
    }  # fmt: skip


def test_plaintext_email_is_crit_exit_1_and_masked(bad_log: Path) -> None:
    code, doc, _ = audit_json(str(bad_log))
    jsonschema.validate(doc, SCHEMA)
    assert code == 1
    assert doc["inputs"]["malformed_lines"] == 1
    assert doc["inputs"]["problems"][0]["line"] == 3
    findings = doc["datasets"][0]["findings"]
    plain = [f for f in findings if f["code"] == "HASH_PLAINTEXT"]
    assert plain and plain[0]["severity"] == "crit" and plain[0]["field"] == "user_data.em"
    assert plain[0]["examples"][0]["line"] == 2
    assert "Jane.Doe@Example.com".lower() not in json.dumps(doc).lower()


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [("crit", 1), ("warn", 1), ("info", 1), ("never", 0)],
)
def test_fail_on(bad_log: Path, fail_on: str, expected: int) -> None:
    proc = run("audit", str(bad_log), "--now", NOW, "--no-store", "-q", "--fail-on", fail_on)
    assert proc.returncode == expected


def test_stdin(clean_log: Path) -> None:
    proc = run(
        "audit", "-", "--now", NOW, "--no-store", "--json", "-", stdin=clean_log.read_bytes()
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["inputs"]["events"] == 300


def test_since_until_filter_by_send_time(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        record([event(1)], sent_at="2026-11-20T10:00:00Z")
        + record([event(2)], sent_at="2026-11-20T11:00:00Z")
    )
    code, doc, _ = audit_json(
        str(p), "--since", "2026-11-20T10:30:00Z", "--until", "2026-11-20T12:00:00+00:00"
    )
    assert code == 0
    assert doc["inputs"]["events"] == 1
    assert doc["since"] == "2026-11-20T10:30:00Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/capi.jsonl"], "/nonexistent/capi.jsonl: no such file or directory"),
        (["--now", "yesterday-ish", "x"], "not an ISO 8601 time"),
        (["--config", "/nonexistent.toml"], "/nonexistent.toml: cannot read config file"),
        (["--fail-on", "sometimes", "x"], "--fail-on"),
        ([], "nothing to audit"),
    ],
)
def test_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    proc = run("audit", *args, "--no-store")
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_bad_config_key_names_file_and_key(tmp_path: Path, clean_log: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[checks.latency]\nwarn_p95 = "an hour"\n')
    proc = run("audit", str(clean_log), "--config", str(cfg), "--no-store")
    assert proc.returncode == 2
    assert f"{cfg}: checks.latency.warn_p95:" in proc.stderr.decode()


def test_html_and_store(tmp_path: Path, bad_log: Path) -> None:
    html = tmp_path / "out" / "report.html"
    db = tmp_path / "store.db"
    proc = run("audit", str(bad_log), "--now", NOW, "--html", str(html), "--db", f"sqlite:///{db}")
    assert proc.returncode == 1, proc.stderr.decode()
    page = html.read_text()
    assert "HASH_PLAINTEXT" in page and "https://" not in page.replace("https://shop", "")
    assert str(html.resolve()) in proc.stdout.decode()  # says where the report is
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        dump = "\n".join(conn.iterdump())
    assert len(tables) >= 4
    assert "HASH_PLAINTEXT" in dump
    assert "jane.doe@example.com" not in dump.lower()


def test_configured_logs_without_paths(tmp_path: Path, clean_log: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/s.db"\n'
        f'[[datasets]]\nid = "555"\nname = "From config"\nlogs = ["{tmp_path}/*.jsonl"]\n'
    )
    line = record([event(1)])
    (tmp_path / "nods.jsonl").write_bytes(
        orjson.dumps({k: v for k, v in orjson.loads(line).items() if k != "dataset_id"}) + b"\n"
    )
    code, doc, _ = audit_json("--config", str(cfg), store=True)
    assert code == 0
    ids = {d["dataset_id"]: d for d in doc["datasets"]}
    assert ids["555"]["name"] == "From config" and ids["555"]["events"] == 1
    assert ids["1234567890"]["events"] == 300  # the record's own dataset_id wins
    assert (tmp_path / "s.db").exists()


def test_help_lists_the_options() -> None:
    proc = run("audit", "--help")
    out = proc.stdout.decode()
    assert proc.returncode == 0
    for opt in ("--config", "--now", "--since", "--until", "--json", "--html", "--fail-on", "--db"):
        assert opt in out


def test_json_to_dev_null_keeps_the_device(clean_log: Path) -> None:
    """Writing to /dev/null must not replace the device with a file (atomic rename)."""
    proc = run("audit", str(clean_log), "--now", NOW, "--no-store", "-q", "--json", "/dev/null")
    assert proc.returncode == 0, proc.stderr.decode()
    assert Path("/dev/null").is_char_device()

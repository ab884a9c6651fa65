"""Fuzz, end to end: ``capi-monitor audit`` in a subprocess on logs full of poison lines
(tests.support.poison) between valid ones: from a file with a store, from stdin, and
with parallel workers. No traceback, exit 0 or 1, every valid event counted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.engine.audit import PARALLEL_MIN_BYTES
from tests.support import poison

NOW = "2026-11-20T12:00:00Z"


def audit(*args: str, stdin: bytes | None = None) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "audit", *args, "--now", NOW, "--json", "-", "-q"],
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode in (0, 1), err[-3000:]
    return orjson.loads(proc.stdout), err


def poisoned(pad_to: int = 0) -> tuple[bytes, int, int]:
    """Valid records and poison lines, alternating, padded with valid records up to
    ``pad_to`` bytes: (content, physical lines, valid events)."""
    bad = poison.corpus()
    good = [orjson.dumps(poison.record(k)) for k in range(len(bad))]
    lines = [x for pair in zip(good, bad, strict=True) for x in pair]
    size = sum(len(x) + 1 for x in lines)
    k = len(good)
    while size < pad_to:
        extra = orjson.dumps(poison.record(k % 3600))
        lines.append(extra)
        size += len(extra) + 1
        k += 1
    blank = sum(1 for x in lines if not x.strip())
    return b"\n".join(lines) + b"\n", len(lines) - blank, 2 * k


def assert_counted(report: dict[str, Any], lines: int, valid: int) -> None:
    inputs = report["inputs"]
    assert inputs["lines"] == lines
    assert inputs["events"] >= valid  # damaged lines may still carry good events
    assert inputs["malformed_lines"] + inputs["malformed_events"] > 0
    for ds in report["datasets"]:
        for check in ds["checks"]:
            assert check["status"] != "error", check


def test_audit_with_a_store(tmp_path: Path) -> None:
    content, lines, valid = poisoned()
    log = tmp_path / "poison.jsonl"
    log.write_bytes(content)
    report, _ = audit(str(log), "--db", f"sqlite:///{tmp_path}/store.db")
    assert_counted(report, lines, valid)


def test_audit_from_stdin() -> None:
    content, lines, valid = poisoned()
    report, _ = audit("-", "--no-store", stdin=content)
    assert_counted(report, lines, valid)


@pytest.mark.slow
def test_parallel_audit_equals_the_sequential_one(tmp_path: Path) -> None:
    content, lines, valid = poisoned(pad_to=PARALLEL_MIN_BYTES + (1 << 20))
    log = tmp_path / "poison.jsonl"
    log.write_bytes(content)
    parallel, _ = audit(str(log), "--no-store", "--jobs", "2")
    sequential, _ = audit(str(log), "--no-store", "--jobs", "1")
    assert_counted(parallel, lines, valid)
    for report in (parallel, sequential):
        report.pop("generated_at")
    assert parallel == sequential

"""Every bundled writer sample against its v1 twin: the same calls, read the same way.

The samples in tests/data/formats/ are shaped after the writers' own code
(tests/data/formats/SOURCES.md); each ``*.v1.jsonl`` twin writes the same calls as v1
records. A sample read by its format reader must give exactly the twin's records, and
both must give the same deliveries and the same findings once through the v1 path.
"""

from __future__ import annotations

import dataclasses as dc
from collections import Counter
from pathlib import Path

import orjson
import pytest

from monitor.config import settings_from_dict
from monitor.engine.audit import run_audit
from monitor.model.observations import Delivery, ReadStats
from monitor.sources.logs.formats import detect
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries
from tests.sources.formats.util import (
    DATA,
    NOW,
    PROOF,
    SAMPLES,
    TOKEN,
    canonical,
    run_file,
    twin,
)

NAMES = sorted(SAMPLES)


@pytest.mark.parametrize("name", NAMES)
def test_detected_from_content(name: str) -> None:
    lines = (DATA / name).read_bytes().splitlines(keepends=True)
    assert detect(lines[:64]) == SAMPLES[name][0]


@pytest.mark.parametrize("name", NAMES)
def test_counts(name: str) -> None:
    run = run_file(DATA / name)
    entries, skipped, unpaired, malformed = SAMPLES[name][2]
    c = run.counts
    assert (c.entries, c.skipped, c.unpaired_responses, c.malformed) == (
        entries,
        skipped,
        unpaired,
        malformed,
    )
    assert c.deliveries == len(run.records) == len(twin(SAMPLES[name][1]))
    assert len(run.problems) == malformed


@pytest.mark.parametrize("name", NAMES)
def test_records_are_the_twins(name: str) -> None:
    run = run_file(DATA / name)
    assert canonical(run.dicts) == canonical(twin(SAMPLES[name][1]))


@pytest.mark.parametrize("name", NAMES)
def test_token_never_leaves_the_reader(name: str) -> None:
    raw = (DATA / name).read_bytes()
    if name != "woocommerce.log":  # the plugin sends its token in a masked header
        assert TOKEN.encode() in raw
    run = run_file(DATA / name)
    shown = orjson.dumps([run.dicts, run.problems]).decode()
    assert TOKEN not in shown
    assert PROOF not in shown
    assert "access_token" not in shown
    assert "appsecret_proof" not in shown


def _deliveries(path: Path) -> tuple[list[Delivery], ReadStats]:
    stats = ReadStats()
    return list(read_deliveries([InputFile(str(path))], stats)), stats


def _comparable(d: Delivery) -> bytes:
    fields = {f.name: getattr(d, f.name) for f in dc.fields(d) if f.name not in ("file", "line")}
    fields["response"] = repr(d.response)
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=str)


def _as_v1_file(name: str, tmp_path: Path) -> Path:
    out = tmp_path / "converted.jsonl"
    out.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in run_file(DATA / name).dicts))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_same_deliveries_through_v1(name: str, tmp_path: Path) -> None:
    got, got_stats = _deliveries(_as_v1_file(name, tmp_path))
    want, want_stats = _deliveries(DATA / SAMPLES[name][1])
    assert sorted(map(_comparable, got)) == sorted(map(_comparable, want))
    assert got_stats.events == want_stats.events > 0
    assert got_stats.malformed_lines == want_stats.malformed_lines == 0


@pytest.mark.parametrize("name", NAMES)
def test_read_directly_like_its_twin(name: str) -> None:
    """The reader detects the format itself and counts what it saw in ``inputs``."""
    got, stats = _deliveries(DATA / name)
    want, _ = _deliveries(DATA / SAMPLES[name][1])
    assert sorted(map(_comparable, got)) == sorted(map(_comparable, want))
    entries, skipped, unpaired, malformed = SAMPLES[name][2]
    assert stats.formats == {SAMPLES[name][0]: entries}
    assert (stats.skipped_lines, stats.unpaired_responses) == (skipped, unpaired)
    assert stats.malformed_lines == malformed
    no_answer = [d for d in got if d.response and d.response.transport_error]
    assert len(no_answer) == 1 and no_answer[0].response.is_error  # type: ignore[union-attr]


@pytest.mark.parametrize("name", NAMES)
def test_same_findings_as_v1(name: str, tmp_path: Path) -> None:
    settings = settings_from_dict({})

    def audit(path: Path) -> tuple[Counter[tuple[str, str, int]], dict[str, str]]:
        report = run_audit(settings, [InputFile(str(path))], now=NOW)
        found = Counter(
            (d.dataset_id, f.code, f.count) for d in report.datasets for f in d.findings
        )
        statuses = {
            f"{d.dataset_id}/{c.id}": str(c.status) for d in report.datasets for c in d.checks
        }
        return found, statuses

    got, got_status = audit(_as_v1_file(name, tmp_path))
    want, want_status = audit(DATA / SAMPLES[name][1])
    assert got == want
    assert got_status == want_status
    codes = {code for _, code, _ in got}
    # The planted defects come out, and formats without a send time skip latency.
    assert {"HASH_PLAINTEXT", "MISSING_EVENT_ID", "TEST_EVENT_CODE_PRESENT"} <= codes
    assert {"DELIVERY_ERRORS", "TOKEN_INVALID"} <= codes
    timed = SAMPLES[name][0] != "gtms"
    assert (got_status["1234567890/latency"] == "skipped") is not timed

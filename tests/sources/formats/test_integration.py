"""Sender formats through the audit: --format, logs_format, parallel parts, the JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import jsonschema
import pytest

from monitor.config import LogFormat, settings_from_dict
from monitor.engine.audit import input_files, run_audit
from monitor.engine.parallel import fork_available
from monitor.sources.logs.formats import CHOICES
from monitor.sources.logs.paths import InputFile
from tests.sources.formats.util import DATA, NOW, SAMPLES, TOKEN

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / "schemas" / "audit-output-v1.schema.json").read_text())


def test_config_accepts_the_format_names() -> None:
    assert typing.get_args(LogFormat) == CHOICES


def test_logs_format_applies_to_configured_files_and_format_to_all(tmp_path: Path) -> None:
    log = shutil.copy(DATA / "gtms.log", tmp_path / "sgtm.log")
    settings = settings_from_dict(
        {"datasets": [{"id": "1234567890", "logs": [str(log)], "logs_format": "gtms"}]}
    )
    assert [f.fmt for f in input_files(settings, [])] == ["gtms"]
    assert [f.fmt for f in input_files(settings, [], "v1")] == ["v1"]
    assert [f.fmt for f in input_files(settings, [str(log)])] == ["auto"]


def test_a_wrong_forced_format_reads_nothing_and_breaks_nothing() -> None:
    settings = settings_from_dict({})
    files = [InputFile(str(DATA / "gtms.log"), fmt="woocommerce")]
    report = run_audit(settings, files, now=NOW)
    assert report.inputs.events == 0
    assert report.inputs.formats == {"woocommerce": 1}  # all text before any entry header
    assert report.inputs.malformed_lines == 0


@pytest.mark.skipif(not fork_available(), reason="parallel audits need fork")
def test_parallel_audit_never_cuts_a_sender_file() -> None:
    settings = settings_from_dict({})
    files = [InputFile(str(DATA / name)) for name in sorted(SAMPLES)]
    files.append(InputFile(str(DATA / "gtms.v1.jsonl")))
    one = run_audit(settings, files, now=NOW)
    many = run_audit(settings, files, now=NOW, jobs=4, parallel_min_bytes=0)
    assert many.inputs.to_dict() == one.inputs.to_dict()
    assert [f.to_dict() for f in many.findings] == [f.to_dict() for f in one.findings]


def test_cli_json_output_names_formats_and_matches_the_schema(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "audit", str(DATA / "cloud-logging.gcloud.json"),
         str(DATA / "woocommerce.log"), "--now", "2026-05-12T10:00:00Z", "--no-store",
         "--json", "-", "--fail-on", "never"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    inputs = doc["inputs"]
    assert inputs["formats"] == {"cloud-logging": 28, "woocommerce": 24}
    assert (inputs["skipped_lines"], inputs["unpaired_responses"]) == (12, 2)
    assert TOKEN not in proc.stdout.decode() + proc.stderr.decode()
    forced = subprocess.run(
        [sys.executable, "-m", "monitor", "audit", str(DATA / "gtms.log"), "--format", "gtms",
         "--now", "2026-05-12T10:00:00Z", "--no-store", "--json", "-", "--fail-on", "never"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert json.loads(forced.stdout)["inputs"]["formats"] == {"gtms": 27}

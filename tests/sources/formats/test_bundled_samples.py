"""samples/senders/: the audit scripts/demo shows finds exactly what was planted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "EAAFAKEsampleTOKENnotreal000"

# dataset -> {(code, field): count}, as samples/senders/README.md lists them
PLANTED = {
    "3456789012": {
        ("TEST_EVENT_CODE_PRESENT", "test_event_code"): 14,
        ("DELIVERY_ERRORS", "response.error.no_answer"): 4,
    },
    "4567890123": {
        ("HASH_PLAINTEXT", "user_data.ph"): 30,
        ("TOKEN_INVALID", "response.error"): 12,
    },
    "5678901234": {
        ("MISSING_EVENT_ID", "event_id"): 5,
        ("FBC_MALFORMED", "user_data.fbc"): 4,
        ("DELIVERY_ERRORS", "response.error.100/2804019"): 4,
    },
    "6789012345": {
        ("DELIVERY_ERRORS", "response.error.no_answer"): 5,
        ("CURRENCY_INVALID", "custom_data.currency"): 9,
    },
}


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    html = tmp_path_factory.mktemp("senders") / "report.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "audit",
            "--config",
            "samples/senders.toml",
            "--now",
            "2026-11-20T12:00:00Z",
            "--no-store",
            "--json",
            "-",
            "--html",
            str(html),
            "--fail-on",
            "never",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout), proc.stdout.decode() + proc.stderr.decode() + html.read_text()


def test_every_format_is_detected_and_nothing_is_malformed(
    audit: tuple[dict[str, Any], str],
) -> None:
    inputs = audit[0]["inputs"]
    assert inputs["formats"] == {
        "gtms": 376,
        "cloud-logging": 312,
        "gtms-bigquery": 248,
        "woocommerce": 198,
    }
    assert (inputs["malformed_lines"], inputs["malformed_events"]) == (0, 0)
    assert (inputs["skipped_lines"], inputs["unpaired_responses"]) == (108, 0)


def test_findings_are_the_planted_ones(audit: tuple[dict[str, Any], str]) -> None:
    found = {
        ds["dataset_id"]: dict(
            Counter({(f["code"], f["field"]): f["count"] for f in ds["findings"]})
        )
        for ds in audit[0]["datasets"]
    }
    assert found == PLANTED


def test_console_lines_have_no_send_time(audit: tuple[dict[str, Any], str]) -> None:
    latency = {
        ds["dataset_id"]: next(c["status"] for c in ds["checks"] if c["id"] == "latency")
        for ds in audit[0]["datasets"]
    }
    assert latency == {
        "3456789012": "skipped",
        "4567890123": "ok",
        "5678901234": "ok",
        "6789012345": "ok",
    }


def test_the_token_in_the_logs_is_in_no_output(audit: tuple[dict[str, Any], str]) -> None:
    assert TOKEN.encode() in (ROOT / "samples/senders/sgtm/console.log").read_bytes()
    assert TOKEN not in audit[1]


def test_the_generator_rewrites_the_same_files() -> None:
    if str(ROOT) not in sys.path:  # samples/ is a directory of the repository, not installed
        sys.path.insert(0, str(ROOT))
    from samples import generate_senders as gen

    files = {
        **gen.bikes(Counter()),
        **gen.tea(Counter()),
        **gen.lamps(Counter()),
        **gen.kettle(Counter()),
    }
    for rel, text in files.items():
        assert (ROOT / "samples" / "senders" / rel).read_text(encoding="utf-8") == text, rel

"""A backfill: three weeks of logs audited at once, then the weekly report of each week
(docs/contracts.md §12). Findings count for the weeks their data falls in; a week whose
data no check evaluated says so, never "no problems", on the page and in the index."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from monitor.cli import main

HOUR = 3600.0
DAY = 86400.0
W46 = datetime(2026, 11, 9, tzinfo=UTC).timestamp()  # Monday of ISO week 2026-W46
W47, W48, W49 = W46 + 7 * DAY, W46 + 14 * DAY, W46 + 21 * DAY
NOW = W49 + 2 * DAY  # the audit runs a week after the data ends

H = "a" * 64


def record(sent: float, *, email: str | None = None, event_id: bool = True) -> bytes:
    ev: dict[str, object] = {
        "event_name": "Purchase",
        "event_time": int(sent - 5),
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [email] if email else [H],
            "ph": [H],
            "client_ip_address": "2001:db8::1",
            "client_user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1767000000000.1116446470",
        },
        "custom_data": {"value": 10.0, "currency": "EUR"},
    }
    if event_id:
        ev["event_id"] = f"ord-{sent}"
    rec = {
        "sent_at": sent,
        "dataset_id": "111",
        "request": {"data": [ev]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    return orjson.dumps(rec) + b"\n"


def dead_token(sent: float) -> bytes:
    rec = orjson.loads(record(sent))
    rec["response"] = {
        "status": 400,
        "body": {"error": {"code": 190, "message": "Error validating access token",
                           "type": "OAuthException"}},
    }  # fmt: skip
    return orjson.dumps(rec) + b"\n"


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Weeks 46 and 47 of clean logs, week 48 with clear-text emails, missing event_id and
    a dead token, all audited in one run a week later; week 49 has no logs at all."""
    tmp = tmp_path_factory.mktemp("backfill")
    lines = [record(W46 + k * HOUR) for k in range(0, 14 * 24, 3)]
    bad = W48 + 2 * DAY
    lines += [record(bad + k * 600, email=f"jane{k}@example.com") for k in range(6)]
    lines += [record(bad + HOUR + k * 600, event_id=False) for k in range(6)]
    lines += [dead_token(bad + 2 * HOUR + k * 600) for k in range(6)]
    (tmp / "capi.jsonl").write_bytes(b"".join(lines))
    config = tmp / "c.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp}/s.db"\n'
        f'[[datasets]]\nid = "111"\nname = "Shop"\nlogs = ["{tmp}/capi.jsonl"]\n'
    )
    iso = datetime.fromtimestamp(NOW, UTC).isoformat()
    with pytest.raises(SystemExit) as done:
        main(["audit", "--config", str(config), "--now", iso, "--json", str(tmp / "a.json")])
    assert done.value.code == 1  # crit findings: the audit itself reports them
    return tmp, config


def report(backfill: tuple[Path, Path], week: str) -> tuple[str, str]:
    tmp, config = backfill
    out = tmp / week
    with pytest.raises(SystemExit) as done:
        main(["report", "--config", str(config), "--week", week, "--out", str(out)])
    assert done.value.code == 0
    return (out / "111.html").read_text(), (out / "index.html").read_text()


def text(html: str) -> str:
    """What a reader sees: no style block, no tags."""
    body = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_the_findings_count_for_the_weeks_their_data_falls_in(
    backfill: tuple[Path, Path],
) -> None:
    page, index = report(backfill, "2026-W48")
    for code in ("HASH_PLAINTEXT", "MISSING_EVENT_ID", "TOKEN_INVALID"):
        assert code in page, code
    assert "No problems found" not in page
    assert "nothing" not in text(index) and "not evaluated" not in text(index)
    assert re.search(r"Crit findings\s*[1-9]", text(page))


def test_a_week_of_that_audit_says_which_data_its_numbers_cover(
    backfill: tuple[Path, Path],
) -> None:
    page, _ = report(backfill, "2026-W46")
    # One audit judged weeks 46 to 48 at once: its findings are shown, with the span.
    assert "HASH_PLAINTEXT" in page and "No problems found" not in page
    assert "the counts cover all of it" in page


def test_a_week_no_check_evaluated_says_so(backfill: tuple[Path, Path]) -> None:
    page, index = report(backfill, "2026-W49")
    words = text(page)
    assert "No problems found" not in words and "No findings this week" not in words
    assert "Not evaluated: no check ran on this dataset's data of this week" in words
    assert "not evaluated" in text(index) and "nothing" not in text(index)
    # Neither "CRIT 0" on the page nor in the index: not counted is not zero.
    assert not re.search(r"Crit findings\s*0\b", words)
    assert not re.search(r"Crit findings\s*0\b", text(index))

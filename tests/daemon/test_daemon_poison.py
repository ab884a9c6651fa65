"""The tailing daemon with poison lines (issue 11, "no poison lines"): a damaged line is
counted and passed over, the ``logs`` cycle still judges every dataset and its cursors
move on; a check that fails on one dataset's data never stops the cycle for the others."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from checks.hash_validity import HashValidity
from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.daemon.scheduler import Daemon
from monitor.model.observations import Delivery, ReadStats
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries
from monitor.store import Store
from tests.support import poison

NOW = poison.NOW
PLAIN = "jane.doe@example.com"


class FakeSender:
    def drain(self, now: float | None = None) -> dict[str, int]:
        return {"sent": 0}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    return settings_from_dict(
        {
            "datasets": [
                {"id": "A", "logs": [str(tmp_path / "a" / "*.jsonl")]},
                {"id": "B", "logs": [str(tmp_path / "b" / "*.jsonl")]},
            ],
            "alerts": {"window": "1h", "for_cycles": 1, "keep_firing_for": "0s"},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def daemon(settings: Settings, store: Store) -> Daemon:
    return Daemon(settings, store, FakeSender(), clock=lambda: NOW)


def clear_text_record(k: int) -> bytes:
    """A record of no dataset of its own whose email is clear text: HASH_PLAINTEXT."""
    rec = poison.record(k, sent=NOW - 600)
    del rec["dataset_id"]
    rec["request"]["data"][0]["user_data"]["em"] = [PLAIN]
    return orjson.dumps(rec)


def write_logs(tmp_path: Path, bad: list[bytes]) -> None:
    for offset, name in enumerate(("a", "b")):  # distinct heads: not copies of each other
        good = [clear_text_record(2 * k + offset) for k in range(len(bad))]
        lines = [x for pair in zip(good, bad, strict=True) for x in pair]
        (tmp_path / name / "capi.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def firing(store: Store) -> set[tuple[str | None, str]]:
    return {(a.key.dataset_id, a.key.code) for a in open_alerts(store.engine, firing_only=True)}


def test_poison_lines_do_not_stop_the_logs_cycle(
    tmp_path: Path, settings: Settings, store: Store
) -> None:
    bad = poison.corpus()  # some keep (or damage) a dataset_id of their own: more datasets
    write_logs(tmp_path, bad)
    d = daemon(settings, store)
    counters = d.logs_cycle(NOW)
    assert counters["datasets_evaluated"] >= 2
    stats = ReadStats()  # what an audit of one of the two files counts
    list(read_deliveries([InputFile(str(tmp_path / "a" / "capi.jsonl"))], stats))
    assert stats.malformed_lines > 0
    assert counters["malformed_lines"] == 2 * stats.malformed_lines
    assert counters["malformed_events"] == 2 * stats.malformed_events
    assert counters["events"] == 2 * stats.events
    assert counters["check_failures"] == counters["rollup_failures"] == 0
    assert {("A", "HASH_PLAINTEXT"), ("B", "HASH_PLAINTEXT")} <= firing(store)
    again = d.logs_cycle(NOW + 60)  # the cursors moved past every line, poison included
    assert again["lines"] == 0 and again["deliveries"] == 0


def test_a_check_failing_on_one_dataset_does_not_stop_the_others(
    tmp_path: Path, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    observe = HashValidity.observe

    def broken_for_a(self: HashValidity, delivery: Delivery) -> None:
        if self.ctx.dataset_id == "A":
            raise KeyError(PLAIN)  # a bug whose message quotes event content
        observe(self, delivery)

    monkeypatch.setattr(HashValidity, "observe", broken_for_a)
    write_logs(tmp_path, [b"not json"] * 5)
    counters = daemon(settings, store).logs_cycle(NOW)
    assert counters["check_failures"] == 1
    assert counters["datasets_evaluated"] == 2
    alerts = firing(store)
    assert ("B", "HASH_PLAINTEXT") in alerts and ("A", "HASH_PLAINTEXT") not in alerts


def test_a_failed_check_reports_error_without_quoting_the_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.engine.audit import DatasetAudit
    from tests.support.checkutil import delivery, event

    def broken(self: HashValidity, d: Delivery) -> None:
        raise ValueError(PLAIN)

    monkeypatch.setattr(HashValidity, "observe", broken)
    audit = DatasetAudit("A", settings_from_dict({}), NOW)
    audit.observe(delivery(event(user_data={"em": PLAIN}), file="f.jsonl", line=7))
    audit.observe(delivery(event(), file="f.jsonl", line=8))
    results = {r.id: r for r in audit.report().checks}
    failed = results["hash_validity"]
    assert failed.status == "error" and failed.score is None
    assert "ValueError at f.jsonl:7" in failed.summary and PLAIN not in failed.summary
    payload = results["payload"]  # the others judged both deliveries
    assert payload.status != "error" and payload.summary.startswith("2 events")
    assert audit.events == 2
    digest: Any = hashlib.sha256(PLAIN.encode()).hexdigest()
    assert digest not in failed.summary

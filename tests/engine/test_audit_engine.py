"""The audit engine: grouping by dataset, disabled checks, health score, no-data datasets."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from checks import CHECKS, registry
from monitor.config import settings_from_dict
from monitor.engine.audit import configured_files, health_score, input_files, run_audit
from monitor.errors import ConfigError
from monitor.model.findings import CheckResult, Status
from monitor.sources.logs.paths import InputFile

NOW = 1795176000.0


def line(dataset: str | None, name: str = "Lead", t: float = NOW - 60) -> bytes:
    rec: dict[str, object] = {
        "sent_at": t + 5,
        "request": {"data": [{"event_name": name, "event_time": t}]},
    }
    if dataset:
        rec["dataset_id"] = dataset
    return orjson.dumps(rec) + b"\n"


def test_registry_has_unique_ids_in_order() -> None:
    ids = [c.id for c in CHECKS]
    assert ids == [
        "hash_validity", "payload", "dedup", "latency", "delivery", "match_quality",
        "parity", "diagnostics", "volume", "reconcile",
    ]  # fmt: skip
    assert list(registry()) == ids


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"hash_validity": 100, "payload": 100}, 100),  # all healthy
        ({"hash_validity": 0, "latency": 100}, 33),  # hash_validity weighs 2, latency 1
        ({"hash_validity": None, "latency": 50}, 50),  # checks that did not run do not count
        ({"latency": None}, None),  # nothing ran: no score, not 100
    ],
)
def test_health_score(scores: dict[str, int | None], expected: int | None) -> None:
    results = [CheckResult(k, Status.OK, "", v) for k, v in scores.items()]
    assert health_score(results) == expected


def test_groups_by_record_then_config_then_unknown(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(line("111") + line(None))
    settings = settings_from_dict(
        {"datasets": [{"id": "222", "name": "Two", "logs": [str(tmp_path / "a.jsonl")]}]}
    )
    other = tmp_path / "b.jsonl"
    other.write_bytes(line(None))
    files = [InputFile(str(tmp_path / "a.jsonl")), InputFile(str(other))]
    report = run_audit(settings, files, now=NOW)
    events = {d.dataset_id: d.events for d in report.datasets}
    assert events == {"222": 1, "111": 1, "unknown": 1}
    assert report.datasets[0].name == "Two"  # configured datasets first, in config order


def test_configured_dataset_without_events_is_skipped_not_ok(tmp_path: Path) -> None:
    settings = settings_from_dict({"datasets": [{"id": "9", "logs": [str(tmp_path / "*.jsonl")]}]})
    report = run_audit(settings, [], now=NOW)
    (ds,) = report.datasets
    assert {c.status for c in ds.checks} == {Status.SKIPPED}
    assert ds.health_score is None


def test_disabled_checks(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(line("1"))
    settings = settings_from_dict({"checks": {"disabled": ["match_quality", "latency"]}})
    report = run_audit(settings, [InputFile(str(tmp_path / "a.jsonl"))], now=NOW)
    assert [c.id for c in report.datasets[0].checks] == [
        "hash_validity", "payload", "dedup", "delivery", "parity", "diagnostics", "volume",
        "reconcile",
    ]  # fmt: skip


def test_unknown_disabled_check_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"checks\.disabled: unknown check id 'bogus'"):
        run_audit(settings_from_dict({"checks": {"disabled": ["bogus"]}}), [], now=NOW)


def test_configured_files_tolerates_empty_globs(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_bytes(line("1"))
    (tmp_path / "x.jsonl.gz").write_bytes(b"")
    settings = settings_from_dict(
        {"datasets": [
            {"id": "1", "logs": [str(tmp_path / "*.jsonl*"), str(tmp_path / "none/*.log")]},
            {"id": "2", "logs": [str(tmp_path / "x.jsonl")]},  # same file twice: read once
        ]}
    )  # fmt: skip
    assert [Path(f.path).name for f in configured_files(settings.datasets)] == [
        "x.jsonl",
        "x.jsonl.gz",
    ]


def test_nothing_to_audit() -> None:
    with pytest.raises(ConfigError, match="nothing to audit"):
        input_files(settings_from_dict({}), [])


def test_an_audit_without_rollups_reports_the_same(tmp_path: Path) -> None:
    """rollups=False (no store, no Graph source: nobody reads them) changes no result."""
    from tests.support import poison

    lines = [orjson.dumps(poison.record(k)) for k in range(50)]
    lines += [orjson.dumps(poison.failed_record(k)) for k in range(5)]
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    s = settings_from_dict({})
    kept = run_audit(s, [InputFile(str(path))], now=poison.NOW)
    skipped = run_audit(s, [InputFile(str(path))], now=poison.NOW, rollups=False)
    assert kept.datasets[0].rollups and not skipped.datasets[0].rollups
    for report in (kept, skipped):
        report.generated_at = 0.0
    assert kept.to_dict() == skipped.to_dict()

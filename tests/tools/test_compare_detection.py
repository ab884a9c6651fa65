"""``benchmarks.compare_detection``: which false alerts and detections two runs differ in."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import compare_detection

SETTINGS = {"model": "traffic", "first_seed": 29, "scenarios": 1, "weeks": 5, "datasets": 3,
            "step_s": 900.0, "scale": 1.0, "calendar": "listed"}  # fmt: skip


def _alert(code: str, fired: str) -> dict[str, Any]:
    return {"dataset_id": "2", "code": code, "event_name": None, "severity": "warn",
            "fired_at": fired, "resolved_at": None}  # fmt: skip


def _incident(ttd_s: float | None) -> dict[str, Any]:
    return {"type": "drop_50", "dataset_id": "1", "event_name": "Purchase",
            "start": "2027-03-29T14:00:00Z", "expected_per_hour": 44.0, "void": False,
            "too_small": False, "detected": ttd_s is not None, "ttd_s": ttd_s}  # fmt: skip


def _run(alerts: list[dict[str, Any]], ttd_s: float | None) -> dict[str, Any]:
    drops = {"detected": int(ttd_s is not None), "incidents": 1, "ttd_median_min": ttd_s}
    aggregate = {"false_alerts": len(alerts), "quiet_dataset_weeks": 3,
                 "false_alerts_per_dataset_week": round(len(alerts) / 3, 3),
                 "notifications_per_dataset_week": 1.0,
                 "per_type": {"drops >= 50 %, >= 3 h, >= 20/h": drops}}  # fmt: skip
    scenario = {"seed": 29, "false_alerts": alerts, "incidents": [_incident(ttd_s)]}
    return {"settings": dict(SETTINGS), "aggregate": aggregate, "scenarios": [scenario]}


def _write(tmp_path: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_bytes(orjson.dumps(data))
    return str(path)


def test_lists_the_alerts_and_detections_that_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = _alert("VOLUME_DROP", "2027-03-25T15:00:00+00:00")
    gone = _alert("VOLUME_STOPPED", "2027-03-26T03:00:00+00:00")
    new = _alert("VALUE_DRIFT", "2027-03-27T10:45:00+00:00")
    before = _write(tmp_path, "a.json", _run([kept, gone], 3600.0))
    after = _write(tmp_path, "b.json", _run([copy.deepcopy(kept), new], None))
    assert compare_detection.main([before, after]) == 0
    out = capsys.readouterr().out
    assert "false alerts gone: 1\n  seed 29 2 VOLUME_STOPPED (all) warn 2027-03-26T03:00" in out
    assert "false alerts new: 1\n  seed 29 2 VALUE_DRIFT (all) warn 2027-03-27T10:45" in out
    assert "VOLUME_DROP" not in out
    assert "seed 29 drop_50 1 Purchase 2027-03-29T14:00 (44/h): 60 min → missed" in out
    assert "before: false alerts 2/3 (0.667)" in out


def test_refuses_runs_of_different_scenarios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _run([], 60.0)
    other["settings"]["first_seed"] = 5
    assert compare_detection.main([_write(tmp_path, "a.json", _run([], 60.0)),
                                   _write(tmp_path, "b.json", other)]) == 2  # fmt: skip
    assert "differ in first_seed" in capsys.readouterr().err


def test_names_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert compare_detection.main([str(bad), str(bad)]) == 2
    assert f"{bad}:" in capsys.readouterr().err


def test_names_an_incident_scored_in_one_run_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    after = _run([], 60.0)
    after["scenarios"][0]["incidents"][0]["too_small"] = True
    assert compare_detection.main([_write(tmp_path, "a.json", _run([], 60.0)),
                                   _write(tmp_path, "b.json", after)]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "detections changed: 0" in out
    assert (
        "scored in one run only (void or too small in the other): 1\n"
        "  seed 29 drop_50 1 Purchase 2027-03-29T14:00 (scored before)"
    ) in out

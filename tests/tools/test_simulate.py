"""monitor.tools.simulate: seeded scenarios, realistic clean traffic, ground truth, and the fake
Graph API serving the simulated counts; the detection benchmark's smoke run."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from benchmarks import bench_detection
from monitor.alerts.queries import AlertEpisode
from monitor.config import load_settings
from monitor.engine.audit import configured_files, run_audit
from monitor.model.findings import Severity
from monitor.testing.fakegraph import FakeGraph, Scenario
from monitor.timeutil import parse_iso
from monitor.tools.backtest import Notice
from monitor.tools.graph_counts import read_graph_counts
from monitor.tools.simulate import INCIDENT_TYPES, Incident, plan, simulate

HOUR = 3600


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sim")
    simulate(root, plan(3, weeks=2, datasets=2, scale=0.05))
    return root


def test_plans_are_seeded_and_incidents_never_overlap() -> None:
    a, b, c = plan(7), plan(7), plan(8)
    assert a.incidents == b.incidents and a.incidents != c.incidents
    assert sorted(i.type for i in a.incidents) == sorted(INCIDENT_TYPES)
    week0, week1 = a.incident_week
    for i in a.incidents:
        assert week0 <= i.start < i.end <= week1
        others = [j for j in a.incidents if j is not i and j.dataset_id == i.dataset_id]
        assert all(j.end <= i.start or i.end <= j.start for j in others)
    assert a.quiet_week == (week0 - 7 * 86400, week0)
    assert (
        {d for d, *_ in a.promotions} == {d for d, *_ in a.holidays} == {"1000000001", "1000000002"}
    )


def test_calendar_effects_follow_the_local_calendar() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    sc = plan(5)
    zones = {d.dataset_id: ZoneInfo(d.timezone) for d in sc.datasets}
    for ds, start, length, _ in [*sc.promotions, *sc.holidays]:
        begin = datetime.fromtimestamp(start, zones[ds])
        end = datetime.fromtimestamp(start + length, zones[ds])
        assert (begin.hour, begin.minute, end.hour, end.minute) == (0, 0, 0, 0), ds
        assert (end.date() - begin.date()).days in (1, 2)


def test_same_seed_same_bytes(small: Path, tmp_path: Path) -> None:
    simulate(tmp_path, plan(3, weeks=2, datasets=2, scale=0.05))
    # config.toml names its own directory; everything else is byte-identical
    for rel in ("ground_truth.json", "graph_counts.jsonl", "logs/1000000001.jsonl.gz"):
        assert (tmp_path / rel).read_bytes() == (small / rel).read_bytes(), rel


def test_ground_truth_describes_every_incident(small: Path) -> None:
    truth = orjson.loads((small / "ground_truth.json").read_bytes())
    assert truth["weeks"] == 2 and truth["quiet_week"] is None
    assert len(truth["incidents"]) == len(INCIDENT_TYPES)
    for inc in truth["incidents"]:
        assert set(inc) >= {"type", "dataset_id", "event_name", "start", "end"}
        assert parse_iso(inc["start"]) < parse_iso(inc["end"])
        if inc["type"] in ("token_invalid", "plaintext_email", "test_event_code"):
            assert parse_iso(inc["first_affected"]) >= parse_iso(inc["start"])


def test_healthy_traffic_raises_nothing(small: Path) -> None:
    """The first (incident-free) week audited as a whole: no warn or crit finding."""
    settings = load_settings(small / "config.toml")
    truth = orjson.loads((small / "ground_truth.json").read_bytes())
    week1 = parse_iso(truth["incident_week"][0])
    report = run_audit(settings, configured_files(settings.datasets), now=week1, until=week1)
    assert report.inputs.malformed_lines == 0 and report.inputs.events > 1000
    bad = [f for f in report.findings if f.severity in (Severity.WARN, Severity.CRIT)]
    assert bad == [], [(f.code, f.message) for f in bad]


def test_incidents_are_in_the_files(small: Path) -> None:
    truth = orjson.loads((small / "ground_truth.json").read_bytes())
    token = next(i for i in truth["incidents"] if i["type"] == "token_invalid")
    rows = [r for r in read_graph_counts(small / "graph_counts.jsonl")]
    start, end = (
        parse_iso(token["start"]) // HOUR * HOUR + HOUR,
        parse_iso(token["end"]) // HOUR * HOUR,
    )
    during = [
        r for r in rows if r["dataset_id"] == token["dataset_id"] and start <= r["hour"] < end
    ]
    assert during and all(r["server"] == 0 for r in during)  # Meta accepted nothing


def test_fake_graph_serves_the_simulated_counts(small: Path) -> None:
    scenarios = Scenario.from_counts(str(small / "graph_counts.jsonl"))
    rows = [r for r in read_graph_counts(small / "graph_counts.jsonl")]
    row = next(r for r in rows if r["dataset_id"] == "1000000001" and r["browser"] > 2)
    params: dict[str, Any] = {
        "aggregation": "event_source",
        "event": row["event_name"],
        "start_time": str(row["hour"]),
        "end_time": str(row["hour"] + HOUR),
        "access_token": "t",
    }
    with FakeGraph(scenarios) as fg, httpx.Client(base_url=fg.url, timeout=10) as client:
        data = client.get("/v25.0/1000000001/stats", params=params).json()["data"]
    assert data[0]["start_time"] == datetime.fromtimestamp(row["hour"], UTC).strftime(
        "%Y-%m-%dT%H:%M:%S+0000"
    )
    got = {i["value"]: i["count"] for i in data[0]["data"]}
    assert got.get("BROWSER", 0) == row["browser"] and got.get("SERVER", 0) == row["server"]


def test_detection_benchmark_quick_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "detection.json"
    assert bench_detection.main(["--quick", "--out", str(out), "--jobs", "1"]) == 0
    report = orjson.loads(out.read_bytes())
    per_type = report["aggregate"]["per_type"]
    assert set(per_type) == {*INCIDENT_TYPES, bench_detection.DROP_ROW}
    # what requests show is found in every run, whatever the volume
    for kind in ("token_invalid", "plaintext_email", "test_event_code"):
        assert per_type[kind]["recall"] == 1.0, kind
    assert report["aggregate"]["false_alerts_per_dataset_week"] is not None
    assert "| incident | n | recall |" in capsys.readouterr().out


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    args = ["simulate", "--out", str(tmp_path), "--weeks", "2", "--datasets", "1"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--scale", "0.02", "--seed", "5"])
    assert exit_.value.code == 0
    assert "incidents written to" in capsys.readouterr().out
    assert (tmp_path / "logs" / "1000000001.jsonl.gz").exists()
    settings = load_settings(tmp_path / "config.toml")
    assert [d.timezone for d in settings.datasets] == ["Europe/Berlin"]
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--out", str(tmp_path), "--weeks", "1"])
    assert exit_.value.code == 2


def test_detection_benchmark_sets_aside_losses_no_test_can_see() -> None:
    """A 0.4/h series losing half of 5 h loses ~1 event: listed as too small, not scored;
    a stop of 2.2/h for 5 h (11 events expected, P(0) ~ 2e-5) is scored and missed."""
    hour = 3600.0

    def inc(kind: str, per_hour: float) -> dict[str, Any]:
        return Incident(kind, "1", "Lead", 0.0, 5 * hour, per_hour).to_dict()

    truth = {
        "seed": 1,
        "datasets": ["1"],
        "incidents": [
            inc("drop_50", 0.4),
            inc("server_stop", 2.2),
            inc("drop_50", 30.0),
            inc("email_missing", 1.6),  # 8 events over 5 h: all without email is chance
            inc("email_missing", 5.0),
        ],
        "incident_week": ["1970-01-01T00:00:00Z", "1970-01-08T00:00:00Z"],
    }
    scored = bench_detection.score_scenario([], truth)
    assert [r["too_small"] for r in scored["incidents"]] == [True, False, False, True, False]
    per_type = bench_detection.aggregate([{**scored, "quiet_dataset_weeks": 0}])["per_type"]
    assert per_type["drop_50"]["incidents"] == 1 and per_type["drop_50"]["too_small"] == 1
    assert per_type["server_stop"]["incidents"] == 1 and per_type["server_stop"]["recall"] == 0


def test_detection_benchmark_counts_a_reopened_alert_as_told() -> None:
    """An alert that fired (falsely) before an incident and is still flapping or
    resolved within flap_window is reopened, not fired anew: its flapping or escalated
    notification during the incident detects it; a repeat does not."""
    hour = 3600.0
    incident = Incident("drop_50", "1", None, 10 * hour, 14 * hour, 300.0)
    truth = {
        "seed": 1,
        "datasets": ["1"],
        "incidents": [incident.to_dict()],
        "incident_week": ["1970-01-01T00:00:00Z", "1970-01-08T00:00:00Z"],
    }
    earlier = AlertEpisode("f", "1", "volume", "VOLUME_DROP", None, Severity.WARN, 2 * hour, None)

    def scored(reason: str) -> dict[str, Any]:
        told = Notice(11 * hour, "1", (reason,), (("VOLUME_DROP", None),))
        other = Notice(10.5 * hour, "1", ("flapping",), (("LATENCY_HIGH", None),))
        row: dict[str, Any] = bench_detection.score_scenario([earlier], truth, [other, told])
        return row["incidents"][0]

    assert scored("flapping")["detected"] and scored("flapping")["ttd_s"] == hour
    assert scored("escalated")["ttd_s"] == hour
    assert not scored("repeat")["detected"]
    assert not bench_detection.score_scenario([earlier], truth)["incidents"][0]["detected"]

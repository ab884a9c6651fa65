"""monitor.engine.series: histories from the store (rollups with value sums, Meta's counts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from monitor.config import settings_from_dict
from monitor.engine.series import build_history, load_volume_history
from monitor.errors import ConfigError
from monitor.model.graph import GraphSnapshot, SourceCounts
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import Current
from monitor.store import Store
from monitor.store.graph import record_graph

HOUR = 3600
NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
SETTINGS = settings_from_dict({"datasets": [{"id": "123", "timezone": "Europe/Berlin"}]})


def rollup(hour: float, events: int, value: float = 0.0, name: str = "Purchase") -> HourRollup:
    r = HourRollup("123", name, SOURCE_SERVER_LOG, int(hour), events=events)
    r.value_sum, r.value_count = value, events if value else 0
    return r


def store_rollups(store: Store, rollups: list[HourRollup]) -> None:
    ds = DatasetReport("123", None, None, [], rollups=rollups)
    store.record_audit(AuditReport(NOW, NOW, ReadStats(), [ds]))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(str(tmp_path / "s.db"))


def test_value_sums_round_trip_through_the_store(store: Store) -> None:
    store_rollups(store, [rollup(NOW - HOUR, 3, 359.85)])
    (back,) = store.rollups("123")
    assert back.value_sum == pytest.approx(359.85) and back.value_count == 3


def test_load_volume_history_reads_the_lookback_only(store: Store) -> None:
    old = NOW - 8 * 7 * 86400  # before the default lookback (6 + 1 weeks)
    store_rollups(store, [rollup(old, 5), rollup(NOW - 3 * HOUR, 7), rollup(NOW + 5 * HOUR, 9)])
    counts = [SourceCounts(datetime.fromtimestamp(NOW - 2 * HOUR, UTC), "Purchase", 4, 6)]
    record_graph(store, [GraphSnapshot("123", NOW, NOW - 48 * HOUR, NOW, source_counts=counts)])
    (history,) = load_volume_history(store, SETTINGS, NOW, current=Current.ADD).values()
    assert history.timezone == "Europe/Berlin" and history.current is Current.ADD
    # the old hour is outside the lookback; the future hour is after the hour in progress
    assert {h: r.events for h, r in history.rollups["Purchase"].items()} == {NOW - 3 * HOUR: 7}
    assert history.first_hour == NOW - 3 * HOUR
    assert history.graph == {"Purchase": {int(NOW - 2 * HOUR): (4, 6)}}


def test_every_requested_dataset_gets_a_history(store: Store) -> None:
    histories = load_volume_history(store, SETTINGS, NOW, ["123", "456"], current=Current.REPLACE)
    assert set(histories) == {"123", "456"}
    assert histories["456"].first_hour is None and histories["456"].timezone == "UTC"


def test_with_current_adds_or_replaces_without_touching_the_history() -> None:
    stored = rollup(NOW - HOUR, 10)
    for mode, expected in ((Current.ADD, 14), (Current.REPLACE, 4), (Current.INCLUDED, 10)):
        h = build_history(SETTINGS, "123", [stored], current=mode)
        merged = h.with_current([rollup(NOW - HOUR, 4), rollup(NOW, 2, name="Lead")])
        assert merged.rollups["Purchase"][int(NOW - HOUR)].events == expected
        assert merged.current is Current.INCLUDED
        assert stored.events == 10  # the stored row is never mutated


def test_unknown_time_zone_is_a_config_error() -> None:
    settings = settings_from_dict({"datasets": [{"id": "123", "timezone": "Mars/Olympus"}]})
    with pytest.raises(ConfigError, match=r"datasets\[\]\.timezone: unknown time zone"):
        build_history(settings, "123", [])


def test_audit_command_judges_volume_from_its_store(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``audit --db``: three weeks of stored Purchases, then a log whose last hours are
    empty: the audit's own hours replace the stored ones, and the stop is reported."""
    start = NOW - 21 * 86400
    store_rollups(store, [rollup(h, 40) for h in range(int(start), int(NOW - 4 * HOUR), HOUR)])
    url = str(store.url)
    store.close()
    log = tmp_path / "a.jsonl"
    sent = NOW - 6 * HOUR + 60
    record = {
        "sent_at": sent,
        "dataset_id": "123",
        "request": {"data": [{"event_name": "Purchase", "event_time": sent - 5}]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    log.write_bytes(orjson.dumps(record) + b"\n")
    from monitor.cli import main

    args = ["audit", str(log), "--db", url, "--now", "2026-11-20T12:10:00Z", "--json", "-", "-q"]
    with pytest.raises(SystemExit):
        main(args)
    report = orjson.loads(capsys.readouterr().out)
    (ds,) = report["datasets"]
    volume = next(c for c in ds["checks"] if c["id"] == "volume")
    assert volume["status"] == "crit"
    codes = {f["code"] for f in ds["findings"] if f["check"] == "volume"}
    assert "VOLUME_STOPPED" in codes

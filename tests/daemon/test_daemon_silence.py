"""A sender gone silent, through the daemon's real path: a tailed log, the store's
rollups (SQLite and PostgreSQL) and a later cycle that reads no new line."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport, DatasetReport
from monitor.model.rollup import SOURCE_SERVER_LOG, HourRollup
from monitor.store import Store
from tests.daemon.test_daemon import NOW, append, daemon, line

HOUR = 3600


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    logs = str(tmp_path / "logs" / "*.jsonl")
    return settings_from_dict({"datasets": [{"id": "111", "name": "Shop", "logs": [logs]}]})


def _history(store: Store) -> None:
    """Three weeks of 600 Purchases an hour before ``NOW``, each hour busy to its end."""
    rows = [
        HourRollup("111", "Purchase", SOURCE_SERVER_LOG, h, events=600, last_sent=h + 3599.0)
        for h in range(int(NOW) - 21 * 24 * HOUR, int(NOW), HOUR)
    ]
    report = AuditReport(
        NOW, NOW, ReadStats(), [DatasetReport("111", None, None, [], rollups=rows)]
    )
    store.record_audit(report)


def test_a_sender_silent_since_minutes_into_the_hour_stops_in_a_cycle_reading_nothing(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    # intent: events every 6 s from 12:00 to 12:03, then none. The cycle at 12:05 reads
    # them (a pause of two minutes is nothing); the cycle at 12:25 reads no new line, so
    # the time of the last event can only come from the store: 17 minutes without the
    # ~170 events expected is a stop, said from 12:02
    _history(store)
    log = tmp_path / "logs" / "capi.jsonl"
    log.parent.mkdir()
    append(log, *(line(NOW + 6 * i) for i in range(30)))
    d = daemon(settings, store)
    d.logs_cycle(NOW + 300)
    assert not [a for a in open_alerts(store.engine) if a.key.code == "VOLUME_STOPPED"]
    d.logs_cycle(NOW + 25 * 60)
    stopped = [a for a in open_alerts(store.engine) if a.key.code == "VOLUME_STOPPED"]
    assert len(stopped) == 1, [a.content.message for a in open_alerts(store.engine)]
    seen = stopped[0].content
    assert "since Fri 12:02" in seen.message and "by 12:20" in seen.message
    assert seen.evidence["last_event"] == "2026-11-20T12:02:54Z"
    (row,) = (r for r in store.rollups("111", since=NOW) if r.hour == NOW)
    assert (row.events, row.last_sent) == (30, NOW + 174)

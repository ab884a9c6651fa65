"""The daemon's jobs over real log files and a real store: history vs. the alert window,
skipped cycles that resolve nothing, resolution, crash safety, bookkeeping, logging."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, func, select

from monitor.alerts.engine import CycleOutcome, evaluate_cycle
from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.daemon.jobs import JOBS, JobSpec
from monitor.daemon.scheduler import Daemon
from monitor.daemon.status import status, status_lines
from monitor.engine.cycle import recent_part
from monitor.jsonlog import JsonFormatter, ScrubFilter, secret_values
from monitor.model.observations import Delivery, Shape
from monitor.model.results import DatasetReport
from monitor.sources.logs.fields import event_times
from monitor.sources.logs.tail import LogTailer
from monitor.store import Store
from monitor.store.tables.core import metadata

NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
DAY = 86400.0
_ids = iter(range(10**9))


def event(t: float, email: str | None = None) -> dict[str, Any]:
    """A Purchase every check accepts; ``email`` puts clear text into ``user_data.em``."""
    n = next(_ids)
    em = email or hashlib.sha256(f"user{n}@example.com".encode()).hexdigest()
    return {
        "event_name": "Purchase",
        "event_time": int(t) - 30,
        "event_id": f"ev-{n}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {
            "em": [em],
            "client_user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1795175000000.1",
        },
        "custom_data": {"value": 10.5, "currency": "EUR"},
    }


def line(sent_at: float, email: str | None = None) -> bytes:
    record = {
        "sent_at": sent_at,
        "request": {"data": [event(sent_at, email)]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    return orjson.dumps(record) + b"\n"


def append(path: Path, *lines: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(lines))


class FakeSender:
    """Stands in for the outbox sender: counts drains (the e2e test uses the real one)."""

    def __init__(self) -> None:
        self.drains: list[float | None] = []

    def drain(self, now: float | None = None) -> dict[str, int]:
        self.drains.append(now)
        return {"sent": 0}


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path / "logs" / "capi.jsonl"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from_dict(
        {
            "datasets": [
                {"id": "111", "name": "Shop", "logs": [str(tmp_path / "logs" / "*.jsonl")]}
            ],
            # Cycle semantics only: the time rules (keep firing, flapping) are tested in
            # tests/alerts.
            "alerts": {
                "window": "1h",
                "resolve_after_cycles": 2,
                "for_cycles": 1,
                "keep_firing_for": "0s",
                "flap_window": "0s",
            },
        }
    )


def daemon(settings: Settings, store: Store, **kwargs: Any) -> Daemon:
    return Daemon(settings, store, FakeSender(), clock=lambda: NOW, **kwargs)


def count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(metadata.tables[table])).scalar_one()
        )


def outbox(store: Store) -> list[dict[str, Any]]:
    t = metadata.tables["outbox"]
    with store.engine.connect() as conn:
        return [dict(r["payload"]) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]


def firing_codes(store: Store) -> list[str]:
    return sorted(a.key.code for a in open_alerts(store.engine, firing_only=True))


def rollup_events(store: Store) -> int:
    return sum(r.events for r in store.rollups("111"))


def test_first_start_alerts_on_the_window_and_keeps_history(
    settings: Settings, store: Store, log_file: Path
) -> None:
    history = [line(NOW - 3 * DAY + i, email="old.customer@example.com") for i in range(10)]
    incident = [line(NOW - 600, email="jane.doe@example.com")]
    append(log_file, *history, *incident)
    d = daemon(settings, store)
    logs, notify = d.run_once(NOW)
    assert logs.ok and notify.ok, (logs.error, notify.error)
    assert logs.counters["deliveries"] == 11 and logs.counters["recent_deliveries"] == 1
    assert firing_codes(store) == ["HASH_PLAINTEXT"]
    (payload,) = outbox(store)
    assert [a["code"] for a in payload["alerts"]] == ["HASH_PLAINTEXT"]
    assert payload["alerts"][0]["state"] == "FIRING"
    assert "jane.doe@example.com" not in orjson.dumps(payload).decode()
    assert rollup_events(store) == 11  # history counts in rollups
    assert d.sender.drains == [NOW]  # type: ignore[attr-defined]


def test_old_incidents_are_history_only(settings: Settings, store: Store, log_file: Path) -> None:
    append(log_file, *[line(NOW - 2 * DAY, email="old@example.com") for _ in range(3)])
    (logs, _) = daemon(settings, store).run_once(NOW)
    assert logs.counters["datasets_skipped"] == 1 and logs.counters["datasets_evaluated"] == 0
    assert firing_codes(store) == [] and outbox(store) == []
    assert rollup_events(store) == 3


def test_skipped_cycles_resolve_nothing_and_clean_cycles_do(
    settings: Settings, store: Store, log_file: Path
) -> None:
    append(log_file, line(NOW - 60, email="jane.doe@example.com"))
    d = daemon(settings, store)
    d.run_once(NOW)
    assert firing_codes(store) == ["HASH_PLAINTEXT"]
    for k in range(1, 4):  # no new data: checks skipped, the alert stays
        (logs, _) = d.run_once(NOW + k * 300)
        assert logs.counters["datasets_skipped"] == 1
        assert firing_codes(store) == ["HASH_PLAINTEXT"]
    assert len(outbox(store)) == 1
    append(log_file, line(NOW + 1150))
    d.run_once(NOW + 1200)
    assert firing_codes(store) == ["HASH_PLAINTEXT"]  # one clean cycle of two
    append(log_file, line(NOW + 1450))
    d.run_once(NOW + 1500)
    assert firing_codes(store) == []
    resolved = outbox(store)[-1]
    assert [(a["code"], a["state"]) for a in resolved["alerts"]] == [("HASH_PLAINTEXT", "RESOLVED")]
    assert rollup_events(store) == 3


def crashing(after: list[int]) -> Any:
    """The real alert engine, then a crash before the commit (as kill -9 would)."""

    def evaluate(
        conn: Connection,
        settings: Settings,
        reports: Sequence[DatasetReport],
        now: float,
        **kwargs: Any,
    ) -> CycleOutcome:
        outcome = evaluate_cycle(conn, settings, reports, now, **kwargs)
        after.append(len(outcome.outbox))
        raise RuntimeError("simulated crash after evaluate_cycle")

    return evaluate


def test_a_crash_before_commit_writes_nothing_and_the_retry_alerts_once(
    settings: Settings, store: Store, log_file: Path
) -> None:
    append(log_file, line(NOW - 3 * DAY), line(NOW - 60, email="jane.doe@example.com"))
    queued: list[int] = []
    result = daemon(settings, store, evaluate=crashing(queued)).run_job(JOBS[0], NOW)
    assert not result.ok and "simulated crash" in (result.error or "")
    assert queued == [1]  # the engine did queue a notification... inside the rollback
    for table in ("alerts", "outbox", "log_cursors", "hour_rollups", "audit_runs"):
        assert count(store, table) == 0, table
    # The next start re-reads the same lines: exactly one alert, one outbox row.
    d = daemon(settings, store)
    d.run_once(NOW + 30)
    d.run_once(NOW + 60)
    assert firing_codes(store) == ["HASH_PLAINTEXT"]
    assert len(outbox(store)) == 1
    assert rollup_events(store) == 2


def test_stopping_abandons_the_cycle_cleanly(
    settings: Settings, store: Store, log_file: Path
) -> None:
    append(log_file, line(NOW - 60, email="jane.doe@example.com"))
    stop = threading.Event()
    stop.set()
    result = daemon(settings, store).run_job(JOBS[0], NOW, stop)
    assert not result.ok and result.error == "abandoned: the daemon is stopping"
    assert count(store, "log_cursors") == 0 and count(store, "alerts") == 0


def test_job_runs_are_recorded_and_pruned(settings: Settings, store: Store) -> None:
    d = daemon(settings, store, job_runs_kept=3)
    for _ in range(5):
        d.run_once(NOW)
    assert count(store, "job_runs") == 6  # 3 per job


def test_a_failing_job_is_recorded_with_a_scrubbed_error(settings: Settings, store: Store) -> None:
    def boom(_d: Daemon, _now: float, _stop: threading.Event) -> dict[str, Any]:
        raise ValueError("cannot reach jane.doe@example.com with xoxb-1234567890-abcdefghij")

    d = daemon(settings, store, secrets=["s3cr3t-value"])
    result = d.run_job(JobSpec("boom", lambda s: 1.0, boom, "fails"), NOW)
    assert not result.ok
    assert result.error is not None
    assert "jane.doe@example.com" not in result.error and "xoxb-1234567890" not in result.error
    data = status(store, settings, NOW)
    assert data["jobs"]["logs"] is None
    assert count(store, "job_runs") == 1


def test_status_shows_alerts_and_last_runs(
    settings: Settings, store: Store, log_file: Path
) -> None:
    append(log_file, line(NOW - 60, email="jane.doe@example.com"))
    daemon(settings, store).run_once(NOW)
    data = status(store, settings, NOW)
    assert [a["code"] for a in data["alerts"]] == ["HASH_PLAINTEXT"]
    assert data["jobs"]["logs"]["ok"] is True
    assert data["jobs"]["logs"]["counters"]["deliveries"] == 1
    assert data["log_files"] == {"watched": 1, "datasets": ["111"]}
    text = "\n".join(status_lines(data))
    assert "FIRING crit 111 HASH_PLAINTEXT Purchase" in text
    assert "logs: last run" in text


def test_recent_part_uses_send_time_else_event_time() -> None:
    def d(events: list[dict[str, Any]], sent_at: float | None) -> Delivery:
        times, millis = event_times(events)
        return Delivery(
            "f", 1, "1", Shape.REQUEST, events, len(events), sent_at, times=times, millis=millis
        )

    assert recent_part(d([event(NOW)], NOW - 10), NOW - 5) is None
    old, new = {"event_name": "A", "event_time": NOW - 100}, {"event_name": "B", "event_time": NOW}
    part = recent_part(d([old, new], None), NOW - 50)
    assert part is not None and part.events == [new]
    millis = {"event_name": "C", "event_time": NOW * 1000}
    assert recent_part(d([millis], None), NOW - 50) is not None


def test_unknown_time_zone_is_a_config_error(settings: Settings, store: Store) -> None:
    from monitor.errors import ConfigError

    bad = settings.model_copy(
        update={"schedule": settings.schedule.model_copy(update={"timezone": "Mars/Base"})}
    )
    with pytest.raises(ConfigError, match=r"schedule\.timezone"):
        Daemon(bad, store, FakeSender())


# --- logging ---------------------------------------------------------------------------


def test_json_log_lines_are_scrubbed() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ScrubFilter(["hunter2-secret"]))
    logger = logging.getLogger("test.daemon.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "posting with %s for %s", "hunter2-secret", "jane.doe@example.com",
            extra={"job": "notify", "detail": {"to": "ops@example.com"}},
        )  # fmt: skip
        try:
            raise RuntimeError("token hunter2-secret rejected")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (orjson.loads(x) for x in stream.getvalue().splitlines())
    assert first["level"] == "warning" and first["job"] == "notify"
    assert first["logger"] == "test.daemon.json" and first["ts"].endswith("+00:00")
    text = stream.getvalue()
    assert "hunter2-secret" not in text
    assert "jane.doe@example.com" not in text and "ops@example.com" not in text
    assert "[redacted]" in first["msg"] and "j***@e***.com" in first["msg"]
    assert "RuntimeError" in second["exc"]


def test_secret_values_come_from_the_named_variables() -> None:
    settings = settings_from_dict(
        {
            "meta": {"access_token_env": "META_T"},
            "notify": {
                "slack": {"token_env": "SLACK_T", "channel": "#x"},
                "email": {"host": "h", "from": "a@b.c", "to": ["d@e.f"], "password_env": "PW"},
            },
        }
    )
    env = {"META_T": "EAAtoken", "SLACK_T": "xoxb-abc", "PW": "pw", "OTHER": "not-a-secret"}
    assert secret_values(settings, env) == ["EAAtoken", "xoxb-abc"]  # "pw": too short to mask


# --- command line ----------------------------------------------------------------------


def run_cli(*args: str) -> int:
    from monitor.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def test_once_and_status_commands(
    tmp_path: Path, log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "capi-monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/cli.db"\n'
        f'[[datasets]]\nid = "111"\nlogs = ["{tmp_path}/logs/*.jsonl"]\n'
    )
    append(log_file, line(NOW - 60, email="jane.doe@example.com"))
    assert run_cli("once", "--config", str(config), "--now", "2026-11-20T12:00:00Z") == 0
    err = capsys.readouterr().err
    logged = [orjson.loads(x) for x in err.splitlines()]
    assert any(r["msg"] == "job finished" and r["job"] == "logs" for r in logged)
    assert "jane.doe@example.com" not in err
    assert run_cli("status", "--config", str(config), "--json") == 0
    data = orjson.loads(capsys.readouterr().out)
    assert [a["code"] for a in data["alerts"]] == ["HASH_PLAINTEXT"]
    assert data["jobs"]["notify"]["ok"] is True and data["notifiers"] == []
    assert run_cli("status", "--config", str(config)) == 0
    assert "open alerts: 1" in capsys.readouterr().out


def test_run_needs_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("run") == 2
    assert "--config" in capsys.readouterr().err


def test_run_help_names_the_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("run", "--help") == 0
    out = capsys.readouterr().out
    assert "logs_every" in out and "notify_every" in out and "weekly_report" in out


def test_a_backlog_is_read_in_several_passes_of_one_job(
    settings: Settings, store: Store, log_file: Path
) -> None:
    append(log_file, *[line(NOW - 2 * DAY + i) for i in range(30)])
    append(log_file, line(NOW - 60, email="jane.doe@example.com"))
    tailer = LogTailer(settings.datasets, max_bytes=log_file.stat().st_size // 5)
    (logs, _) = daemon(settings, store, tailer=tailer).run_once(NOW)
    assert logs.ok and logs.counters["passes"] >= 5
    assert logs.counters["deliveries"] == 31
    assert rollup_events(store) == 31
    assert firing_codes(store) == ["HASH_PLAINTEXT"] and len(outbox(store)) == 1


def test_database_passwords_are_secrets_too() -> None:
    settings = settings_from_dict({"storage": {"url": "postgresql+psycopg://u:db-pass-1@h/x"}})
    assert secret_values(settings, {}, ["postgresql://u:other-pass@h/y", "not a url"]) == [
        "other-pass",
        "db-pass-1",
    ]

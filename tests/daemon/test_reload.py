"""SIGHUP reloads the config: validated first, a bad one reported and the running one
kept; a good one applied between job runs, jobs rescheduled at their new intervals."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import pytest

from monitor.config import Settings, load_settings, settings_from_dict
from monitor.daemon.scheduler import Daemon
from monitor.errors import ConfigError
from monitor.store import Store
from tests.daemon.test_daemon import FakeSender
from tests.daemon.test_daemon_e2e import DaemonProcess, wait_for


def config(tmp_path: Path, **schedule: str) -> dict[str, object]:
    return {
        "storage": {"url": f"sqlite:///{tmp_path}/state.db"},
        "server": {"listen": "off"},
        "datasets": [{"id": "111", "logs": [str(tmp_path / "*.jsonl")]}],
        "schedule": {"logs_every": "1h", "weekly_report": "off", **schedule},
    }


def test_a_good_config_is_applied_and_a_bad_one_kept_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.daemon.scheduler")
    first = settings_from_dict(config(tmp_path))
    answers: list[Settings | Exception] = [
        ConfigError("config.toml: schedule.logs_every: expected a duration"),
        settings_from_dict({**config(tmp_path), "storage": {"url": "sqlite:///elsewhere.db"}}),
        settings_from_dict(config(tmp_path, logs_every="30m")),
    ]

    def load() -> Settings:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    stop, reload = threading.Event(), threading.Event()
    with Store.open(f"sqlite:///{tmp_path}/state.db") as store:
        d = Daemon(first, store, FakeSender())
        runner = threading.Thread(target=d.run, args=(stop, reload, load))
        runner.start()
        try:
            for expected in (3600.0, 3600.0, 1800.0):
                reload.set()
                wait_for("the reload", lambda: not reload.is_set() and d._running == 0, 10)
                time.sleep(0.5)
                assert d.settings.schedule.logs_every == expected
        finally:
            stop.set()
            runner.join(15)
    refused = [r for r in caplog.records if r.msg.startswith("config reload refused")]
    assert getattr(refused[0], "error", "").endswith("expected a duration")
    assert "storage.url: changed" in getattr(refused[1], "error", "")
    assert any(r.msg == "config reloaded" for r in caplog.records)


@pytest.mark.slow
def test_sighup_reloads_the_running_daemon(tmp_path: Path) -> None:
    path = tmp_path / "capi-monitor.toml"
    good = (
        f'[storage]\nurl = "sqlite:///{tmp_path}/state.db"\n[server]\nlisten = "off"\n'
        f'[[datasets]]\nid = "1"\nlogs = ["{tmp_path}/*.jsonl"]\n'
        '[schedule]\nlogs_every = "1h"\nweekly_report = "off"\n'
    )
    path.write_text(good)
    assert load_settings(path).schedule.logs_every == 3600
    daemon = DaemonProcess(path, tmp_path / "daemon.log")
    try:
        daemon.start()
        wait_for(
            "the start", lambda: any(r["msg"] == "daemon started" for r in daemon.log_records()), 30
        )
        assert daemon.proc is not None
        path.write_text(good.replace('logs_every = "1h"', 'logs_every = "often"'))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            "the refusal",
            lambda: any(r["msg"].startswith("config reload refused") for r in daemon.log_records()),
            30,
        )
        path.write_text(good.replace('logs_every = "1h"', 'logs_every = "30m"'))
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            "the reload",
            lambda: any(r["msg"] == "config reloaded" for r in daemon.log_records()),
            30,
        )
        assert daemon.proc.poll() is None  # SIGHUP no longer kills it
        reloaded = next(r for r in daemon.log_records() if r["msg"] == "config reloaded")
        assert reloaded["jobs"]["logs"] == 1800
        code, _ = daemon.terminate()
        assert code == 0
    finally:
        daemon.stop()


def test_a_token_named_by_a_reloaded_config_is_masked_in_the_log(tmp_path: Path) -> None:
    import io

    from monitor.jsonlog import configured

    env = {"OLD_TOKEN": "old-plain-secret-1234", "NEW_TOKEN": "new-plain-secret-5678"}
    first = settings_from_dict({**config(tmp_path), "meta": {"access_token_env": "OLD_TOKEN"}})
    second = settings_from_dict({**config(tmp_path), "meta": {"access_token_env": "NEW_TOKEN"}})
    out = io.StringIO()
    logger = logging.getLogger("tests.reload.secrets")
    with (
        configured(first, env, stream=out),
        Store.open(f"sqlite:///{tmp_path}/state.db") as store,
    ):
        d = Daemon(first, store, FakeSender(), env=env)
        logger.warning("before: %s", env["NEW_TOKEN"])  # not yet a secret of the config
        d.reload(second)
        logger.warning("after: %s and %s", env["NEW_TOKEN"], env["OLD_TOKEN"])
    lines = out.getvalue().splitlines()
    after = next(line for line in lines if '"after:' in line)
    assert env["NEW_TOKEN"] not in after and env["OLD_TOKEN"] not in after
    assert after.count("[redacted]") == 2
    assert d.tailer.senders.graph_hosts == second.graph_hosts

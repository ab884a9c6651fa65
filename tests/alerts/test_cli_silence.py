"""`capi-monitor silence add/list/expire` as a user runs it: a real process against a real
SQLite file; bad input is one line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from monitor.alerts.model import AlertKey
from monitor.alerts.silences import active_silences
from monitor.store import Store


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "silence", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={**os.environ, "USER": "ops-anna"},
    )


def test_add_list_expire(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    added = run("add", "--dataset", "111", "--code", "volume_drop", "--event", "Purchase",
                "--for", "2h", "--reason", "deploy, ask jane.doe@example.com", "--db", db,
                cwd=tmp_path)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("silence 1 added: dataset 111, code VOLUME_DROP, event Purchase")
    assert "jane.doe@example.com" not in added.stdout
    run("add", "--dataset", "222", "--for", "30m", "--reason", "r", "--db", db, cwd=tmp_path)

    listed = run("list", "--json", "--db", db, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = orjson.loads(listed.stdout)
    assert [(r["id"], r["dataset_id"], r["code"], r["event_name"]) for r in rows] == [
        (1, "111", "VOLUME_DROP", "Purchase"),
        (2, "222", None, None),
    ]
    assert rows[0]["author"] == "ops-anna" and rows[0]["reason"] == "deploy, ask j***@e***.com"
    assert 7100 < rows[0]["ends_at"] - time.time() <= 7200

    with Store.open(db) as store:
        [s1, _] = active_silences(store.engine, time.time())
    assert s1.matches(AlertKey("111", "volume", "VOLUME_DROP", "Purchase"))

    expired = run("expire", "1", "--db", db, cwd=tmp_path)
    assert (expired.returncode, expired.stdout) == (0, "silence 1 expired\n")
    text = run("list", "--db", db, cwd=tmp_path).stdout
    assert text.startswith("2: dataset 222, code any, event any, until ") and "by ops-anna" in text
    assert "[ended]" in run("list", "--all", "--db", db, cwd=tmp_path).stdout
    again = run("expire", "1", "--db", db, cwd=tmp_path)
    assert (again.returncode, again.stdout) == (0, "silence 1 had already ended\n")


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    for args, words in [
        (["add", "--dataset", "1", "--for", "2 parsecs", "--reason", "r"], "'--for'"),
        (["add", "--dataset", "1", "--for", "0m", "--reason", "r"], "positive duration"),
        (["add", "--dataset", "1", "--for", "1h"], "--reason"),
        (["expire", "42"], "no silence with id 42"),
    ]:
        p = run(*args, "--db", db, cwd=tmp_path)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.count("\n") == 1 and words in p.stderr, p.stderr
        assert p.stderr.startswith("capi-monitor: ") and "Traceback" not in p.stderr


def test_dataset_must_be_configured_when_the_config_lists_datasets(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/c.db"\n[[datasets]]\nid = "111"\n')
    bad = run("add", "--dataset", "999", "--for", "1h", "--reason", "r", "--config", str(cfg),
              cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2 and "'999' is not in" in bad.stderr
    ok = run("add", "--dataset", "111", "--for", "1h", "--reason", "r", "--config", str(cfg),
             cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "c.db").exists()  # the store named by [storage] url

"""The fleet end to end (docs/contracts.md §11): two ``capi-monitor run`` processes, one
per "host" (each with its own logs), on one PostgreSQL store, with a fake Slack. One
host's incident is posted once while the other host's clean cycles go on; the notifying
instance is killed (SIGKILL) and the survivor reports it silent within 60 s, posting
nothing twice; restarted, the instance reports again and the alert resolves; SIGTERM
stops both with status 0, and neither is then silent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from monitor.testing.fakeslack import FakeSlack
from tests.daemon.test_daemon_e2e import (
    SLACK_TOKEN,
    STOP_WITHIN,
    DaemonProcess,
    incident,
    wait_for,
)
from tests.support.pg import ON_PG, fresh_database

pytestmark = [*ON_PG, pytest.mark.slow]
FAILOVER_WITHIN = 60.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=SLACK_TOKEN, channels=["capi-alerts"]) as fake:
        yield fake


def config(tmp_path: Path, name: str, url: str, slack: FakeSlack) -> Path:
    home = tmp_path / name
    (home / "logs").mkdir(parents=True)
    path = home / "capi-monitor.toml"
    path.write_text(
        f"""
[instance]
name = "{name}"

[storage]
url = "{url}"

[server]
listen = "off"

[[datasets]]
id = "1234567890"
name = "Fleet shop"
logs = ["{home}/logs/*.jsonl"]

[schedule]
logs_every = "1s"
notify_every = "0.5s"

[alerts]
window = "1h"
instance_stale = "10s"

[notify]
timeout = "2s"

[notify.slack]
token_env = "E2E_SLACK_TOKEN"
channel = "#capi-alerts"
api_url = "{slack.url}"
"""
    )
    return path


def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def reported(url: str) -> set[str]:
    try:
        rows = query(url, "SELECT name FROM instances WHERE last_report_at IS NOT NULL")
    except ProgrammingError:  # not migrated yet
        return set()
    return {r[0] for r in rows}


def lease_holder(url: str, lease: str) -> str | None:
    rows = query(url, f"SELECT holder FROM leases WHERE name = '{lease}'")
    return rows[0][0] if rows else None


def posts(slack: FakeSlack) -> list[tuple[str, str, str]]:
    """(code, state, instance label) of the leading alert of every post, in order."""
    out = []
    for m in slack.messages:
        payload = m["metadata"]["event_payload"]
        out.append((payload["code"], payload["state"], payload.get("instance", "")))
    return out


def keys(slack: FakeSlack) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in slack.messages]


def test_two_instances_notify_once_and_survive_the_loss_of_the_notifier(
    tmp_path: Path, pg_url: str, slack: FakeSlack
) -> None:
    hosts = {name: config(tmp_path, name, pg_url, slack) for name in ("host-a", "host-b")}
    procs = {n: DaemonProcess(c, tmp_path / f"{n}.log") for n, c in hosts.items()}
    try:
        for p in procs.values():
            p.start()
        wait_for("both instances to report", lambda: reported(pg_url) == set(hosts), 60)

        # An incident on host A; host B goes on sending clean events.
        with open(tmp_path / "host-a" / "logs" / "capi.jsonl", "ab") as f:
            f.write(incident("Purchase"))
        wait_for("the Slack post", lambda: len(slack.messages) == 1, 30)
        for _ in range(5):  # B's clean cycles must not resolve what A sees
            with open(tmp_path / "host-b" / "logs" / "capi.jsonl", "ab") as f:
                f.write(incident("Lead").replace(b"jane.doe@example.com", b"a" * 64))
            time.sleep(1)
        assert posts(slack) == [("HASH_PLAINTEXT", "FIRING", "")]

        # Kill the notifier: the survivor reports it silent, through Slack, within 60 s.
        victim = lease_holder(pg_url, "notify")
        assert victim in procs
        survivor = next(n for n in procs if n != victim)
        killed_at = time.monotonic()
        procs[victim].stop()  # SIGKILL
        wait_for(
            f"INSTANCE_SILENT for {victim}",
            lambda: ("INSTANCE_SILENT", "FIRING", victim) in posts(slack),
            FAILOVER_WITHIN,
        )
        assert time.monotonic() - killed_at < FAILOVER_WITHIN
        assert lease_holder(pg_url, "notify") == survivor

        # Back again: it reports, and its silence resolves.
        procs[victim] = DaemonProcess(hosts[victim], tmp_path / f"{victim}-2.log")
        procs[victim].start()
        wait_for(
            f"{victim} to report again",
            lambda: ("INSTANCE_SILENT", "RESOLVED", victim) in posts(slack),
            60,
        )
        time.sleep(2)  # room for a (wrong) second post of anything
        assert len(keys(slack)) == len(set(keys(slack))), posts(slack)

        for name, p in procs.items():
            code, took = p.terminate()
            assert code == 0 and took < STOP_WITHIN, name
    finally:
        for p in procs.values():
            p.stop()
    stopped = query(pg_url, "SELECT name FROM instances WHERE stopped_at IS NOT NULL")
    assert {r[0] for r in stopped} == set(hosts)
    text_of_logs = "".join((tmp_path / f).read_text() for f in ("host-a.log", "host-b.log"))
    assert SLACK_TOKEN not in text_of_logs and "jane.doe@example.com" not in text_of_logs

"""Fleet mode in one process (docs/contracts.md §11): two instances with their own logs
on one store. Alerts fire and resolve once for the fleet, counts add up, cursors belong
to their instance, a silent instance raises INSTANCE_SILENT, leases hand over, and the
refusals: one live name, one instance per SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.daemon.scheduler import Daemon
from monitor.daemon.status import status, status_lines
from monitor.errors import FleetError
from monitor.store import Store
from monitor.store.cursors import load_cursors
from monitor.store.tables.core import metadata
from tests.daemon.test_daemon import NOW, FakeSender, append, line
from tests.support.pg import ON_PG, database

STALE = 900.0


def fleet_settings(tmp_path: Path, name: str, **alerts: Any) -> Settings:
    logs = tmp_path / name
    logs.mkdir(exist_ok=True)
    return settings_from_dict(
        {
            "instance": {"name": name},
            "datasets": [{"id": "111", "name": "Shop", "logs": [str(logs / "*.jsonl")]}],
            "alerts": {
                "window": "1h",
                "resolve_after_cycles": 1,
                "keep_firing_for": "0s",
                **alerts,
            },
        }
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not ON_PG[1].args[0]:
        with database("postgres", Path()) as url:
            yield url
    else:
        pytest.skip(ON_PG[1].kwargs["reason"])


def instance(tmp_path: Path, store: Store, name: str, **alerts: Any) -> Daemon:
    return Daemon(fleet_settings(tmp_path, name, **alerts), store, FakeSender(), clock=lambda: NOW)


def log_of(tmp_path: Path, name: str) -> Path:
    return tmp_path / name / "capi.jsonl"


def firing(store: Store) -> list[tuple[str | None, str, str | None]]:
    return sorted(
        (a.key.dataset_id, a.key.code, a.key.instance)
        for a in open_alerts(store.engine, firing_only=True)
    )


def outbox(store: Store) -> list[dict[str, Any]]:
    t = metadata.tables["outbox"]
    with store.engine.connect() as conn:
        return [dict(r["payload"]) for r in conn.execute(select(t).order_by(t.c.id)).mappings()]


def states(store: Store) -> list[tuple[str, str]]:
    return [(a["code"], a["state"]) for n in outbox(store) for a in n["alerts"]]


def test_one_hosts_clean_cycles_do_not_resolve_what_another_sees(
    tmp_path: Path, store: Store
) -> None:
    a, b = instance(tmp_path, store, "host-a"), instance(tmp_path, store, "host-b")
    append(log_of(tmp_path, "host-a"), line(NOW - 60, email="jane.doe@example.com"))
    append(log_of(tmp_path, "host-b"), line(NOW - 50))
    a.logs_cycle(NOW)
    b.logs_cycle(NOW + 1)
    assert firing(store) == [("111", "HASH_PLAINTEXT", None)]
    for k in range(1, 6):  # B keeps finding its own logs clean; A has nothing new
        append(log_of(tmp_path, "host-b"), line(NOW + k * 300 - 10))
        b.logs_cycle(NOW + k * 300)
        a.logs_cycle(NOW + k * 300 + 1)
    assert firing(store) == [("111", "HASH_PLAINTEXT", None)]
    assert states(store) == [("HASH_PLAINTEXT", "FIRING")]  # one post, no flapping
    append(log_of(tmp_path, "host-a"), line(NOW + 1790))  # A is clean again
    a.logs_cycle(NOW + 1800)
    assert firing(store) == []
    assert states(store) == [("HASH_PLAINTEXT", "FIRING"), ("HASH_PLAINTEXT", "RESOLVED")]


def test_counts_add_up_and_cursors_belong_to_their_instance(tmp_path: Path, store: Store) -> None:
    a, b = instance(tmp_path, store, "host-a"), instance(tmp_path, store, "host-b")
    append(log_of(tmp_path, "host-a"), *[line(NOW - 60) for _ in range(3)])
    append(log_of(tmp_path, "host-b"), *[line(NOW - 60) for _ in range(4)])
    for _ in range(2):
        a.logs_cycle(NOW)
        b.logs_cycle(NOW + 1)
    assert sum(r.events for r in store.rollups("111")) == 7
    with store.engine.connect() as conn:
        mine = {
            n: [c.path for c in load_cursors(conn, n) if c.active] for n in ("host-a", "host-b")
        }
    # B never saw A's file (another host), so it never retired A's cursor, nor the reverse.
    assert mine == {
        "host-a": [str(log_of(tmp_path, "host-a"))],
        "host-b": [str(log_of(tmp_path, "host-b"))],
    }


def test_a_finding_counts_the_fleet_and_its_severity_follows_the_fleets_share(
    tmp_path: Path, store: Store
) -> None:
    a, b = instance(tmp_path, store, "host-a"), instance(tmp_path, store, "host-b")
    # A: 2 of 10 events carry clear text, B: 1 of 10; together 3.
    plain = [line(NOW - 60, email=f"person{i}@example.com") for i in range(3)]
    append(log_of(tmp_path, "host-a"), *plain[:2], *[line(NOW - 60) for _ in range(8)])
    append(log_of(tmp_path, "host-b"), plain[2], *[line(NOW - 60) for _ in range(9)])
    a.logs_cycle(NOW)
    b.logs_cycle(NOW + 1)
    # (The Purchases carry an email only: MATCH_KEY_COVERAGE_LOW fires for the fleet too.)
    (alert,) = [
        a for a in open_alerts(store.engine, firing_only=True) if a.key.code == "HASH_PLAINTEXT"
    ]
    assert alert.content.count == 3
    assert alert.content.evidence["instances"] == 2


def test_a_silent_instance_raises_instance_silent_until_it_reports(
    tmp_path: Path, store: Store
) -> None:
    a, b = instance(tmp_path, store, "host-a"), instance(tmp_path, store, "host-b")
    a.logs_cycle(NOW)
    b.logs_cycle(NOW + STALE - 1)
    assert firing(store) == []
    b.logs_cycle(NOW + STALE + 1)
    assert firing(store) == [(None, "INSTANCE_SILENT", "host-a")]
    (note,) = outbox(store)
    assert note["dataset_id"] is None and note["alerts"][0]["instance"] == "host-a"
    assert "host-a" in note["alerts"][0]["message"]
    b.logs_cycle(NOW + STALE + 300)  # still silent: no second post
    assert len(outbox(store)) == 1
    a.logs_cycle(NOW + STALE + 400)
    assert firing(store) == []
    assert states(store)[-1] == ("INSTANCE_SILENT", "RESOLVED")
    data = status(store, a.settings, NOW + STALE + 400)
    assert {i["name"]: i["state"] for i in data["instances"]} == {
        "host-a": "live",
        "host-b": "live",
    }
    assert any("host-b" in ln for ln in status_lines(data))


def test_a_stopped_instance_is_not_silent_and_a_stale_one_resolves_nothing_it_saw(
    tmp_path: Path, store: Store
) -> None:
    a, b, c = (instance(tmp_path, store, n) for n in ("host-a", "host-b", "host-c"))
    append(log_of(tmp_path, "host-a"), line(NOW - 60, email="jane.doe@example.com"))
    a.logs_cycle(NOW)
    c.logs_cycle(NOW)
    c.fleet.join(NOW)
    c.fleet.leave(NOW + 10)  # SIGTERM: deregistered
    assert firing(store) == [("111", "HASH_PLAINTEXT", None)]
    # A dies with the finding in its standing verdict; B's clean cycles cannot resolve it
    # until A has been silent for instance_stale, then they do.
    append(log_of(tmp_path, "host-b"), line(NOW + 290))
    b.logs_cycle(NOW + 300)
    assert ("111", "HASH_PLAINTEXT", None) in firing(store)
    append(log_of(tmp_path, "host-b"), line(NOW + STALE + 290))
    b.logs_cycle(NOW + STALE + 300)
    assert firing(store) == [(None, "INSTANCE_SILENT", "host-a")]  # and host-c is not silent


def test_one_instance_drains_the_outbox_and_another_takes_over_when_it_dies(
    tmp_path: Path, store: Store
) -> None:
    a, b = instance(tmp_path, store, "host-a"), instance(tmp_path, store, "host-b")
    assert a.notify_cycle(NOW) == {"sent": 0}
    assert b.notify_cycle(NOW + 1) == {"standby": 1}
    assert a.notify_cycle(NOW + 5) == {"sent": 0}  # renewed
    assert b.notify_cycle(NOW + 30) == {"standby": 1}
    assert b.notify_cycle(NOW + 36) == {"sent": 0}  # A stopped renewing 31 s ago
    assert a.notify_cycle(NOW + 37) == {"standby": 1}


def test_a_second_live_instance_with_the_same_name_is_refused(tmp_path: Path, pg_url: str) -> None:
    with Store.open(pg_url) as one, Store.open(pg_url) as two:
        first = instance(tmp_path, one, "host-a")
        first.fleet.join(NOW)
        with pytest.raises(FleetError, match="another live capi-monitor instance is named"):
            instance(tmp_path, two, "host-a").fleet.join(NOW)
        other = instance(tmp_path, two, "host-b")
        other.fleet.join(NOW)  # another name is fine
        other.fleet.release()
        first.fleet.release()  # as when it dies: the name is free again
        again = instance(tmp_path, two, "host-a")
        again.fleet.join(NOW + 1)
        again.fleet.release()


def test_two_instances_on_one_sqlite_file_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Store.open(url) as one, Store.open(url) as two:
        first = instance(tmp_path, one, "host-a")
        first.fleet.join(NOW)
        with pytest.raises(FleetError, match="several instances need a PostgreSQL store"):
            instance(tmp_path, two, "host-b").fleet.join(NOW)
        first.fleet.leave(NOW + 1)
        second = instance(tmp_path, two, "host-b")
        second.fleet.join(NOW + 2)
        second.fleet.release()


def test_fleet_list_and_forget_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main

    db = tmp_path / "state.db"
    config = tmp_path / "capi-monitor.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{db}"\n[instance]\nname = "host-a"\n')
    with Store.open(f"sqlite:///{db}") as s:
        Daemon(
            fleet_settings(tmp_path, "gone-host"), s, FakeSender(), clock=lambda: NOW
        ).logs_cycle(NOW)

    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--config", str(config)])
        return int(exit_.value.code or 0)

    assert run("fleet", "list", "--json") == 0
    assert '"gone-host"' in capsys.readouterr().out
    assert run("fleet", "forget", "gone-host") == 0
    assert run("fleet", "forget", "gone-host") == 2
    assert "no instance named 'gone-host'" in capsys.readouterr().err

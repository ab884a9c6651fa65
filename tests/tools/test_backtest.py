"""monitor.tools.backtest and ``capi-monitor backtest``: the contract's output, warm-up, no side
effects, and the same alerts as the daemon's logs job fed the same lines at the same times."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.alerts.queries import alert_episodes
from monitor.cli import main
from monitor.config import Settings, settings_from_dict
from monitor.daemon.scheduler import Daemon
from monitor.store import Store
from monitor.timeutil import iso_utc
from monitor.tools.backtest import run_backtest

NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
HOUR = 3600.0
STEP = 900.0
_ids = iter(range(10**9))


def event(t: float, email: str | None = None) -> dict[str, Any]:
    n = next(_ids)
    em = email or hashlib.sha256(f"user{n}@example.com".encode()).hexdigest()
    return {
        "event_name": "Purchase",
        "event_time": int(t) - 30,
        "event_id": f"ev-{n}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {"em": [em], "client_user_agent": "Mozilla/5.0"},
        "custom_data": {"value": 10.5, "currency": "EUR"},
    }


def line(sent_at: float, email: str | None = None) -> bytes:
    record = {
        "sent_at": iso_utc(sent_at),
        "request": {"data": [event(sent_at, email)]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    return orjson.dumps(record) + b"\n"


PLAIN = "jane.doe@example.com"


def traffic(every: float = 600, days: float = 2, stop: bool = False) -> list[tuple[float, bytes]]:
    """A delivery ``every`` seconds from ``days`` before NOW to 6 h after, with clear-text
    emails at NOW−3 h (before --from), NOW+1 h..+2 h, and from NOW+5 h on; with ``stop``,
    nothing between NOW+2.5 h and NOW+4.5 h."""
    out = []
    t = NOW - days * 86400
    while t < NOW + 6 * HOUR:
        dirty = NOW - 3 * HOUR <= t < NOW - 2.5 * HOUR or NOW + HOUR <= t < NOW + 2 * HOUR
        dirty = dirty or t >= NOW + 5 * HOUR
        if not (stop and NOW + 2.5 * HOUR <= t < NOW + 4.5 * HOUR):
            out.append((t, line(t, PLAIN if dirty else None)))
        t += every
    return out


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Settings, Path]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = settings_from_dict(
        {
            "storage": {"url": f"sqlite:///{tmp_path}/user.db"},
            "datasets": [{"id": "111", "logs": [str(logs / "*.jsonl")]}],
            "schedule": {"logs_every": "15m"},
            # Cycle semantics only: the time rules (keep firing, flapping) are tested in
            # tests/alerts.
            "alerts": {
                "window": "1h",
                "resolve_after_cycles": 2,
                "keep_firing_for": "0s",
                "flap_window": "0s",
            },
        }
    )
    yield settings, logs / "capi.jsonl"


def episodes(result: Any) -> list[tuple[str, str | None, str]]:
    return [(a.to_dict()["fired_at"], a.to_dict()["resolved_at"], a.code) for a in result.alerts]


def test_backtest_lists_episodes_fired_in_range(setup: tuple[Settings, Path]) -> None:
    settings, log = setup
    log.write_bytes(b"".join(b for _, b in traffic()))
    result = run_backtest(settings, start=NOW, end=NOW + 6 * HOUR)
    assert result.step == STEP  # [schedule] logs_every
    assert episodes(result) == [
        # the first cycle after the first clear-text send (13:00:00, so the 13:15 cycle);
        # resolved after two cycles whose new lines are clean (the last sent at 13:50)
        ("2026-11-20T13:15:00+00:00", "2026-11-20T14:30:00+00:00", "HASH_PLAINTEXT"),
        # still firing at --to: resolved_at is null
        ("2026-11-20T17:15:00+00:00", None, "HASH_PLAINTEXT"),
    ]
    # the incident before --from fired and resolved in the warm-up: not listed
    data = result.to_dict()
    assert set(data["alerts"][0]) >= {
        "fired_at", "resolved_at", "dataset_id", "code", "event_name", "severity"
    }  # fmt: skip
    assert data["alerts"][0]["severity"] == "crit" and data["alerts"][0]["dataset_id"] == "111"
    assert result.cycles == 96 + 24  # one day of warm-up, then --from..--to


def test_backtest_is_the_daemons_logs_job(setup: tuple[Settings, Path], tmp_path: Path) -> None:
    """The daemon, fed the same lines as they are written, decides the same episodes:
    clear text from the checks of new lines, a stop from the stored series (volume)."""
    settings, log = setup
    lines = traffic(every=120, days=4, stop=True)
    log.write_bytes(b"".join(b for _, b in lines))
    replay = run_backtest(settings, start=NOW, end=NOW + 6 * HOUR)
    log.unlink()
    first = NOW - 86400.0
    with Store.open(f"sqlite:///{tmp_path}/daemon.db") as store:
        d = Daemon(settings, store, _NoSender(), clock=lambda: NOW)
        t, i = first, 0
        while t < NOW + 6 * HOUR:
            chunk = []
            while i < len(lines) and lines[i][0] < t:
                chunk.append(lines[i][1])
                i += 1
            with open(log, "ab") as f:
                f.write(b"".join(chunk))
            d.logs_cycle(t)
            t += STEP
        live = alert_episodes(store.engine, fired_from=NOW, fired_to=NOW + 6 * HOUR)
    assert [(a.fired_at, a.resolved_at, a.code) for a in live] == [
        (a.fired_at, a.resolved_at, a.code) for a in replay.alerts
    ]
    # the sender stopped half-way through an hour: that hour and the empty one after it
    # are a drop first (two hours at z <= -3.5), the stop follows once the next hour
    # shows nothing either (one empty hour of 30 alone is short of single_hour_z)
    assert {a.code for a in replay.alerts} == {"HASH_PLAINTEXT", "VOLUME_DROP", "VOLUME_STOPPED"}


class _NoSender:
    def drain(self, now: float | None = None) -> dict[str, int]:
        return {"sent": 0}


def test_backtest_never_writes_the_users_store(setup: tuple[Settings, Path]) -> None:
    settings, log = setup
    log.write_bytes(b"".join(b for _, b in traffic()))
    db = Path(settings.storage.url.removeprefix("sqlite:///"))
    run_backtest(settings, start=NOW, end=NOW + HOUR, store_url=settings.storage.url)
    assert not db.exists()  # no store: nothing created
    Store.open(settings.storage.url).close()
    before = db.read_bytes()
    run_backtest(settings, start=NOW, end=NOW + HOUR, store_url=settings.storage.url)
    assert db.read_bytes() == before


def test_backtest_command(
    setup: tuple[Settings, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, log = setup
    log.write_bytes(b"".join(b for _, b in traffic()))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "{settings.storage.url}"\n[schedule]\nlogs_every = "15m"\n'
        f'[[datasets]]\nid = "111"\nlogs = ["{log.parent}/*.jsonl"]\n'
        '[alerts]\nkeep_firing_for = "0s"\nflap_window = "0s"\n'
    )
    args = [
        "backtest",
        "--config",
        str(config),
        "--from",
        iso_utc(NOW),
        "--to",
        iso_utc(NOW + 3 * HOUR),
    ]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--step", "30m", "--json", "-"])
    assert exit_.value.code == 0
    data = orjson.loads(capsys.readouterr().out)
    assert [(a["fired_at"], a["code"]) for a in data["alerts"]] == [
        ("2026-11-20T13:30:00+00:00", "HASH_PLAINTEXT")
    ]
    assert data["step_seconds"] == 1800
    # --explain: each alert with what it said and the numbers behind it (masked examples
    # and clear text never: the evidence holds counts)
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--explain"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.splitlines()
    fired = next(i for i, text in enumerate(out) if "HASH_PLAINTEXT" in text)
    said = "1 of 1 events (100.0%) have clear-text values in user_data.em (Purchase)."
    assert out[fired + 1] == f"      {said}"
    assert out[fired + 2].startswith("      evidence: {")
    assert PLAIN not in "\n".join(out)
    with pytest.raises(SystemExit) as exit_:
        main(["backtest", "--config", str(config), "--from", iso_utc(NOW), "--to", iso_utc(NOW)])
    assert exit_.value.code == 2
    assert "--to must be later than --from" in capsys.readouterr().err

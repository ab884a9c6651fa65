"""The daemon's HTTP server (docs/contracts.md §10): /metrics with the contract's names
and labels, /healthz and its late-job rule, the live page (also in headless Chromium:
no script, nothing fetched), a busy port is exit 2, and ``once`` serves nothing."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.config import Settings, settings_from_dict
from monitor.daemon.live import Views, late_jobs
from monitor.daemon.scheduler import Daemon
from monitor.daemon.server import DaemonServer
from monitor.errors import ServerError
from monitor.store import Store
from tests.daemon.test_daemon import NOW, FakeSender, append, line, run_cli
from tests.support.browser import DevTools, chromium, find_chromium, open_page

CHROMIUM = find_chromium()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "logs").mkdir()
    return settings_from_dict(
        {
            "instance": {"name": "host-a"},
            "datasets": [
                {"id": "111", "name": "Shop", "logs": [str(tmp_path / "logs" / "*.jsonl")]}
            ],
            "alerts": {"window": "1h"},
        }
    )


@pytest.fixture
def served(settings: Settings, store: Store, tmp_path: Path) -> Iterator[tuple[Daemon, str, Clock]]:
    clock = Clock(NOW)
    daemon = Daemon(settings, store, FakeSender(), clock=clock)
    append(
        tmp_path / "logs" / "capi.jsonl",
        line(NOW - 60, email="jane.doe@example.com"),
        line(NOW - 50),
    )
    daemon.run_once(NOW)
    server = DaemonServer(("127.0.0.1", 0), Views(daemon, NOW))
    server.start()
    try:
        host, port = server.address
        yield daemon, f"http://{host}:{port}", clock
    finally:
        server.stop()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(name, labels) -> value of every sample line."""
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            key, value = ln.rsplit(" ", 1)
            name, _, rest = key.partition("{")
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', rest))
            out[(name, labels)] = float(value)
    return out


def sample(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_metrics_carry_the_contracts_names_and_labels(
    served: tuple[Daemon, str, Clock], store: Store
) -> None:
    _, url, _ = served
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    fleet = {"instance": "host-a"} if store.engine.dialect.name == "postgresql" else {}
    p = "capi_monitor_"
    expected = {
        sample(
            p + "alerts_firing", dataset_id="111", code="HASH_PLAINTEXT", severity="crit", **fleet
        ): 1,
        sample(p + "events_read_total", dataset_id="111", format="v1", **fleet): 2,
        sample(p + "job_runs_total", job="logs", outcome="success", **fleet): 1,
        sample(p + "job_runs_total", job="notify", outcome="success", **fleet): 1,
        sample(p + "job_last_success_timestamp_seconds", job="logs", **fleet): NOW,
        sample(p + "malformed_lines_total", **fleet): 0,
    }
    for key, value in expected.items():
        assert got.get(key) == value, (key, sorted(got))
    assert [k for k in got if k[0] == p + "dataset_health_score"] != []
    assert {name for name, _ in got} <= {
        p + n
        for n in (
            "alerts_firing", "dataset_health_score", "events_read_total", "malformed_lines_total",
            "job_runs_total", "job_last_success_timestamp_seconds", "notifications_pending",
            "notifications_sent_total", "graph_requests_total",
        )
    }  # fmt: skip
    assert "jane.doe" not in answer.text


def test_healthz_names_late_jobs(served: tuple[Daemon, str, Clock]) -> None:
    _, url, clock = served
    answer = httpx.get(f"{url}/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    clock.t = NOW + 3 * 300 + 1  # logs every 5 min: three intervals without a run
    answer = httpx.get(f"{url}/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "late" and answer.json()["late"] == ["logs", "notify"]


@pytest.mark.parametrize(
    ("runs", "now", "late"),
    [
        # why: ran within 3 intervals -> on time
        ({"logs": [(1000.0, True)]}, 1000.0 + 899, []),
        # why: nothing finished for more than 3 intervals -> late
        ({"logs": [(1000.0, True)]}, 1000.0 + 901, ["logs"]),
        # why: a failure is a finished run: a recent failure is not late by time
        ({"logs": [(1000.0, False)]}, 1000.0 + 10, []),
        # why: three failed runs in a row -> late, however recent
        ({"logs": [(1000.0, False)] * 3}, 1000.0 + 10, ["logs"]),
        # why: before its first run the daemon's start counts
        ({}, 500.0 + 899, []),
        ({}, 500.0 + 901, ["logs"]),
    ],
)
def test_the_late_job_rule(runs: dict[str, Any], now: float, late: list[str]) -> None:
    assert late_jobs({"logs": 300.0}, runs, 500.0, now) == late


def test_the_live_page_shows_datasets_alerts_and_jobs(served: tuple[Daemon, str, Clock]) -> None:
    _, url, _ = served
    answer = httpx.get(url + "/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    for shown in ("Shop", "111", "HASH_PLAINTEXT", "logs", "host-a", 'http-equiv="refresh"'):
        assert shown in page, shown
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)
    assert httpx.get(url + "/api/status").json()["datasets"][0]["alerts_firing"] == 1
    assert httpx.get(url + "/nothing").status_code == 404


def test_a_busy_port_is_a_server_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ServerError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"
        ):
            DaemonServer(("127.0.0.1", port), Views.__new__(Views))


def test_run_on_a_busy_port_exits_2_with_one_line_and_once_serves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "capi-monitor.toml"
        config.write_text(
            f'[storage]\nurl = "sqlite:///{tmp_path}/state.db"\n'
            f'[server]\nlisten = "127.0.0.1:{port}"\n[schedule]\nweekly_report = "off"\n'
        )
        assert run_cli("run", "--config", str(config)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"127.0.0.1:{port}: the port is in use" in err
        assert run_cli("once", "--config", str(config)) == 0  # would fail if it served


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it as root)"
)
def test_the_live_page_in_chromium(served: tuple[Daemon, str, Clock], tmp_path: Path) -> None:
    _, url, _ = served
    assert CHROMIUM is not None
    (tmp_path / "profile").mkdir()
    tools: DevTools
    with chromium(CHROMIUM, tmp_path / "profile") as tools:
        page = open_page(tools, url + "/")
        phone = open_page(tools, url + "/", width=390, height=844, mobile=True)
    assert page.log.exceptions == [] and page.log.failed == []
    assert [r for r in page.log.requests if not r.startswith(url)] == []
    assert page.facts["scripts"] == 0
    text = page.facts["text"]
    for shown in ("Shop", "111", "HASH_PLAINTEXT", "host-a", "Open alerts", "Jobs"):
        assert shown in text, shown
    assert phone.facts["width"] <= 390

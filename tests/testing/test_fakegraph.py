"""The fake Graph API: Meta's documented shapes over a real socket, scenarios, bookkeeping."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.testing.fakegraph import FakeGraph, Scenario
from monitor.testing.fakegraph import scenarios as sc

REPO = Path(__file__).resolve().parents[2]
TOKEN = "fake-token-123"
START = 1789830000  # 2026-09-19T15:00:00Z, on the hour
END = START + 48 * 3600


def _get(fg: FakeGraph, path: str, token: str | None = TOKEN, **params: str) -> httpx.Response:
    if token is not None:
        params["access_token"] = token
    with httpx.Client(base_url=fg.url, timeout=10) as client:
        return client.get(path, params=params)


def _stats(fg: FakeGraph, token: str | None = TOKEN, **params: str) -> httpx.Response:
    query = {"aggregation": "event", "start_time": str(START), "end_time": str(END)} | params
    return _get(fg, "/v25.0/42/stats", token, **query)


def test_stats_pages_repeat_boundary_bucket_and_link_back_with_token() -> None:
    with FakeGraph(token=TOKEN) as fg:
        first = _stats(fg).json()
        assert [r["start_time"] for r in first["data"]][:2] == [
            "2026-09-19T15:00:00+0000",  # Meta's offset without a colon
            "2026-09-19T16:00:00+0000",
        ]
        assert len(first["data"]) == sc.PAGE_BUCKETS
        nxt = first["paging"]["next"]
        assert nxt.startswith(f"{fg.url}/v25.0/42/stats?")
        assert f"access_token={TOKEN}" in nxt  # as Meta does: clients must strip it
        with httpx.Client(timeout=10) as client:
            second = client.get(nxt).json()
        # The previous page's last bucket comes again (daily chunk boundaries double count).
        assert second["data"][0] == first["data"][-1]
        assert len(second["data"]) == sc.PAGE_BUCKETS + 1
        assert "next" not in second["paging"]
        hours = {r["start_time"] for r in first["data"] + second["data"]}
        assert len(hours) == 48


def test_counts_are_deterministic_and_seasonal() -> None:
    with FakeGraph(token=TOKEN) as fg:
        a, b = _stats(fg).json(), _stats(fg).json()
    assert a == b
    night = sc.hourly_count("42", "Purchase", 1789786800)  # 03:00 UTC
    afternoon = sc.hourly_count("42", "Purchase", 1789830000)  # 15:00 UTC
    assert afternoon > 2 * night
    hours = sc.hours_between(START, END)
    assert [sc.hourly_count("42", "PageView", h) for h in hours] != [
        sc.hourly_count("43", "PageView", h) for h in hours
    ]


def test_token_is_checked_from_query_or_header_per_dataset() -> None:
    with FakeGraph(token=TOKEN, tokens={"77": "other-token"}) as fg:
        assert _stats(fg).status_code == 200
        wrong = _stats(fg, token="nope")
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 190
        assert _get(fg, "/v25.0/42/da_checks", token=None).json()["error"]["code"] == 190
        with httpx.Client(base_url=fg.url, timeout=10) as client:
            header = client.get(
                "/v25.0/77/da_checks", headers={"Authorization": "Bearer other-token"}
            )
        assert header.status_code == 200
        assert _get(fg, "/v25.0/77/da_checks").json()["error"]["code"] == 190
        recorded = fg.requests
    assert all("access_token" not in r.params for r in recorded)
    assert {r.auth for r in recorded} == {"query", "header", "none"}


def test_dataset_quality_rejects_the_misspelt_field_like_meta() -> None:
    with FakeGraph() as fg:
        bad = _get(fg, "/v25.0/dataset_quality", dataset_id="42", fields="web{dedup_key_feedback}")
        good = _get(fg, "/v25.0/dataset_quality", dataset_id="42", fields="web{event_name}")
    assert bad.json()["error"]["code"] == 100
    web = good.json()["web"]
    assert {e["event_name"] for e in web} == {
        "Purchase",
        "InitiateCheckout",
        "AddToCart",
        "PageView",
    }
    pageview = next(e for e in web if e["event_name"] == "PageView")
    assert "event_coverage" not in pageview and "dedupe_key_feedback" not in pageview


@pytest.mark.parametrize(
    ("scenario", "endpoint", "status", "code"),
    [
        ("token_invalid", "/v25.0/42/stats", 500, 190),  # mocks pair 190 with HTTP 500
        ("token_invalid", "/v25.0/42/da_checks", 400, 190),
        ("rate_limited", "/v25.0/42/stats", 400, 80004),
        ("rate_limited", "/v25.0/dataset_quality", 500, 17),
        ("server_error", "/v25.0/42/da_checks", 500, 1),
        ("server_error", "/v25.0/42/stats", 503, None),  # no envelope
        ("malformed_json", "/v25.0/42/da_checks", 200, None),
    ],
)
def test_failure_scenarios(scenario: str, endpoint: str, status: int, code: int | None) -> None:
    with FakeGraph(default=scenario) as fg:
        resp = _get(fg, endpoint, dataset_id="42", aggregation="event")
    assert resp.status_code == status
    if code is not None:
        assert resp.json()["error"]["code"] == code
    if scenario == "rate_limited":
        assert '"estimated_time_to_regain_access":1' in resp.headers["x-business-use-case-usage"]
        assert '"call_count":96' in resp.headers["x-app-usage"]


def test_malformed_json_is_really_malformed() -> None:
    with FakeGraph(default="malformed_json") as fg:
        resp = _get(fg, "/v25.0/42/da_checks")
    with pytest.raises(ValueError):
        resp.json()


def test_flaky_fails_first_calls_per_dataset_then_recovers() -> None:
    with FakeGraph({"42": Scenario.named("flaky").with_(fail_first=2)}) as fg:
        statuses = [_get(fg, "/v25.0/42/da_checks").status_code for _ in range(3)]
        other = _get(fg, "/v25.0/43/da_checks").status_code
    assert statuses == [500, 500, 200]
    assert other == 200


def test_counts_max_in_flight_and_serves_in_parallel() -> None:
    # A latency long enough that a thread started late on a loaded machine still finds
    # the others in flight; the barrier sends the eight requests together.
    latency = 1.5
    with FakeGraph(latency=latency) as fg:
        barrier = threading.Barrier(8)

        def call() -> None:
            barrier.wait()
            _stats(fg)

        threads = [threading.Thread(target=call) for _ in range(8)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        assert fg.max_in_flight == 8
        assert fg.total_requests == 8
        with httpx.Client(timeout=5) as client:
            admin = client.get(f"{fg.url}/__fakegraph/stats").json()
        assert admin["max_in_flight"] == 8
    assert elapsed < 8 * latency  # in parallel, not one after the other


def test_stop_wakes_slow_answers() -> None:
    fg = FakeGraph(default="slow").start()
    url = fg.url
    errors: list[Exception] = []

    def call() -> None:
        try:
            with httpx.Client(timeout=10) as client:
                client.get(f"{url}/v25.0/42/da_checks", params={"access_token": "x"})
        except httpx.HTTPError as err:  # the server may close before answering
            errors.append(err)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    fg.stop()
    worker.join(timeout=5)
    assert time.monotonic() - t0 < 1.5  # not the scenario's 2 s
    assert not worker.is_alive()


def test_unknown_scenario_names_are_refused() -> None:
    with pytest.raises(ValueError, match="known: healthy"):
        FakeGraph(default="nope")


def test_graph_time_and_window_helpers() -> None:
    assert sc.graph_time(START) == "2026-09-19T15:00:00+0000"
    assert sc.parse_time("2026-09-19T15:00:00+0000", 0) == START
    assert len(sc.hours_between(START + 10, END)) == 48
    assert datetime.fromisoformat("2026-09-19T15:00:00+00:00").timestamp() == START


def test_cli_runs_in_the_foreground_and_stops_on_sigterm() -> None:
    env = dict(os.environ, FAKE_TOKEN=TOKEN, PYTHONPATH=str(REPO))
    cmd = [
        sys.executable,
        "-m",
        "monitor.testing.fakegraph",
        "--port",
        "0",
        "--token-env",
        "FAKE_TOKEN",
    ]
    cmd += ["--scenario", "1234567890=server_missing"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("fakegraph listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        params: dict[str, Any] = {
            "aggregation": "event_source",
            "event": "Purchase",
            "start_time": START,
            "end_time": END,
            "access_token": TOKEN,
        }
        with httpx.Client(timeout=10) as client:
            body = client.get(f"{url}/v25.0/1234567890/stats", params=params).json()
        values = {item["value"] for page in body["data"] for item in page["data"]}
        assert values == {"BROWSER"}  # server_missing: no server Purchases
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert TOKEN not in out + err


def test_cli_rejects_bad_scenario() -> None:
    cmd = [sys.executable, "-m", "monitor.testing.fakegraph", "--scenario", "1=nope"]
    res = subprocess.run(
        cmd, capture_output=True, text=True, timeout=30, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    assert res.returncode == 2
    assert "unknown scenario" in res.stderr

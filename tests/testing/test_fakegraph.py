"""The fake Graph API: Meta's documented shapes over a real socket, scenarios, bookkeeping."""

from __future__ import annotations

import itertools
import json
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
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == 100
    assert "nonexisting field (dedup_key_feedback)" in bad.json()["error"]["message"]
    web = good.json()["web"]
    assert all(set(e) == {"event_name"} for e in web)  # only what was asked
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
        ("server_error", "/v25.0/42/da_checks", 500, 2),
        ("no_access", "/v25.0/42/stats", 400, 100),
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


# ------------------------------------------------------------- real shapes (issue 12)

DATA = REPO / "tests" / "data" / "meta"


def _sample(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize(
    ("offset", "first_utc", "first_local"),
    [
        ("+0530", START - 1800, "2026-09-19T20:00:00+0530"),  # India: hours at xx:30 UTC
        ("+0545", START - 2700, "2026-09-19T20:00:00+0545"),  # Nepal: xx:15 UTC
        ("-0330", START - 1800, "2026-09-19T11:00:00-0330"),  # Newfoundland: xx:30 UTC
        ("+0100", START, "2026-09-19T16:00:00+0100"),
        ("-0800", START, "2026-09-19T07:00:00-0800"),
    ],
)
def test_stats_hours_are_the_accounts_local_hours(
    offset: str, first_utc: int, first_local: str
) -> None:
    with FakeGraph(default=f"healthy@{offset}", token=TOKEN) as fg:
        first = _stats(fg).json()
    starts = [r["start_time"] for r in first["data"]]
    assert starts[0] == first_local and all(t.endswith(offset) for t in starts)
    parsed = [datetime.strptime(t, "%Y-%m-%dT%H:%M:%S%z").timestamp() for t in starts]
    assert parsed[0] == first_utc  # the local hour holding start_time
    assert all(b - a == 3600 for a, b in itertools.pairwise(parsed))
    assert list(first["data"][0]) == ["start_time", "aggregation", "data"]  # as a real bucket


def test_offsets_are_validated() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        Scenario.named("healthy@+05:30")
    assert Scenario.named("flaky@-0330").utc_offset == "-0330"


def _quality(fg: FakeGraph, fields: str) -> httpx.Response:
    return _get(fg, "/v25.0/dataset_quality", dataset_id="42", fields=fields)


def test_dataset_quality_answers_only_the_fields_asked_with_metas_defaults() -> None:
    with FakeGraph() as fg:
        emq = _quality(fg, "web{event_match_quality,event_name}").json()["web"]
        diag = _quality(fg, "web{event_match_quality{diagnostics},event_name}").json()["web"]
        cov = _quality(fg, "web{event_coverage{percentage,goal_percentage,description},event_name}")
        typo = _quality(fg, "web{event_name,event_match_quality{composite_scor}}")
    purchase = next(e for e in emq if e["event_name"] == "Purchase")
    # Meta's example: a bare block gives its score and key feedback, no diagnostics.
    assert set(purchase["event_match_quality"]) == {"composite_score", "match_key_feedback"}
    assert set(purchase["event_match_quality"]["match_key_feedback"][0]) == {
        "identifier",
        "coverage",
    }
    assert all(set(e["event_match_quality"]) <= {"diagnostics"} for e in diag)
    coverage = next(e for e in cov.json()["web"] if e["event_name"] == "Purchase")
    assert set(coverage["event_coverage"]) == {"percentage", "goal_percentage", "description"}
    assert typo.status_code == 400 and "(composite_scor)" in typo.json()["error"]["message"]


def test_dedup_broken_answers_with_metas_spelling() -> None:
    with FakeGraph(default="dedup_broken") as fg:
        web = _quality(fg, "web{event_name,dedupe_key_feedback}").json()["web"]
    purchase = next(e for e in web if e["event_name"] == "Purchase")
    (feedback,) = purchase["dedupe_key_feedback"]
    assert feedback["server_events_with_dedupe_key"] == {"percentage": 12.0}


def test_da_checks_have_metas_keys_titles_and_words() -> None:
    real = _sample("da_checks.json")["body"]["data"]
    with FakeGraph(default="da_checks_failed") as fg:
        items = _get(fg, "/v25.0/42/da_checks").json()["data"]
        one = _get(fg, "/v25.0/42/da_checks", checks="pixel_decline").json()["data"]
    assert [i["key"] for i in items] == [i["key"] for i in real]
    assert [i["title"] for i in items] == [i["title"] for i in real]
    assert [set(i) for i in items] == [set(i) for i in real]
    assert {i["result"] for i in items} == {"passed", "failed", "unavailable"}
    assert [i["key"] for i in one] == ["pixel_decline"]
    assert one[0]["action_uri"].endswith("pixel_id=42&m2w=1")


@pytest.mark.parametrize(
    ("scenario", "endpoint", "sample"),
    [
        ("rate_limited", "/v25.0/42/stats", "error_80004_ad_account.json"),
        ("rate_limited", "/v25.0/dataset_quality", "error_17_user_request_limit_events.json"),
        ("token_invalid", "/v25.0/42/da_checks", "error_oauth_190_463.json"),
        ("token_invalid", "/v25.0/42/stats", "error_oauth_190_decrypt_events.json"),
        ("server_error", "/v25.0/42/da_checks", "error_2_transient.json"),
        ("no_access", "/v25.0/42/da_checks", "error_graphmethod_100_33_events.json"),
    ],
)
def test_error_envelopes_have_the_keys_and_statuses_meta_sends(
    scenario: str, endpoint: str, sample: str
) -> None:
    real = _sample(sample)
    with FakeGraph(default=scenario) as fg:
        resp = _get(fg, endpoint, dataset_id="42", aggregation="event")
    err, real_err = resp.json()["error"], real["body"]["error"]
    # Same keys (is_transient and error_subcode only where Meta sends them), except the
    # trace id, which a source may not show.
    assert set(err) - {"fbtrace_id"} == set(real_err) - {"fbtrace_id"}
    assert (err["code"], err["type"]) == (real_err["code"], real_err["type"])
    if real["status"] is not None:
        assert resp.status_code == real["status"]


def test_an_unparsable_token_gets_400_as_the_samples_show() -> None:
    # Issue 12 expected 401; every 190 body found came with 400 (live) or 500 (mocks).
    with FakeGraph(token=TOKEN) as fg:
        resp = _stats(fg, token="garbage")
    real = _sample("token_parse_190.json")["body"]["error"]
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == real["message"]


def _batch(fg: FakeGraph, items: list[dict[str, Any]], **form: str) -> httpx.Response:
    data = {"batch": json.dumps(items), **form}
    with httpx.Client(timeout=10) as client:
        return client.post(f"{fg.url}/", data=data, headers={"Authorization": f"Bearer {TOKEN}"})


def _relative(path: str, **params: Any) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return {"method": "GET", "relative_url": f"v25.0/{path}" + (f"?{query}" if query else "")}


def test_batch_answers_each_item_with_its_own_status_headers_and_body() -> None:
    items = [
        _relative("42/stats", aggregation="event", start_time=START, end_time=END),
        _relative("42/da_checks"),
        _relative("42/nothing_here"),
    ]
    with FakeGraph(token=TOKEN) as fg:
        resp = _batch(fg, items)
        plain = _batch(fg, items[:1], include_headers="false")
        recorded = fg.requests
        assert fg.total_requests == 2 and fg.batch_items == 4
    answers = resp.json()
    assert resp.status_code == 200 and [a["code"] for a in answers] == [200, 200, 400]
    stats = json.loads(answers[0]["body"])  # bodies are JSON text
    assert len(stats["data"]) == sc.PAGE_BUCKETS
    names = {h["name"] for h in answers[0]["headers"]}
    assert {"Content-Type", "X-App-Usage"} <= names
    assert json.loads(answers[2]["body"])["error"]["error_subcode"] == 33
    assert set(plain.json()[0]) == {"code", "body"}  # include_headers=false
    assert all(r.batched for r in recorded) and len(recorded) == 4


def test_batch_limits_and_null_items() -> None:
    item = _relative("42/da_checks")
    with FakeGraph({"42": Scenario.named("batch_null").with_(fail_first=1)}, token=TOKEN) as fg:
        too_many = _batch(fg, [item] * 51)
        answers = _batch(fg, [item, item, _relative("43/da_checks")]).json()
        direct = _get(fg, "/v25.0/42/da_checks")
    assert too_many.status_code == 400 and "Maximum batch size is 50" in too_many.text
    assert answers[0] is None and answers[1]["code"] == 200 and answers[2]["code"] == 200
    assert direct.status_code == 200  # only batch items time out

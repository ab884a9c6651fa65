"""Graph API client: scenarios over real sockets, retries, usage, normalisation, no secrets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import socket
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from monitor.config import settings_from_dict
from monitor.model.graph import GraphErrorKind, GraphSnapshot, Part
from monitor.sources.graph.client import (
    DATASET_QUALITY_FIELDS,
    ClientSettings,
    GraphClient,
    HttpPool,
)
from monitor.sources.graph.errors import GraphError, classify_error
from monitor.sources.graph.parse import (
    canonical_match_key,
    normalise_stats,
    parse_da_checks,
    parse_dataset_quality,
    parse_usage,
    stats_window,
)
from monitor.sources.graph.poll import poll_dataset, poll_many
from monitor.testing.fakegraph import FakeGraph, Scenario

T = TypeVar("T")
TOKEN = "EAAtesttokenSECRET1234567890abcdef"
NOW = 1790000000.0  # 2026-09-21T14:13:20Z
DS = "1234567890"
PARITY = {"Purchase", "InitiateCheckout", "AddToCart"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Sleeps:
    """An injected ``sleep`` that records and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


_SETTINGS = frozenset(f.name for f in dataclasses.fields(ClientSettings))


def _client(url: str, sleeps: Sleeps | None = None, **kw: Any) -> GraphClient:
    kw.setdefault("max_retries", 2)
    if "transport" in kw:  # a MockTransport handler answers GETs one by one
        kw.setdefault("batch_size", 0)
    settings = ClientSettings(
        graph_url=url, api_version="v25.0", **{k: kw.pop(k) for k in _SETTINGS & set(kw)}
    )
    token = kw.pop("token", TOKEN)
    return GraphClient(token, settings, sleep=sleeps or Sleeps(), rng=random.Random(7), **kw)


def poll(
    scenario: str | Scenario, *, sleeps: Sleeps | None = None, **kw: Any
) -> tuple[GraphSnapshot, FakeGraph]:
    with FakeGraph(default=scenario, token=TOKEN) as fg:

        async def go() -> GraphSnapshot:
            async with _client(fg.url, sleeps, **kw) as client:
                return await poll_dataset(client, DS, now=NOW)

        return run(go()), fg


# ------------------------------------------------------------------ scenarios


def test_healthy_snapshot_follows_paging_and_normalises() -> None:
    snap, fg = poll("healthy")
    assert snap.errors == [] and all(snap.ok(p) for p in Part)
    start, end = stats_window(NOW, 48)
    assert (snap.window_start, snap.window_end) == (start, end)
    # 48 hourly buckets over 2 pages (the repeated boundary bucket merged), 5 events each.
    hours = {b.hour for b in snap.event_counts}
    assert len(hours) == 48 and len(snap.event_counts) == 48 * 5
    assert all(h.tzinfo is UTC for h in hours)  # "+0000" parsed to aware UTC
    assert min(hours) == datetime.fromtimestamp(start, UTC)
    # Source split per parity event; both sides present.
    assert {s.event for s in snap.source_counts} == PARITY
    assert len(snap.source_counts) == 48 * 3
    assert all(s.browser > 0 and s.server > 0 and not s.other for s in snap.source_counts)
    # Match keys: Meta's names mapped, combos kept as one key.
    keys = {b.value for b in snap.match_key_counts}
    assert {"em", "ph", "em,ph", "client_ip_address", "client_user_agent", "zp", "fbp"} <= keys
    assert not keys & {"email", "phone", "ip_address", "user_agent", "zip"}
    assert len({b.hour for b in snap.match_key_counts}) == 48
    # Dataset Quality: aliases mapped, sparse PageView keeps unknowns as None.
    assert snap.quality is not None
    purchase, pageview = snap.quality_for("Purchase"), snap.quality_for("PageView")
    assert purchase is not None and pageview is not None
    assert purchase.composite_score == 8.1
    assert purchase.match_key_coverage["em"] == 96.4
    assert purchase.match_key_coverage["client_ip_address"] == 99.1
    assert purchase.dedupe_for("event_id") is not None
    assert (purchase.coverage_pct, purchase.coverage_goal_pct) == (81.2, 75.0)
    assert purchase.upload_frequency == "real_time" and purchase.acr_pct == 21.4
    assert pageview.composite_score == 7.2
    assert pageview.coverage_pct is None and pageview.dedupe is None and pageview.acr_pct is None
    assert pageview.match_key_coverage == {}
    # da_checks and token.
    assert snap.da_checks is not None and not any(c.failed for c in snap.da_checks)
    assert snap.token is not None and snap.token.valid and snap.token.expires_at is None
    assert snap.token.type == "SYSTEM_USER" and "ads_read" in snap.token.scopes
    # 2 pages x (event + 3 event_source + match_keys) + dataset_quality + da_checks + token
    assert snap.calls == 13 == len(fg.requests)
    assert snap.usage is not None and snap.usage.app_pct == 7
    dq = [r for r in fg.requests if r.endpoint == "dataset_quality"]
    assert dq[0].params["fields"] == DATASET_QUALITY_FIELDS
    assert "dedupe_key_feedback" in DATASET_QUALITY_FIELDS
    assert "dedup_key_feedback" not in DATASET_QUALITY_FIELDS
    assert {r.auth for r in fg.requests} == {"header"}


def test_server_missing() -> None:
    snap, _ = poll("server_missing")
    purchase = [s for s in snap.source_counts if s.event == "Purchase"]
    assert len(purchase) == 48
    assert all(s.server == 0 and s.browser > 0 for s in purchase)
    others = [s for s in snap.source_counts if s.event != "Purchase"]
    assert all(s.server > 0 for s in others)
    q = snap.quality_for("Purchase")
    assert q is not None and q.coverage_pct == 0.0 and q.coverage_goal_pct == 75.0


def test_emq_low() -> None:
    snap, _ = poll("emq_low")
    q = snap.quality_for("Purchase")
    assert q is not None and q.composite_score == 3.1
    assert q.match_key_coverage["em"] == 8.2 and "external_id" not in q.match_key_coverage
    assert [d.name for d in q.diagnostics] == ["Server sending mismatched IP addresses"]
    assert q.diagnostics[0].affected_event_count == 410
    purchase = [b for b in snap.match_key_counts if b.event == "Purchase"]
    totals = {k: sum(b.count for b in purchase if b.value == k) for k in ("em", "ph", "fbp")}
    assert totals["ph"] == 0 and totals["em"] < totals["fbp"] / 4


def test_coverage_low() -> None:
    snap, _ = poll("coverage_low")
    coverage = {q.event_name: q.coverage_pct for q in snap.quality or []}
    assert coverage == {
        "Purchase": 33.3,
        "InitiateCheckout": 33.3,
        "AddToCart": 33.3,
        "PageView": None,
    }  # PageView: block absent, unknown
    assert all(q.coverage_goal_pct == 75.0 for q in snap.quality or [] if q.coverage_pct)


def test_dedup_broken_read_from_misspelt_block() -> None:
    snap, _ = poll("dedup_broken")
    q = snap.quality_for("Purchase")
    assert q is not None and q.dedupe is not None
    fb = q.dedupe_for("event_id")
    assert fb is not None and (fb.browser_pct, fb.server_pct, fb.overall_pct) == (100, 12.0, 9.5)


def test_slow_freshness_keeps_open_vocabulary() -> None:
    snap, _ = poll("slow_freshness")
    freq = {q.event_name: q.upload_frequency for q in snap.quality or []}
    assert freq == {
        "Purchase": "daily",
        "InitiateCheckout": "weekly",  # "Weekly" lower-cased
        "AddToCart": "weekly",
        "PageView": "real_time",
    }


def test_da_checks_failed_read_with_metas_result_words() -> None:
    snap, _ = poll("da_checks_failed")
    assert snap.da_checks is not None
    results = {c.key: c.result for c in snap.da_checks}
    assert results == {
        "pixel_missing_dpa_event": "passed",
        "pixel_missing_param_in_events": "unavailable",  # not a failure
        "pixel_decline": "failed",
    }
    decline = next(c for c in snap.da_checks if c.key == "pixel_decline")
    assert decline.failed and decline.action_uri is not None
    assert decline.title == "Decline in number of pixel events"
    # Upper-case words (a third-party fixture) are still folded.
    (folded,) = parse_da_checks([{"key": "x", "result": "FAIL"}])
    assert folded.failed


def test_token_invalid_is_never_retried() -> None:
    sleeps = Sleeps()
    snap, fg = poll("token_invalid", sleeps=sleeps, max_retries=4)
    assert snap.token is not None and not snap.token.valid
    assert (snap.token.code, snap.token.subcode) == (190, 463)
    assert snap.token.error is not None and "Session has expired" in snap.token.error
    assert snap.ok(Part.TOKEN)  # the probe answered: the token is invalid
    failed = {e.part for e in snap.errors}
    assert failed == {
        Part.STATS_EVENT,
        Part.STATS_EVENT_SOURCE,
        Part.STATS_MATCH_KEYS,
        Part.DATASET_QUALITY,
        Part.DA_CHECKS,
    }
    assert all(e.kind is GraphErrorKind.TOKEN_INVALID and e.attempts == 1 for e in snap.errors)
    stats_err = snap.error(Part.STATS_EVENT)
    assert stats_err is not None and stats_err.http_status == 500  # classified by body
    assert snap.token_invalid and sleeps.calls == []
    # event, dataset-wide event_source (events unknown), match_keys, dq, da_checks, token
    assert len(fg.requests) == snap.calls == 6


def test_190_on_a_single_call_means_one_request() -> None:
    with FakeGraph(default="token_invalid") as fg:

        async def go() -> GraphError:
            async with _client(fg.url, max_retries=4) as client:
                with pytest.raises(GraphError) as info:
                    await client.get(f"{DS}/stats", {"aggregation": "event"})
                return info.value

        err = run(go())
        assert len(fg.requests) == 1
    # /stats answers the decrypt failure (HTTP 500, error_user_msg): classified by body.
    assert err.kind is GraphErrorKind.TOKEN_INVALID and (err.code, err.http_status) == (190, 500)
    assert "could not be decrypted" in err.message


def test_rate_limited_honours_estimated_time_to_regain_access() -> None:
    sleeps = Sleeps()
    sc = Scenario.named("rate_limited").with_(regain_minutes=2)
    snap, fg = poll(sc, sleeps=sleeps, max_retries=3, backoff_max=300.0)
    rate_limited = [e for e in snap.errors if e.kind is GraphErrorKind.RATE_LIMITED]
    # Every part but the token probe (code 4, no BUC header) waits 2 minutes = 120 s.
    assert {e.part for e in rate_limited} == set(Part)
    assert all(e.attempts == 4 for e in rate_limited)
    assert snap.rate_limited
    assert sleeps.calls.count(120.0) == 5 * 3  # 5 dataset reads x 3 retries
    # X-App-Usage at 96 %: the client also slows down before each later call.
    assert any(0 < s < 120 for s in sleeps.calls)
    codes = {e.part: e.code for e in snap.errors}
    assert codes[Part.STATS_EVENT] == 80004 and codes[Part.DATASET_QUALITY] == 17
    assert len(fg.requests) == snap.calls == 6 * 4


def test_regain_access_is_capped_at_backoff_max() -> None:
    sleeps = Sleeps()
    sc = Scenario.named("rate_limited").with_(regain_minutes=30)
    poll(sc, sleeps=sleeps, max_retries=1, backoff_max=45.0)
    assert 45.0 in sleeps.calls and max(sleeps.calls) == 45.0


def test_server_error_retried_then_transient() -> None:
    sleeps = Sleeps()
    snap, fg = poll("server_error", sleeps=sleeps, max_retries=3, backoff_base=1.0)
    assert {e.part for e in snap.errors} == set(Part)
    assert all(e.kind is GraphErrorKind.TRANSIENT and e.attempts == 4 for e in snap.errors)
    stats_err = snap.error(Part.STATS_EVENT)
    assert stats_err is not None and stats_err.http_status == 503 and stats_err.code is None
    dq_err = snap.error(Part.DATASET_QUALITY)
    assert dq_err is not None and dq_err.code == 2  # with is_transient: true
    assert len(fg.requests) == 6 * 4
    # Full jitter: every delay within [0, base * 2**attempt].
    assert len(sleeps.calls) == 6 * 3 and all(0 <= s <= 4.0 for s in sleeps.calls)


def test_malformed_json_is_transient() -> None:
    snap, _ = poll("malformed_json", max_retries=1)
    assert {e.part for e in snap.errors} == set(Part)
    assert all(e.kind is GraphErrorKind.TRANSIENT for e in snap.errors)
    assert all("malformed JSON" in e.message_scrubbed for e in snap.errors)


def test_timeout_is_transient() -> None:
    snap, _ = poll(Scenario.named("slow").with_(latency=1.5), max_retries=1, timeout=0.2)
    assert {e.part for e in snap.errors} == set(Part)
    assert all(e.kind is GraphErrorKind.TRANSIENT for e in snap.errors)
    assert all("timed out" in e.message_scrubbed for e in snap.errors)


def test_slow_but_within_timeout_is_fine() -> None:
    snap, _ = poll(Scenario.named("slow").with_(latency=0.05))
    assert snap.errors == []


def test_flaky_recovers() -> None:
    sleeps = Sleeps()
    snap, fg = poll(Scenario.named("flaky").with_(fail_first=3), sleeps=sleeps, max_retries=4)
    assert snap.errors == []
    assert snap.calls > 13 and len(sleeps.calls) >= 3
    assert sum(r.status == 500 for r in fg.requests) >= 3


def test_connection_refused_is_transient() -> None:
    port = _closed_port()
    sleeps = Sleeps()

    async def go() -> GraphSnapshot:
        async with _client(f"http://127.0.0.1:{port}", sleeps, max_retries=1) as client:
            return await poll_dataset(client, DS, now=NOW)

    snap = run(go())
    assert {e.part for e in snap.errors} == set(Part)
    assert all(e.kind is GraphErrorKind.TRANSIENT for e in snap.errors)
    assert all("connection failed" in e.message_scrubbed for e in snap.errors)


def test_wrong_token_is_token_invalid() -> None:
    with FakeGraph(token="the-right-one") as fg:

        async def go() -> GraphSnapshot:
            async with _client(fg.url, max_retries=3) as client:
                return await poll_dataset(client, DS, now=NOW)

        snap = run(go())
        assert len(fg.requests) == 6
    assert snap.token_invalid and snap.token is not None and not snap.token.valid


# ------------------------------------------------- usage, retries (MockTransport)


def _mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers=headers or {})


def test_high_usage_slows_down_before_the_next_call() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        pct = 90 if len(seen) == 1 else 10
        usage = {"X-App-Usage": orjson.dumps({"call_count": pct, "total_time": 1}).decode()}
        return _json(200, {"data": []}, usage)

    sleeps = Sleeps()

    async def go() -> None:
        async with _client("https://graph.test", sleeps, transport=_mock(handler)) as client:
            await client.get("x", {})
            assert client.usage.app_pct == 90
            assert client.usage_delay() == pytest.approx(6.0)  # (90-75)/25 x 10 s
            await client.get("x", {})
            await client.get("x", {})
            assert client.calls == 3

    run(go())
    assert sleeps.calls == [pytest.approx(6.0)]  # only before the call after the 90 %


def test_usage_headers_parsed() -> None:
    headers = {
        "x-app-usage": '{"call_count": 28, "total_cputime": 25, "total_time": 25}',
        "x-business-use-case-usage": orjson.dumps(
            {
                "1": [
                    {
                        "type": "ads_management",
                        "call_count": 95,
                        "total_cputime": 20,
                        "total_time": 20,
                        "estimated_time_to_regain_access": 3,
                    }
                ]
            }
        ).decode(),
        "x-ad-account-usage": '{"acc_id_util_pct": 9.5, "reset_time_duration": 0}',
    }
    usage = parse_usage(headers)
    assert usage is not None
    assert (usage.app_pct, usage.business_pct, usage.ad_account_pct) == (28, 95, 9.5)
    assert usage.regain_access_s == 180.0 and usage.max_pct == 95
    assert parse_usage({}) is None
    assert parse_usage({"x-app-usage": "not json"}) is None


@pytest.mark.parametrize(
    ("code", "subcode", "status", "kind", "retryable"),
    [
        (190, 463, 500, GraphErrorKind.TOKEN_INVALID, False),
        (102, None, 400, GraphErrorKind.TOKEN_INVALID, False),
        (4, None, 400, GraphErrorKind.RATE_LIMITED, True),
        (17, 2446079, 500, GraphErrorKind.RATE_LIMITED, True),
        (32, None, 400, GraphErrorKind.RATE_LIMITED, True),
        (341, None, 400, GraphErrorKind.RATE_LIMITED, True),
        (613, 1487742, 400, GraphErrorKind.RATE_LIMITED, True),
        (80004, None, 400, GraphErrorKind.RATE_LIMITED, True),
        (80014, None, 400, GraphErrorKind.RATE_LIMITED, True),
        (10, None, 400, GraphErrorKind.PERMISSION, False),
        (200, None, 403, GraphErrorKind.PERMISSION, False),
        (299, None, 400, GraphErrorKind.PERMISSION, False),
        (3, None, 400, GraphErrorKind.PERMISSION, False),
        (2044055, None, 400, GraphErrorKind.NOT_FOUND, False),
        (100, 33, 400, GraphErrorKind.NOT_FOUND, False),
        (100, 2804003, 400, GraphErrorKind.INVALID, False),
        (1, None, 500, GraphErrorKind.TRANSIENT, True),
        (2, None, 500, GraphErrorKind.TRANSIENT, True),
        (None, None, 502, GraphErrorKind.TRANSIENT, True),
        (None, None, 429, GraphErrorKind.RATE_LIMITED, True),
        (None, None, 404, GraphErrorKind.NOT_FOUND, False),
        (99999, None, 400, GraphErrorKind.UNKNOWN, False),
    ],
)
def test_classification(
    code: int | None, subcode: int | None, status: int, kind: GraphErrorKind, retryable: bool
) -> None:
    assert classify_error(code, subcode, status) is kind
    assert GraphError("x", kind=kind, code=code).retryable is retryable


@pytest.mark.parametrize(
    ("error", "requests"),
    [
        *(({"code": code}, 1) for code in (100, 190, 10, 200, 250)),  # never retried ...
        *(({"code": code, "is_transient": True}, 5) for code in (100, 190)),  # ... unless
        ({"code": 2, "is_transient": False}, 1),  # Meta's false overrides a transient code
        ({"code": 1, "is_transient": False}, 1),
        ({"code": 2}, 5),
        ({"code": 368}, 5),  # a temporary block: wait and retry (docs/contracts.md §9)
        ({"message": "(#80004) There have been too many calls to this ad-account."}, 5),
        ({"message": "(#100) Invalid parameter"}, 1),  # the prefix stands in for the code
        ({"message": "(#80004) too many calls", "code": 100}, 1),  # a present code wins
    ],
)
def test_retries_follow_the_whole_envelope(error: dict[str, Any], requests: int) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(500, {"error": {"message": "no", **error}})

    async def go() -> GraphError:
        async with _client("https://graph.test", transport=_mock(handler), max_retries=4) as c:
            with pytest.raises(GraphError) as info:
                await c.get("x", {})
            return info.value

    err = run(go())
    assert len(seen) == requests
    prefix = "80004" if "80004" in error.get("message", "") else "100"
    assert err.code == error.get("code", int(prefix))


def test_paging_next_is_rebased_and_stripped_of_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "after" not in request.url.params:
            nxt = f"https://graph.facebook.com/v25.0/{DS}/stats?after=C2&access_token={TOKEN}"
            return _json(200, {"data": [{"n": 1}], "paging": {"next": nxt}})
        return _json(200, {"data": [{"n": 2}], "paging": {"cursors": {}}})

    async def go() -> list[dict[str, Any]]:
        async with _client("http://proxy.test/fb", transport=_mock(handler)) as client:
            return await client.get_all(f"{DS}/stats", {"aggregation": "event"})

    assert run(go()) == [{"n": 1}, {"n": 2}]
    second = seen[1].url
    assert (second.host, second.path) == ("proxy.test", f"/fb/v25.0/{DS}/stats")
    assert "access_token" not in second.params and second.params["after"] == "C2"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in seen)


def test_paging_that_never_ends_is_an_error_not_a_truncation() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("after", "0")) + 1
        return _json(
            200, {"data": [{}], "paging": {"next": f"https://graph.test/v25.0/x?after={n}"}}
        )

    async def go() -> None:
        async with _client("https://graph.test", transport=_mock(handler)) as client:
            with pytest.raises(GraphError, match="did not end after 3 pages"):
                await client.get_all("x", {}, max_pages=3)

    run(go())


# ------------------------------------------------------------- normalisation


def _bucket(start_time: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"aggregation": "x", "start_time": start_time, "data": items}


def test_stats_offsets_duplicates_aliases_and_unknown_sources() -> None:
    pages = [
        _bucket(
            "2026-01-01T10:00:00+0100",
            [
                {"value": "browser", "count": 41},
                {"value": "SERVER", "count": 44},
                {"value": "OFFLINE", "count": 3},
            ],
        ),
        # Same instant as above written in UTC: a boundary repeat, merged not summed.
        _bucket(
            "2026-01-01T09:00:00+0000",
            [{"value": "BROWSER", "count": 40}, {"value": "SERVER", "count": 44}],
        ),
        _bucket("garbage", [{"value": "BROWSER", "count": 1}]),
        _bucket(
            "2026-01-01T10:00:00+0000",
            [{"value": "SERVER", "count": "7"}, {"value": "BROWSER", "count": None}],
        ),
    ]
    buckets = normalise_stats("event_source", pages, event="Purchase")
    hour9 = datetime(2026, 1, 1, 9, tzinfo=UTC)
    by_key = {(b.hour, b.value): b.count for b in buckets}
    assert by_key[(hour9, "BROWSER")] == 41 and by_key[(hour9, "SERVER")] == 44
    assert by_key[(hour9, "OFFLINE")] == 3
    assert by_key[(datetime(2026, 1, 1, 10, tzinfo=UTC), "SERVER")] == 7
    assert len(buckets) == 4 and all(b.event == "Purchase" for b in buckets)

    from monitor.sources.graph.parse import source_counts

    first = source_counts(buckets)[0]
    assert (first.browser, first.server, first.other) == (41, 44, {"OFFLINE": 3})


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("email", "em"),
        ("EMAIL", "em"),
        ("phone", "ph"),
        ("zip", "zp"),
        ("ip_address", "client_ip_address"),
        ("client_ip", "client_ip_address"),
        ("user_agent", "client_user_agent"),
        ("fn", "fn"),
        ("country", "country"),
        ("external_id", "external_id"),
        ("fbp", "fbp"),
        ("fbc", "fbc"),
        ("fr_cookie", "fr_cookie"),  # unknown names kept
        ("em,ph", "em,ph"),
        ("phone,email", "em,ph"),  # combos: members mapped and sorted
        ("email,em", "em"),
    ],
)
def test_match_key_aliases(raw: str, canonical: str) -> None:
    assert canonical_match_key(raw) == canonical


def test_match_keys_named_twice_in_one_bucket_keep_the_larger_count() -> None:
    page = [
        _bucket(
            "2026-01-01T10:00:00+0000",
            [
                {"event": "Purchase", "value": "email", "count": 5},
                {"event": "Purchase", "value": "em", "count": 7},
            ],
        )
    ]
    (bucket,) = normalise_stats("match_keys", page)
    assert (bucket.event, bucket.value, bucket.count) == ("Purchase", "em", 7)


def test_dataset_quality_tolerates_absence_and_unknowns() -> None:
    body = {
        "data": [
            {
                "web": [
                    {
                        "event_name": "Lead",
                        "event_match_quality": {
                            "composite_score": "5.3",
                            "match_key_feedback": [
                                {"identifier": "phone", "coverage": {"percentage": 40}},
                                {"identifier": "madid", "coverage": {"percentage": 2}},
                                {"identifier": "email"},  # no number: unknown, not 0
                            ],
                        },
                        "dedupe_key_feedback": [],
                        "data_freshness": {"upload_frequency": "Real Time"},
                    },
                    {"event_name": "Purchase", "acr": {"percentage": None}},
                    {"no_name": True},
                ]
            }
        ]
    }
    lead, purchase = parse_dataset_quality(body)
    assert lead.composite_score == 5.3
    assert lead.match_key_coverage == {"ph": 40.0, "madid": 2.0}
    assert lead.dedupe == [] and lead.upload_frequency == "real_time"
    assert lead.coverage_pct is None and lead.acr_pct is None
    assert purchase.composite_score is None and purchase.acr_pct is None
    assert purchase.dedupe is None and purchase.upload_frequency is None


def test_debug_token_shapes() -> None:
    answers = iter(
        [
            {
                "data": {
                    "is_valid": True,
                    "expires_at": 1790600000,
                    "scopes": ["ads_read"],
                    "type": "USER",
                    "app_id": 1234,
                }
            },
            {
                "data": {
                    "is_valid": False,
                    "expires_at": 0,
                    "error": {"code": 190, "subcode": 460, "message": "Password changed"},
                }
            },
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["input_token"] == TOKEN
        return _json(200, next(answers))

    async def go() -> tuple[Any, Any, Any]:
        async with _client("https://graph.test", transport=_mock(handler)) as client:
            first = await client.debug_token(NOW)
            memo = await client.debug_token(NOW)  # memoised per `now`: no second request
            second = await client.debug_token(NOW + 1)
            return first, memo, second

    first, memo, second = run(go())
    assert first.valid and first.expires_at == 1790600000 and first.app_id == "1234"
    assert first.expires_within(7 * 86400) and not first.expires_within(86400)
    assert memo is first
    assert not second.valid and second.expires_at is None
    assert (second.code, second.subcode, second.error) == (190, 460, "Password changed")


# ---------------------------------------------------------------- no secrets


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_token_never_leaks(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    leaks: list[str] = []  # everything a user, a log or the store could ever see

    def remember(snap: GraphSnapshot) -> None:
        leaks.extend([repr(snap), str(dataclasses.asdict(snap))])
        leaks.extend(e.message_scrubbed for e in snap.errors)

    async def every_failure(url: str, timeout: float = 5.0) -> None:
        async with _client(url, max_retries=2, timeout=timeout) as client:
            remember(await poll_dataset(client, DS, now=NOW))
            for call in (
                lambda: client.get(f"{DS}/stats", {"aggregation": "event"}),
                lambda: client.get_all(f"{DS}/da_checks", {}),
                lambda: client.dataset_quality(DS),
                lambda: client.debug_token(NOW + 1),
            ):
                try:
                    await call()
                except GraphError as err:
                    leaks.extend([str(err), repr(err), repr(err.args), err.message])
            leaks.append(repr(client))

    rate_limited = Scenario.named("rate_limited").with_(regain_minutes=0.01)
    for scenario in ("token_invalid", rate_limited, "server_error", "malformed_json"):
        with FakeGraph(default=scenario, token=TOKEN) as fg:
            run(every_failure(fg.url))
    with FakeGraph(default=Scenario.named("slow").with_(latency=1.0)) as fg:
        run(every_failure(fg.url, timeout=0.1))
    run(every_failure(f"http://127.0.0.1:{_closed_port()}"))

    # Meta echoing the token, an httpx error whose message holds the URL, and a
    # paging.next link carrying the token: all must come out redacted.
    def echo(request: httpx.Request) -> httpx.Response:
        if "debug_token" in request.url.path:
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)
        if "after" in request.url.params:
            msg = f"Invalid OAuth access token {TOKEN}"
            return _json(400, {"error": {"code": 190, "message": msg, "fbtrace_id": TOKEN}})
        nxt = f"https://graph.facebook.com/v25.0/x?after=2&access_token={TOKEN}"
        return _json(200, {"data": [], "paging": {"next": nxt}})

    async def mock_failures() -> None:
        async with _client("https://graph.test", transport=_mock(echo), max_retries=1) as client:
            remember(await poll_dataset(client, DS, now=NOW))

    run(mock_failures())

    # poll_many over the same failure modes, token from the environment.
    settings = settings_from_dict(
        {"meta": {"graph_url": f"http://127.0.0.1:{_closed_port()}"}, "datasets": [{"id": DS}]}
    )
    snaps = run(
        poll_many(
            settings, now=NOW, env={"META_ACCESS_TOKEN": TOKEN}, max_retries=1, sleep=Sleeps()
        )
    )
    remember(snaps[DS])

    captured = capsys.readouterr()
    leaks.extend([captured.out, captured.err, caplog.text])
    leaks.extend(r.getMessage() for r in caplog.records)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log
    assert any("[redacted]" in r.getMessage() for r in caplog.records)  # ...with input_token
    assert len(leaks) > 50
    assert [text for text in leaks if TOKEN in text] == []
    assert [text for text in leaks if "SECRET1234567890" in text] == []


# ------------------------------------------------------------------ poll_many


@pytest.mark.parametrize("bound", [4, 20])  # 20: several connection pools (HttpPool)
def test_poll_many_tokens_scenarios_and_concurrency_bound(bound: int) -> None:
    kinds = ["healthy", "server_missing", "emq_low", "flaky", "token_invalid", "rate_limited"]
    datasets: list[dict[str, Any]] = []
    scenarios: dict[str, str] = {}
    for i in range(30):
        ds: dict[str, Any] = {"id": f"10000{i:02d}"}
        if i % 10 == 3:
            ds["access_token_env"] = "META_TOKEN_UNSET"  # no fallback: absent
        elif i % 10 == 7:
            ds["access_token_env"] = "META_TOKEN_SHOP"  # per-dataset override
        scenarios[ds["id"]] = kinds[i % len(kinds)]
        if i % 10 == 7:
            # The fake answers debug_token for a shared token with one of its datasets'
            # scenarios: keep the token probe of the shop token healthy.
            scenarios[ds["id"]] = kinds[(i // 10) % 3]
        datasets.append(ds)
    overridden = {d["id"] for d in datasets if d.get("access_token_env") == "META_TOKEN_SHOP"}
    env = {"META_ACCESS_TOKEN": TOKEN, "META_TOKEN_SHOP": "EAAshoptoken0000000000000000"}
    with FakeGraph(
        scenarios,
        token=TOKEN,
        latency=0.03,
        tokens={d: env["META_TOKEN_SHOP"] for d in overridden},
    ) as fg:
        settings = settings_from_dict({"meta": {"graph_url": fg.url}, "datasets": datasets})
        snaps = run(
            poll_many(settings, now=NOW, concurrency=bound, env=env, sleep=Sleeps(), max_retries=2)
        )
        max_in_flight = fg.max_in_flight
        requests = fg.requests
    assert list(snaps) == [
        d["id"] for d in datasets if d.get("access_token_env") != "META_TOKEN_UNSET"
    ]
    assert len(snaps) == 27
    assert min(bound, 4) <= max_in_flight <= bound  # concurrent, never above the bound
    assert sum(s.calls for s in snaps.values()) == len(requests)
    for ds_id, snap in snaps.items():
        kind = scenarios[ds_id]
        if kind in ("healthy", "server_missing", "emq_low", "flaky"):
            # Overridden datasets would get 190 with the shared token.
            assert snap.errors == [], (ds_id, kind, snap.errors)
        elif kind == "token_invalid":
            assert snap.token_invalid
        else:
            assert snap.rate_limited
    assert not {r.dataset_id for r in requests} & {d["id"] for d in datasets if d["id"][-1] == "3"}


def test_poll_many_without_meta_or_tokens_makes_no_calls() -> None:
    no_meta = settings_from_dict({"datasets": [{"id": "1"}]})
    assert run(poll_many(no_meta, now=NOW, env={"META_ACCESS_TOKEN": TOKEN})) == {}
    with_meta = settings_from_dict(
        {"meta": {"graph_url": "http://127.0.0.1:9"}, "datasets": [{"id": "1"}]}
    )
    assert run(poll_many(with_meta, now=NOW, env={})) == {}


def test_http_pool_splits_large_bounds_into_small_pools() -> None:
    async def go() -> tuple[int, int, int]:
        big, small = HttpPool(size=64), HttpPool(size=64, transport=_mock(lambda r: _json(200, {})))
        one = HttpPool(size=5)
        try:
            return big.shards, small.shards, one.shards
        finally:
            for pool in (big, small, one):
                await pool.aclose()

    assert run(go()) == (8, 1, 1)

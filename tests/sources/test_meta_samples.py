"""Every real Meta answer of ``tests/data/meta/`` through the path a live answer takes.

Graph reads go through ``GraphClient`` over an ``httpx.MockTransport`` that answers with
the sample's status, headers and body (batch samples through the batch path); answers
to ``POST /{dataset}/events`` go into a v1 delivery record, through the log reader and
the ``delivery`` check. ``SOURCES.md`` says where each sample comes from. A sample whose
source does not state the HTTP status is served with 200 for a success and 400 for an
error envelope (the status every live error sample shows).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest

from checks.delivery import (
    DELIVERY_ERRORS,
    META_WARNING,
    RATE_LIMITED,
    TOKEN_INVALID,
    DeliveryCheck,
)
from monitor.model.findings import CheckResult
from monitor.model.graph import GraphErrorKind
from monitor.model.observations import ReadStats
from monitor.sources.graph.client import ClientSettings, GraphClient
from monitor.sources.graph.errors import GraphError
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries
from tests.support.checkutil import context

T = TypeVar("T")
DATA = Path(__file__).resolve().parents[1] / "data" / "meta"
TOKEN = "EAAsamplestoken000000000000000000"
DS = "1234567890"
COVERED: set[str] = set()


def sample(name: str) -> dict[str, Any]:
    COVERED.add(name)
    return json.loads((DATA / name).read_text())


def served(s: dict[str, Any]) -> httpx.Response:
    body = s["body"]
    status = s["status"]
    if status is None:
        status = 400 if isinstance(body, dict) and "error" in body else 200
    content = b"" if body is None else orjson.dumps(body if body is not None else {})
    return httpx.Response(status, headers=s["headers"], content=content)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _no_sleep(_: float) -> None:
    return None


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> GraphClient:
    settings = ClientSettings(graph_url="https://graph.test", **kw)
    return GraphClient(TOKEN, settings, transport=httpx.MockTransport(handler), sleep=_no_sleep)


def answering(name: str, **kw: Any) -> GraphClient:
    s = sample(name)
    return client(lambda _: served(s), batch_size=0, **kw)


# ----------------------------------------------------------------------- Graph reads


def ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


@pytest.mark.parametrize(
    ("name", "utc_hour", "counts"),
    [
        ("stats_event_plus0100.json", "2026-09-17T15:00:00", {"PageView": 236, "Purchase": 10}),
        ("stats_event_plus0800.json", "2026-05-19T23:00:00", {"AddToCart": 1, "PageView": 24}),
    ],
)
def test_stats_hours_with_local_offsets(name: str, utc_hour: str, counts: dict[str, int]) -> None:
    start = ts(utc_hour + "+0000")

    async def go() -> Any:
        async with answering(name) as c:
            return await c.stats(DS, "event", start - 3600, start + 3600)

    buckets = run(go())
    assert {b.hour for b in buckets} == {datetime.fromtimestamp(start, UTC)}
    got = {b.value: b.count for b in buckets}
    assert counts.items() <= got.items()


def test_empty_stats() -> None:
    async def go() -> Any:
        async with answering("stats_empty_doc.json") as c:
            return await c.stats(DS, "event", 0, 3600)

    assert run(go()) == []


def quality(name: str) -> Any:
    async def go() -> Any:
        async with answering(name) as c:
            return await c.dataset_quality(DS)

    return {q.event_name: q for q in run(go())}


def test_dataset_quality_samples() -> None:
    emq = quality("dataset_quality_emq.json")
    assert emq["pLTVPurchase"].composite_score == 6.2
    assert emq["pLTVPurchase"].match_key_coverage == {"client_user_agent": 100, "external_id": 100}
    assert emq["CompleteRegistration"].match_key_coverage["client_ip_address"] == 99.9
    assert emq["CompleteRegistration"].coverage_pct is None  # not asked: unknown
    (diag,) = quality("dataset_quality_emq_diagnostics.json").values()
    assert [d.name for d in diag.diagnostics][1] == "Server sending mismatched IP addresses"
    assert diag.diagnostics[0].affected_event_count == 18930 and diag.composite_score is None
    cov = quality("dataset_quality_event_coverage.json")["B2B Purchase"]
    assert (cov.coverage_pct, cov.coverage_goal_pct) == (34.1, 75)
    dedupe = quality("dedupe_key_feedback.json")
    (entry,) = dedupe.values()
    ev = entry.dedupe_for("event_id")
    assert ev is not None and (ev.browser_pct, ev.server_pct, ev.overall_pct) == (100, 100, 14.8)
    assert entry.dedupe_for("fbp") is not None
    fresh = quality("dataset_quality_data_freshness.json")
    assert {n: q.upload_frequency for n, q in fresh.items()} == {
        "ViewContent": "real_time",
        "Lead": "hourly",
    }
    acr = quality("dataset_quality_acr.json")
    assert (acr["Search"].acr_pct, acr["PageView"].acr_pct) == (37.9, 45.5)


def test_da_checks_sample() -> None:
    async def go() -> Any:
        async with answering("da_checks.json") as c:
            return await c.da_checks(DS)

    checks = {c.key: c for c in run(go())}
    assert {k: c.result for k, c in checks.items()} == {
        "pixel_missing_dpa_event": "failed",
        "pixel_missing_param_in_events": "passed",
        "pixel_decline": "passed",
    }
    assert checks["pixel_decline"].action_uri is not None


def test_debug_token_sample() -> None:
    async def go() -> Any:
        async with answering("debug_token.json") as c:
            return await c.debug_token(1347235328.0)

    info = run(go())
    assert info.valid and info.app_id == "138483919580948" and info.expires_at == 1352419328
    assert info.type == "USER" and "email" in info.scopes


def test_usage_headers_sample() -> None:
    s = sample("usage_headers_doc.json")

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=s["headers"], content=b'{"data": []}')

    async def go() -> Any:
        async with client(handler, batch_size=0) as c:
            await c.get("x", {})
            return c.usage

    usage = run(go())
    assert (usage.app_pct, usage.business_pct, usage.regain_access_s) == (28, 97, 0)


# (sample, kind, code, retried): the Graph side classifies the whole envelope.
GRAPH_ERRORS = [
    ("error_17_user_request_limit_events.json", GraphErrorKind.RATE_LIMITED, 17, True),
    ("error_21009_dataset_not_ready.json", GraphErrorKind.UNKNOWN, 21009, False),
    ("error_2804030_coded_exception.json", GraphErrorKind.INVALID, 2804030, False),
    ("error_2_transient.json", GraphErrorKind.TRANSIENT, 2, True),
    ("error_80004_ad_account.json", GraphErrorKind.RATE_LIMITED, 80004, True),
    ("error_graphmethod_100_33.json", GraphErrorKind.NOT_FOUND, 100, False),
    ("error_graphmethod_100_33_events.json", GraphErrorKind.NOT_FOUND, 100, False),
    ("error_graphmethod_100_33_value_rules_doc.json", GraphErrorKind.NOT_FOUND, 100, False),
    ("error_oauth_190_463.json", GraphErrorKind.TOKEN_INVALID, 190, False),
    ("error_oauth_190_463_fbtrace.json", GraphErrorKind.TOKEN_INVALID, 190, False),
    ("error_oauth_190_decrypt_events.json", GraphErrorKind.TOKEN_INVALID, 190, False),
    ("error_user_msg_2804003.json", GraphErrorKind.INVALID, 100, False),
    ("error_user_msg_2804009.json", GraphErrorKind.INVALID, 100, False),
    ("error_user_msg_2804050_localized_da.json", GraphErrorKind.INVALID, 100, False),
    ("token_parse_190.json", GraphErrorKind.TOKEN_INVALID, 190, False),
]


@pytest.mark.parametrize(("name", "kind", "code", "retried"), GRAPH_ERRORS)
def test_error_samples_on_the_graph_side(
    name: str, kind: GraphErrorKind, code: int, retried: bool
) -> None:
    async def go() -> GraphError:
        async with answering(name, max_retries=1) as c:
            with pytest.raises(GraphError) as info:
                await c.get("x", {})
            return info.value

    err = run(go())
    assert (err.kind, err.code, err.attempts == 2) == (kind, code, retried)
    real = sample(name)["body"]["error"]
    if "error_user_msg" in real:  # Meta's own explanation travels with the error
        assert real["error_user_msg"][:40] in err.message or len(err.message) >= 299
    assert TOKEN not in err.message


# ------------------------------------------------------------------------ batch answers


def batch_outcomes(name: str) -> list[Any]:
    s = sample(name)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        return served(s)

    async def go() -> list[Any]:
        async with client(handler, max_retries=0) as c:
            reads = (c.get(f"item{i}", {}) for i in range(len(s["body"])))
            return list(await asyncio.gather(*reads, return_exceptions=True))

    return run(go())


def test_batch_mixed_sample_keeps_each_items_status_and_error() -> None:
    got = batch_outcomes("batch_mixed.json")
    assert got[0]["name"] == "Foo McBar" and got[4] == {"id": "123_1337"}
    assert got[1]["paging"]["next"] == "next_url"
    assert isinstance(got[2], GraphError) and (got[2].code, got[2].http_status) == (803, 404)
    assert got[2].kind is GraphErrorKind.NOT_FOUND
    assert isinstance(got[3], GraphError) and got[3].kind is GraphErrorKind.TOKEN_INVALID
    # A body that is JSON but not an object ("true"): not a usable answer, worth a retry.
    assert isinstance(got[5], GraphError) and got[5].retryable


def test_batch_null_item_and_elided_body_samples() -> None:
    null, elided = batch_outcomes("batch_timeout_null_item_doc.json")
    assert isinstance(null, GraphError) and "null item" in null.message and null.retryable
    assert isinstance(elided, GraphError) and elided.kind is GraphErrorKind.TRANSIENT


def test_batch_error_and_headerless_samples() -> None:
    (denied,) = batch_outcomes("batch_error_403_doc.json")
    assert isinstance(denied, GraphError) and denied.http_status == 403
    assert denied.kind is GraphErrorKind.PERMISSION and not denied.retryable
    simple = batch_outcomes("batch_simple_doc.json")  # include_headers=false: no headers
    assert [s["id"] for s in simple] == ["PAGE-A-ID", "PAGE-B-ID"]


# ---------------------------------------------------- answers to /events, in the logs


def audit_response(name: str, tmp_path: Path) -> CheckResult:
    s = sample(name)
    response: dict[str, Any] = {"body": s["body"]}
    if s["status"] is not None:
        response["status"] = s["status"]
    record = {
        "sent_at": "2026-11-20T12:00:03Z",
        "dataset_id": DS,
        "request": {"data": [{"event_name": "Purchase", "event_time": 1795176000}]},
        "response": response,
    }
    path = tmp_path / "d.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    check = DeliveryCheck(context())
    for d in read_deliveries([InputFile(str(path))], ReadStats()):
        check.observe(d)
    return check.result()


# (sample, finding code or None, a text the finding must show)
LOG_SIDE = [
    ("events_ok.json", None, ""),
    ("events_ok_no_messages_key.json", None, ""),
    ("error_user_msg_2804003.json", DELIVERY_ERRORS, "Events need to be sent from your server"),
    ("error_user_msg_2804009.json", DELIVERY_ERRORS, "include a value parameter"),
    ("error_user_msg_2804050_localized_da.json", DELIVERY_ERRORS, "Du har ikke tilføjet"),
    ("error_2804030_coded_exception.json", DELIVERY_ERRORS, "Limited Data Use"),
    ("error_graphmethod_100_33.json", DELIVERY_ERRORS, "dataset 123"),
    ("error_graphmethod_100_33_events.json", DELIVERY_ERRORS, "token"),
    ("error_graphmethod_100_33_value_rules_doc.json", DELIVERY_ERRORS, "dataset"),
    ("error_oauth_190_463.json", TOKEN_INVALID, "expired"),
    ("error_oauth_190_463_fbtrace.json", TOKEN_INVALID, "expired"),
    ("error_oauth_190_decrypt_events.json", TOKEN_INVALID, "could not be decrypted"),
    ("token_parse_190.json", TOKEN_INVALID, "190"),
    ("error_80004_ad_account.json", RATE_LIMITED, "80004"),
    ("error_17_user_request_limit_events.json", RATE_LIMITED, "17"),
    ("error_2_transient.json", DELIVERY_ERRORS, "back-off"),
    ("error_21009_dataset_not_ready.json", DELIVERY_ERRORS, "21009"),
]


@pytest.mark.parametrize(("name", "code", "shown"), LOG_SIDE)
def test_events_answers_in_the_logs(
    name: str, code: str | None, shown: str, tmp_path: Path
) -> None:
    result = audit_response(name, tmp_path)
    if code is None:
        assert result.findings == [] and META_WARNING not in {f.code for f in result.findings}
        return
    (finding,) = result.findings
    assert finding.code == code
    text = finding.message + finding.remediation
    assert shown in text, text


def test_every_sample_is_fed_through_a_live_path() -> None:
    # Every sample file is named by a test of this module (a new sample needs a test).
    named = set(re.findall(r'"([a-z0-9_]+\.json)"', Path(__file__).read_text()))
    files = {p.name for p in DATA.glob("*.json")}
    assert files - named == set()
    assert files >= COVERED

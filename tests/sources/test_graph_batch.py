"""Graph reads in batch requests: ≤ 50 per call, items counted one by one, failed or null
items retried alone (docs/contracts.md §9, docs/meta-capi.md §8)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest

from monitor.config import settings_from_dict
from monitor.model.graph import GraphErrorKind, GraphSnapshot, Part
from monitor.sources.graph.batch import Batcher, parse_batch_answer
from monitor.sources.graph.client import ClientSettings, GraphClient
from monitor.sources.graph.errors import GraphError
from monitor.sources.graph.poll import poll_dataset, poll_many
from monitor.testing.fakegraph import FakeGraph, Scenario

T = TypeVar("T")
TOKEN = "EAAbatchtesttoken0000000000000000"
NOW = 1790000000.0
DS = "1234567890"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _no_sleep(_: float) -> None:
    return None


def _client(url: str, **kw: Any) -> GraphClient:
    settings = ClientSettings(graph_url=url, max_retries=kw.pop("max_retries", 2))
    return GraphClient(TOKEN, settings, sleep=_no_sleep, rng=random.Random(3), **kw)


def _poll(fg: FakeGraph) -> tuple[GraphSnapshot, GraphClient]:
    async def go() -> tuple[GraphSnapshot, GraphClient]:
        async with _client(fg.url) as client:
            return await poll_dataset(client, DS, now=NOW), client

    return run(go())


def test_one_dataset_reads_in_a_few_batch_calls() -> None:
    with FakeGraph(token=TOKEN) as fg:
        snap, client = _poll(fg)
        http_calls, requests = fg.total_requests, fg.requests
    assert snap.errors == [] and snap.calls == 13  # reads, as Meta counts them
    assert all(r.batched for r in requests) and len(requests) == 13
    # Rounds: first pages + Dataset Quality + da_checks + token; second pages; the
    # event_source split (it needs the event list); its second pages.
    assert client.http_calls == http_calls <= 5


def test_null_items_are_retried_alone() -> None:
    scenario = Scenario.named("batch_null").with_(fail_first=3)
    with FakeGraph({DS: scenario}, token=TOKEN) as fg:
        snap, _ = _poll(fg)
        requests = fg.requests
    assert snap.errors == []
    nulls = [r for r in requests if r.batched and r.status == 0]
    alone = [r for r in requests if not r.batched]
    assert len(nulls) == 3 and len(alone) == 3  # each null item again, as a single GET
    assert {(r.endpoint, tuple(sorted(r.params.items()))) for r in nulls} == {
        (r.endpoint, tuple(sorted(r.params.items()))) for r in alone
    }


def test_many_datasets_never_exceed_fifty_reads_per_call() -> None:
    ids = [str(5_000_000 + i) for i in range(120)]
    settings = settings_from_dict(
        {"meta": {"graph_url": "", "access_token_env": "T"}, "datasets": [{"id": i} for i in ids]}
    )
    with FakeGraph(token=TOKEN) as fg:
        meta = settings.meta
        assert meta is not None
        settings = settings.model_copy(
            update={"meta": meta.model_copy(update={"graph_url": fg.url})}
        )
        snaps = run(poll_many(settings, now=NOW, env={"T": TOKEN}, concurrency=8))
        http_calls, items = fg.total_requests, fg.batch_items
    assert len(snaps) == 120 and not any(s.errors for s in snaps.values())
    reads = sum(s.calls for s in snaps.values())
    assert items == reads == 120 * 12 + 1  # one token probe for the shared token
    assert http_calls <= reads / 50 + 12  # full batches, a few partial ones per round
    assert fg.max_in_flight <= 8


def test_a_batch_call_that_fails_as_a_whole_is_retried_read_by_read() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if request.method == "POST":
            return httpx.Response(502, content=b"<html>Bad gateway</html>")
        return httpx.Response(200, content=orjson.dumps({"data": [], "paging": {}}))

    async def go() -> list[Any]:
        async with _client("https://graph.test", transport=httpx.MockTransport(handler)) as c:
            return await asyncio.gather(*(c.get_all(f"{i}/da_checks", {}) for i in range(3)))

    assert run(go()) == [[], [], []]
    assert seen == ["POST", "GET", "GET", "GET"]


def test_item_errors_keep_their_own_status_and_are_classified_whole() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        items = orjson.loads(form["batch"])
        assert form["include_headers"] == "true" and len(items) == 2
        assert all(i["relative_url"].startswith("v25.0/") for i in items)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in form["batch"]
        usage = '{"call_count": 91, "total_time": 10, "total_cputime": 10}'
        err = {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException"}}
        answer = [
            {"code": 200, "headers": [{"name": "X-App-Usage", "value": usage}], "body": "{}"},
            {"code": 400, "body": orjson.dumps(err).decode()},
        ]
        return httpx.Response(200, content=orjson.dumps(answer))

    async def go() -> tuple[list[Any], GraphClient]:
        async with _client("https://graph.test", transport=httpx.MockTransport(handler)) as c:
            got = await asyncio.gather(
                c.get("a", {}), c.get("b", {"x": "1"}), return_exceptions=True
            )
            return list(got), c

    (ok, err), client = run(go())
    assert ok == {}
    assert isinstance(err, GraphError) and (err.code, err.http_status) == (100, 400)
    assert err.kind is GraphErrorKind.INVALID and err.attempts == 1  # not retried
    assert client.usage.app_pct == 91  # an item's own usage header is read


def test_batch_answers_parse_null_short_and_odd_items() -> None:
    items = parse_batch_answer([None, {"code": 200, "body": "{}"}, {"code": "x"}], 4)
    assert items is not None
    assert [i is None for i in items] == [True, False, True, True]
    assert parse_batch_answer({"error": {"code": 190}}, 2) is None


def test_the_batcher_sends_full_batches_at_once_and_the_rest_after_a_few_turns() -> None:
    sizes: list[int] = []

    async def send(requests: Any) -> list[int]:
        sizes.append(len(requests))
        return [r * 2 for r in requests]

    async def go() -> list[int]:
        batcher: Batcher[int, int] = Batcher(send, 50)
        return await asyncio.gather(*(batcher.submit(i) for i in range(120)))

    assert run(go()) == [i * 2 for i in range(120)]
    assert sizes == [50, 50, 20]


@pytest.mark.parametrize("size", [0, 1])
def test_batching_can_be_turned_off(size: int) -> None:
    with FakeGraph(token=TOKEN) as fg:

        async def go() -> GraphSnapshot:
            settings = ClientSettings(graph_url=fg.url, batch_size=size)
            async with GraphClient(TOKEN, settings, sleep=_no_sleep) as client:
                return await poll_dataset(client, DS, now=NOW, parts=[Part.DA_CHECKS])

        snap = run(go())
        assert snap.errors == [] and not any(r.batched for r in fg.requests)

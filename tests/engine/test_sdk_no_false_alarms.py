"""Events produced by Meta's official SDK from valid input raise no warn/crit (CONTRACTS §2).

Also pins down what the generator promises the other checks' tests (variety, match keys,
unique event ids, delivery-record shape), and that a defect injected into SDK traffic is
counted exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from checks.dedup import Dedup
from checks.delivery import DeliveryCheck
from checks.hash_validity import HashCode, HashValidity
from checks.latency import Latency
from checks.match_quality import MatchQuality
from checks.payload import STANDARD_EVENTS, Payload, PayloadCode
from monitor.model.findings import Severity, Status
from monitor.model.observations import Delivery, Shape
from monitor.sources.logs.fields import event_times
from tests.support.checkutil import NOW, context, one
from tests.support.sdkgen import ACTION_SOURCES, CONVERSIONS, sdk_events, sdk_log_lines

SEEDS = (1, 2, 3)
N = 3000


@pytest.fixture(scope="module")
def corpus() -> dict[int, list[dict[str, Any]]]:
    return {seed: sdk_events(N, seed, now=NOW) for seed in SEEDS}


def batches(events: list[dict[str, Any]], size: int = 40) -> list[Delivery]:
    """Deliveries of ``size`` events, each sent 30 s after its newest event."""
    out = []
    for i in range(0, len(events), size):
        chunk = events[i : i + size]
        sent = max(e["event_time"] for e in chunk) + 30
        out.append(
            Delivery(
                "sdk.jsonl",
                i // size + 1,
                "123",
                Shape.RECORD,
                chunk,
                len(chunk),
                sent,
                times=event_times(chunk)[0],
            )
        )
    return out


def parse_line(line: bytes) -> Delivery:
    """Just enough of the §1 record shape for these tests (the real reader is elsewhere)."""
    record = json.loads(line)
    data = record["request"]["data"]
    data = json.loads(data) if isinstance(data, str) else data
    events = [json.loads(e) if isinstance(e, str) else e for e in data]
    sent = record["sent_at"]
    sent_at = sent if isinstance(sent, float | int) else datetime.fromisoformat(sent).timestamp()
    times, millis = event_times(events)
    return Delivery(
        "log.jsonl", 1, record["dataset_id"], Shape.RECORD, events, len(events), sent_at,
        times=times, millis=millis,
    )  # fmt: skip


def run_checks(deliveries: list[Delivery], more: tuple[type[Any], ...] = ()) -> list[Any]:
    results = []
    classes: tuple[type[Any], ...] = (HashValidity, Payload, *more)
    for cls in classes:
        check = cls(context())
        for d in deliveries:
            check.observe(d)
        results.append(check.result())
    return results


@pytest.mark.parametrize("seed", SEEDS)
def test_sdk_events_raise_nothing(corpus: dict[int, list[dict[str, Any]]], seed: int) -> None:
    for result in run_checks(batches(corpus[seed])):
        loud = [f.to_dict() for f in result.findings if f.severity is not Severity.INFO]
        assert loud == [], f"{result.id} on seed {seed}"
        assert (result.status, result.score) == (Status.OK, 100)


LOG_CHECKS = (MatchQuality, Dedup, Latency, DeliveryCheck)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_action_source_raises_nothing_in_any_log_check(
    corpus: dict[int, list[dict[str, Any]]], seed: int
) -> None:
    """Per action_source, thousands of events (docs/contracts.md §2, §12): store, CRM,
    call-centre events carry no browser keys, app events app ids, upper-funnel website
    events are mostly anonymous; no check may warn about any of them."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for e in corpus[seed]:
        by_source.setdefault(e["action_source"], []).append(e)
    for source, events in sorted(by_source.items()):
        for result in run_checks(batches(events, size=1), LOG_CHECKS):
            loud = [f.to_dict() for f in result.findings if f.severity is not Severity.INFO]
            assert loud == [], f"{result.id} on {source}, seed {seed}"
    big = [e for seed in SEEDS for e in corpus[seed] if e["action_source"] != "website"]
    big.sort(key=lambda e: e["event_time"])
    assert len(big) > 3000  # thousands of events of the sources other than website
    for result in run_checks(batches(big), LOG_CHECKS):
        assert [f for f in result.findings if f.severity is not Severity.INFO] == [], result.id


def test_sdk_events_judged_against_the_run_clock_too(
    corpus: dict[int, list[dict[str, Any]]],
) -> None:
    """Bare events (no send time) are judged at ``now``: still nothing to report."""
    bare = [
        Delivery("b.jsonl", 1, "123", Shape.EVENT, [e], 1, times=[float(e["event_time"])])
        for e in corpus[1][:500]
    ]
    assert all(r.findings == [] for r in run_checks(bare))


def test_sdk_log_lines_raise_nothing() -> None:
    lines = sdk_log_lines(1500, 7, now=NOW, dataset_id="123")
    deliveries = [parse_line(line) for line in lines]
    assert sum(len(d.events) for d in deliveries) == 1500
    assert all(r.findings == [] for r in run_checks(deliveries))


def test_generator_variety(corpus: dict[int, list[dict[str, Any]]]) -> None:
    events = [e for seed in SEEDS for e in corpus[seed]]
    names = Counter(e["event_name"] for e in events)
    assert set(STANDARD_EVENTS) <= set(names)
    assert len(set(names) - set(STANDARD_EVENTS)) >= 3  # custom events too
    assert {e["action_source"] for e in events} == {s.value for s in ACTION_SOURCES}
    uds = [e["user_data"] for e in events]
    fbcs = [u["fbc"] for u in uds if "fbc" in u]
    assert any(f.endswith((".AQICAQMC", ".AQIAAQMC")) for f in fbcs)  # parameter builder
    assert any(f.count(".") == 3 for f in fbcs)  # plain cookie values
    assert any(u["fbp"].endswith(".Ag") or u["fbp"].endswith(".BQ") for u in uds if "fbp" in u)
    assert any(len(u.get("em", [])) > 1 for u in uds)  # multi-value lists
    ips = [u["client_ip_address"] for u in uds if "client_ip_address" in u]
    assert any(":" in ip for ip in ips)  # IPv6
    assert any("." in ip and ":" not in ip for ip in ips)
    for key in ("ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id"):
        assert sum(key in u for u in uds) > 100, key
    currencies = {
        e["custom_data"]["currency"] for e in events if "currency" in e.get("custom_data", {})
    }
    assert len(currencies) >= 8


def test_generator_gives_other_checks_realistic_events(
    corpus: dict[int, list[dict[str, Any]]],
) -> None:
    for seed in SEEDS:
        events = corpus[seed]
        assert len({e["event_id"] for e in events}) == N  # unique ids: dedup stays quiet
        for e in events:
            ud, source = e["user_data"], e["action_source"]
            if e["event_name"] in CONVERSIONS or source != "website":
                assert "em" in ud or "ph" in ud
            if source in ("website", "app"):
                assert ud["client_ip_address"] and ud["client_user_agent"]
            else:
                assert "client_ip_address" not in ud and "client_user_agent" not in ud
            if source == "app":
                assert ud["anon_id"]
            assert NOW - 6 * 3600 <= e["event_time"] <= NOW
            if source == "website":
                assert e["event_source_url"]
        assert sum("external_id" in e["user_data"] for e in events) > N / 3
        assert sum("fn" in e["user_data"] and "ln" in e["user_data"] for e in events) > N / 3
        anonymous = [e for e in events if e["action_source"] == "website"
                     and not {"em", "ph", "external_id"} & set(e["user_data"])]  # fmt: skip
        assert len(anonymous) > N / 5


def test_log_lines_shape() -> None:
    lines = sdk_log_lines(600, 11, now=NOW, dataset_id="999")
    records = [json.loads(line) for line in lines]
    forms = Counter(
        "whole-string" if isinstance(r["request"]["data"], str)
        else "strings" if isinstance(r["request"]["data"][0], str) else "objects"
        for r in records
    )  # fmt: skip
    assert set(forms) == {"whole-string", "strings", "objects"}
    for record, line in zip(records, lines, strict=True):
        delivery = parse_line(line)
        assert delivery.sent_at is not None
        assert 1 <= len(delivery.events) <= 50
        assert record["response"]["body"]["events_received"] == len(delivery.events)
        assert record["response"]["status"] == 200 and record["dataset_id"] == "999"
        assert "test_event_code" not in record["request"]
        lags = [delivery.sent_at - e["event_time"] for e in delivery.events]
        assert all(0 < lag <= 181 for lag in lags)
        assert delivery.sent_at <= NOW


def test_generator_is_deterministic() -> None:
    def canon(events: list[dict[str, Any]]) -> list[str]:
        # The SDK de-duplicates lists with set(): order inside lists may vary, content not.
        out = []
        for e in events:
            ud = {k: sorted(v) if isinstance(v, list) else v for k, v in e["user_data"].items()}
            out.append(json.dumps({**e, "user_data": ud}, sort_keys=True))
        return out

    assert canon(sdk_events(200, 5, now=NOW)) == canon(sdk_events(200, 5, now=NOW))
    assert canon(sdk_events(200, 5, now=NOW)) != canon(sdk_events(200, 6, now=NOW))


def test_defects_injected_into_sdk_traffic_are_counted_exactly(
    corpus: dict[int, list[dict[str, Any]]],
) -> None:
    events = json.loads(json.dumps(corpus[2]))  # deep copy; the fixture is shared
    for e in events[::100]:
        e["user_data"]["em"] = ["Someone@Example.com"]
    for e in events[1::250]:
        e["event_name"] = e["event_name"].lower() if e["event_name"] in STANDARD_EVENTS else "lead"
    hashes, payload = run_checks(batches(events))
    plaintext = one(hashes, HashCode.PLAINTEXT)
    assert (plaintext.count, plaintext.field) == (N // 100, "user_data.em")
    assert all("Someone" not in ex.value and "xample" not in ex.value for ex in plaintext.examples)
    assert one(payload, PayloadCode.NONSTANDARD_EVENT_NAME).count == N // 250
    assert {f.code for f in hashes.findings} == {HashCode.PLAINTEXT}

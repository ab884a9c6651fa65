"""Hourly rollups (``monitor.engine.rollup``): rows behind the newest hour are packed, and
what comes out is the same as if every row had been kept as it was filled."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

import monitor.engine.rollup as rollup_mod
from checks.graph_common import UsesRollups
from monitor.config import settings_from_dict
from monitor.engine.audit import DatasetAudit
from monitor.engine.rollup import RollupAccumulator
from monitor.model.observations import Delivery, ResponseInfo
from tests.support.checkutil import HOUR, NOW, delivery, event

START = NOW - 10 * 24 * HOUR
NAMES = ("Purchase", "AddToCart", "PageView", "Lead")
SOURCES = ("website", "app", None, "nonsense")
KEYS = ("em", "ph", "client_ip_address", "fbp")


def _event(rng: random.Random, t: float) -> dict[str, Any]:
    user_data = {k: ("x" if rng.random() < 0.7 else "") for k in rng.sample(KEYS, 3)}
    fields: dict[str, Any] = {"user_data": user_data}
    if rng.random() < 0.8:
        fields["event_id"] = f"id-{rng.random()}"
    source = rng.choice(SOURCES)
    if source is not None:
        fields["action_source"] = source
    if rng.random() < 0.5:
        fields["custom_data"] = {"value": rng.choice([1, 2.5, 0.1, 10**20])}
    return event(rng.choice(NAMES), t, **fields)


def _deliveries(n: int = 1500, seed: int = 7) -> list[Delivery]:
    """Ten days of deliveries in send order, some late (out of order by up to a day),
    some failed, some sent by a single source (the usual case: packed by its name)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sent = START + i * (10 * 24 * HOUR / n)
        if rng.random() < 0.05:
            sent -= rng.uniform(3 * HOUR, 24 * HOUR)  # a line of an older file
        events = [_event(rng, sent - rng.uniform(0, 3 * HOUR)) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.3:
            for e in events:
                e["action_source"] = "website"
        response = None
        if rng.random() < 0.1:
            response = ResponseInfo(status=400, error_code=100, error_subcode=rng.choice([0, 33]))
        out.append(delivery(*events, sent_at=sent, response=response, line=i + 1))
    return out


def _rows(acc: RollupAccumulator) -> list[dict[str, Any]]:
    return [r.to_dict() for r in acc.result()]


def _filled(deliveries: list[Delivery]) -> RollupAccumulator:
    acc = RollupAccumulator("123")
    for d in deliveries:
        acc.observe(d)
    return acc


@pytest.fixture
def unpacked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The rows when nothing is ever packed."""
    with monkeypatch.context() as m:
        m.setattr(rollup_mod, "FOLD_AFTER", 10**9)
        acc = _filled(_deliveries())
        assert not acc._packed
        return _rows(acc)


def test_a_rows_last_sent_is_the_latest_send_time_of_its_accepted_events() -> None:
    # intent: the time a series went silent is known to the second, not the hour; a
    # failed request sent nothing that Meta took, a row with no send time keeps 0
    deliveries = _deliveries()
    latest: dict[tuple[str, int], float] = {}
    for d in deliveries:
        if d.response is None and d.sent_at is not None:
            for e in d.events:
                key = (e["event_name"], int(d.sent_at // HOUR * HOUR))
                latest[key] = max(latest.get(key, 0.0), d.sent_at)
    rows = _filled(deliveries).result()
    assert rows and all(r.last_sent == latest.get((r.event_name, r.hour), 0.0) for r in rows)
    assert any(r.failed and not r.events and r.last_sent == 0.0 for r in rows)
    assert all(r.hour <= r.last_sent < r.hour + HOUR for r in rows if r.events)


def test_packed_rows_come_out_as_filled(unpacked: list[dict[str, Any]]) -> None:
    acc = _filled(_deliveries())
    assert len(acc._packed) > 5 * len(acc.rows)  # only the last hours are being filled
    assert _rows(acc) == unpacked
    assert _rows(acc) == unpacked  # result() leaves the packed rows as they were


def test_packed_rows_survive_pickling(unpacked: list[dict[str, Any]]) -> None:
    acc = _filled(_deliveries())
    assert _rows(pickle.loads(pickle.dumps(acc))) == unpacked


@pytest.mark.parametrize("cut", [1, 400, 750, 1499])
def test_merging_parts_with_packed_rows_matches_one_pass(
    cut: int, unpacked: list[dict[str, Any]]
) -> None:
    deliveries = _deliveries()
    first, later = _filled(deliveries[:cut]), _filled(deliveries[cut:])
    first.merge(pickle.loads(pickle.dumps(later)))
    assert _rows(first) == unpacked
    assert len(first._packed) > 5 * len(first.rows)


def test_counts_beyond_32_bits_are_packed_exactly() -> None:
    acc = _filled([delivery(event("Purchase", START), sent_at=START + 60)])
    state = acc.rows[("Purchase", int(START // HOUR * HOUR))]
    state.row.events = 2**40
    state.row.latency_hist[0] = 2**70
    acc.observe(delivery(event("Purchase", START + 5 * HOUR), sent_at=START + 5 * HOUR))
    assert not acc.rows.get(("Purchase", int(START // HOUR * HOUR)))
    first = acc.result()[0]
    assert (first.events, first.latency_hist[0]) == (2**40, 2**70)


def test_a_released_report_is_the_same_and_lets_the_other_checks_go() -> None:
    settings = settings_from_dict({})
    kept, released = (DatasetAudit("123", settings, NOW) for _ in range(2))
    for d in _deliveries():
        kept.observe(d)
        released.observe(d)
    expected = kept.report()
    got = released.report(release=True)
    assert got.to_dict() == expected.to_dict()
    assert [r.to_dict() for r in got.rollups] == [r.to_dict() for r in expected.rollups]
    assert len(kept.checks) > len(released.checks) > 0
    assert all(isinstance(c, UsesRollups) for c in released.checks)

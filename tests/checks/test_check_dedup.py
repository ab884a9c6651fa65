"""The dedup check (log part): MISSING_EVENT_ID and EVENT_ID_REUSED."""

from __future__ import annotations

from typing import Any

import pytest

from checks.dedup import EVENT_ID_REUSED, MISSING_EVENT_ID, Dedup
from monitor.model.findings import Severity, Status
from tests.support.checkutil import (
    DAY,
    HOUR,
    NOW,
    WEIRD_NUMBERS,
    WEIRD_VALUES,
    codes,
    context,
    delivery,
    event,
    one,
    run,
    sdk_batches,
)

EM = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
EM2 = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"


def purchase(eid: Any = "order-1", name: str = "Purchase", **over: Any) -> dict[str, Any]:
    """A purchase whose content can be varied: em, value, order_id, currency, t."""
    custom = {"value": over.get("value", 10.0), "currency": over.get("currency", "USD")}
    if "order_id" in over:
        custom["order_id"] = over["order_id"]
    ev = event(name, over.get("t", NOW - 60), event_id=eid, custom_data=custom)
    ev["user_data"] = over.get("user_data", {"em": [over.get("em", EM)], "fbp": "fb.1.1.1"})
    if eid is _ABSENT:
        del ev["event_id"]
    return ev


_ABSENT = object()
T0 = NOW - 10 * DAY


# (intent, [(event, sent_at)], expected EVENT_ID_REUSED count, expected duplicate sends)
REUSE_CASES: list[tuple[str, list[tuple[dict[str, Any], float | None]], int, int]] = [
    ("retry with identical content 1 h later is a duplicate send, not reuse",
     [(purchase(), T0), (purchase(), T0 + HOUR)], 0, 1),
    ("retry with identical content 47 h later is still a duplicate send",
     [(purchase(), T0), (purchase(), T0 + 47 * HOUR)], 0, 1),
    ("different value within 1 h is reuse",
     [(purchase(), T0), (purchase(value=99.0), T0 + HOUR)], 1, 0),
    ("different user data within 1 h is reuse",
     [(purchase(), T0), (purchase(em=EM2), T0 + HOUR)], 1, 0),
    ("different order_id within 1 h is reuse",
     [(purchase(order_id="A"), T0), (purchase(order_id="B"), T0 + HOUR)], 1, 0),
    ("different currency within 1 h is reuse",
     [(purchase(), T0), (purchase(currency="EUR"), T0 + HOUR)], 1, 0),
    ("different content 47 h apart is reuse",
     [(purchase(), T0), (purchase(value=99.0), T0 + 47 * HOUR)], 1, 0),
    ("different content 49 h apart is not reuse (outside Meta's dedup window)",
     [(purchase(), T0), (purchase(value=99.0), T0 + 49 * HOUR)], 0, 0),
    ("same id on a different event_name is not reuse",
     [(purchase(), T0), (purchase(name="AddToCart", value=99.0), T0 + HOUR)], 0, 0),
    ("different ids with different content are not reuse",
     [(purchase("a"), T0), (purchase("b", value=99.0), T0 + HOUR)], 0, 0),
    ("without sent_at, event_time 47 h apart with other content is reuse",
     [(purchase(t=T0), None), (purchase(t=T0 + 47 * HOUR, value=5.0), None)], 1, 0),
    ("without sent_at, event_time 49 h apart with other content is not reuse",
     [(purchase(t=T0), None), (purchase(t=T0 + 49 * HOUR, value=5.0), None)], 0, 0),
    ("three different contents on one id: two reuses",
     [(purchase(), T0), (purchase(value=2.0), T0 + 1), (purchase(value=3.0), T0 + 2)], 2, 0),
    ("reuse then a retry of the reusing event: one reuse, one duplicate send",
     [(purchase(), T0), (purchase(value=2.0), T0 + 1), (purchase(value=2.0), T0 + 2)], 1, 1),
    ("out of order within the window is still reuse",
     [(purchase(), T0 + 10 * HOUR), (purchase(value=2.0), T0)], 1, 0),
    ("other top-level key order, same user/custom data: a duplicate send",
     [(purchase(), T0),
      ({k: v for k, v in reversed(purchase().items())}, T0 + 1)], 0, 1),
    ("documented limit: user_data in another key order counts as different content",
     [(purchase(), T0),
      (purchase(user_data={"fbp": "fb.1.1.1", "em": [EM]}), T0 + 1)], 1, 0),
    ("numeric event ids are tracked too",
     [(purchase(7), T0), (purchase(7, value=2.0), T0 + 1)], 1, 0),
    ("a stale id reused 3 days later, then changed 1 h after: one reuse",
     [(purchase(), T0), (purchase(value=2.0), T0 + 3 * DAY),
      (purchase(value=3.0), T0 + 3 * DAY + HOUR)], 1, 0),
    ("content JSON cannot encode (an integer beyond 64 bits), equal: a duplicate send",
     [(purchase(value=2**70), T0), (purchase(value=2**70), T0 + 1)], 0, 1),
    ("content JSON cannot encode, different: reuse",
     [(purchase(value=2**70), T0), (purchase(value=2**70 + 1), T0 + 1)], 1, 0),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "sends", "reused", "dups"), REUSE_CASES)
def test_event_id_reuse(
    intent: str, sends: list[tuple[dict[str, Any], float | None]], reused: int, dups: int
) -> None:
    deliveries = [delivery(ev, sent_at=s, line=i + 1) for i, (ev, s) in enumerate(sends)]
    check, result = run(Dedup, deliveries)
    found = [f for f in result.findings if f.code == EVENT_ID_REUSED]
    assert sum(f.count for f in found) == reused, intent
    assert check.duplicate_sends == dups, intent
    if reused:
        f = found[0]
        assert f.field == "event_id"
        assert f.event_names == [sends[0][0]["event_name"]]
        assert f.severity is Severity.CRIT  # >= 25 % of a tiny sample
        assert f.evidence["duplicate_sends"] == dups
        assert f.examples and f.examples[0].line > 1  # the reusing event, not the first


def test_reuse_is_warn_below_share_and_masks_the_id() -> None:
    unique = [delivery(purchase(f"id-{i}"), sent_at=T0 + i) for i in range(20)]
    reuse = delivery(purchase("id-0", value=1.0), sent_at=T0 + 30, line=42)
    _, result = run(Dedup, [*unique, reuse])
    f = one(result, EVENT_ID_REUSED)
    assert (f.count, f.severity) == (1, Severity.WARN)  # 1 of 21 < 25 %
    assert f.examples[0].line == 42
    assert f.examples[0].value != "id-0"  # masked
    assert "1 of 21" in f.message and "48 h" in f.message


# (intent, event_id value, missing?)
MISSING_CASES = [
    ("absent event_id", _ABSENT, True),
    ("null event_id", None, True),
    ("empty string", "", True),
    ("blank string", "   ", True),
    ("empty list", [], True),
    ("an object is no id", {"id": "x"}, True),
    ("a boolean is no id", True, True),
    ("ordinary string id", "order-1", False),
    ("integer id", 123, False),
    ("float id", 1.5, False),
]


@pytest.mark.parametrize(("intent", "eid", "missing"), MISSING_CASES)
def test_missing_event_id(intent: str, eid: Any, missing: bool) -> None:
    ok = [delivery(purchase(f"id-{i}"), sent_at=T0) for i in range(9)]
    _, result = run(Dedup, [*ok, delivery(purchase(eid, name="Lead"), sent_at=T0, line=7)])
    if not missing:
        assert MISSING_EVENT_ID not in codes(result), intent
        assert result.status is Status.OK
        return
    f = one(result, MISSING_EVENT_ID)
    assert (f.count, f.field, f.event_names) == (1, "event_id", ["Lead"]), intent
    assert f.severity is Severity.WARN  # 10 % < 25 %
    assert f.examples[0].line == 7
    assert "1 of 10 events" in f.message


@pytest.mark.parametrize(
    ("missing", "total", "settings", "severity"),
    [
        (1, 5, None, Severity.WARN),  # 20 % is below the default 25 %
        (1, 4, None, Severity.CRIT),  # exactly 25 % escalates
        (3, 4, None, Severity.CRIT),  # most events lack ids
        (1, 5, {"dedup": {"warn_to_crit_share": 0.2}}, Severity.CRIT),  # configurable
        (3, 4, {"dedup": {"warn_to_crit_share": 0.9}}, Severity.WARN),  # configurable
    ],
)
def test_missing_event_id_escalation(
    missing: int, total: int, settings: dict[str, Any] | None, severity: Severity
) -> None:
    evs = [purchase(None if i < missing else f"id-{i}") for i in range(total)]
    _, result = run(Dedup, [delivery(*evs, sent_at=T0)], settings)
    f = one(result, MISSING_EVENT_ID)
    assert (f.count, f.severity) == (missing, severity)
    assert result.status == Status(severity)


def test_no_events_is_skipped_not_ok() -> None:
    _, result = run(Dedup, [delivery(sent_at=T0)])
    assert result.status is Status.SKIPPED


def test_clean_batch_is_ok() -> None:
    evs = [purchase(f"id-{i}") for i in range(50)]
    _, result = run(Dedup, [delivery(*evs, sent_at=T0)])
    assert (result.status, result.findings, result.score) == (Status.OK, [], 100)


def test_memory_stays_bounded_by_the_window() -> None:
    """300k unique ids over 30 days: the table holds about one window (48 h) of ids."""
    n, span = 300_000, 30 * DAY
    check = Dedup(context())
    per_window = n * (2 * DAY) / span  # 20,000
    for i in range(n):
        t = T0 + i * span / n
        check.observe(delivery(event("Lead", t, event_id=f"lead-{i}"), sent_at=t))
    assert per_window <= check.peak_tracked <= per_window * 1.3
    assert check.tracked_ids <= per_window * 1.3
    assert check.result().status is Status.OK


def test_hard_cap_evicts_when_one_window_is_too_big() -> None:
    check = Dedup(context(), max_tracked=1000)
    for i in range(5000):  # all at the same second: nothing is old enough to prune
        check.observe(delivery(event("Lead", T0, event_id=f"x{i}"), sent_at=T0))
    assert check.tracked_ids <= 1000
    check.observe(delivery(event("Lead", T0, event_id="x4999", value=1), sent_at=T0))
    assert check.duplicate_sends == 1  # recent ids survive eviction


WEIRD_CASES = [
    *(
        (where, v)
        for where in ("event_id", "user_data", "custom_data", "value")
        for v in WEIRD_VALUES
    ),
    *((where, v) for where in ("event_time", "sent_at") for v in WEIRD_NUMBERS),
]


@pytest.mark.parametrize(("where", "weird"), WEIRD_CASES)
def test_weird_types_never_crash(where: str, weird: Any) -> None:
    """Odd values anywhere (each event sent twice, to reach the comparison path)."""
    ev = purchase("id-1")
    sent: Any = T0
    if where == "event_time":
        ev["event_time"], sent = weird, None
    elif where == "sent_at":
        sent = weird
    elif where == "value":
        ev["custom_data"]["value"] = weird
    else:
        ev[where] = weird
    check, result = run(Dedup, [delivery(ev, sent_at=sent), delivery(dict(ev), sent_at=sent)])
    assert check.events == 2
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)
    assert sum(f.count for f in result.findings) <= 2


def test_sdk_traffic_raises_nothing() -> None:
    """Valid SDK-made events (unique ids, sent 30 s after the batch) are healthy here."""
    _, result = run(Dedup, sdk_batches())
    assert (result.status, result.findings, result.score) == (Status.OK, [], 100)

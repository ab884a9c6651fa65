"""Tiny helpers for check tests: build events and ``Delivery`` objects, run a check.

Only what several check tests share; anything check-specific stays in its test module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from checks.base import Check, CheckContext
from monitor.config import ChecksSettings
from monitor.model.findings import CheckResult, Finding
from monitor.model.observations import Delivery, ResponseInfo, Shape
from monitor.sources.logs.fields import event_times
from tests.support.sdkgen import sdk_events

NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z, the clock of every check test
HOUR = 3600.0
DAY = 86400.0


def event(name: str = "Purchase", t: float = NOW - 60, **fields: Any) -> dict[str, Any]:
    """One well-formed event (str ``event_name``, numeric ``event_time``) plus ``fields``."""
    return {"event_name": name, "event_time": t, **fields}


def delivery(
    *events: dict[str, Any],
    sent_at: float | None = None,
    response: ResponseInfo | None = None,
    sent_count: int | None = None,
    file: str = "test.jsonl",
    line: int = 1,
    dataset_id: str = "123",
) -> Delivery:
    """A delivery of ``events``; a record (shape a) when it has a send time or response."""
    shape = Shape.RECORD if sent_at is not None or response is not None else Shape.EVENT
    times, millis = event_times(events)
    return Delivery(
        file=file,
        line=line,
        dataset_id=dataset_id,
        shape=shape,
        events=list(events),
        sent_count=len(events) if sent_count is None else sent_count,
        sent_at=sent_at,
        response=response,
        times=times,
        millis=millis,
    )


def sdk_batches(n: int = 1500, seed: int = 1, size: int = 40) -> list[Delivery]:
    """Valid events made by Meta's SDK (``tests.support.sdkgen``), ``size`` per delivery, each
    delivery sent 30 s after its newest event: traffic that must raise no warn/crit."""
    events = sdk_events(n, seed, now=NOW)
    out = []
    for i in range(0, len(events), size):
        chunk = events[i : i + size]
        sent = max(e["event_time"] for e in chunk) + 30
        out.append(delivery(*chunk, sent_at=sent, file="sdk.jsonl", line=i // size + 1))
    return out


def context(settings: dict[str, Any] | None = None, now: float = NOW) -> CheckContext:
    """A check context; ``settings`` is the ``[checks]`` table as TOML would give it."""
    return CheckContext("123", now, ChecksSettings.model_validate(settings or {}))


def run(
    check_cls: type[Check],
    deliveries: Iterable[Delivery],
    settings: dict[str, Any] | None = None,
) -> tuple[Any, CheckResult]:
    """Feed ``deliveries`` to a fresh ``check_cls``; returns the instance and its result."""
    check = check_cls(context(settings))
    for d in deliveries:
        check.observe(d)
    return check, check.result()


def by_code(result: CheckResult, code: str) -> list[Finding]:
    """The findings of ``result`` with ``code`` (a code may appear as several findings)."""
    return [f for f in result.findings if f.code == code]


def one(result: CheckResult, code: str) -> Finding:
    """The single finding with ``code``; fails the test if there are none or several."""
    found = by_code(result, code)
    assert len(found) == 1, f"expected one {code}, got {[f.to_dict() for f in found]}"
    return found[0]


def codes(result: CheckResult) -> set[str]:
    """The distinct finding codes of ``result``."""
    return {f.code for f in result.findings}


# Values of odd types for "never crash" tests: any of them may appear where a str is expected.
WEIRD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    10**400,
    "",
    " ",
    "x" * 10_000,
    [],
    [None],
    ["a", ["b"]],
    {},
    {"nested": {"deep": [1, {"x": None}]}},
    {1: "non-str key"},
)

# Odd numbers for fields the reader guarantees numeric (event_time) or float (sent_at).
WEIRD_NUMBERS: tuple[float, ...] = (
    0,
    -1,
    -1e300,
    1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**400,
    -(10**400),
    1_795_176_000_000,  # milliseconds
)

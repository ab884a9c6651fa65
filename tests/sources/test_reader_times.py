"""The reader's fast event_time path gives the times, flags and malformed events that
``unix_seconds`` / ``in_time_range`` / ``event_times`` give (docs/contracts.md §6)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.model.observations import ReadStats
from monitor.sources.logs.fields import event_times, in_time_range, unix_seconds
from monitor.sources.logs.reader import _Reader

_TIMES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, 1e11, 1e11 - 1, 1e11 + 1, 10**11, 10**14, 10**400, 1.7e12, -0.0]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


def _expected(items: list[Any]) -> tuple[list[dict[str, Any]], list[float], Any, int]:
    kept = []
    bad = 0
    for item in items:
        t = item.get("event_time")
        if type(t) in (int, float) and in_time_range(unix_seconds(t)):
            kept.append(item)
        else:
            bad += 1
    times, millis = event_times(kept)
    return kept, times, millis, bad


@settings(max_examples=400, deadline=None)
@given(st.lists(_TIMES, max_size=6))
def test_fast_times_match_the_reference(values: list[Any]) -> None:
    items = [{"event_name": "Lead", "event_time": v} for v in values]
    stats = ReadStats()
    events, times, millis = _Reader(stats, 1 << 20, None, None, None)._events(items, "data", "f", 1)
    kept, ref_times, ref_millis, bad = _expected(items)
    assert events == kept
    assert len(times) == len(ref_times)
    for a, b in zip(times, ref_times, strict=True):
        assert type(a) is float
        assert a == b or (math.isnan(a) and math.isnan(b))
    assert millis == ref_millis
    assert stats.malformed_events == bad

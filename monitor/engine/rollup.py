"""Filling hourly rollups (``monitor.model.rollup``) from delivery observations.

The rollups are the only history of the logs we keep; no raw event or customer data
ever enters one.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from monitor.model.observations import Delivery
from monitor.model.rollup import (
    LATENCY_BOUNDS,
    MATCH_KEYS,
    MAX_EVENT_NAMES,
    OTHER_EVENT,
    SOURCE_SERVER_LOG,
    VALUE_EVENTS,
    HourRollup,
    error_key,
    key_layouts,
    source_counts,
)

_KEY_INDEX = {k: i for i, k in enumerate(MATCH_KEYS)}
# LATENCY_BOUNDS as floats: bisect then compares a float lag with floats, faster than
# with ints, and finds the same bucket (every bound is an integer a float holds exactly).
_BOUNDS = tuple(map(float, LATENCY_BOUNDS))

MAX_LAYOUTS = 64  # distinct key layouts tracked per row before counting key by key
# Rows this far behind the newest hour have their layouts folded into key_counts: a
# finished hour then costs no layout memory (~4 KB a row), whatever the span of the logs.
FOLD_AFTER = 2 * 3600
# Every finite double is an integer multiple of 2**-1074: value sums are kept as exact
# integers of that unit, so they do not depend on the order of the additions (a parallel
# audit sums its parts separately) and round once, when handed out.
_VALUE_SHIFT = 1074


def exact_value(value: float) -> int:
    """``value`` in units of 2**-1074 (exact); 0 for a non-finite float (JSON has none)."""
    if value.__class__ is int:
        return value << _VALUE_SHIFT
    if not math.isfinite(value):
        return 0
    num, den = value.as_integer_ratio()  # den is a power of two <= 2**1074
    return num << (_VALUE_SHIFT + 1 - den.bit_length())


def value_float(units: int) -> float:
    """An exact sum of ``exact_value`` units, correctly rounded to a float."""
    try:
        return units / (1 << _VALUE_SHIFT)
    except OverflowError:
        return math.inf if units > 0 else -math.inf


class _RowState:
    """A rollup row being filled, plus the key *layouts* seen in it.

    A sender produces few layouts (its ``action_source`` and the tuple of ``user_data``
    keys with a present value), so the hot path is one tuple and one dict update per
    event instead of a loop over the keys; layouts are folded into ``key_counts`` and
    ``source_keys`` when the rows are handed out.
    """

    __slots__ = ("layouts", "row", "value_units")

    def __init__(self, row: HourRollup) -> None:
        self.row = row
        self.layouts: dict[tuple[str, tuple[Any, ...]], int] = {}
        self.value_units = 0  # exact sum of the row's values (see exact_value)

    def add_layout(self, layout: tuple[str, tuple[Any, ...]], n: int = 1) -> None:
        if len(self.layouts) < MAX_LAYOUTS:
            self.layouts[layout] = n
        else:
            self._count(layout, n)

    def _count(self, layout: tuple[str, tuple[Any, ...]], n: int) -> None:
        src, keys = layout
        counts = self.row.key_counts
        per_source = self.row.source_keys.get(src)
        if per_source is None:
            per_source = self.row.source_keys[src] = source_counts()
        per_source[0] += n
        for k in keys:
            i = _KEY_INDEX.get(k)
            if i is not None:
                counts[i] += n
                per_source[i + 1] += n

    def merge(self, later: _RowState) -> None:
        """Fold in the same row of the input right after this one; layouts beyond the
        bound are counted key by key, as ``add_layout`` does (the counts are exact)."""
        self.row.merge(later.row)
        self.value_units += later.value_units
        self.row.value_sum = value_float(self.value_units)
        layouts = self.layouts
        for layout, n in later.layouts.items():
            if layout in layouts:
                layouts[layout] += n
            else:
                self.add_layout(layout, n)

    def finish(self) -> HourRollup:
        """The row with its layouts folded in; may be called again after more events."""
        for layout, n in self.layouts.items():
            self._count(layout, n)
        self.layouts.clear()
        self.row.value_sum = value_float(self.value_units)
        return self.row


class RollupAccumulator:
    """Folds deliveries of one dataset into hourly rollups; bounded by hours × names."""

    def __init__(self, dataset_id: str) -> None:
        self.dataset_id = dataset_id
        self.rows: dict[tuple[str, int], _RowState] = {}
        self._names: set[str] = set()
        self._newest = -1  # the newest hour with a row
        self._unfolded: list[_RowState] = []  # rows created since they were last folded

    def _row(self, name: str, hour: int) -> _RowState:
        if name not in self._names:
            if len(self._names) >= MAX_EVENT_NAMES:
                name = OTHER_EVENT
            else:
                self._names.add(name)
        state = self.rows.get((name, hour))
        if state is None:
            row = HourRollup(self.dataset_id, name, SOURCE_SERVER_LOG, hour)
            state = self.rows[(name, hour)] = _RowState(row)
            self._unfolded.append(state)
            if hour > self._newest:
                self._newest = hour
                self._fold_before(hour - FOLD_AFTER)
        return state

    def _fold_before(self, cutoff: int) -> None:
        """Fold the layouts of rows older than ``cutoff`` (late events for them start new
        layouts, folded at ``result``: counts are the same either way)."""
        keep = []
        for state in self._unfolded:
            if state.row.hour < cutoff:
                state.finish()
            else:
                keep.append(state)
        self._unfolded = keep

    def observe(self, d: Delivery) -> None:
        # Hot path (every event of every log line): locals and inlined lookups on purpose.
        events = d.events
        if not events:
            return
        if d.response is not None and d.response.is_error:
            self._observe_failed(d)
            return
        sent_at = d.sent_at
        rows = self.rows
        bounds = _BOUNDS
        bisect_left = bisect.bisect_left
        value_events = VALUE_EVENTS
        hour = int(sent_at // 3600 * 3600) if sent_at is not None else 0
        for ev, t, layout in zip(events, d.times, key_layouts(d), strict=True):
            if sent_at is None:
                hour = int(t // 3600 * 3600)
            state = rows.get((ev["event_name"], hour))
            if state is None:
                state = self._row(ev["event_name"], hour)
            row = state.row
            row.events += 1
            if ev.get("event_id"):
                row.with_event_id += 1
            if row.event_name in value_events:
                cd = ev.get("custom_data")
                value = cd.get("value") if cd.__class__ is dict else None
                # int or float, never bool (a subclass of int) nor a numeric string
                if value.__class__ is float or value.__class__ is int:
                    state.value_units += exact_value(value)
                    row.value_count += 1
            n = state.layouts.get(layout)
            if n is None:
                state.add_layout(layout)
            else:
                state.layouts[layout] = n + 1
            if sent_at is not None:
                row.latency_hist[bisect_left(bounds, sent_at - t)] += 1

    def _observe_failed(self, d: Delivery) -> None:
        """Events of failed requests are delivery errors, not accepted volume (CONTRACTS §6)."""
        err = error_key(d)
        for ev, event_time in zip(d.events, d.times, strict=True):
            t = d.sent_at if d.sent_at is not None else event_time
            row = self._row(ev["event_name"], int(t // 3600 * 3600)).row
            row.failed += 1
            row.error_codes[err] = row.error_codes.get(err, 0) + 1

    def merge(self, later: RollupAccumulator) -> None:
        """Fold in the rollup of the input right after this one (same dataset): rows add
        up. Event names new to us are admitted under ``MAX_EVENT_NAMES`` in ``later``'s
        first-seen order, as a sequential run would (exact unless ``later`` overflowed)."""
        target: dict[str, str] = {}  # later's name -> ours
        for (name, hour), theirs in later.rows.items():
            mine_name = target.get(name)
            if mine_name is None:
                mine_name = target[name] = self._merged_name(name, later)
            mine = self.rows.get((mine_name, hour))
            if mine is None:
                row = HourRollup(self.dataset_id, mine_name, SOURCE_SERVER_LOG, hour)
                mine = self.rows[(mine_name, hour)] = _RowState(row)
            mine.merge(theirs)

    def _merged_name(self, name: str, later: RollupAccumulator) -> str:
        if name not in later._names:  # later's own overflow row
            return OTHER_EVENT
        if name not in self._names:
            if len(self._names) >= MAX_EVENT_NAMES:
                return OTHER_EVENT
            self._names.add(name)
        return name

    def result(self) -> list[HourRollup]:
        rows = [state.finish() for state in self.rows.values()]
        return sorted(rows, key=lambda r: (r.hour, r.event_name))

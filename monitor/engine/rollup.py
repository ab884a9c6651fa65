"""Filling hourly rollups (``monitor.model.rollup``) from delivery observations.

The rollups are the only history of the logs we keep; no raw event or customer data
ever enters one.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
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
# Rows this far behind the newest hour are finished: their layouts are folded into
# key_counts and the row is packed (``_Packed``), so that a finished hour costs ~0.4 KB
# instead of ~1.4 KB (~5 KB with layouts): a 70-day audit keeps some 17,000 of them.
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


_HEAD = 4  # events, failed, with_event_id, value_count; then key_counts, latency_hist
_LATENCY_AT = _HEAD + len(MATCH_KEYS)


class _Packed:
    """A finished row (``_RowState.finish``), packed: its counts in one array, its error
    codes and ``action_source`` counts only when they say more than the counts (one
    source, the usual case, has ``[events, *key_counts]``: its name is enough)."""

    __slots__ = ("counts", "errors", "last_sent", "sources", "value_units")

    def __init__(self, state: _RowState) -> None:
        r = state.row
        self.counts = _packed(
            [r.events, r.failed, r.with_event_id, r.value_count, *r.key_counts, *r.latency_hist]
        )
        self.errors = r.error_codes or None
        self.sources: str | dict[str, list[int]] | None = r.source_keys or None
        if len(r.source_keys) == 1:
            ((src, counts),) = r.source_keys.items()
            if counts[0] == r.events and counts[1:] == r.key_counts:
                self.sources = src
        self.value_units = state.value_units
        self.last_sent = r.last_sent

    def rollup(self, dataset_id: str, event_name: str, hour: int) -> HourRollup:
        """The row as it was packed (sharing nothing with this)."""
        c = self.counts
        key_counts = list(c[_HEAD:_LATENCY_AT])
        sources = self.sources
        if sources is None:
            source_keys = {}
        elif isinstance(sources, str):
            source_keys = {sources: [c[0], *key_counts]}
        else:
            source_keys = {s: list(n) for s, n in sources.items()}
        return HourRollup(
            dataset_id, event_name, SOURCE_SERVER_LOG, hour, events=c[0], failed=c[1],
            with_event_id=c[2], key_counts=key_counts, latency_hist=list(c[_LATENCY_AT:]),
            error_codes=dict(self.errors or {}), value_sum=value_float(self.value_units),
            value_count=c[3], source_keys=source_keys, last_sent=self.last_sent,
        )  # fmt: skip

    def state(self, dataset_id: str, event_name: str, hour: int) -> _RowState:
        state = _RowState(self.rollup(dataset_id, event_name, hour))
        state.value_units = self.value_units
        return state


def _packed(counts: list[int]) -> Sequence[int]:
    """``counts`` (never negative) in the smallest array that holds them: most hours of
    most event names fit in 16 bits; a tuple beyond 64 bits."""
    top = max(counts)
    for typecode, bound in _TYPECODES:
        if top < bound:
            return array(typecode, counts)
    return tuple(counts)


_TYPECODES = tuple((t, 1 << (8 * array(t).itemsize)) for t in ("B", "H", "I", "Q"))


class RollupAccumulator:
    """Folds deliveries of one dataset into hourly rollups; bounded by hours × names.

    Rows within ``FOLD_AFTER`` of the newest hour are being filled (``rows``); older ones
    are packed (``_packed``) and unpacked again only for a late event (logs out of order)
    or when handed out (``result``)."""

    def __init__(self, dataset_id: str) -> None:
        self.dataset_id = dataset_id
        self.rows: dict[tuple[str, int], _RowState] = {}
        self._packed: dict[tuple[str, int], _Packed] = {}
        self._names: dict[str, None] = {}  # admitted event names, in first-seen order
        self._newest = -1  # the newest hour with a row
        self._unfolded: list[_RowState] = []  # rows being filled since the last fold

    def _row(self, name: str, hour: int) -> _RowState:
        if name not in self._names:
            if len(self._names) >= MAX_EVENT_NAMES:
                name = OTHER_EVENT
            else:
                self._names[name] = None
        state = self.rows.get((name, hour))
        if state is None:
            state = self._unpack(name, hour)
            if hour > self._newest:
                self._newest = hour
                self._fold_before(hour - FOLD_AFTER)
        return state

    def _unpack(self, name: str, hour: int) -> _RowState:
        """The row ``(name, hour)`` to fill: its packed form unpacked, or a new one."""
        packed = self._packed.pop((name, hour), None)
        if packed is None:
            state = _RowState(HourRollup(self.dataset_id, name, SOURCE_SERVER_LOG, hour))
        else:
            state = packed.state(self.dataset_id, name, hour)
        self.rows[(name, hour)] = state
        self._unfolded.append(state)
        return state

    def _fold_before(self, cutoff: int) -> None:
        """Finish and pack the rows older than ``cutoff`` (a late event for one unpacks it
        and starts new layouts: counts are the same either way)."""
        keep = []
        rows, packed = self.rows, self._packed
        for state in self._unfolded:
            row = state.row
            if row.hour < cutoff:
                state.finish()
                key = (row.event_name, row.hour)
                del rows[key]
                packed[key] = _Packed(state)
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
                if sent_at > row.last_sent:
                    row.last_sent = sent_at

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
        first-seen order, as a sequential run would (exact unless ``later`` overflowed).
        ``later`` is spent: its packed rows of hours we have no row for are taken as they
        are (parts are contiguous: most are); the others are unpacked and added up, and
        packed again once they are ``FOLD_AFTER`` behind the newest hour."""
        target = {name: self._merged_name(name) for name in later._names}
        rows, packed = self.rows, self._packed
        for (name, hour), theirs in later._packed.items():
            key = (target.get(name, OTHER_EVENT), hour)  # absent: later's overflow row
            if key not in rows and key not in packed:
                packed[key] = theirs
            else:
                self._state(*key).merge(theirs.state(later.dataset_id, name, hour))
        for (name, hour), state in later.rows.items():
            self._state(target.get(name, OTHER_EVENT), hour).merge(state)
        self._newest = max(self._newest, later._newest)
        self._fold_before(self._newest - FOLD_AFTER)

    def _state(self, name: str, hour: int) -> _RowState:
        state = self.rows.get((name, hour))
        return self._unpack(name, hour) if state is None else state

    def _merged_name(self, name: str) -> str:
        if name not in self._names:
            if len(self._names) >= MAX_EVENT_NAMES:
                return OTHER_EVENT
            self._names[name] = None
        return name

    def result(self) -> list[HourRollup]:
        """Every row, by hour and event name (new objects for the packed ones)."""
        rows = [state.finish() for state in self.rows.values()]
        dataset_id = self.dataset_id
        rows += [p.rollup(dataset_id, name, hour) for (name, hour), p in self._packed.items()]
        return sorted(rows, key=lambda r: (r.hour, r.event_name))

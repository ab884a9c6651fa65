"""Hourly series of one dataset, as the ``volume`` check reads them. The value types.

A ``VolumeHistory`` holds, per event name, the hourly ``HourRollup`` rows of the server
delivery logs (counts, ``event_id`` and match-key counts, Purchase value sums) and, when
the Graph API is polled, Meta's hourly browser/server counts. The engine builds it
(``monitor.engine.series``) and hands it to the checks in ``CheckContext.series``; the
check never touches the store.

How the audit's own rollups combine with the history (``Current``):

- ``included``: the history already holds them (a backtest that folds as it goes);
- ``replace``: the audit re-reads logs that may already be stored (``audit``): its hours
  replace the stored ones, as ``Store.record_audit`` does;
- ``add``: the history was loaded before this cycle's new lines (the daemon): its hours
  add up, as the daemon's ``add`` upsert does.

The time zone is the dataset's (``[[datasets]] timezone``), else ``[schedule] timezone``
(docs/contracts.md §6).
"""

from __future__ import annotations

import dataclasses as dc
import math
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo

from monitor.model.rollup import MATCH_KEYS, SOURCE_SERVER_LOG, HourRollup, add_source_keys

HOUR = 3600
WEEK = 7 * 86400


class Current(StrEnum):
    """How an audit's own rollups combine with the history (module docstring)."""

    INCLUDED = "included"
    REPLACE = "replace"
    ADD = "add"


@dataclass(slots=True)
class Sums:
    """What the ratio checks read of a span of hours of one event name, added up."""

    events: int = 0
    with_event_id: int = 0
    key_counts: list[int] = dc.field(default_factory=lambda: [0] * len(MATCH_KEYS))
    value_sum: float = 0.0
    value_count: int = 0
    # action_source -> [events, then per MATCH_KEYS the events carrying the key]
    source_keys: dict[str, list[int]] = dc.field(default_factory=dict)

    def add(self, r: HourRollup) -> None:
        self.events += r.events
        self.with_event_id += r.with_event_id
        counts = self.key_counts
        for i, n in enumerate(r.key_counts):
            if n:
                counts[i] += n
        self.value_sum += r.value_sum
        self.value_count += r.value_count
        if r.source_keys:
            add_source_keys(self.source_keys, r.source_keys)

    def copy(self) -> Sums:
        return dc.replace(
            self,
            key_counts=list(self.key_counts),
            source_keys={s: list(c) for s, c in self.source_keys.items()},
        )


BlockMemo = MutableMapping[tuple[str, int, int], Sums]


@dataclass(frozen=True, slots=True)
class VolumeHistory:
    """The hourly series of one dataset (module docstring). Read-only for checks.

    ``rollups``: event name -> UTC hour start -> the server-log rollup of that hour
    (hours without a row after ``first_hour`` had no events). ``first_hour``: the first
    hour of log history (``None``: none); hours before it are unknown, not zero.
    ``graph``: event name -> hour -> ``(browser, server)`` as Meta counted them;
    ``graph_first_hour`` likewise. ``current``: see ``Current``.

    ``memo`` (optional, for an engine that keeps a history across evaluations, such as
    the backtest): block sums already computed; only blocks ending at or before
    ``memo_until`` (hours whose rows are final) are read from or written to it.
    """

    dataset_id: str
    timezone: str
    rollups: Mapping[str, Mapping[int, HourRollup]]
    first_hour: int | None
    graph: Mapping[str, Mapping[int, tuple[float, float]]] = dc.field(default_factory=dict)
    graph_first_hour: int | None = None
    current: Current = Current.INCLUDED
    memo: BlockMemo | None = dc.field(default=None, compare=False)
    memo_until: float = math.inf
    # Local days listed in ``[calendar]`` for the dataset: days of traffic, not tracking.
    calendar: frozenset[date] = frozenset()
    # The histories of the other datasets of its ``country`` in the same config (their
    # own ``peers`` empty): a holiday moves them too, a breakage of this one not.
    peers: tuple[VolumeHistory, ...] = dc.field(default=(), compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def block(self, event_name: str, start: int, stop: int) -> Sums:
        """The server-log rows of ``event_name`` in the hours ``[start, stop)``, summed."""
        memo = self.memo if stop <= self.memo_until else None
        key = (event_name, start, stop)
        if memo is not None and (hit := memo.get(key)) is not None:
            return hit
        out = Sums()
        hours = self.rollups.get(event_name, {})
        for h in range(start, stop, HOUR):
            r = hours.get(h)
            if r is not None:
                out.add(r)
        if memo is not None:
            memo[key] = out
        return out

    def latest_hour(self) -> int | None:
        """The newest hour with server-log events."""
        return max((max(hours) for hours in self.rollups.values() if hours), default=None)

    def with_current(self, rollups: Sequence[HourRollup]) -> VolumeHistory:
        """This history with an audit's own ``rollups`` folded in per ``current``; the
        result is ``included``. Only the event names touched are copied."""
        mine = [r for r in rollups if r.source == SOURCE_SERVER_LOG]
        if self.current is Current.INCLUDED or not mine:
            return dc.replace(self, current=Current.INCLUDED)
        merged: dict[str, dict[int, HourRollup]] = {}
        for r in mine:
            hours = merged.get(r.event_name)
            if hours is None:
                hours = merged[r.event_name] = dict(self.rollups.get(r.event_name, {}))
            stored = hours.get(r.hour)
            if self.current is Current.ADD and stored is not None:
                hours[r.hour] = _added(stored, r)
            else:
                hours[r.hour] = r
        first = min(r.hour for r in mine)
        return dc.replace(
            self,
            rollups={**self.rollups, **merged},
            first_hour=first if self.first_hour is None else min(first, self.first_hour),
            current=Current.INCLUDED,
            memo_until=min(self.memo_until, first),  # memoised blocks must not see them
        )


def _added(a: HourRollup, b: HourRollup) -> HourRollup:
    """``a + b`` as a new row (rows of a history are never mutated)."""
    out = a.copy()
    out.merge(b)
    return out

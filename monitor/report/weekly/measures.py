"""Measures the weekly pages and charts share: totals of rollups, percentiles of latency
histograms, the newest Dataset Quality reading per event."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.model.rollup import LATENCY_BOUNDS, MATCH_KEYS, HourRollup


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of a latency histogram over ``LATENCY_BOUNDS``, linear
    within its bucket; the open last bucket reports its lower bound."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            if i >= len(LATENCY_BOUNDS):
                return float(LATENCY_BOUNDS[-1])
            upper = float(LATENCY_BOUNDS[i])
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
        lower = float(LATENCY_BOUNDS[i]) if i < len(LATENCY_BOUNDS) else lower
    return float(LATENCY_BOUNDS[-1])


@dataclass(slots=True)
class Totals:
    """Rollups added up: one event name, one window (or a bucket of it)."""

    events: int = 0
    failed: int = 0
    with_event_id: int = 0
    keys: list[int] = field(default_factory=lambda: [0] * len(MATCH_KEYS))
    hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, r: HourRollup) -> None:
        self.events += r.events
        self.failed += r.failed
        self.with_event_id += r.with_event_id
        self.keys = [a + b for a, b in zip(self.keys, r.key_counts, strict=True)]
        self.hist = [a + b for a, b in zip(self.hist, r.latency_hist, strict=True)]
        self.errors.update(r.error_codes)

    def share(self, n: int) -> float | None:
        return n / self.events if self.events else None

    def key_share(self, key: str) -> float | None:
        return self.share(self.keys[MATCH_KEYS.index(key)])

    @property
    def error_rate(self) -> float | None:
        sent = self.events + self.failed
        return self.failed / sent if sent else None


def totals(rollups: Iterable[HourRollup]) -> dict[str, Totals]:
    """Per event name, plus ``""`` for all names together."""
    out: dict[str, Totals] = defaultdict(Totals)
    for r in rollups:
        out[r.event_name].add(r)
        out[""].add(r)
    return out


def latest_by_event(readings: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for r in readings:  # oldest first: later readings win
        out[r["event_name"]] = r
    return out


def number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

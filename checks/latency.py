"""The ``latency`` check, log-based part: how long events wait before they are sent.

For every event of a delivery with a send time (log shape a), lag = ``sent_at −
event_time``. Negative lags (events "from the future") are the payload check's business
and count as 0 here. Lags go into a per-event-name histogram of log-spaced buckets
(ratio 1.02, so a reported percentile is within 1 % of the true value above 1 s and
within 0.5 s below), and the configured thresholds are bucket edges themselves: whether a
p95 exceeds a threshold is therefore decided exactly, not within the 1 %.

``LATENCY_HIGH``
    p95 over ``[checks.latency] warn_p95`` (default 1 h) → ``warn``; over ``crit_p95``
    (24 h) → ``crit``. Judged overall and per event name (names with at least
    ``min_events`` events; not the ``(other)`` bucket, which only counts overall);
    ``event_names`` lists the names whose p95 is over ``warn_p95``;
    ``count`` is the number of events with a lag over ``warn_p95``. Meta counts an event
    only once it is received, and rejects a whole request once an event is 7 days old
    (docs/meta-capi.md §8, §11).

Without any send time the check is ``skipped``. Memory: one bucket array per event name,
at most ``MAX_EVENT_NAMES`` names (later names share ``(other)``).

Graph part (``ctx.graph``, see ``checks.graph_common``): Dataset Quality
``data_freshness.upload_frequency`` per event name (docs/meta-capi.md §3), for names with at
least ``freshness_min_events`` (20) events in the ``/stats`` window (unknown: judged).

``FRESHNESS_SLOW``
    Meta sees the events arrive ``daily`` (``freshness_warn``, ``warn``) or ``weekly``
    (``freshness_crit``, ``crit``): slower than ``real_time``/``hourly``. One finding per
    frequency, naming its events. ``daily``/``weekly`` are Meta's scale in Events Manager
    but undocumented as API values [UNCONFIRMED].
``FRESHNESS_UNRECOGNISED`` (info)
    any other value, kept verbatim: unknown is reported, never judged as slow (§12).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from functools import lru_cache
from typing import Any, ClassVar

from checks.base import (
    MAX_EXAMPLES,
    CheckContext,
    Tally,
    make_finding,
    names_text,
    result_from_findings,
    skipped,
)
from checks.graph_common import (
    GraphPart,
    GraphState,
    combine,
    enough,
    error_text,
    event_volumes,
    graph_finding,
    not_polled,
    skipped_part,
    volume_count,
)
from monitor.model.findings import CheckResult, Example, Finding, Severity
from monitor.model.graph import Part
from monitor.model.observations import Delivery
from monitor.model.rollup import OTHER_EVENT

LATENCY_HIGH = "LATENCY_HIGH"
FIELD = "event_time"
MAX_EVENT_NAMES = 100
MAX_LAG = 10 * 365 * 86400.0  # lags are capped here so evidence stays finite
_RATIO = 1.02


@lru_cache(maxsize=8)
def bucket_bounds(*edges: float) -> tuple[float, ...]:
    """Upper bucket bounds: 1 s × 1.02ⁿ up to ``MAX_LAG``, plus ``edges`` as exact bounds.

    Bucket ``i`` holds lags in ``(bounds[i-1], bounds[i]]`` (bucket 0: ``[0, bounds[0]]``).
    """
    n = math.ceil(math.log(MAX_LAG) / math.log(_RATIO))
    bounds = {_RATIO**i for i in range(n)} | {MAX_LAG}
    bounds.update(e for e in edges if 0 < e < MAX_LAG)
    return tuple(sorted(bounds))


class LagHistogram:
    """Lags of one event name: bucket counts, exact maximum, a few late examples."""

    __slots__ = ("counts", "examples", "max")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.max = 0.0
        self.examples: list[tuple[str, int, float]] = []  # (file, line, lag) over warn

    @property
    def total(self) -> int:
        return sum(self.counts)

    def merge(self, other: LagHistogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.max = max(self.max, other.max)

    def quantiles(self, bounds: tuple[float, ...], *qs: float) -> list[float]:
        """Nearest-rank quantiles, each the geometric middle of its bucket (≤ max)."""
        total = self.total
        ranks = [max(1, math.ceil(q * total)) for q in qs]
        out: list[float] = []
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            while len(out) < len(ranks) and seen >= ranks[len(out)]:
                lo = bounds[i - 1] if i else 0.0
                mid = math.sqrt(lo * bounds[i]) if lo else bounds[i] / 2
                out.append(min(mid, self.max))
            if len(out) == len(ranks):
                break
        return out

    def over(self, edge_index: int) -> int:
        """Events in buckets above the bound ``bounds[edge_index]`` (exact)."""
        return sum(self.counts[edge_index + 1 :])


class Latency:
    """Folds send-time lags into per-event-name histograms."""

    id: ClassVar[str] = "latency"
    weight: ClassVar[float] = 1.0  # in the health score
    reads_graph: ClassVar[bool] = True
    title: ClassVar[str] = "Send latency"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        cfg = ctx.settings.latency
        self._warn = float(cfg.warn_p95)
        self._crit = float(cfg.crit_p95)
        self._min_events = cfg.min_events
        self._bounds = bucket_bounds(self._warn, self._crit)
        self._warn_index = self._bounds.index(self._warn)
        self._crit_index = self._bounds.index(self._crit)
        self._by_name: dict[str, LagHistogram] = {}

    def observe(self, delivery: Delivery) -> None:
        sent = delivery.sent_at
        if sent is None:
            return
        bounds, by_name, warn = self._bounds, self._by_name, self._warn
        for ev, t in zip(delivery.events, delivery.times, strict=True):
            lag = sent - t
            if not lag >= 0.0:  # negative or NaN: clamped, the payload check judges it
                lag = 0.0
            elif lag > MAX_LAG:
                lag = MAX_LAG
            hist = by_name.get(ev["event_name"])
            if hist is None:
                hist = self._histogram(ev["event_name"])
            hist.counts[bisect_left(bounds, lag)] += 1
            if lag > hist.max:
                hist.max = lag
            if lag > warn and len(hist.examples) < MAX_EXAMPLES:
                hist.examples.append((delivery.file, delivery.line, lag))

    def _histogram(self, name: str) -> LagHistogram:
        if len(self._by_name) >= MAX_EVENT_NAMES:
            name = OTHER_EVENT
        hist = self._by_name.get(name)
        if hist is None:
            hist = self._by_name[name] = LagHistogram(len(self._bounds))
        return hist

    def merge(self, later: Latency) -> None:
        """Fold in the histograms of the input right after this one (``Check.merge``):
        counts add up, maxima are kept, late examples keep the earlier ones first, new
        names are bounded as in ``observe`` (exact unless ``later`` itself overflowed)."""
        for name, theirs in later._by_name.items():
            mine = self._by_name.get(name)
            if mine is None:
                mine = self._histogram(name)
            mine.merge(theirs)
            room = MAX_EXAMPLES - len(mine.examples)
            if room > 0:
                mine.examples.extend(theirs.examples[:room])

    def _overall(self) -> LagHistogram:
        total = LagHistogram(len(self._bounds))
        for hist in self._by_name.values():
            total.merge(hist)
        return total

    def _stats(self, hist: LagHistogram) -> dict[str, float]:
        p50, p95 = hist.quantiles(self._bounds, 0.50, 0.95)
        return {"count": hist.total, "p50": round(p50, 1), "p95": round(p95, 1),
                "max": round(hist.max, 1)}  # fmt: skip

    def percentiles(self) -> dict[str, Any]:
        """Seconds of lag: ``{"overall": {count, p50, p95, max}, "by_event_name": {...}}``.

        Empty dicts when no event had a send time. Values are within 1 % (see module doc).
        """
        if not self._by_name:
            return {"overall": {}, "by_event_name": {}}
        return {
            "overall": self._stats(self._overall()),
            "by_event_name": {n: self._stats(h) for n, h in sorted(self._by_name.items())},
        }

    def _p95_over(self, hist: LagHistogram, edge_index: int) -> bool:
        """Exact: is the nearest-rank p95 above the bound ``bounds[edge_index]``?

        p95 is the value of rank ⌈0.95·n⌉, so it exceeds the bound exactly when fewer
        than that many lags are at or below it. Histograms under ``min_events`` are not
        judged.
        """
        total = hist.total
        at_or_below = total - hist.over(edge_index)
        return total >= self._min_events and at_or_below < math.ceil(0.95 * total)

    def result(self) -> CheckResult:
        """The log part combined with the Graph part (``checks.graph_common.combine``)."""
        return combine(self.log_result(), graph_part(self.ctx))

    def log_result(self) -> CheckResult:
        """``LATENCY_HIGH`` when a p95 is over ``warn_p95``; ``skipped`` without send times."""
        if not self._by_name:
            return skipped(self.id, "no send times in the logs (shapes b/c)")
        overall = self._overall()
        stats = self._stats(overall)
        finding = self._finding(overall, stats)
        ok = (
            f"p95 send latency {_human(stats['p95'])} (p50 {_human(stats['p50'])}, "
            f"max {_human(stats['max'])}) over {stats['count']} events with a send time."
        )
        bad = finding.message if finding else ok
        return result_from_findings(self.id, [finding] if finding else [], overall.total, ok, bad)

    def _finding(self, overall: LagHistogram, stats: dict[str, float]) -> Finding | None:
        late = sorted(
            n
            for n, h in self._by_name.items()
            if n != OTHER_EVENT and self._p95_over(h, self._warn_index)
        )
        if not late and not self._p95_over(overall, self._warn_index):
            return None
        crit = self._p95_over(overall, self._crit_index) or any(
            self._p95_over(self._by_name[n], self._crit_index) for n in late
        )
        tally = self._tally(late, overall)
        severity = Severity.CRIT if crit else Severity.WARN
        worst = max([stats["p95"]] + [self._stats(self._by_name[n])["p95"] for n in late])
        subject = f"{names_text(late)} events" if late else "Events"
        message = (
            f"{subject} are sent late: p95 lag up to {_human(worst)} "
            f"(overall p50 {_human(stats['p50'])}, p95 {_human(stats['p95'])}, max "
            f"{_human(stats['max'])}; {tally.count} of {stats['count']} events over "
            f"{_human(self._warn)})."
        )
        remediation = (
            "Send each event to Meta within minutes of the action: replace nightly or "
            "hourly batch jobs with a queue flushed every few seconds, bound retry back-off, "
            "and set event_time to when the action happened, not when it was queued."
        )
        evidence = {
            **{f"{k}_seconds": v for k, v in stats.items() if k != "count"},
            "events_with_send_time": stats["count"],
            "warn_p95_seconds": self._warn,
            "crit_p95_seconds": self._crit,
            "by_event_name": {n: self._stats(self._by_name[n]) for n in late},
        }
        return make_finding(self.id, tally, severity, message, remediation, evidence)

    def _tally(self, late: list[str], overall: LagHistogram) -> Tally:
        """Count = every event over ``warn_p95``; names = those whose p95 is over it."""
        tally = Tally(LATENCY_HIGH, FIELD)
        for name in late:
            hist = self._by_name[name]
            n = hist.over(self._warn_index)
            for file, line, lag in hist.examples:  # never empty: p95 over warn has late events
                tally.add(name, file, line, _late_text(lag), n)
                n = 0
        if not late:  # only the overall p95 is late: examples from any name, no names
            for hist in self._by_name.values():
                for file, line, lag in hist.examples[: MAX_EXAMPLES - len(tally.examples)]:
                    tally.examples.append(Example(file, line, _late_text(lag)))
        # Events over warn_p95 in names not judged late (or below min_events) count too.
        tally.count = overall.over(self._warn_index)
        return tally


def _late_text(lag: float) -> str:
    """An example's value: our own wording of a lag, nothing from the event."""
    return f"sent {_human(lag)} after event_time"


def _human(seconds: float) -> str:
    """``45 s``, ``12.5 min``, ``3.2 h``, ``2.1 d``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


# -------------------------------------------------- Graph part: Meta's data freshness

FRESHNESS_SLOW = "FRESHNESS_SLOW"
FRESHNESS_UNRECOGNISED = "FRESHNESS_UNRECOGNISED"
# Events Manager's scale runs Real Time -> Weekly (docs/meta-capi.md §3); faster first.
FRESHNESS_ORDER = {"real_time": 0, "hourly": 1, "daily": 2, "weekly": 3}


def graph_part(ctx: CheckContext) -> GraphPart:
    """``FRESHNESS_SLOW`` (and ``FRESHNESS_UNRECOGNISED``) from ``ctx.graph``."""
    snap = ctx.graph
    if snap is None:
        return skipped_part()
    if (skipped := not_polled(snap, [Part.DATASET_QUALITY])) is not None:
        return skipped
    if not snap.ok(Part.DATASET_QUALITY):
        return GraphPart(GraphState.ERROR, error_text(snap, [Part.DATASET_QUALITY]))
    cfg = ctx.settings.latency
    volumes = event_volumes(snap)
    by_value: dict[str, list[str]] = {}
    for q in snap.quality or ():
        value = q.upload_frequency
        if value is not None and enough(volumes, q.event_name, cfg.freshness_min_events):
            by_value.setdefault(value, []).append(q.event_name)
    if not by_value:
        why = "no upload frequency for an event name with enough events."
        return GraphPart(GraphState.NOT_JUDGED, why)
    findings = [
        f for v, names in sorted(by_value.items()) if (f := _freshness(ctx, v, names, volumes))
    ]
    shown = ", ".join(f"{v} ({len(n)})" for v, n in sorted(by_value.items()))
    return GraphPart(GraphState.EVALUATED, f"upload frequency {shown}.", findings)


def _freshness(
    ctx: CheckContext, value: str, names: list[str], volumes: dict[str, int] | None
) -> Finding | None:
    cfg = ctx.settings.latency
    count = sum(volume_count(volumes, n) for n in names)
    rank = FRESHNESS_ORDER.get(value)
    names = sorted(names)
    evidence = {"upload_frequency": value, "warn_from": cfg.freshness_warn,
                "crit_from": cfg.freshness_crit}  # fmt: skip
    if rank is None:
        msg = f"Meta reports an upload frequency of {value!r} for {names_text(names)}."
        rem = "No action needed unless Events Manager shows a delay; report the value."
        return graph_finding(
            Latency.id, FRESHNESS_UNRECOGNISED, Severity.INFO, count, msg, rem,
            event_names=names, field_name="data_freshness.upload_frequency", evidence=evidence,
        )  # fmt: skip
    if rank < FRESHNESS_ORDER[cfg.freshness_warn]:
        return None
    severity = Severity.CRIT if rank >= FRESHNESS_ORDER[cfg.freshness_crit] else Severity.WARN
    msg = (
        f"Meta receives {names_text(names)} events {value.replace('_', ' ')}, not in real "
        "time: events uploaded late reach optimisation and attribution late."
    )
    rem = (
        "Send each event when it happens (or at least every few minutes) instead of daily "
        "or weekly batch uploads; Meta recommends sending within an hour."
    )
    return graph_finding(
        Latency.id, FRESHNESS_SLOW, severity, count, msg, rem,
        event_names=names, field_name="data_freshness.upload_frequency", evidence=evidence,
    )  # fmt: skip

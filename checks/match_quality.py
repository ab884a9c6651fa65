"""The ``match_quality`` check, log-based part: an *estimated* Event Match Quality.

Meta publishes no EMQ formula (docs/meta-capi.md §9), so this is a local heuristic, labelled
"estimated" everywhere; Meta's own ``composite_score`` is the ground truth when the Graph
API is available. Per event name we measure the coverage of each key in
``monitor.model.rollup.MATCH_KEYS``: the share of events whose ``user_data`` holds a present
value (not null, ``""`` or ``[]``, the same rule as the hourly rollups). Then::

    estimate = min(10, Σ WEIGHTS[key] × coverage[key])      coverage in 0..1

``WEIGHTS`` follow the tiers of docs/meta-capi.md §9: email and ``fbc`` high; phone,
``external_id``, IP address, ``fbp`` (and the user agent that always travels with the IP)
medium; birthdate and country low-medium; names, city, state, zip and gender low. They are
calibrated so that a well-instrumented web setup (em, ph, IP, user agent, fbp, fbc on
~50 % of events, external_id, fn, ln) scores about 8.75, em + ph + IP + UA + fbp 6.5, and
IP + UA + fbp only 3.25. Every key at full coverage sums to 11.05, capped at 10.

``MATCH_KEY_COVERAGE_LOW``
    One finding per conversion event name and ``action_source`` with at least
    ``[checks.match_quality] min_events`` events (default 20) whose estimate is below
    ``warn_score`` (6.0, ``warn``) or ``crit_score`` (4.0, ``crit``) *with confidence*:
    ``estimate + score_z × σ`` (3 standard errors: the sliding day is judged every
    cycle, so one bucket is looked at many times a week) is below the floor, ``σ`` the
    standard error of the estimate over the window's events (each event scores the
    weights of its keys, keys taken as independent: ``match_keys.standard_error``). An
    estimate hovering at the floor from a day's few events is not a finding; the same
    level over thousands of events is. ``field`` is the key whose absence costs the most
    points (``user_data.em``...); ``count`` the events of that name lacking it; the
    evidence holds the estimate, its ``upper_bound``, per-key coverage % and
    ``"estimated": true``. Names under ``min_events`` are not judged (the summary says
    so), nor is the ``(other)`` bucket.

``MATCH_KEY_DROP`` (from the logs)
    The share of events of one event name and ``action_source`` carrying one key fell
    against its recent days: ``checks.match_drop`` (every event name; needs the stored
    hourly series, so the daemon, the backtest or an audit with a store). One finding
    per event name × action_source × key, ``field`` ``user_data.<key>``.

Memory: per event name (at most ``MAX_EVENT_NAMES``) a bounded table of key layouts.

Graph part (``ctx.graph``, see ``checks.graph_common``): Meta's own EMQ from Dataset
Quality (docs/meta-capi.md §3, §9), per event name with at least ``emq_min_events`` (20)
events in the ``/stats`` window (unknown volume: judged).

``EMQ_LOW``
    ``composite_score`` below ``emq_warn_score`` (6.0, ``warn``) or ``emq_crit_score``
    (4.0, ``crit``); Meta's "aim for at least 6.0".
``EMQ_DROP``
    ``composite_score`` at least ``emq_drop_points`` (1.0) below the median of the stored
    readings of the last ``history_window`` (7 d; at least ``history_min_polls``);
    ``crit`` from ``emq_drop_crit_points`` (3.0). §11: "drop >= 1 point in 48 h".
``MATCH_KEY_DROP`` (warn, from Meta)
    the coverage of a ``match_key_feedback`` key at least ``key_drop_points`` (20)
    percentage points below its median in the same history; one finding per event name,
    ``field`` the key that fell most. §9: explain drops with key coverage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from checks.base import (
    MAX_EXAMPLES,
    CheckContext,
    Tally,
    make_finding,
    result_from_findings,
    skipped,
)
from checks.baseline import HOUR, hour_start
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
from checks.match_drop import drop_finding, key_drops
from checks.match_keys import (
    ADVICE,
    CONVERSION_EVENTS,
    charged,
    credited,
    estimate,
    source_label,
    standard_error,
    weights,
)
from monitor.mask import MAX_SHOWN
from monitor.model.findings import CheckResult, Example, Finding, Severity
from monitor.model.graph import EventQuality, Part
from monitor.model.observations import Delivery
from monitor.model.rollup import MATCH_KEYS, OTHER_EVENT, HourRollup, key_layouts
from monitor.model.series import Current, VolumeHistory

MATCH_KEY_COVERAGE_LOW = "MATCH_KEY_COVERAGE_LOW"
MAX_EVENT_NAMES = 100
MAX_LAYOUTS = 256  # ~300 bytes each: under 8 MB even at MAX_EVENT_NAMES
MAX_LAYOUT_KEYS = 32

_INDEX = {k: i for i, k in enumerate(MATCH_KEYS)}
Bucket = tuple[str, str]  # (event name, action_source bucket: monitor.model.rollup.source_key)


class KeyCounts:
    """Events of one name and how many carried each match key.

    Events are counted by *layout*, the tuple of ``user_data`` keys with a present value:
    one sender produces few layouts, so the hot path is one tuple and one dict update per
    event instead of a loop over keys. At most ``MAX_LAYOUTS`` layouts (of at most
    ``MAX_LAYOUT_KEYS`` keys) are kept per name; other events are counted key by key.
    The first delivery of each layout is kept as a sample for the findings' examples.
    """

    __slots__ = ("events", "layouts", "overflow", "samples")

    def __init__(self) -> None:
        self.events = 0
        self.layouts: dict[tuple[Any, ...], int] = {}
        self.samples: dict[tuple[Any, ...], tuple[str, int]] = {}
        self.overflow = [0] * len(MATCH_KEYS)

    def add_layout(self, layout: tuple[Any, ...], delivery: Delivery) -> None:
        """Slow path: a layout not counted yet."""
        if len(self.layouts) < MAX_LAYOUTS and len(layout) <= MAX_LAYOUT_KEYS:
            self.layouts[layout] = 1
            self.samples[layout] = (delivery.file, delivery.line)
            return
        for k in layout:
            i = _INDEX.get(k)
            if i is not None:
                self.overflow[i] += 1

    def merge(self, later: KeyCounts) -> None:
        """Fold in the counts of the input right after this one: new layouts (with their
        samples) are taken while there is room, the rest counted key by key, as
        ``add_layout`` does; the per-key counts are exact either way."""
        self.events += later.events
        self.overflow = [a + b for a, b in zip(self.overflow, later.overflow, strict=True)]
        layouts = self.layouts
        for layout, n in later.layouts.items():
            if layout in layouts:
                layouts[layout] += n
            elif len(layouts) < MAX_LAYOUTS:
                layouts[layout] = n
                self.samples[layout] = later.samples[layout]
            else:
                for k in layout:
                    i = _INDEX.get(k)
                    if i is not None:
                        self.overflow[i] += n

    @property
    def counts(self) -> list[int]:
        """Per match key (``MATCH_KEYS`` order): events carrying a present value."""
        counts = list(self.overflow)
        for layout, n in self.layouts.items():
            for k in layout:
                i = _INDEX.get(k)
                if i is not None:
                    counts[i] += n
        return counts

    def coverage(self) -> dict[str, float]:
        n = self.events or 1
        return {k: c / n for k, c in zip(MATCH_KEYS, self.counts, strict=True)}

    def examples_without(self, key: str) -> list[Example]:
        """Up to ``MAX_EXAMPLES`` sample events lacking ``key``, commonest layout first.

        The value lists key *names* only, never values: nothing personal to mask.
        """
        out: list[Example] = []
        for layout in sorted(self.samples, key=lambda lay: -self.layouts[lay]):
            if key not in layout and len(out) < MAX_EXAMPLES:
                file, line = self.samples[layout]
                keys = ",".join(k for k in MATCH_KEYS if k in layout) or "no match keys"
                out.append(Example(file, line, f"has: {keys}"[:MAX_SHOWN]))
        return out


@dataclass(frozen=True, slots=True)
class Coverage:
    """Events of one (event name, action_source) bucket and how many carried each key
    (``MATCH_KEYS`` order), over the window judged; ``sample`` the observed layouts, for
    examples (``None``: none observed in this run)."""

    events: int
    counts: tuple[int, ...]
    sample: KeyCounts | None = None

    def shares(self) -> dict[str, float]:
        n = self.events or 1
        return {k: c / n for k, c in zip(MATCH_KEYS, self.counts, strict=True)}


class MatchQuality:
    """Folds ``user_data`` key presence into per (event name, action_source) counters and
    judges conversion events against an absolute floor over a stable window."""

    id: ClassVar[str] = "match_quality"
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = True
    title: ClassVar[str] = "Match quality (estimated)"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        cfg = ctx.settings.match_quality
        self._min_events = cfg.min_events
        self._warn = cfg.warn_score
        self._crit = cfg.crit_score
        self._score_z = cfg.score_z
        self._window = cfg.window
        self._by_bucket: dict[Bucket, KeyCounts] = {}
        self._names: set[str] = set()
        self._series = ctx.series
        self._rollups: list[HourRollup] = []
        self._merged: VolumeHistory | None = None

    def observe(self, delivery: Delivery) -> None:
        by_bucket = self._by_bucket
        for ev, (src, layout) in zip(delivery.events, key_layouts(delivery), strict=True):
            bucket = (ev["event_name"], src)
            kc = by_bucket.get(bucket)
            if kc is None:
                kc = self._counts(bucket)
            kc.events += 1
            n = kc.layouts.get(layout)
            if n is None:
                kc.add_layout(layout, delivery)
            else:
                kc.layouts[layout] = n + 1

    def _counts(self, bucket: Bucket) -> KeyCounts:
        name, source = bucket
        if name not in self._names:
            if len(self._names) >= MAX_EVENT_NAMES:
                bucket = (OTHER_EVENT, source)
            else:
                self._names.add(name)
        kc = self._by_bucket.get(bucket)
        if kc is None:
            kc = self._by_bucket[bucket] = KeyCounts()
        return kc

    def merge(self, later: MatchQuality) -> None:
        """Fold in the counts of the input right after this one (``Check.merge``); new
        names are bounded as in ``observe`` (exact unless ``later`` itself overflowed)."""
        for bucket, theirs in later._by_bucket.items():
            mine = self._by_bucket.get(bucket)
            if mine is None:
                mine = self._counts(bucket)
            mine.merge(theirs)

    def use_series(self, series: VolumeHistory | None) -> None:
        """The dataset's stored hourly rollups (``checks.volume.UsesSeries``): in the daemon
        and the backtest the estimate covers the last ``window`` of them."""
        self._series = series
        self._merged = None

    def use_rollups(self, rollups: Sequence[HourRollup]) -> None:
        """This run's own rollups, added to the stored ones (``UsesRollups``)."""
        self._rollups = list(rollups)
        self._merged = None

    # --- the window judged ---------------------------------------------------------------

    def coverages(self) -> dict[Bucket, Coverage]:
        """Per (event name, action_source): what the estimate is judged on. A daemon cycle
        or a backtest step sees a few minutes of events, which would make the estimate
        jump from batch to batch: there it covers the stored rollups of the last
        ``window`` (a day) plus this cycle's. An audit judges the events it read."""
        series = self._series
        if series is None or series.current is Current.REPLACE:
            return {
                b: Coverage(kc.events, tuple(kc.counts), kc) for b, kc in self._by_bucket.items()
            }
        history = self._history(series)
        first = hour_start(self.ctx.now - self._window) + HOUR
        last = hour_start(self.ctx.now)
        sums: dict[Bucket, list[int]] = {}
        for name, hours in history.rollups.items():
            for hour in range(first, last + HOUR, HOUR):
                row = hours.get(hour)
                if row is None:
                    continue
                for source, counts in row.source_keys.items():
                    acc = sums.get((name, source))
                    if acc is None:
                        sums[(name, source)] = list(counts)
                    else:
                        sums[(name, source)] = [a + b for a, b in zip(acc, counts, strict=True)]
        return {b: Coverage(c[0], tuple(c[1:]), self._by_bucket.get(b)) for b, c in sums.items()}

    def _history(self, series: VolumeHistory) -> VolumeHistory:
        """The stored series with this run's rollups folded in (computed once)."""
        if self._merged is None:
            self._merged = series.with_current(self._rollups)
        return self._merged

    def estimates(self) -> dict[Bucket, float]:
        """(event name, action_source) -> estimated match quality 0–10 (a heuristic, not
        Meta's EMQ), over the window judged."""
        return {
            b: round(estimate(c.shares(), b[1]), 2) for b, c in sorted(self.coverages().items())
        }

    # --- result --------------------------------------------------------------------------

    def result(self) -> CheckResult:
        """The log part combined with the Graph part (``checks.graph_common.combine``)."""
        return combine(self.log_result(), graph_part(self.ctx))

    def log_result(self) -> CheckResult:
        """``MATCH_KEY_COVERAGE_LOW`` per judged conversion event and action_source, and
        ``MATCH_KEY_DROP`` per event name, action_source and key (``checks.match_drop``);
        ``skipped`` without events or when no bucket has ``min_events``."""
        if not self._by_bucket:
            return skipped(self.id, "no events in the logs")
        coverages = self.coverages()
        judged = {
            b: c
            for b, c in coverages.items()
            if c.events >= self._min_events and b[0] != OTHER_EVENT
        }
        unjudged = sorted({n for n, _ in coverages} - {n for n, _ in judged})
        not_judged = (
            f" Not judged (fewer than {self._min_events} events): {', '.join(unjudged[:5])}"
            + (f" and {len(unjudged) - 5} more." if len(unjudged) > 5 else ".")
            if unjudged
            else ""
        )
        drops = self.drop_findings()
        if not judged and not drops:
            return skipped(self.id, f"Too few events to estimate match quality.{not_judged}")
        low = self.log_findings(judged)
        scores = {b: estimate(c.shares(), b[1]) for b, c in judged.items()}
        held = [b for b in scores if b[0] in CONVERSION_EVENTS]
        head = f"Estimated match quality (local heuristic) of {len(judged)} event names"
        if held:
            worst = min(held, key=lambda b: (scores[b], b))
            head += (
                f"; lowest conversion event {worst[0]} ({source_label(worst[1])}) "
                f"{scores[worst]:.1f}/10."
            )
        else:
            head += (
                ": no conversion event with enough events, upper-funnel events are judged "
                "against their own history (MATCH_KEY_DROP)."
            )
        bad = f"{head} {len(low)} below {self._warn:g}."
        if drops:
            bad += f" {len(drops)} match key(s) fell against their recent days."
        total = sum(c.events for c in judged.values())
        findings = low + drops
        return result_from_findings(self.id, findings, total, head + not_judged, bad + not_judged)

    def drop_findings(self) -> list[Finding]:
        """``MATCH_KEY_DROP``: a key's share fell against its recent days (needs the
        stored series: the daemon, the backtest, an audit with a store)."""
        if self._series is None:
            return []
        history = self._history(self._series)
        out = []
        for drop in key_drops(history, self.ctx.now, self.ctx.settings.match_quality):
            kc = self._by_bucket.get((drop.event_name, drop.source))
            examples = kc.examples_without(drop.key) if kc is not None else []
            out.append(drop_finding(drop, history, examples))
        return out

    def log_findings(self, judged: Mapping[Bucket, Coverage]) -> list[Finding]:
        """The log-based findings (Graph-based ones are added beside these): conversion
        events only (docs/contracts.md §12)."""
        out = []
        for bucket in sorted(judged):
            if bucket[0] in CONVERSION_EVENTS:
                finding = self._low_coverage(bucket, judged[bucket])
                if finding:
                    out.append(finding)
        return out

    def _low_coverage(self, bucket: Bucket, c: Coverage) -> Finding | None:
        name, source = bucket
        cov = c.shares()
        score = estimate(cov, source)
        # Below the floor with confidence: an estimate near it from few events is noise.
        high = score + self._score_z * standard_error(cov, c.events, source)
        if high >= self._warn:
            return None
        severity = Severity.CRIT if high < self._crit else Severity.WARN
        keys = charged(source)
        w = weights(source)
        gains = sorted(keys, key=lambda k: (-w[k] * (1.0 - cov[k]), k))
        key = gains[0]
        tally = Tally(MATCH_KEY_COVERAGE_LOW, f"user_data.{key}")
        tally.count = c.events - c.counts[_INDEX[key]]
        tally.event_names[name] = tally.count
        tally.examples = c.sample.examples_without(key) if c.sample is not None else []
        top = ", ".join(f"{k} {cov[k]:.0%}" for k in gains[:3])
        message = (
            f"Estimated match quality of {name} ({source_label(source)}) is {score:.1f}/10 "
            f"(local heuristic, not Meta's EMQ) over {c.events} events; most valuable "
            f"missing keys: {top}."
        )
        remediation = f"To raise it, {ADVICE[key]}; then {ADVICE[gains[1]]}."
        evidence = {
            "estimated": True,
            "estimated_score": round(score, 2),
            "action_source": source,
            "events": c.events,
            "coverage_pct": {
                k: round(100 * cov[k], 1) for k in credited(source) if k in keys or cov[k]
            },
            "upper_bound": round(high, 2),
            "warn_score": self._warn,
            "crit_score": self._crit,
        }
        return make_finding(self.id, tally, severity, message, remediation, evidence)


# ------------------------------------------------------------ Graph part: Meta's EMQ

EMQ_LOW = "EMQ_LOW"
EMQ_DROP = "EMQ_DROP"
MATCH_KEY_DROP = "MATCH_KEY_DROP"
_EMQ_ADVICE = (
    "Send more customer information with each server event (em, ph, external_id, fbc, "
    "fbp, the client's IP and user agent), normalised and hashed; Events Manager > "
    "Data sources > Overview > Event match quality shows which keys Meta misses."
)


def graph_part(ctx: CheckContext) -> GraphPart:
    """``EMQ_LOW``, ``EMQ_DROP``, ``MATCH_KEY_DROP`` from ``ctx.graph`` (module docstring)."""
    snap = ctx.graph
    if snap is None:
        return skipped_part()
    if (skipped := not_polled(snap, [Part.DATASET_QUALITY])) is not None:
        return skipped
    if not snap.ok(Part.DATASET_QUALITY):
        return GraphPart(GraphState.ERROR, error_text(snap, [Part.DATASET_QUALITY]))
    cfg = ctx.settings.match_quality
    volumes = event_volumes(snap)
    findings: list[Finding] = []
    scores: dict[str, float] = {}
    for q in sorted(snap.quality or (), key=lambda q: q.event_name):
        if q.composite_score is None and not q.match_key_coverage:
            continue  # no EMQ block: unknown (§12)
        if not enough(volumes, q.event_name, cfg.emq_min_events):
            continue
        count = volume_count(volumes, q.event_name)
        if q.composite_score is not None:
            scores[q.event_name] = q.composite_score
            findings += [f for f in (_emq_low(ctx, q, count), _emq_drop(ctx, q, count)) if f]
        if (f := _key_drop(ctx, q, count)) is not None:
            findings.append(f)
    if not scores and not findings:
        why = "no EMQ score for an event name with enough events."
        return GraphPart(GraphState.NOT_JUDGED, why)
    shown = ", ".join(f"{n} {s:.1f}" for n, s in sorted(scores.items(), key=lambda kv: kv[1]))
    return GraphPart(GraphState.EVALUATED, f"Event Match Quality {shown}.", findings)


def _emq_low(ctx: CheckContext, q: EventQuality, count: int) -> Finding | None:
    cfg = ctx.settings.match_quality
    score = q.composite_score
    if score is None or score >= cfg.emq_warn_score:
        return None
    severity = Severity.CRIT if score < cfg.emq_crit_score else Severity.WARN
    keys = sorted(q.match_key_coverage.items(), key=lambda kv: kv[1])[:3]
    weakest = ", ".join(f"{k} {v:g}%" for k, v in keys)
    msg = (
        f"Meta rates the Event Match Quality of {q.event_name} {score:.1f}/10, below "
        f"{cfg.emq_warn_score:g}" + (f"; lowest key coverage: {weakest}." if weakest else ".")
    )
    evidence = {
        "composite_score": score,
        "warn_score": cfg.emq_warn_score,
        "crit_score": cfg.emq_crit_score,
        "match_key_coverage_pct": dict(q.match_key_coverage),
    }
    return graph_finding(
        MatchQuality.id, EMQ_LOW, severity, count, msg, _EMQ_ADVICE,
        event_names=[q.event_name], field_name="event_match_quality.composite_score",
        evidence=evidence,
    )  # fmt: skip


def _baseline(values: list[float], min_polls: int) -> float | None:
    """The median of ``values`` when the history holds at least ``min_polls`` of them."""
    if len(values) < min_polls:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _emq_drop(ctx: CheckContext, q: EventQuality, count: int) -> Finding | None:
    cfg, history, score = ctx.settings.match_quality, ctx.history, q.composite_score
    if history is None or score is None:
        return None
    past = history.scores(q.event_name)
    median = _baseline(past, cfg.history_min_polls)
    if median is None or median - score < cfg.emq_drop_points:
        return None
    drop = median - score
    severity = Severity.CRIT if drop >= cfg.emq_drop_crit_points else Severity.WARN
    days = (history.until - history.since) / 86400
    msg = (
        f"Meta's Event Match Quality of {q.event_name} fell to {score:.1f}/10, {drop:.1f} "
        f"points below its median of {median:.1f} over {len(past)} earlier reading(s) "
        f"in the last {days:g} days."
    )
    rem = (
        "Look for a recent change in the sender or the site (a release, a consent or "
        "checkout change) that stopped sending a match key; MATCH_KEY_DROP names the key "
        "when Meta reports its coverage. " + _EMQ_ADVICE
    )
    evidence = {
        "composite_score": score,
        "median": round(median, 2),
        "drop_points": round(drop, 2),
        "history_readings": len(past),
        "drop_threshold": cfg.emq_drop_points,
    }
    return graph_finding(
        MatchQuality.id, EMQ_DROP, severity, count, msg, rem,
        event_names=[q.event_name], field_name="event_match_quality.composite_score",
        evidence=evidence,
    )  # fmt: skip


def _key_drop(ctx: CheckContext, q: EventQuality, count: int) -> Finding | None:
    cfg, history = ctx.settings.match_quality, ctx.history
    if history is None:
        return None
    drops: dict[str, dict[str, float]] = {}
    for key, pct in q.match_key_coverage.items():
        median = _baseline(history.key_coverages(q.event_name, key), cfg.history_min_polls)
        if median is not None and median - pct >= cfg.key_drop_points:
            drops[key] = {"coverage_pct": pct, "median_pct": round(median, 1)}
    if not drops:
        return None
    key = max(drops, key=lambda k: (drops[k]["median_pct"] - drops[k]["coverage_pct"], k))
    worst = drops[key]
    msg = (
        f"Meta's coverage of {key} on {q.event_name} fell to {worst['coverage_pct']:g}% "
        f"from a median of {worst['median_pct']:g}%"
        + (f" ({len(drops) - 1} other key(s) fell too)." if len(drops) > 1 else ".")
    )
    advice = ADVICE.get(key)
    rem = (f"Restore it: {advice}." if advice else f"Restore sending {key}.") + (
        " A recent release or consent change is the usual cause."
    )
    evidence = {"dropped_keys": drops, "drop_threshold_points": cfg.key_drop_points}
    return graph_finding(
        MatchQuality.id, MATCH_KEY_DROP, Severity.WARN, count, msg, rem,
        event_names=[q.event_name], field_name=f"user_data.{key}", evidence=evidence,
    )  # fmt: skip

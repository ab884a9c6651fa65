"""Time buckets of the report window and the charts of one dataset's page."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime

from monitor.model.rollup import LATENCY_BOUNDS, HourRollup
from monitor.report import charts
from monitor.report.charts import Chart
from monitor.report.weekly.measures import (
    Totals,
    latest_by_event,
    number_or_none,
    percentile,
    totals,
)
from monitor.report.weekly.view import (
    EMQ_EVENTS,
    FUNNEL_STAGES,
    KEY_EVENTS,
    SHOWN_KEYS,
    DatasetInputs,
    FunnelView,
)
from monitor.report.window import ReportWindow, zone

# --- time buckets and charts -----------------------------------------------------------


def buckets(window: ReportWindow) -> tuple[float, list[float], list[str]]:
    """(bucket size, bucket starts, labels): hours for windows up to 3 days, else days
    (local midnights in the window's zone; DST days are 23 or 25 hours)."""
    z = zone(window.tz)
    if window.length <= 3 * 86400:
        starts = [float(h) for h in range(int(window.start // 3600 * 3600), int(window.end), 3600)]
        starts = [s for s in starts if s >= window.start] or [window.start]
        return 3600.0, starts, [datetime.fromtimestamp(s, z).strftime("%a %H:%M") for s in starts]
    starts, day = [], datetime.fromtimestamp(window.start, z)
    day = day.replace(hour=0, minute=0, second=0, microsecond=0)
    while day.timestamp() < window.end:
        starts.append(max(day.timestamp(), window.start))
        day = datetime.fromtimestamp(day.timestamp() + 26 * 3600, z).replace(hour=0, minute=0)
    fmt = "%a %d" if window.length <= 8 * 86400 else "%m-%d"
    return 86400.0, starts, [datetime.fromtimestamp(s, z).strftime(fmt) for s in starts]


def _bucket(ts: float, starts: Sequence[float]) -> int:
    import bisect

    return max(0, bisect.bisect_right(starts, ts) - 1)


def build_charts(
    inputs: DatasetInputs, window: ReportWindow, weeks: Sequence[ReportWindow]
) -> list[Chart]:
    """The dataset page's charts (few and small: they are mailed too)."""
    _, starts, labels = buckets(window)
    rolls = inputs.rollups[-1] if inputs.rollups else []
    now_totals = totals(rolls)
    meta_totals: Counter[str] = Counter()
    for c in inputs.counts:
        if c["event_name"]:
            meta_totals[c["event_name"]] += int(c["browser"]) + int(c["server"])
    volume = Counter({n: t.events + t.failed for n, t in now_totals.items() if n})
    volume.update(meta_totals)
    key_events = [n for n, _ in volume.most_common(KEY_EVENTS)]
    out = [_volume_chart(inputs, key_events, rolls, starts, labels)]
    out.append(_key_coverage_chart(inputs, key_events, weeks))
    emq = _emq_chart(inputs, weeks, key_events)
    if emq is not None:
        out.append(emq)
    goal = _goal_chart(inputs)
    if goal is not None:
        out.append(goal)
    out.append(_latency_chart(rolls, starts, labels))
    out.append(_error_chart(rolls, starts, labels))
    return out


def _volume_chart(
    inputs: DatasetInputs,
    names: Sequence[str],
    rolls: Sequence[HourRollup],
    starts: Sequence[float],
    labels: Sequence[str],
) -> Chart:
    server: dict[str, list[float | None]] = {n: [0.0] * len(starts) for n in names}
    browser: dict[str, list[float | None]] = {}
    logged = {r.event_name for r in rolls}
    for r in rolls:
        if r.event_name in server:
            i = _bucket(r.hour, starts)
            server[r.event_name][i] = (server[r.event_name][i] or 0) + r.events
    for c in inputs.counts:
        name = c["event_name"]
        if name not in server:
            continue
        i = _bucket(float(c["hour"]), starts)
        series = browser.setdefault(name, [0.0] * len(starts))
        series[i] = (series[i] or 0) + int(c["browser"])
        if name not in logged:  # no delivery logs for it: Meta's server count instead
            server[name][i] = (server[name][i] or 0) + int(c["server"])
    png = charts.volume_chart(labels, server, browser)
    alt = "Server and browser events per " + ("hour" if len(starts) and len(labels) > 8 else "day")
    return Chart("volume", "Server vs browser events (key events)", alt, png)


def _key_coverage_chart(
    inputs: DatasetInputs, names: Sequence[str], weeks: Sequence[ReportWindow]
) -> Chart:
    focus = names[0] if names else ""
    series: dict[str, list[float | None]] = {k: [] for k in SHOWN_KEYS}
    for rolls in inputs.rollups:
        t = totals(rolls).get(focus) or Totals()
        for k in SHOWN_KEYS:
            share = t.key_share(k)
            series[k].append(None if share is None else share * 100)
    png = charts.trend_chart([w.short() for w in weeks], series, ymax=100, percent=True)
    title = f"Match-key coverage over the weeks: {focus}" if focus else "Match-key coverage"
    return Chart(
        "keys", title, f"Share of {focus or 'events'} carrying each match key, per week", png
    )


def _emq_chart(
    inputs: DatasetInputs, weeks: Sequence[ReportWindow], key_events: Sequence[str]
) -> Chart | None:
    per_week = [latest_by_event(q) for q in inputs.quality]
    names = [n for n in key_events if any(n in w for w in per_week)]
    names += sorted({n for w in per_week for n in w} - set(names))
    names = names[:EMQ_EVENTS]
    if not names:
        return None
    series = {
        n: [number_or_none(w[n]["composite_score"]) if n in w else None for w in per_week]
        for n in names
    }
    png = charts.trend_chart([w.short() for w in weeks], series, ymax=10)
    return Chart("emq", "Event Match Quality (Meta) over the weeks", "EMQ per event and week", png)


def _goal_chart(inputs: DatasetInputs) -> Chart | None:
    latest = latest_by_event(inputs.quality[-1] if inputs.quality else [])
    rows = [
        (n, r) for n, r in sorted(latest.items()) if number_or_none(r["coverage_pct"]) is not None
    ]
    if not rows:
        return None
    png = charts.coverage_goal_chart(
        [n for n, _ in rows],
        [number_or_none(r["coverage_pct"]) for _, r in rows],
        [number_or_none(r["coverage_goal_pct"]) for _, r in rows],
    )
    return Chart("coverage", "Event coverage vs Meta's goal", "Event coverage per event", png)


def _latency_chart(
    rolls: Sequence[HourRollup], starts: Sequence[float], labels: Sequence[str]
) -> Chart:
    hists = [[0] * (len(LATENCY_BOUNDS) + 1) for _ in starts]
    for r in rolls:
        i = _bucket(r.hour, starts)
        hists[i] = [a + b for a, b in zip(hists[i], r.latency_hist, strict=True)]
    png = charts.latency_chart(
        labels, [percentile(h, 0.5) for h in hists], [percentile(h, 0.95) for h in hists]
    )
    return Chart("latency", "Latency (send time − event time)", "Latency p50 and p95", png)


def _error_chart(
    rolls: Sequence[HourRollup], starts: Sequence[float], labels: Sequence[str]
) -> Chart:
    sent = [0] * len(starts)
    by_code: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(starts))
    for r in rolls:
        i = _bucket(r.hour, starts)
        sent[i] += r.events + r.failed
        for code, n in r.error_codes.items():
            by_code[code][i] += n
    ranked = sorted(by_code, key=lambda c: -sum(by_code[c]))
    rates: dict[str, list[float | None]] = {
        c: [v / s if s else None for v, s in zip(by_code[c], sent, strict=True)] for c in ranked[:6]
    }
    png = charts.error_rate_chart(labels, rates)
    return Chart("errors", "Delivery error rate by error code", "Failed share of sent events", png)


# --- the reconciliation funnel ---------------------------------------------------------

PURCHASE = "Purchase"
# The chart's legend must fit one line of a 700 px image.
FUNNEL_LEGEND = ("Paid orders", "Purchases sent", "Accepted by Meta", "Meta server", "Meta browser")


def funnel_series(inputs: DatasetInputs, starts: Sequence[float]) -> dict[str, list[int | None]]:
    """The funnel's stages per bucket (``FUNNEL_STAGES``): paid orders and Purchases
    sent/accepted from the daemon's stored funnel hours (``None`` for a bucket the
    orders job never counted, and for paid orders while the source was not read),
    Meta's server and browser Purchase counts from the Graph polls (``None`` without)."""
    n = len(starts)
    seen = [False] * n
    paid: list[int | None] = [None] * n
    sent, accepted = [0] * n, [0] * n
    for h in inputs.funnel or ():
        i = _bucket(h.hour, starts)
        seen[i] = True
        sent[i] += h.purchases_sent
        accepted[i] += h.purchases_accepted
        if h.orders_paid is not None:
            paid[i] = (paid[i] or 0) + h.orders_paid
    meta = [c for c in inputs.counts if c["event_name"] == PURCHASE]
    server: list[int | None] = [0 if meta else None] * n
    browser: list[int | None] = [0 if meta else None] * n
    for c in meta:
        i = _bucket(float(c["hour"]), starts)
        server[i] = (server[i] or 0) + int(c["server"])
        browser[i] = (browser[i] or 0) + int(c["browser"])
    own = [
        paid,
        [v if seen[i] else None for i, v in enumerate(sent)],
        [v if seen[i] else None for i, v in enumerate(accepted)],
    ]
    return dict(zip(FUNNEL_STAGES, [*own, server, browser], strict=True))


def build_funnel(
    inputs: DatasetInputs, window: ReportWindow, *, with_chart: bool = True
) -> FunnelView | None:
    """The dataset's funnel section, when it names an orders source (else ``None``)."""
    if inputs.funnel is None:
        return None
    size, starts, labels = buckets(window)
    series = funnel_series(inputs, starts)
    rows = [(name, values, _total(values)) for name, values in series.items()]
    chart = None
    if with_chart:
        per = "hour" if size == 3600 else "day"
        alt = f"Paid orders, Purchases sent and accepted, and Meta's Purchase counts per {per}"
        short = dict(zip(FUNNEL_STAGES, FUNNEL_LEGEND, strict=True))
        png = charts.funnel_chart(labels, {short[k]: v for k, v in series.items()})
        chart = Chart("funnel", "Paid orders → Purchases → Meta", alt, png)
    return FunnelView(list(labels), rows, chart)


def _total(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None

"""The per-day conversion funnel of a dataset (docs/contracts.md §8): paid orders ->
Purchases sent -> accepted by Meta -> Meta's server and browser counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from checks.purchases import Outcome, Purchase, paid_orders
from monitor.model.orders import OrderSnapshot

MAX_FUNNEL_DAYS = 400


@dataclass(frozen=True, slots=True)
class MetaCounts:
    """Meta's hourly Purchase counts by source (Graph ``/stats`` ``event_source``) over
    the window ``since``.. that the poll covered: ``(hour start, server, browser)``."""

    since: float
    hourly: tuple[tuple[float, int, int], ...]


FUNNEL_KEYS = (
    "day",
    "orders_paid",
    "purchases_sent",
    "purchases_accepted",
    "meta_server",
    "meta_browser",
)


BUCKET = 900  # seconds: Purchases are counted per quarter hour (every UTC offset is whole)


def purchase_buckets(purchases: Iterable[Purchase]) -> Counter[tuple[Outcome, int]]:
    """Purchases counted by (outcome, quarter hour of ``event_time``): the funnel's input."""
    return Counter((p.outcome, int(p.event_time // BUCKET)) for p in purchases)


def build_funnel(
    snapshot: OrderSnapshot | None,
    buckets: Mapping[tuple[Outcome, int], int],
    *,
    start: float,
    end: float,
    timezone: str = "UTC",
    meta: MetaCounts | None = None,
) -> list[dict[str, Any]]:
    """One row per day of ``[start, end]`` in ``timezone``: paid orders (by creation),
    Purchases sent (any outcome), accepted by Meta (2xx) and sent unconfirmed (by
    ``event_time``), and Meta's server/browser Purchase counts (``meta``, for the days
    its window covers). A stage whose source was not read is ``None``; days with no data
    are 0."""
    tz = ZoneInfo(timezone)
    first, last = _day(start, tz), _day(end, tz)
    if (last - first).days >= MAX_FUNNEL_DAYS:
        first = last - timedelta(days=MAX_FUNNEL_DAYS - 1)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    paid: dict[date, int] | None = None
    if snapshot is not None and snapshot.ok:
        paid = defaultdict(int)
        for order in paid_orders(snapshot.orders):
            paid[_day(order.created_at, tz)] += 1
    counts: dict[Outcome, dict[date, int]] = {o: defaultdict(int) for o in Outcome}
    for (outcome, quarter), n in buckets.items():
        counts[outcome][_day(quarter * BUCKET, tz)] += n
    meta_daily = daily_counts(meta.hourly, timezone) if meta is not None else None
    meta_first = _day(meta.since, tz) if meta is not None else None
    rows = []
    for d in days:
        key = d.isoformat()
        server: int | None = None
        browser: int | None = None
        if meta_daily is not None and meta_first is not None and d >= meta_first:
            server, browser = meta_daily.get(key, (0, 0))
        rows.append(
            {
                "day": key,
                "orders_paid": paid[d] if paid is not None else None,
                "purchases_sent": sum(counts[o][d] for o in Outcome),
                "purchases_accepted": counts[Outcome.ACCEPTED][d],
                "purchases_unconfirmed": counts[Outcome.UNCONFIRMED][d],
                "meta_server": server,
                "meta_browser": browser,
            }
        )
    return rows


def daily_counts(
    hourly: Iterable[tuple[float, int, int]], timezone: str
) -> dict[str, tuple[int, int]]:
    """``(hour start, server, browser)`` rows (Meta's hourly Purchase counts) summed per
    local day, for ``build_funnel``'s ``meta_daily``."""
    tz = ZoneInfo(timezone)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for hour, server, browser in hourly:
        row = out[_day(hour, tz).isoformat()]
        row[0] += server
        row[1] += browser
    return {k: (v[0], v[1]) for k, v in out.items()}


def _day(ts: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, tz).date()

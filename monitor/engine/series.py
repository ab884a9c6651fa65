"""Building the hourly series of a dataset (``monitor.model.series.VolumeHistory``).

From the store (``load_volume_history``) or from rollups and Graph counts in memory
(``build_history``, the backtest). The time zone is the dataset's (``[[datasets]]
timezone``), else ``[schedule] timezone``.
"""

from __future__ import annotations

import dataclasses as dc
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.model.graph import SourceCounts, utc_hour_shares
from monitor.model.rollup import SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import HOUR, WEEK, Current, VolumeHistory, _added

if TYPE_CHECKING:
    from monitor.store.db import Store


def dataset_timezone(settings: Settings, dataset_id: str) -> str:
    """The dataset's time zone name (its own, else ``[schedule] timezone``); a name
    ``zoneinfo`` does not know is a ``ConfigError`` naming the key."""
    ds = settings.dataset(dataset_id)
    name = (ds.timezone if ds else None) or settings.schedule.timezone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        where = "datasets[].timezone" if ds and ds.timezone else "schedule.timezone"
        raise ConfigError(f"{where}: unknown time zone {name!r}") from None
    return name


def lookback(settings: Settings, now: float) -> float:
    """Where a history starts: the seasonal weeks plus one (the ratio days fit inside)."""
    weeks = max(settings.checks.volume.weeks, 1) + 1
    return (now // HOUR * HOUR) - weeks * WEEK


def index_rollups(rollups: Iterable[HourRollup]) -> dict[str, dict[int, HourRollup]]:
    """Server-log rollups by event name and hour (duplicates of one key are added)."""
    out: dict[str, dict[int, HourRollup]] = {}
    for r in rollups:
        if r.source != SOURCE_SERVER_LOG:
            continue
        hours = out.setdefault(r.event_name, {})
        stored = hours.get(r.hour)
        hours[r.hour] = r if stored is None else _added(stored, r)
    return out


def index_graph(counts: Iterable[SourceCounts]) -> dict[str, dict[int, tuple[float, float]]]:
    """Meta's per-event counts on UTC hours as ``(browser, server)``; dataset-wide rows
    (no event name) are left out: the per-event rows already add up to them.

    Meta's hours are the ad account's local hours (docs/contracts.md §9): in a half-hour
    or 45-minute zone each one is spread over the two UTC hours it overlaps, in
    proportion (``utc_hour_shares``), and the first and last UTC hours, which Meta's
    hours cover only in part, are left out rather than read as a drop.
    """
    out: dict[str, dict[int, list[float]]] = {}
    starts: list[float] = []
    for c in counts:
        if not c.event:
            continue
        t = c.hour.timestamp()
        starts.append(t)
        hours = out.setdefault(c.event, {})
        for hour, share in utc_hour_shares(t):
            cell = hours.setdefault(hour, [0.0, 0.0])
            cell[0] += c.browser * share
            cell[1] += c.server * share
    if not starts:
        return {}
    lo, hi = min(starts), max(starts) + HOUR  # the instants Meta's hours cover
    return {
        name: {h: (b, s) for h, (b, s) in sorted(hours.items()) if lo <= h and h + HOUR <= hi}
        for name, hours in out.items()
    }


def dataset_calendar(settings: Settings, dataset_id: str) -> frozenset[date]:
    """The known calendar days of a dataset: ``[calendar] days``, its country's
    (``[calendar.countries]``) and its own ``calendar_days``."""
    ds = settings.dataset(dataset_id)
    common = settings.calendar.days_of(ds.country if ds else None)
    return common | frozenset(ds.calendar_days) if ds else common


def first_hour_of(index: Mapping[str, Mapping[int, object]]) -> int | None:
    return min((min(hours) for hours in index.values() if hours), default=None)


def build_history(
    settings: Settings,
    dataset_id: str,
    rollups: Iterable[HourRollup],
    graph: Iterable[SourceCounts] = (),
    *,
    current: Current = Current.INCLUDED,
) -> VolumeHistory:
    """A ``VolumeHistory`` from rollups and Graph counts (any order)."""
    logs = index_rollups(rollups)
    meta = index_graph(graph)
    return VolumeHistory(
        dataset_id=dataset_id,
        timezone=dataset_timezone(settings, dataset_id),
        rollups=logs,
        first_hour=first_hour_of(logs),
        graph=meta,
        graph_first_hour=first_hour_of(meta),
        current=current,
        calendar=dataset_calendar(settings, dataset_id),
    )


def load_volume_history(
    store: Store,
    settings: Settings,
    now: float,
    dataset_ids: Iterable[str] | None = None,
    *,
    current: Current,
) -> dict[str, VolumeHistory]:
    """The stored series of each dataset (default: the configured ones) over the
    ``lookback`` before ``now``: rollups of hours up to the one in progress, Meta's counts.
    Every requested dataset gets a history (possibly empty)."""
    from monitor.store.graph import stored_source_counts  # deferred: SQLAlchemy import

    wanted = dataset_ids if dataset_ids is not None else [d.id for d in settings.datasets]
    ids = list(dict.fromkeys(wanted))
    since = lookback(settings, now)
    until = now // HOUR * HOUR + HOUR
    out: dict[str, VolumeHistory] = {}
    for ds in ids:
        rollups = store.rollups(ds, since=since, until=until)
        graph = stored_source_counts(store, ds, since=since, until=until)
        out[ds] = build_history(settings, ds, rollups, graph, current=current)
    return with_peers(settings, out)


def country_peers(settings: Settings, dataset_id: str) -> list[str]:
    """The other configured datasets of the same ``country`` as ``dataset_id``."""
    ds = settings.dataset(dataset_id)
    if ds is None or not ds.country:
        return []
    return [d.id for d in settings.datasets if d.id != dataset_id and d.country == ds.country]


def with_peers(settings: Settings, histories: dict[str, VolumeHistory]) -> dict[str, VolumeHistory]:
    """Each history with its ``peers``: those of the other datasets of its country."""
    return {
        ds: dc.replace(h, peers=tuple(
            histories[o] for o in country_peers(settings, ds) if o in histories
        ))
        for ds, h in histories.items()
    }  # fmt: skip

"""``capi-monitor backtest``: replay history with a simulated clock, list the alerts.

The replay is the daemon's logs job run at simulated times, not a second detector: at
each evaluation time ``t`` (every ``--step`` from ``--from``, inclusive, to ``--to``,
exclusive) the configured logs' deliveries sent before ``t`` and not yet replayed go
through the daemon's ``CycleBatch`` (rollups of all of them, the checks on those sent
within ``[alerts] window``), the ``volume`` check judges the hourly series as they stood
before the cycle (``monitor.engine.series.Current.ADD``, as in the daemon), and
``monitor.alerts.engine.evaluate_cycle(..., outbox=False)`` advances the alert states.
Nothing is sent: no outbox row is written, no notifier is built.

History and warm-up (docs/contracts.md §6):

- **Baselines** use all history before ``--from``: the logs' deliveries sent earlier are
  folded into hourly rollups, and the store's rollups (``--db``, else ``[storage] url``;
  read, never written) fill the hours before the first replayed delivery, so that a
  store the daemon built from the same logs is not counted twice. Meta's hourly counts
  stored by earlier polls are used as the daemon would have seen them: an hour once
  ``[checks.volume] graph_settle`` has passed after it.
- **Alert states** are warmed by evaluating every ``--step`` over the ``warm`` (one day)
  before ``--from``: every judged window is shorter than a day, so earlier cycles could
  not change the state an alert has at ``--from``. Episodes that fired during the
  warm-up are not listed (their ``fired_at`` is before ``--from``).
- Deliveries are replayed in send-time order across files (``sent_at``; the earliest
  ``event_time`` for lines without one); a line out of order in its file is replayed in
  the cycle that reaches it, as the daemon would read it.

The alert rows live in a scratch SQLite database in a temporary directory, deleted
afterwards. The Graph API is not called: Graph-based checks are ``skipped``, as for a
dataset without a token.
"""

from __future__ import annotations

import dataclasses as dc
import heapq
import math
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from monitor.alerts.engine import evaluate_cycle
from monitor.alerts.queries import AlertEpisode, alert_episodes
from monitor.config import Settings
from monitor.engine.audit import DatasetAudit, configured_files
from monitor.engine.cycle import CycleBatch
from monitor.engine.rollup import RollupAccumulator
from monitor.engine.series import (
    country_peers,
    dataset_calendar,
    dataset_timezone,
    index_graph,
    lookback,
)
from monitor.errors import ConfigError
from monitor.model.observations import Delivery, ReadStats
from monitor.model.rollup import SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import Current, Sums, VolumeHistory
from monitor.sources.logs.paths import DatasetResolver, InputFile
from monitor.sources.logs.reader import read_deliveries
from monitor.store.db import Store, parse_url, write_connection
from monitor.store.graph import stored_source_counts

HOUR = 3600
WARM = 86400.0  # alert states are warmed over this span before --from


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification the daemon would have sent: one per dataset and cycle in which at
    least one alert had a reason (``new``, ``escalated``, ``repeat``, ``flapping``,
    ``resolved``). ``about``: the (code, event name) of each alert, in ``reasons``' order."""

    at: float
    dataset_id: str
    reasons: tuple[str, ...]  # one per alert it mentions
    about: tuple[tuple[str, str | None], ...] = ()


@dataclass(slots=True)
class BacktestResult:
    """What a replay did and the alert episodes that fired in ``[start, end)``."""

    start: float
    end: float
    step: float
    alerts: list[AlertEpisode]
    cycles: int = 0
    deliveries: int = 0
    events: int = 0
    datasets: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notifications: list[Notice] = field(default_factory=list)  # sent in [start, end)

    def to_dict(self) -> dict[str, Any]:
        """The contract's ``{"alerts": [...]}`` plus what the replay covered."""
        from monitor.timeutil import iso_utc

        return {
            "alerts": [a.to_dict() for a in self.alerts],
            "from": iso_utc(self.start),
            "to": iso_utc(self.end),
            "step_seconds": self.step,
            "cycles": self.cycles,
            "deliveries": self.deliveries,
            "events": self.events,
            "datasets": list(self.datasets),
        }


def send_time(d: Delivery) -> float:
    """When a delivery was sent: ``sent_at``, else its earliest ``event_time``."""
    if d.sent_at is not None:
        return d.sent_at
    return min(d.times, default=0.0)


class _Index:
    """The replay's hourly rollups by dataset, event name and hour (what the daemon's
    store holds), and Meta's stored counts. Histories handed to checks are views on it;
    it only changes between cycles."""

    def __init__(self, settings: Settings, step: float) -> None:
        self.settings = settings
        self.step = step
        self.rollups: dict[str, dict[str, dict[int, HourRollup]]] = {}
        self.first: dict[str, int] = {}
        self.graph: dict[str, dict[str, dict[int, tuple[float, float]]]] = {}
        self.zones: dict[str, str] = {}
        # Per dataset, block sums of the ratio baselines (``VolumeHistory.memo``): they
        # span finished hours, so most are reused by the next evaluations.
        self.memos: dict[str, dict[tuple[str, int, int], Sums]] = {}
        self.memo_limit: dict[str, float] = {}  # the latest ``memo_until`` handed out

    def add(self, rollups: Iterable[HourRollup]) -> None:
        rollups = list(rollups)
        self._forget(rollups)
        for r in rollups:
            if r.source != SOURCE_SERVER_LOG:
                continue
            hours = self.rollups.setdefault(r.dataset_id, {}).setdefault(r.event_name, {})
            stored = hours.get(r.hour)
            if stored is None:
                hours[r.hour] = r
            else:
                stored.merge(r)
            first = self.first.get(r.dataset_id)
            if first is None or r.hour < first:
                self.first[r.dataset_id] = r.hour

    def _forget(self, rollups: Sequence[HourRollup]) -> None:
        """Drop the memoised blocks that the new rows change (and old ones, for memory)."""
        earliest: dict[str, int] = {}
        for r in rollups:
            earliest[r.dataset_id] = min(r.hour, earliest.get(r.dataset_id, r.hour))
        for ds, hour in earliest.items():
            memo = self.memos.get(ds)
            if not memo:
                continue
            # Blocks end before the hours being replayed: usually nothing to drop (an
            # out-of-order line may change an older hour).
            limit = self.memo_limit.get(ds, 0.0)
            if hour < limit or len(memo) > 20_000:
                stale = [k for k in memo if k[2] > hour or k[2] < limit - 9 * 86400]
                for k in stale:
                    del memo[k]

    def history(self, dataset_id: str, now: float) -> VolumeHistory:
        """A dataset's history, with those of its country's other datasets (``peers``)."""
        peers = tuple(self._history(o, now) for o in country_peers(self.settings, dataset_id))
        return dc.replace(self._history(dataset_id, now), peers=peers)

    def _history(self, dataset_id: str, now: float) -> VolumeHistory:
        zone = self.zones.get(dataset_id)
        if zone is None:
            zone = self.zones[dataset_id] = dataset_timezone(self.settings, dataset_id)
        graph = self.graph.get(dataset_id, {})
        firsts = [min(h) for h in graph.values() if h]
        # Hours before the one in progress a step ago are final: later cycles add rows of
        # later sends only (the replay is in send order).
        until = (now - self.step) // HOUR * HOUR
        self.memo_limit[dataset_id] = max(until, self.memo_limit.get(dataset_id, 0.0))
        return VolumeHistory(
            dataset_id=dataset_id,
            timezone=zone,
            rollups=self.rollups.get(dataset_id, {}),
            first_hour=self.first.get(dataset_id),
            graph=graph,
            graph_first_hour=min(firsts) if firsts else None,
            current=Current.ADD,
            memo=self.memos.setdefault(dataset_id, {}),
            memo_until=until,
            calendar=dataset_calendar(self.settings, dataset_id),
        )


def _replay_batch(settings: Settings, now: float, index: _Index) -> CycleBatch:
    """The daemon's cycle batch, with each dataset's series from ``index`` handed to its
    checks."""

    def audit(dataset: str) -> DatasetAudit:
        return DatasetAudit(dataset, settings, now, series=index.history(dataset, now))

    return CycleBatch(settings, now, audit=audit)


class _Stream:
    """Deliveries of several files merged in send-time order, consumed up to a time."""

    def __init__(self, settings: Settings, files: Sequence[InputFile]) -> None:
        self.stats = ReadStats(max_problems=settings.input.max_problems)
        resolver = DatasetResolver(settings.datasets)
        streams = [
            read_deliveries(
                [f], self.stats, resolver=resolver, max_line_bytes=settings.input.max_line_bytes
            )
            for f in files
        ]
        self._merged: Iterator[Delivery] = heapq.merge(*streams, key=send_time)
        self._next: Delivery | None = next(self._merged, None)
        self.deliveries = 0

    def peek_time(self) -> float | None:
        return None if self._next is None else send_time(self._next)

    def until(self, t: float) -> Iterator[Delivery]:
        """The deliveries sent before ``t`` not yet taken, in order."""
        while self._next is not None and send_time(self._next) < t:
            d, self._next = self._next, next(self._merged, None)
            self.deliveries += 1
            yield d


def _seed_from_store(
    index: _Index, store: Store, settings: Settings, ids: Sequence[str], since: float, cut: float
) -> None:
    """Stored rollups of the hours before ``cut`` (the first replayed hour) and every
    stored Meta count, from ``since``."""
    for ds in ids:
        index.add(store.rollups(ds, since=since, until=cut))
        graph = index_graph(stored_source_counts(store, ds, since=since))
        if graph:
            index.graph[ds] = graph


def _open_history_store(url: str | None) -> Store | None:
    """The user's store, or ``None`` when it does not exist (never created here)."""
    if url is None:
        return None
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:") or not Path(path).exists():
            return None
    return Store.open(url)


def run_backtest(
    settings: Settings,
    *,
    start: float,
    end: float,
    step: float | None = None,
    store_url: str | None = None,
    files: Sequence[InputFile] | None = None,
    warm: float = WARM,
    keep_db: str | None = None,
) -> BacktestResult:
    """Replay (module docstring) and return the episodes fired in ``[start, end)``.

    ``step`` defaults to ``[schedule] logs_every``; ``files`` to the datasets' ``logs``;
    ``store_url`` names the store with earlier history (``None``: none). ``keep_db``: a
    SQLite file path for the replay's alert rows (with their evidence), kept afterwards;
    it must not exist yet. Default: a temporary file.
    """
    began = time.perf_counter()
    step = float(step if step is not None else settings.schedule.logs_every)
    if not end > start:
        raise ConfigError("backtest: --to must be later than --from")
    if step <= 0:
        raise ConfigError("backtest: --step must be positive")
    files = list(files if files is not None else configured_files(settings.datasets))
    ids = [ds.id for ds in settings.datasets]
    for ds in ids:
        dataset_timezone(settings, ds)  # a bad zone fails before any work
    index = _Index(settings, step)
    stream = _Stream(settings, files)
    first_cycle = start - math.ceil(warm / step) * step
    history = _open_history_store(store_url)
    if history is not None:
        with history:
            first = stream.peek_time()
            cut = (first if first is not None else first_cycle) // HOUR * HOUR
            _seed_from_store(index, history, settings, ids, lookback(settings, start), cut)
    accumulators: dict[str, RollupAccumulator] = {}
    # History: rollups only. The first cycle reads the last [alerts] window itself, as the
    # daemon's first start does (older lines are history, recent ones are checked).
    for d in stream.until(first_cycle - settings.alerts.window):
        acc = accumulators.get(d.dataset_id)
        if acc is None:
            acc = accumulators[d.dataset_id] = RollupAccumulator(d.dataset_id)
        acc.observe(d)
    for acc in accumulators.values():
        index.add(acc.result())
    if keep_db is not None and Path(keep_db).exists():
        raise ConfigError(f"backtest: {keep_db} exists already; give a new file")
    with tempfile.TemporaryDirectory(prefix="capi-monitor-backtest-") as tmp:
        scratch = Store.open(keep_db or str(Path(tmp) / "backtest.db"))
        try:
            notices: list[Notice] = []
            cycles = _replay(settings, index, stream, scratch, first_cycle, end, step, notices)
            episodes = alert_episodes(scratch.engine, fired_from=start, fired_to=end)
        finally:
            scratch.close()
    return BacktestResult(
        start=start,
        end=end,
        step=step,
        alerts=episodes,
        cycles=cycles,
        deliveries=stream.deliveries,
        events=stream.stats.events,
        datasets=sorted({*ids, *index.rollups}),
        seconds=round(time.perf_counter() - began, 3),
        notifications=[n for n in notices if n.at >= start],
    )


def _replay(
    settings: Settings,
    index: _Index,
    stream: _Stream,
    scratch: Store,
    first: float,
    end: float,
    step: float,
    notices: list[Notice],
) -> int:
    """The evaluation cycles at ``first``, ``first + step``, ... before ``end``; the
    notifications they would have sent go to ``notices``."""
    cycles = 0
    t = first
    while t < end:
        batch = _replay_batch(settings, t, index)
        for d in stream.until(t):
            batch.observe(d)
        reports = batch.reports()
        with write_connection(scratch.engine) as conn, conn.begin():
            outcome = evaluate_cycle(conn, settings, reports, t, outbox=False)
        said: dict[str, list[tuple[str, str, str | None]]] = {}
        for key, reason in outcome.notified:
            if key.dataset_id is not None:  # fleet alerts are not replayed
                said.setdefault(key.dataset_id, []).append((str(reason), key.code, key.event_name))
        notices.extend(
            Notice(t, ds, tuple(r for r, _, _ in x), tuple((c, e) for _, c, e in x))
            for ds, x in sorted(said.items())
        )
        index.add(batch.all_rollups())  # after the cycle: the next one sees them stored
        cycles += 1
        t = first + cycles * step
    return cycles


def episodes_table(
    alerts: Sequence[AlertEpisode], zone: str = "UTC", explain: bool = False
) -> list[str]:
    """The episodes as aligned lines for a terminal; with ``explain``, each followed by
    its message and evidence (the numbers it fired on: expected, observed, z, ...)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)

    def when(ts: float | None) -> str:
        return "still firing" if ts is None else datetime.fromtimestamp(ts, tz).isoformat()

    lines = [f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} would have fired"]
    for a in alerts:
        name = f" {a.event_name}" if a.event_name else ""
        lines.append(
            f"  {when(a.fired_at)} -> {when(a.resolved_at)}  {a.severity:<4} {a.dataset_id} "
            f"{a.code}{name}"
        )
        if explain:
            lines.append(f"      {a.message}")
            if a.evidence:
                lines.append(f"      evidence: {orjson.dumps(a.evidence).decode()}")
    return lines


def summarise(result: BacktestResult) -> Mapping[str, Any]:
    """Counts per code, for a quick look at what a threshold change does."""
    out: dict[str, int] = {}
    for a in result.alerts:
        out[a.code] = out.get(a.code, 0) + 1
    return dict(sorted(out.items()))

"""The ``volume`` check: hourly volumes against a seasonal baseline, ratios against their
recent history. A pure function of ``ctx.series`` (``monitor.model.series.VolumeHistory``); the
statistics are ``checks.baseline``'s and ``checks.detect``'s, the thresholds
``[checks.volume]``'s.

**Series** (per dataset, in its time zone, by send time; events of failed requests are
delivery errors, not volume):

- server events from the delivery logs, per event name and for all events together;
- browser events as Meta counted them (``/stats``), per event name and all together;
- server events as Meta counted them, for event names the logs do not carry (a Graph-only
  setup). Meta's hours are judged once ``graph_settle`` (1 h) has passed after them.

**Baselines and references** (``checks.baseline``, ``checks.detect``): an event name's
hours are judged by its usual share of its source's events times the other events' count
(share baselines; the seasonal baseline while the share is unknown, then against the
other events as a reference); all events of the logs against Meta's browser count as a
reference, and Meta's browser count against the logs. A dataset-wide finding names the event names
whose own hours moved with it.

**Codes.** ``VOLUME_STOPPED``, ``VOLUME_DROP``, ``VOLUME_SPIKE`` (``checks.detect``),
one finding per series; when the all-events series of a source has a code, the per-event
findings of that code and source fold into it (one dataset-wide alert, the event names
in its evidence). A dataset-wide drop or spike of every event name together, with no
reference disagreeing, on a ``[calendar]`` day, from local midnight or like another
dataset of the same country, is ``TRAFFIC_SHIFT`` (info) instead
(``checks.volume_traffic``): traffic, not tracking. A move of all the logs' events may
wait for Meta's browser count of its hours (``_Judge._awaits_reference``): real traffic
shows on both sides, a broken server integration or duplicate sends on one. Ratio drifts
(``EVENT_ID_SHARE_DROP``, ``VALUE_DRIFT``, ``PARITY_RATIO_DRIFT``) are
``checks.volume_ratios``'; a match key's coverage is ``match_quality``'s
(``MATCH_KEY_DROP``, ``checks.match_drop``).

Every finding explains itself in ``evidence``: ``expected``, ``observed``, ``since`` (ISO
8601), ``until``, ``baseline`` (in words) and ``baseline_kind``, plus ``z``, ``change`` and
the ``source`` (a silent sender's stop: ``last_event``). ``count`` is the events missing
(drop, stopped), in excess (spike) or affected (ratios).

Status: ``skipped`` without a store (no history) or when no series has enough history
yet; ``ok``/``warn``/``crit`` otherwise. Log series are not judged once the newest log
events are older than ``stale_after`` (an audit of old files is not a stopped stream).
"""

from __future__ import annotations

import dataclasses as dc
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from checks.base import CheckContext, skipped
from checks.baseline import (
    HOUR,
    Baseline,
    BaselineKind,
    Count,
    graph_count,
    hour_baseline,
    hour_start,
    local_label,
    log_count,
    share_around,
    sum_count,
)
from checks.detect import (
    RECOVERY_MIN_EXPECTED,
    VOLUME_DROP,
    VOLUME_SPIKE,
    VOLUME_STOPPED,
    HourPoint,
    Reference,
    VolumeVerdict,
    judge_volume,
)
from checks.graph_common import graph_finding
from checks.volume_ratios import LOGS, RatioJudge, local_iso
from checks.volume_traffic import REMEDIATION as TRAFFIC_REMEDIATION
from checks.volume_traffic import TRAFFIC_SHIFT, EventMoves, Traffic, reference_expected
from monitor.config import VolumeSettings
from monitor.model.findings import CheckResult, Finding, Severity, Status, worst_severity
from monitor.model.observations import Delivery
from monitor.model.rollup import OTHER_EVENT, HourRollup
from monitor.model.series import Current, VolumeHistory
from monitor.timeutil import iso_utc

CHECK_ID = "volume"
META_SERVER = "meta_server"
META_BROWSER = "meta_browser"
SOURCE_TEXT = {
    LOGS: "server events (delivery logs)",
    META_SERVER: "server events (Meta)",
    META_BROWSER: "browser events (Meta)",
}
STOP_HOURS = 24  # longest run of zero hours looked at for VOLUME_STOPPED
_PENALTY = {Severity.INFO: 0, Severity.WARN: 15, Severity.CRIT: 40}


@runtime_checkable
class UsesSeries(Protocol):
    """A check that judges a dataset's hourly series. The engine calls ``use_series`` when
    the series become known only after reading (``monitor.engine.audit.run_audit(series=...)``);
    otherwise they come in ``CheckContext.series``."""

    def use_series(self, series: VolumeHistory | None) -> None: ...


@dataclass(frozen=True, slots=True)
class _Series:
    event_name: str | None  # None: all event names together
    source: str
    count: Count
    last_hour: int  # the last complete hour judged
    in_progress: float | None  # events so far in the hour in progress (logs only)
    last_seen: float = 0.0  # the send time of its latest event, if recent (logs only)


class Volume:
    id: ClassVar[str] = CHECK_ID
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = True  # stored series: no events at all is VOLUME_STOPPED
    title: ClassVar[str] = "Volume and ratios"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._series = ctx.series
        self._current: list[HourRollup] = []

    def observe(self, delivery: Delivery) -> None:
        """Nothing per delivery: the series come from the rollups (``use_rollups``)."""

    def merge(self, later: Volume) -> None:
        """Stateless until ``use_rollups``: nothing to merge."""

    def use_series(self, series: VolumeHistory | None) -> None:
        """The dataset's history, known after reading (see ``UsesSeries``)."""
        self._series = series

    def use_rollups(self, rollups: Sequence[HourRollup]) -> None:
        """This audit's own rollups, folded into ``ctx.series`` per its ``current``."""
        self._current = list(rollups)

    # --- result --------------------------------------------------------------------------

    def result(self) -> CheckResult:
        if self._series is None:
            return skipped(CHECK_ID, "no stored history: volume needs a store (--db)")
        history = self._series.with_current(self._current)
        live = self._series.current is not Current.REPLACE  # not a one-shot audit
        judge = _Judge(history, self.ctx.now, self.ctx.settings.volume, live)
        findings = judge.findings()
        if not judge.judged:
            return skipped(CHECK_ID, judge.why_not())
        status = Status.from_severity(worst_severity(findings))
        score = max(0, 100 - sum(_PENALTY[f.severity] for f in findings))
        if status is Status.OK:
            summary = f"{judge.judged} series judged against their baselines: no anomaly."
        else:
            summary = f"{len(findings)} volume or ratio anomalies in {judge.judged} series."
        return CheckResult(CHECK_ID, status, summary, score, findings)


# A crit drop of a window expecting fewer events, not yet lasting ``persist_crit_hours``,
# waits for Meta's count as a warn one does: a small shop's visitors come in sessions of
# several events, so a handful of sessions fewer is a sudden drop to a quarter.
SMALL_WINDOW = 100.0
REFERENCE_WAIT = 4 * HOUR  # Meta's counts this far behind a drop's window: flowing, late
FLUSH_MARGIN = 300.0  # s: the hour in progress is judged up to this long ago (a stop)


class _Judge:
    """The judgments of one dataset's history at one time (a helper of ``Volume``)."""

    def __init__(
        self, history: VolumeHistory, now: float, rules: VolumeSettings, live: bool = True
    ) -> None:
        self.h = history
        self.live = live  # logs tailed as they grow, not an audit's copy: silence judged
        self.now = now
        self.rules = rules
        self.tz: ZoneInfo = history.tz
        self.judged = 0
        self.moves = EventMoves({}, rules)
        self.latest = latest = history.latest_hour()
        self.logs_current = latest is not None and latest + HOUR >= now - rules.stale_after
        self.traffic = Traffic(history, rules)

    def why_not(self) -> str:
        if self.latest is not None and not self.logs_current:
            return (
                f"no events in the logs since {iso_utc(self.latest + HOUR)}: volume is judged "
                "only while the logs are current"
            )
        return (
            "not enough history yet: volume needs 3 days of it (the seasonal baseline "
            f"{self.rules.min_weeks} weeks)"
        )

    def findings(self) -> list[Finding]:
        out = []
        for s, v, folded in _fold(self.verdicts()):
            traffic = None
            if s.event_name is None:
                traffic = self.traffic.why(s.count, v, self.moves.ratios(s.source, v))
            if traffic is not None or self._awaits_reference(s, v):
                # Traffic (one info observation), or a dip that waits for Meta's counts
                # (none yet); an event name that fell (or rose) against the others besides
                # (share baseline, or the others as reference) alerts.
                if traffic is not None:
                    out.append(self._traffic_finding(s, v, *traffic))
                for e, ev in folded:
                    if ev.kind is BaselineKind.SHARE or ev.referenced:
                        out.append(self._volume_finding(e, ev, []))
                continue
            names = [e.event_name for e, _ in folded if e.event_name]
            if s.event_name is None:
                names = sorted({*names, *self.moves.moved_with(s.source, v)})
            out.append(self._volume_finding(s, v, names))
        ratios = RatioJudge(self.h, self.now, self.rules)
        if self.logs_current:
            for name in sorted(self.h.rollups):
                if name != OTHER_EVENT:
                    out.extend(ratios.log_ratios(name))
        self.judged += ratios.judged
        last = self._graph_last()
        if last is not None:
            for name in sorted(self.h.graph):
                out.extend(ratios.parity(name, last))
        return out

    # --- volume ----------------------------------------------------------------------------

    def _awaits_reference(self, s: _Series, v: VolumeVerdict) -> bool:
        """Whether a verdict of all the logs' events waits for Meta's browser count, which
        has not covered its hours yet but flows (its last hour at most ``REFERENCE_WAIT``
        behind the window); then it is judged against Meta's level. A ``warn`` drop with
        events still arriving, a ``crit`` one of a window expecting under ``SMALL_WINDOW``
        events that has not lasted ``persist_crit_hours`` yet and a spike wait any day;
        any other ``crit`` drop (to a quarter, or lasting
        ``persist_crit_hours``), a drop while nothing arrives any more (a stop's first
        hours) and a stop only on a ``[calendar]`` day (a holiday morning of a small
        shop can be empty): a stop whose hours Meta's count covers is judged against it
        (``judge_stopped``; ``TRAFFIC_SHIFT`` when that is empty too)."""
        if s.event_name is not None or s.source != LOGS or v.referenced:
            return False
        covered = reference_expected(v) >= self.rules.stopped_min_expected
        if self.traffic.listed_window(v):
            if v.code == VOLUME_STOPPED and covered:
                return False  # judged against Meta's count already (``judge_stopped``)
        elif not self._warn_move(s, v):
            return False
        last = self._graph_last()
        return last is not None and last < v.until - HOUR and v.until - last <= REFERENCE_WAIT

    def _warn_move(self, s: _Series, v: VolumeVerdict) -> bool:
        """A spike (a promotion raises Meta's count too, duplicate sends do not), or a
        ``warn`` drop, or a ``crit`` one expecting under ``SMALL_WINDOW`` events and not
        lasting ``persist_crit_hours`` yet, with events still arriving (a stop's first
        hours never wait)."""
        if v.code == VOLUME_SPIKE:
            return True
        if v.code != VOLUME_DROP:
            return False
        small = v.expected < SMALL_WINDOW and v.persistence < self.rules.persist_crit_hours
        if v.severity is not Severity.WARN and not small:
            return False
        so_far = self._so_far(self._current(s))
        empty_now = s.in_progress == 0 and so_far is not None and so_far >= RECOVERY_MIN_EXPECTED
        return bool(v.points[-1].observed) and not empty_now

    def _graph_last(self) -> int | None:
        """The last hour of Meta's counts that is complete and stored."""
        if self.h.graph_first_hour is None:
            return None
        stored = max(max(hours) for hours in self.h.graph.values() if hours)
        settled = hour_start(self.now - self.rules.graph_settle) - HOUR
        return min(stored, settled)

    def _series(self) -> Iterator[_Series]:
        h = self.h
        current = hour_start(self.now)
        if self.logs_current and h.first_hour is not None:
            counts, lasts = [], []
            for name in sorted(h.rollups):
                count = log_count(h.rollups[name], h.first_hour)
                counts.append(count)
                rows = [h.rollups[name].get(hour) for hour in (current - HOUR, current)]
                lasts.append(max(r.last_sent if r else 0.0 for r in rows))
                if name != OTHER_EVENT:
                    yield _Series(name, LOGS, count, current - HOUR, count(current), lasts[-1])
            total = sum_count(counts)
            yield _Series(None, LOGS, total, current - HOUR, total(current), max(lasts, default=0))
        last = self._graph_last()
        if last is None or h.graph_first_hour is None:
            return
        browsers = []
        for name in sorted(h.graph):
            browser = graph_count(h.graph[name], h.graph_first_hour, last, 0)
            browsers.append(browser)
            yield _Series(name, META_BROWSER, browser, last, None)
            if name not in h.rollups:
                server = graph_count(h.graph[name], h.graph_first_hour, last, 1)
                yield _Series(name, META_SERVER, server, last, None)
        yield _Series(None, META_BROWSER, sum_count(browsers), last, None)

    def _points(self, s: _Series) -> list[HourPoint]:
        """The trailing complete hours with a baseline, oldest first: the windows and the
        hours before them that set the day's level, more (up to ``STOP_HOURS``) while they
        are all zero."""
        points: list[HourPoint] = []
        wanted = self.rules.max_window_hours + self.rules.level_hours
        for k in range(max(STOP_HOURS, wanted)):
            if k >= wanted and any(p.observed for p in points):
                break
            hour = s.last_hour - k * HOUR
            observed = s.count(hour)
            baseline = (
                None if observed is None else hour_baseline(s.count, hour, self.tz, self.rules)
            )
            if observed is None or baseline is None:
                break
            points.append(HourPoint(hour, observed, baseline))
        points.reverse()
        return points

    def verdicts(self) -> list[tuple[_Series, VolumeVerdict]]:
        """The volume verdict of every series that has one, each judged against its
        reference series (``_referenced``)."""
        series = list(self._series())
        points = [self._points(s) for s in series]
        self.moves = EventMoves(
            {(s.source, s.event_name): pts for s, pts in zip(series, points, strict=True)},
            self.rules,
        )
        # Per source, its all-events series: hour -> point, and its count (remembered: a
        # total sums every event name's count, and each event name's share reads it).
        totals: dict[str, tuple[dict[int, HourPoint], Count]] = {
            s.source: ({p.hour: p for p in pts}, functools.cache(s.count))
            for s, pts in zip(series, points, strict=True)
            if s.event_name is None
        }
        out = []
        for s, pts in zip(series, points, strict=True):
            v = self._judge(s, self._referenced(s, pts, totals)) if pts else None
            if v is not None and not self.moves.mix_change(s.source, s.event_name, v):
                out.append((s, v))
        return out

    def _traffic_finding(self, s: _Series, v: VolumeVerdict, why: str, peers: list[str]) -> Finding:
        """The ``TRAFFIC_SHIFT`` observation (info) standing for a dataset-wide verdict."""
        alert = self._volume_finding(s, v, self.moves.moved_with(s.source, v))
        day = local_label(self.traffic.local_midnight(v.until - HOUR), self.tz).split()[0]
        reason = {
            "calendar": f"and {day} is listed in [calendar]",
            "local_midnight": f"since local midnight ({day} 00:00 {self.h.timezone})",
            "country": f"as {', '.join(peers)} of the same country did",
        }[why]
        way = "up" if v.code == VOLUME_SPIKE else "down"
        message = (
            f"{alert.message} Every event name moved {way} together {reason}, with no "
            "reference disagreeing: read as a change in traffic (a holiday, a sale), not "
            "in tracking."
        )
        evidence = {**alert.evidence, "traffic": why, "volume_code": v.code}
        if peers:
            evidence["peers_moved"] = peers
        return graph_finding(
            CHECK_ID, TRAFFIC_SHIFT, Severity.INFO, alert.count, message, TRAFFIC_REMEDIATION,
            evidence=evidence,
        )  # fmt: skip

    def _referenced(
        self,
        s: _Series,
        points: list[HourPoint],
        totals: dict[str, tuple[dict[int, HourPoint], Count]],
    ) -> list[HourPoint]:
        """``points`` with the same hours of their reference series (``detect.Reference``):
        for one event name, the other events of the same source (a holiday moves them
        all, a breakage of one event not); for all events, the other side, Meta's browser
        count for the logs and the logs for Meta's browser count (a holiday moves both, a
        broken server integration or pixel one)."""
        od = self.rules.overdispersion
        if s.event_name is not None:
            if s.source not in (LOGS, META_BROWSER) or s.source not in totals:
                return points
            total, count = totals[s.source]
            out = []
            for p in points:
                t = total.get(p.hour)
                if t is None:
                    out.append(p)
                    continue
                shared = self._share(s, count, p.hour, t.observed - p.observed)
                if shared is not None:
                    out.append(dc.replace(p, baseline=shared))
                    continue
                rest = max(0.0, t.baseline.expected - p.baseline.expected)
                ref = Reference(t.observed - p.observed, rest, t.baseline.variance(od))
                out.append(dc.replace(p, reference=ref))
            return out
        other, _ = totals.get(
            {LOGS: META_BROWSER, META_BROWSER: LOGS}.get(s.source, ""), ({}, None)
        )
        out = []
        for p in points:
            t = other.get(p.hour)
            if t is not None:
                ref = Reference(t.observed, t.baseline.expected, t.baseline.variance(od))
                p = dc.replace(p, reference=ref)
            out.append(p)
        return out

    def _share(self, s: _Series, total: Count, hour: int, rest: float) -> Baseline | None:
        """``baseline.share_around`` of one event name's hour: its share of the source's
        events in the same hour of the day and the hours either side, over the previous
        ``ratio_days`` days (the mix of events drifts slowly over a day)."""
        return share_around(s.count, total, hour, self.tz, self.rules.ratio_days, rest)

    def _judge(self, s: _Series, points: list[HourPoint]) -> VolumeVerdict | None:
        self.judged += 1
        c = self._current(s)
        if c is None:
            return judge_volume(points, self.rules)
        silent = (c, self.now - FLUSH_MARGIN, s.last_seen) if self.live else None
        return judge_volume(points, self.rules, c.observed, self._so_far(c), silent)

    def _current(self, s: _Series) -> HourPoint | None:
        """The hour in progress of a log series: its events so far, its whole baseline."""
        if s.in_progress is None:
            return None
        hour = s.last_hour + HOUR
        b = hour_baseline(s.count, hour, self.tz, self.rules)
        return None if b is None else HourPoint(hour, s.in_progress, b)

    def _so_far(self, c: HourPoint | None) -> float | None:
        """The events the hour in progress ``c`` was expected to hold by now (pro rata)."""
        return None if c is None else c.baseline.expected * (self.now - c.hour) / HOUR

    def _volume_finding(self, s: _Series, v: VolumeVerdict, folded: Sequence[str]) -> Finding:
        who = s.event_name or "All events"
        what = SOURCE_TEXT[s.source]
        silent = v.until > self.now  # ``judge_silent``'s: since the series' last event
        start = local_label(int(max(v.since, s.last_seen)) if silent else v.since, self.tz)
        span = f"the {v.hours} h from {start} ({self.h.timezone})"
        exp, obs = round(v.expected), round(v.observed)
        if v.code == "VOLUME_STOPPED":
            by = datetime.fromtimestamp(self.now - FLUSH_MARGIN, self.tz).strftime("by %H:%M")
            within = by if silent else f"in these {v.hours} h"
            message = (
                f"{who}: no {what} since {start} ({self.h.timezone}); {exp} were expected {within}."
            )
            count = exp
        elif v.code == "VOLUME_DROP":
            message = f"{who}: {obs} {what} in {span}, {exp} expected ({v.change:+.0%})."
            count = exp - obs
        else:
            message = (
                f"{who}: {obs} {what} in {span}, {v.observed / v.expected:.1f}× the {exp} expected."
            )
            count = obs - exp
        if folded:
            message += f" Affects {', '.join(folded[:5])}{' and more' if len(folded) > 5 else ''}."
        evidence: dict[str, Any] = {
            "source": s.source,
            "expected": round(v.expected, 1),
            "observed": v.observed,
            "change": round(v.change, 3),
            "z": round(v.z, 2),
            "since": iso_utc(v.since),
            "until": iso_utc(v.until),
            "since_local": local_iso(v.since, self.tz),
            "window_hours": v.hours,
            "persistence_hours": v.persistence,
            "baseline": self._describe(v, s.source, s.event_name is not None),
            "baseline_kind": str(v.kind),
            "level": round(v.level, 3),
            "hours": [
                {
                    "hour": iso_utc(p.hour),
                    "observed": p.observed,
                    "expected": round(p.baseline.expected, 1),
                }
                for p in v.points
            ],
        }
        if folded:
            evidence["event_names"] = list(folded)
        if silent and s.last_seen >= v.since:
            evidence["last_event"] = iso_utc(s.last_seen)
        return graph_finding(
            CHECK_ID, v.code, v.severity, count, message, _REMEDIATION[(v.code, s.source)],
            event_names=[s.event_name] if s.event_name else [], evidence=evidence,
        )  # fmt: skip

    def _describe(self, v: VolumeVerdict, source: str, per_event: bool) -> str:
        first = v.points[0].baseline
        n = min(len(p.baseline.samples) for p in v.points)
        hours = local_label(v.since, self.tz)
        if v.hours > 1:
            hours += f"–{datetime.fromtimestamp(v.until, self.tz).strftime('%H:%M')}"
        if v.kind is BaselineKind.SHARE:
            share = first.samples[0] if first.samples else 0.0
            return (
                f"the event's usual share of the dataset's {SOURCE_TEXT[source]} at the same "
                f"hours of the day over the last {n} days ({share:.1%} at {hours} "
                f"{self.h.timezone}), times the other events' count in each hour"
            )
        if v.kind is BaselineKind.SEASONAL:
            what = f"median of the same hour of the week over the last {n}+ weeks"
        else:
            what = (
                f"median of the same hour of the day over the last {n}+ days (cold start: "
                f"under {self.rules.min_weeks} weeks of history)"
            )
        samples = ", ".join(f"{x:g}" for x in first.samples)
        sum_note = "summed over the window; " if v.hours > 1 else ""
        if v.level == 1:
            level = ""
        elif v.referenced:
            ref = "the dataset's other events" if per_event else _REFERENCE_TEXT[source]
            level = f"; measured against {v.level:.2f}x that, the level of {ref} in the same hours"
        else:
            level = (
                f"; measured against {v.level:.2f}x that, the day's level over the "
                f"{self.rules.level_hours} h before"
            )
        return f"{what}, {sum_note}{hours} {self.h.timezone} (samples: {samples}){level}"


def _fold(
    verdicts: list[tuple[_Series, VolumeVerdict]],
) -> list[tuple[_Series, VolumeVerdict, list[tuple[_Series, VolumeVerdict]]]]:
    """Per-event verdicts whose all-events series of the same source has the same code
    fold into it: one dataset-wide finding naming them, not one alert per event name."""
    totals = {(s.source, v.code) for s, v in verdicts if s.event_name is None}
    Folded = list[tuple[_Series, VolumeVerdict]]
    out: list[tuple[_Series, VolumeVerdict, Folded]] = []
    folded: dict[tuple[str, str], Folded] = {}
    for s, v in verdicts:
        if s.event_name is not None and (s.source, v.code) in totals:
            folded.setdefault((s.source, v.code), []).append((s, v))
    for s, v in verdicts:
        if s.event_name is None:
            out.append((s, v, folded.get((s.source, v.code), [])))
        elif (s.source, v.code) not in totals:
            out.append((s, v, []))
    return out


# What a series' level is measured against (``_Judge._referenced``), for explanations.
_REFERENCE_TEXT = {LOGS: "browser events (Meta)", META_BROWSER: "server events (delivery logs)"}

_STOPPED_LOGS = (
    "Find what stopped sending: the server integration (a deploy, a crashed worker or "
    "queue, an expired token in DELIVERY_ERRORS), or the logging itself."
)
_DROP_LOGS = (
    "Compare with the shop's own numbers (orders, sessions): a real fall in traffic needs no "
    "fix; otherwise look for a partial outage of the sender (one server, one checkout "
    "path, consent changes)."
)
_SPIKE = (
    "Look for duplicate sends (a retry loop, two integrations sending the same events) or "
    "bot traffic; a promotion explains it only if orders rose as much."
)
_BROWSER = (
    "Check the pixel on the site: tag manager or consent changes, a removed base code, "
    "a broken fbq('track') call."
)
_REMEDIATION: dict[tuple[str, str], str] = {
    ("VOLUME_STOPPED", LOGS): _STOPPED_LOGS,
    ("VOLUME_DROP", LOGS): _DROP_LOGS,
    ("VOLUME_SPIKE", LOGS): _SPIKE,
    ("VOLUME_STOPPED", META_SERVER): _STOPPED_LOGS,
    ("VOLUME_DROP", META_SERVER): _DROP_LOGS,
    ("VOLUME_SPIKE", META_SERVER): _SPIKE,
    ("VOLUME_STOPPED", META_BROWSER): _BROWSER,
    ("VOLUME_DROP", META_BROWSER): _BROWSER,
    ("VOLUME_SPIKE", META_BROWSER): _SPIKE,
}

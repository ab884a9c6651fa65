"""Traffic or tracking: whether a dataset-wide ``VOLUME_DROP`` or ``VOLUME_SPIKE`` of the
``volume`` check is a change in traffic (a holiday, a sale) rather than in tracking. Pure;
used by ``checks.volume``, thresholds from ``[checks.volume]`` (``traffic_move``,
``traffic_midnight_hours``, ``calendar_night_hours``, ``dip_z``, ``min_expected``), the
known days from ``[calendar]`` (``VolumeHistory.calendar``).

**The rule** (``Traffic.why``). All of:

- the verdict is a drop or a spike (a stop, ``VOLUME_STOPPED``, is a sender outage,
  except on a ``[calendar]`` day when Meta's browser count of its hours is empty too:
  ``Traffic.quiet_listed_day``);
- no reference disagreeing: when the verdict was measured against the other side (Meta's
  browser count for the logs, the logs for Meta's count), that side moved its way by
  ``2 × traffic_move`` too, or, on a ``[calendar]`` day, stayed within its own noise
  (z < ``dip_z``) of where the series went, over the hours it covers
  (``Traffic.disagrees``); a broken server integration or pixel moves one side only;
- every event name expecting at least ``min_expected`` events in the window moved its
  way by ``2 × traffic_move`` (its own seasonal baselines): a breakage of one event name
  does not move the others. (Black Friday lifts visits less than purchases: the bar is
  the same way by 20 %, not as far as the total.)

and one of:

- ``"calendar"``: every hour of the window is on a local day listed in ``[calendar]``,
  or in its night (the first ``calendar_night_hours`` of the next day);
- ``"local_midnight"``: the move started at the dataset's local midnight
  (``Traffic.from_midnight``);
- ``"country"``: another dataset of the same country (``VolumeHistory.peers``) moved the
  same way by ``2 × traffic_move``, significantly, over the same hours.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from checks.baseline import HOUR, BaselineKind, Count, hour_baseline, log_count, sum_count
from checks.detect import (
    VOLUME_DROP,
    VOLUME_SPIKE,
    VOLUME_STOPPED,
    HourPoint,
    VolumeVerdict,
    expected_sum,
)
from monitor.config import VolumeSettings
from monitor.model.series import VolumeHistory

TRAFFIC_SHIFT = "TRAFFIC_SHIFT"  # info: a dataset-wide move read as traffic
REMEDIATION = (
    "Nothing to fix if the shop's own numbers (orders, sessions) moved as much. If they "
    "did not, treat it as VOLUME_DROP or VOLUME_SPIKE; list known holidays and sales days "
    "in [calendar] to have them read as traffic at any hour."
)


class EventMoves:
    """How each event name moved over a verdict's window against its own seasonal
    baselines: ``seasonal`` holds each series' trailing points, by (source, event name)."""

    def __init__(
        self, seasonal: Mapping[tuple[str, str | None], Sequence[HourPoint]], rules: VolumeSettings
    ) -> None:
        self.seasonal, self.rules = seasonal, rules

    def ratio(self, source: str, name: str | None, v: VolumeVerdict) -> tuple[float, float]:
        """Observed ÷ expected of one series over ``v``'s window, and the expected."""
        window = [p for p in self.seasonal.get((source, name), ()) if v.since <= p.hour < v.until]
        expected = expected_sum(window)
        return (sum(p.observed for p in window) / expected if expected > 0 else 1.0), expected

    def ratios(self, source: str, v: VolumeVerdict) -> Iterator[tuple[str, float, float]]:
        """Per event name of ``source``: (name, observed ÷ expected, expected) over the
        verdict's window, those expecting any."""
        for src, name in self.seasonal:
            if src == source and name is not None:
                ratio, expected = self.ratio(source, name, v)
                if expected > 0:
                    yield name, ratio, expected

    def moved(self, v: VolumeVerdict, ratio: float) -> bool:
        """Whether a ratio moved as the verdict did: half as far as it must."""
        if v.code == VOLUME_SPIKE:
            return ratio >= (1 + self.rules.spike_ratio) / 2
        return ratio <= 1 - self.rules.drop_warn / 2

    def moved_with(self, source: str, v: VolumeVerdict) -> list[str]:
        """The event names of ``source`` whose own hours of a dataset-wide verdict's window
        moved as the total did: what the finding names (their shares did not change, so
        they have no finding of their own)."""
        return [name for name, ratio, _ in self.ratios(source, v) if self.moved(v, ratio)]

    def mix_change(self, source: str, name: str | None, v: VolumeVerdict) -> bool:
        """Whether a drop of one event name's share is the others growing (a promotion
        moves the mix towards checkouts): its own count did not fall against its seasonal
        baselines over the window."""
        if name is None or v.code != VOLUME_DROP or v.kind is not BaselineKind.SHARE:
            return False
        ratio, expected = self.ratio(source, name, v)
        return expected > 0 and not self.moved(v, ratio)


def reference_expected(v: VolumeVerdict) -> float:
    """The events the reference series expected over the hours of the window it covers."""
    return sum(p.reference.expected for p in v.points if p.reference is not None)


def _log_total(h: VolumeHistory) -> Count:
    """All server-log events of a history per hour (``None`` before its first hour), as
    ``checks.volume`` sums its event names."""
    first = h.first_hour
    if first is None:
        return lambda hour: None
    return functools.cache(sum_count([log_count(hours, first) for hours in h.rollups.values()]))


def listed(h: VolumeHistory, hour: int, rules: VolumeSettings) -> bool:
    """Whether an hour falls on a ``[calendar]`` day of ``h``, or in its night: the first
    ``calendar_night_hours`` of the next local day (a holiday's night is quiet too)."""
    if not h.calendar:
        return False
    local = datetime.fromtimestamp(hour, h.tz)
    day = local.date()
    if day in h.calendar:
        return True
    night = local.hour < rules.calendar_night_hours
    return night and day - timedelta(days=1) in h.calendar


class Traffic:
    """The rule (module docstring) for one dataset's history at one time."""

    def __init__(self, history: VolumeHistory, rules: VolumeSettings) -> None:
        self.h = history
        self.rules = rules
        self.tz = history.tz

    def why(
        self, count: Count, v: VolumeVerdict, names: Iterable[tuple[str, float, float]]
    ) -> tuple[str, list[str]] | None:
        """(reason, peers that moved) when the dataset-wide verdict ``v`` of the series
        ``count`` is traffic, else ``None``. ``names``: (event name, observed ÷ expected,
        expected) of each event name of the series' source over the window."""
        if v.code == VOLUME_STOPPED:
            return ("calendar", []) if self.quiet_listed_day(v) else None
        if v.code not in (VOLUME_DROP, VOLUME_SPIKE):
            return None
        listed = self.listed_window(v)
        if v.referenced and self.disagrees(v, listed):
            return None  # the other side did not move as far: one side against the other
        for _, ratio, expected in names:
            if expected >= self.rules.min_expected and not self.same_way(v, ratio, 2):
                return None  # an event name that did not move: not the whole dataset
        if listed:
            return "calendar", []
        if self.from_midnight(count, v):
            return "local_midnight", []
        peers = self.peers_moved(v)
        return ("country", peers) if peers else None

    def disagrees(self, v: VolumeVerdict, listed: bool) -> bool:
        """Whether the other side, over the hours of the window it covers, did not move
        the verdict's way by ``2 × traffic_move``; on a ``[calendar]`` day (``listed``)
        only if it also stayed significantly (z ≥ ``dip_z`` of its own noise) beyond where
        this series went: a small reference that moved less only by its noise does not
        disagree there. Elsewhere it would hide a halving for as long as the reference is
        small (a lead site's Saturday, read as a move from local midnight)."""
        covered = [p for p in v.points if p.reference is not None]
        refs = [p.reference for p in covered if p.reference is not None]
        ref_expected = sum(r.expected for r in refs)
        if ref_expected > 0 and self.same_way(v, sum(r.observed for r in refs) / ref_expected, 2):
            return False  # it moved as far: no disagreement
        expected = sum(p.baseline.expected for p in covered)
        variance = sum(r.variance for r in refs)
        if not listed or expected <= 0 or variance <= 0:
            return True
        ratio = sum(p.observed for p in covered) / expected
        z = sum(r.observed - ratio * r.expected for r in refs) / math.sqrt(variance)
        return z >= self.rules.dip_z if v.code == VOLUME_DROP else z <= -self.rules.dip_z

    def quiet_listed_day(self, v: VolumeVerdict) -> bool:
        """A stop on a ``[calendar]`` day that the other side shows too: Meta's count of
        those hours expected ``stopped_min_expected`` events and holds none (the whole
        site is quiet, as the day explains; a stopped sender leaves the pixel firing)."""
        if reference_expected(v) < self.rules.stopped_min_expected:
            return False
        if any(p.reference.observed for p in v.points if p.reference is not None):
            return False
        return self.listed_window(v)

    def listed_window(self, v: VolumeVerdict) -> bool:
        """Every hour of the verdict's window is on a ``[calendar]`` day or in its night."""
        return all(listed(self.h, h, self.rules) for h in range(v.since, v.until, HOUR))

    def same_way(self, v: VolumeVerdict, ratio: float, times: float = 1) -> bool:
        """Whether a ratio moved the verdict's way by ``times × traffic_move``."""
        move = times * self.rules.traffic_move
        return ratio >= 1 + move if v.code == VOLUME_SPIKE else ratio <= 1 - move

    def _significant(self, v: VolumeVerdict, z: float) -> bool:
        return z >= self.rules.dip_z if v.code == VOLUME_SPIKE else z <= -self.rules.dip_z

    def local_midnight(self, hour: int) -> int:
        """The UTC start of the local day containing ``hour``."""
        day = datetime.fromtimestamp(hour, self.tz).date()
        return int(datetime.combine(day, time(), tzinfo=self.tz).timestamp())

    def ratio_over(
        self, count: Count, start: int, stop: int, tz: ZoneInfo | None = None
    ) -> tuple[float, float, float] | None:
        """(observed ÷ expected, expected, z) of a series over the hours ``[start, stop)``
        against its seasonal baselines; ``None`` when an hour has no count or baseline."""
        zone = tz or self.tz
        observed = expected = variance = 0.0
        for hour in range(start, stop, HOUR):
            n = count(hour)
            b = None if n is None else hour_baseline(count, hour, zone, self.rules)
            if n is None or b is None:
                return None
            observed, expected = observed + n, expected + b.expected
            variance += b.variance(self.rules.overdispersion)
        if expected <= 0:
            return 1.0, 0.0, 0.0
        z = (observed - expected) / math.sqrt(variance) if variance > 0 else 0.0
        return observed / expected, expected, z

    def from_midnight(self, count: Count, v: VolumeVerdict) -> bool:
        """The move started at local midnight: the window lies in one local day; the hours
        of that day before the window moved the same way by at least ``traffic_move``,
        significantly (|z| ≥ ``dip_z``), when they expected ``2 × min_expected`` events
        (else the window must start within ``traffic_midnight_hours`` of midnight); and
        the ``level_hours`` before midnight did not (a drop that began the evening
        before is an incident going on)."""
        rules = self.rules
        midnight = self.local_midnight(v.until - HOUR)
        if v.since < midnight:
            return False
        evening = self.ratio_over(count, midnight - rules.level_hours * HOUR, midnight)
        known = evening is not None and evening[1] >= 2 * rules.min_expected
        if known and evening is not None and self.same_way(v, evening[0]):
            return False  # already down (up) the evening before
        before = self.ratio_over(count, midnight, v.since)
        if before is None or before[1] < 2 * rules.min_expected:
            return v.since - midnight <= rules.traffic_midnight_hours * HOUR
        ratio, _, z = before
        return self._significant(v, z) and self.same_way(v, ratio)

    def peers_moved(self, v: VolumeVerdict) -> list[str]:
        """The datasets of the same country (``VolumeHistory.peers``) whose server events
        of the verdict's hours moved its way by ``2 × traffic_move``, significantly
        (|z| ≥ ``dip_z``), with at least ``2 × min_expected`` expected."""
        out = []
        for peer in self.h.peers:
            moved = self.ratio_over(_log_total(peer), v.since, v.until, peer.tz)
            if moved is None or moved[1] < 2 * self.rules.min_expected:
                continue
            ratio, _, z = moved
            if self._significant(v, z) and self.same_way(v, ratio, 2):
                out.append(peer.dataset_id)
        return out

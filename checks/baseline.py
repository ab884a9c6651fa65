"""Hourly baselines of volume monitoring, as pure functions. No I/O, no clock.

Used by ``checks.detect`` and ``checks.volume`` on hourly series (``monitor.model.series``);
the thresholds come from ``[checks.volume]`` (``monitor.config.VolumeSettings``).

**Hours.** Series are keyed by UTC hour starts (Unix seconds), as the rollups are. The
*position* of an hour in the day and the week is read in the dataset's time zone, so the
baseline of "Monday 09:00" follows the local clock across DST changes: the same wall-clock
hour ``n`` weeks back is converted back to UTC with ``zoneinfo`` (``shifted_hour``). A wall
time that does not exist (the spring-forward gap) gives no sample; an ambiguous one (the
repeated hour in autumn) takes its first occurrence. In zones with a half-hour offset an
hour bucket is placed by the local time it starts at.

**Baseline of one hour** (``hour_baseline``):

- *seasonal*, with at least ``min_weeks`` (3) samples of the same hour of the week within
  the last ``weeks`` (6): expected = their median, spread = 1.4826 × MAD (robust to an
  outlier week: a promotion, a holiday, an earlier incident);
- *cold start*, with fewer weekly samples: week-on-week, the median of the one or two
  samples of the same hour of the week; in the first week, day-on-day, the same hour of
  the day over the last ``cold_start_days`` (7) days, at least ``cold_start_min_days`` (3)
  of them (weekdays and weekends then mix). Either way a drop must also be at least
  ``cold_start_drop`` (50 %) to count: the anchors' "DoD/WoW −50 %" rule (their −20 %
  warning is not used: ordinary days differ by that much);
- none (the hour is not judged) with less history. Hours before the first stored data are
  unknown, never zero; hours after it without a row had zero events.

**Noise.** An hour's variance is ``max(spread², D·m + (overdispersion·m)²) × (1 + π/2n)``:
the observed spread, floored by (over-dispersed) Poisson noise plus a relative day-to-day
noise (a median of 3 samples has a MAD of 0 surprisingly often), inflated for the
uncertainty of a median of ``n`` samples. The spread of the judged hours of one series is
pooled (``detect.pooled``: one relative spread, the median of theirs), and so is its
dispersion ``D`` (variance per expected event: bursts of a visitor's events, batched
sends), at least 1 and capped at ``dispersion_cap² × m``. Windows of several hours add
expectations and variances. Against a reference series that carries the day's level
(``detect.reference_level``), only the burst part counts: ``Baseline.noise``,
``D·m + (overdispersion·m)²``.

**Share baselines** (``share_baseline``, per event name): an event name's usual share of
its source's events, over the same hour of the day and the hours either side on each of
the previous ``ratio_days`` (7) days, times the other events' count in the hour judged.
A holiday or a promotion moves the other events as much; a breakage of this event name
does not. Its variance adds the uncertainty of the share and of the other events' count
to the hour's own. Without 20 earlier events of the name the seasonal baseline stands.
The share of one hour varies more than independent events would (a handful of night
sessions, each from the website or the app, sets the mix): its dispersion ``φ`` is
measured on the same earlier hours (Pearson's χ² of their counts against the share, per
degree of freedom, at least 1) and scales the hour's Poisson noise (``share_around``).
"""

from __future__ import annotations

import dataclasses as dc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config import VolumeSettings

HOUR = 3600
DAY = 86400
MAD_SCALE = 1.4826  # MAD -> standard deviation of a normal distribution

# A series' value at an hour (Unix seconds of its start): None when unknown (before the
# history starts, or Meta's numbers not in yet), else a number.
Count = Callable[[int], float | None]


def log_count(hours: Mapping[int, Any], first: int) -> Count:
    """The events of one event name's hourly rollups (``hours``: hour -> row with
    ``events``): ``None`` before ``first`` (unknown), 0 for an hour without a row."""

    def count(hour: int) -> float | None:
        if hour < first:
            return None
        r = hours.get(hour)
        return r.events if r is not None else 0

    return count


def graph_count(hours: Mapping[int, Any], first: int, last: int, side: int) -> Count:
    """One side of Meta's hourly counts (``hours``: hour -> ``(browser, server)``; ``side``
    0 or 1): ``None`` outside ``[first, last]`` (later hours are not in yet), 0 for an hour
    without a count."""

    def count(hour: int) -> float | None:
        if hour < first or hour > last:
            return None
        pair = hours.get(hour)
        return pair[side] if pair is not None else 0

    return count


def sum_count(counts: Sequence[Count]) -> Count:
    """The sum of several series at each hour, over those known there (``None`` when
    none is)."""

    def count(hour: int) -> float | None:
        values = [c(hour) for c in counts]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return count


_UTC = ZoneInfo("UTC")


class BaselineKind(StrEnum):
    SEASONAL = "seasonal"  # same hour of the week, previous weeks
    COLD_START = "cold_start"  # same hour of the day, previous days
    SHARE = "share"  # an event name's usual share of its source's events (``share_baseline``)


def hour_start(ts: float) -> int:
    """The UTC hour start (Unix seconds) of the hour containing ``ts``."""
    return int(ts // HOUR * HOUR)


@lru_cache(maxsize=65536)
def shifted_hour(hour: int, tz: ZoneInfo, days: int) -> int | None:
    """The UTC hour start of the same local wall-clock hour ``days`` days before ``hour``.

    ``None`` when that wall time does not exist in ``tz`` (skipped by a DST change); an
    ambiguous one (the hour repeated in autumn) resolves to its first occurrence.
    """
    local = datetime.fromtimestamp(hour, tz).replace(tzinfo=None) - timedelta(days=days)
    aware = local.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(_UTC).astimezone(tz).replace(tzinfo=None)
    if back != local:  # the wall time fell into a gap: zoneinfo moved it
        return None
    return hour_start(aware.timestamp())


def local_label(hour: int, tz: ZoneInfo) -> str:
    """``Mon 09:00`` in ``tz``: how an hour of the week is named in explanations."""
    return datetime.fromtimestamp(hour, tz).strftime("%a %H:%M")


def mad(values: Sequence[float], center: float) -> float:
    """Median absolute deviation of ``values`` around ``center``."""
    return median(abs(v - center) for v in values)


@dataclass(frozen=True, slots=True)
class Baseline:
    """What one hour is expected to hold: from ``samples`` of comparable earlier hours."""

    expected: float  # median of the samples
    spread: float  # 1.4826 × MAD of the samples
    samples: tuple[float, ...]
    kind: BaselineKind
    # Variance per expected event beyond Poisson's 1 (session bursts, batched sends), as
    # measured on the series and capped (``detect.pooled``); 1 = Poisson.
    dispersion: float = 1.0

    @classmethod
    def of(cls, samples: Sequence[float], kind: BaselineKind) -> Baseline:
        m = median(samples)
        return cls(float(m), MAD_SCALE * mad(samples, m), tuple(samples), kind)

    def noise(self, overdispersion: float) -> float:
        """The count's own noise around its level (bursts, batches, a relative floor),
        without the day-to-day spread of the samples."""
        return burst_noise(self.dispersion, self.expected, overdispersion)

    def variance(self, overdispersion: float) -> float:
        """Variance of (observed − expected): see the module docstring. A share baseline's
        ``spread`` is the uncertainty of its share, added to the count's own noise."""
        floor = self.noise(overdispersion)
        if self.kind is BaselineKind.SHARE:
            return floor + self.spread**2
        return max(self.spread**2, floor) * (1 + math.pi / (2 * len(self.samples)))


def burst_noise(dispersion: float, m: float, overdispersion: float) -> float:
    """The noise of a count expecting ``m``: ``dispersion`` per expected event and a
    relative floor of ``overdispersion``."""
    return dispersion * m + (overdispersion * m) ** 2


def share_around(
    count: Count, total: Count, hour: int, tz: ZoneInfo, days: int, rest: float
) -> Baseline | None:
    """The share baseline (module docstring) of series ``count`` within ``total`` at
    ``hour``, from the same hour of the day and the hours either side on each of the
    previous ``days`` days, with its measured dispersion; ``rest``: the other events of
    the hour judged."""
    pairs: list[tuple[float, float]] = []
    used = 0
    for d in range(1, days + 1):
        base = shifted_hour(hour, tz, d)
        if base is None:
            continue
        used += 1
        for h in (base - HOUR, base, base + HOUR):
            e, t = count(h), total(h)
            if e is not None and t is not None and t > 0:
                pairs.append((e, t))
    event, events = sum(e for e, _ in pairs), sum(t for _, t in pairs)
    b = share_baseline(event, events, rest, used)
    if b is None:
        return None
    return dc.replace(b, dispersion=share_dispersion(pairs, event / events))


def share_dispersion(pairs: Sequence[tuple[float, float]], share: float) -> float:
    """``φ`` of a share over hours of ``(event, total)`` counts: Pearson's χ² against
    ``share`` per degree of freedom, at least 1 (1 when nothing tells)."""
    if len(pairs) < 2 or not 0 < share < 1:
        return 1.0
    chi2 = sum((e - t * share) ** 2 / (t * share * (1 - share)) for e, t in pairs)
    return max(1.0, chi2 / (len(pairs) - 1))


def share_baseline(event: float, total: float, rest: float, days: int) -> Baseline | None:
    """The baseline of one event name in one hour from its usual share of its source's
    events: ``event`` of ``total`` events in comparable earlier hours (over ``days``
    days of them), scaled to the ``rest`` (the other events) observed in the hour.
    A holiday or a promotion moves the rest as much; a breakage of this event does not.
    ``None`` with fewer than 20 earlier events of the name (``share`` too uncertain)."""
    if event < 20 or total <= event:
        return None
    share = event / total
    expected = share / (1 - share) * rest
    # The uncertainty of the expectation: of the share (a ratio of counts) and of the
    # rest's own count, which it scales (Poisson: variance ``rest``).
    share_var = expected**2 * (1 / event + 1 / (total - event))
    rest_var = (share / (1 - share)) ** 2 * rest
    spread = math.sqrt(share_var + rest_var)
    return Baseline(expected, spread, (round(share, 4),) * days, BaselineKind.SHARE)


def hour_baseline(
    count: Callable[[int], float | None], hour: int, tz: ZoneInfo, rules: VolumeSettings
) -> Baseline | None:
    """The baseline of ``hour`` (module docstring). ``count(h)`` is the series' value at
    hour ``h``: ``None`` when unknown (before the history starts), else a number."""
    weekly = _samples(count, hour, tz, [7 * w for w in range(1, rules.weeks + 1)])
    if len(weekly) >= rules.min_weeks:
        return Baseline.of(weekly, BaselineKind.SEASONAL)
    if weekly:  # one or two weeks back: week-on-week (weekends differ from weekdays)
        return Baseline.of(weekly, BaselineKind.COLD_START)
    daily = _samples(count, hour, tz, list(range(1, rules.cold_start_days + 1)))
    if len(daily) >= rules.cold_start_min_days:
        return Baseline.of(daily, BaselineKind.COLD_START)
    return None


def _samples(
    count: Callable[[int], float | None], hour: int, tz: ZoneInfo, days: Sequence[int]
) -> list[float]:
    out = []
    for d in days:
        h = shifted_hour(hour, tz, d)
        value = None if h is None else count(h)
        if value is not None:
            out.append(float(value))
    return out


def counts_from(mapping: Mapping[int, float], first_hour: int) -> Callable[[int], float | None]:
    """A series lookup for ``hour_baseline``: unknown before ``first_hour``, zero for hours
    after it without a value."""

    def count(hour: int) -> float | None:
        if hour < first_hour:
            return None
        return mapping.get(hour, 0.0)

    return count

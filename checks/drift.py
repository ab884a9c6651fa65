"""Ratio drifts against their recent history, as pure functions. No I/O, no clock.

Used by ``checks.volume_ratios``; the thresholds come from ``[checks.volume]``
(``monitor.config.VolumeSettings``).

**Ratio drifts** need no seasonality: a recent window (the last 1 to ``ratio_hours`` (3)
hours, the one in progress included) against the median of the same ratio over the
previous ``ratio_days`` (7) days, day by day (``daily_blocks``):

- ``judge_share``: a share (events with ``event_id``, Meta's server share) fell by at
  least ``share_drop`` (20 points) with z ≤ −``ratio_z`` (−5) under a binomial variance
  plus the day-to-day spread; ``crit`` from ``share_drop_crit`` (50 points). Match-key
  coverage is judged with over-dispersion in ``checks.match_drop``;
- ``judge_mean``: a mean (the Purchase value) changed by at least ``value_change`` (50 %)
  with |z| ≥ ``ratio_z``, the spread of single values estimated from hourly means.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median

from checks.baseline import DAY, HOUR, MAD_SCALE, mad
from monitor.config import VolumeSettings
from monitor.model.findings import Severity


def daily_blocks(end: int, days: int) -> list[tuple[int, int]]:
    """``days`` consecutive 24-hour blocks ``[start, stop)`` ending at ``end``, newest
    first: the day-by-day history a recent window is compared with."""
    return [(end - (d + 1) * DAY, end - d * DAY) for d in range(days)]


@dataclass(frozen=True, slots=True)
class Window:
    """A recent window of a ratio: numerator and denominator over ``[since, until)``."""

    since: float
    until: float
    num: float
    den: float

    @property
    def value(self) -> float:
        return self.num / self.den if self.den else 0.0


@dataclass(frozen=True, slots=True)
class RatioDrift:
    """A ratio that left its recent history: ``expected`` (median of ``days`` daily
    values), ``observed`` over ``window``."""

    severity: Severity
    expected: float
    observed: float
    spread: float
    days: int
    z: float | None
    window: Window

    @property
    def change(self) -> float:
        return self.observed - self.expected


def _daily_values(daily: Sequence[tuple[float, float]], min_den: float) -> list[float]:
    return [n / d for n, d in daily if d >= min_den and d > 0]


def judge_share(
    windows: Sequence[Window],
    daily: Sequence[tuple[float, float]],
    rules: VolumeSettings,
    *,
    min_baseline: float = 0.0,
    both_ways: bool = False,
) -> RatioDrift | None:
    """A share that fell (or, ``both_ways``, moved) by at least ``share_drop`` from the
    median of its ``daily`` ``(num, den)`` values, with |z| ≥ ``z`` (module docstring).
    Shares usually under ``min_baseline`` are not judged (nothing to lose)."""
    values = _daily_values(daily, rules.ratio_min_events)
    if len(values) < rules.ratio_min_days:
        return None
    p0 = median(values)
    if p0 < min_baseline:
        return None
    spread = MAD_SCALE * mad(values, p0)
    best: tuple[float, Window] | None = None
    for w in windows:
        if w.den < rules.ratio_min_events:
            continue
        binomial = max(p0 * (1 - p0), 0.05) / w.den  # floor: a share of 100 % still varies
        z = (w.value - p0) / math.sqrt(binomial + spread**2 * (1 + math.pi / (2 * len(values))))
        moved = abs(w.value - p0) if both_ways else p0 - w.value
        if moved < rules.share_drop or abs(z) < rules.ratio_z or (not both_ways and z > 0):
            continue
        if best is None or abs(z) > abs(best[0]):
            best = (z, w)
    if best is None:
        return None
    z, w = best
    severe = abs(w.value - p0) >= rules.share_drop_crit
    severity = Severity.CRIT if severe else Severity.WARN
    return RatioDrift(severity, p0, w.value, spread, len(values), z, w)


# Terms of the spread estimate are capped at this many times their median: a chi-squared
# variable with one degree of freedom goes beyond 25 × its median (25 × 0.455 = 11.4) once
# in 1,400 draws; an hour of values in cents (× 100) does every time.
TERM_CAP = 25.0


def judge_mean(
    windows: Sequence[Window],
    daily: Sequence[tuple[float, float]],
    hourly: Sequence[tuple[float, float]],
    rules: VolumeSettings,
    factor: float = 1.0,
) -> RatioDrift | None:
    """A mean (``num`` = sum, ``den`` = count) that moved by at least ``value_change`` of
    the median of its ``daily`` means, with |z| ≥ ``ratio_z``, and beyond ``factor`` times
    or a ``factor``-th of it (a sale day's offers move the mean value far; prices in
    cents, a placeholder value or a lost one farther).

    Rollups keep sums and counts, not squares: the spread of single values is estimated
    from the ``hourly`` means of the same days: ``n × (mean_h − m0)²`` has the expectation
    σ². Its mean, each term capped at ``TERM_CAP`` times the terms' median (an hour of an
    earlier breakage weighs like a rare hour, not like a hundred). Not the median alone:
    order values are skewed (a few large baskets) and the median of the terms then
    understates σ² (by a third for log-normal values). The largest baskets still escape
    the estimate: a window whose move comes from one hour alone must reach
    ``value_one_hour_z`` (``_beyond_one_hour``; one or two large baskets move an hour's
    mean of a few orders a long way); in the traffic model a mean of
    24 orders, two of them 900 and 1,191 against a usual 66, reached z 5.3."""
    values = _daily_values(daily, rules.ratio_min_events)
    if len(values) < rules.ratio_min_days:
        return None
    m0 = median(values)
    if m0 <= 0:
        return None
    spread = MAD_SCALE * mad(values, m0)
    scaled = [n * (s / n - m0) ** 2 for s, n in hourly if n >= 2]
    if len(scaled) < 12:
        return None
    cap = TERM_CAP * median(scaled)
    sigma2 = sum(min(t, cap) for t in scaled) / len(scaled)
    best: tuple[float, Window] | None = None
    for k, w in enumerate(windows):
        if w.den < rules.ratio_min_events:
            continue
        # The hourly means deviate from m0 by day-to-day shifts too: sigma2 holds both.
        z = (w.value - m0) / math.sqrt(max(sigma2 / w.den, (0.01 * m0) ** 2))
        ratio = w.value / m0
        if abs(ratio - 1) < rules.value_change or abs(z) < rules.ratio_z:
            continue
        if 1 / factor < ratio < factor:
            continue
        if abs(z) < rules.value_one_hour_z and not _beyond_one_hour(windows[: k + 1], m0, rules):
            continue
        if best is None or abs(z) > abs(best[0]):
            best = (z, w)
    if best is None:
        return None
    z, w = best
    return RatioDrift(Severity.WARN, m0, w.value, spread, len(values), z, w)


def _beyond_one_hour(windows: Sequence[Window], m0: float, rules: VolumeSettings) -> bool:
    """Whether the mean of the hours of ``windows[-1]`` (``windows``: the windows of 1, 2,
    ... hours) still moved by ``value_change`` the same way without the hour that moved
    it most: one hour's large baskets do not make a drift, prices in cents do."""
    hours = [(w.num - (p.num if p else 0.0), w.den - (p.den if p else 0.0))
             for p, w in zip([None, *windows[:-1]], windows, strict=True)]  # fmt: skip
    total = windows[-1]
    up = total.value > m0
    rests = [(total.num - n, total.den - d) for n, d in hours if total.den - d > 0]
    if not rests:
        return False
    rest = min(num / den for num, den in rests) if up else max(num / den for num, den in rests)
    return (rest / m0 - 1 >= rules.value_change) if up else (1 - rest / m0 >= rules.value_change)


def window_sums(
    value: Callable[[int], tuple[float, float]], last_hour: int, hours: int, until: float
) -> list[Window]:
    """The recent windows of a ratio: the last 1..``hours`` hours ending with the hour
    starting at ``last_hour`` (for the logs the hour in progress: a ratio is not distorted
    by a partial hour) and reaching ``until``. ``value(h)`` gives ``(num, den)`` of hour
    ``h``."""
    out: list[Window] = []
    num = den = 0.0
    for k in range(hours):
        h = last_hour - k * HOUR
        n, d = value(h)
        num, den = num + n, den + d
        out.append(Window(h, until, num, den))
    return out


def block_sums(
    value: Callable[[int], tuple[float, float]], blocks: Sequence[tuple[int, int]]
) -> list[tuple[float, float]]:
    """``(num, den)`` summed over each block of hours ``[start, stop)``."""
    out = []
    for start, stop in blocks:
        num = den = 0.0
        for h in range(start, stop, HOUR):
            n, d = value(h)
            num, den = num + n, den + d
        out.append((num, den))
    return out

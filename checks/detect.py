"""Volume verdicts (stopped, drop, spike) of an hourly series, as pure functions (no I/O,
no clock) used by ``checks.volume``: the baselines are ``checks.baseline``'s, the
thresholds ``[checks.volume]``'s (``monitor.config.VolumeSettings``).

**The level** a window is measured against (a holiday or a promotion moves a whole day,
an incident starts at some hour):

- with a *reference* series known for the window's hours (``reference_level``): the
  reference's observed ÷ expected over the same hours, moved one standard deviation of
  its noise towards 1, clipped to ``[0, 1]`` for drops and ``[1, ∞)`` for spikes; size
  and z are both measured against the scaled baselines. The reference carries the day's
  level, so the z counts this series' burst noise (``Baseline.noise``: its pooled
  dispersion), not the spread of its weekly samples, unless that dispersion is capped
  (small bursty series) or the baseline is a share; and the level's own uncertainty,
  which a clipped level keeps as its count's noise unless the count is beyond that noise
  on the side where the clip spares the series. The check's references: for an
  event name without a share baseline, the other events of its source; for all events of
  the logs, Meta's browser count, and for Meta's browser count, the logs. A holiday moves
  both; a broken server integration or pixel one. The reference must expect at least
  ``2 × min_expected`` events in those hours (Meta's counts arrive an hour or more after
  the logs: the latest hours of the logs usually have none);
- otherwise the day's level before the window (``level``): observed ÷ expected over the
  ``level_hours`` (6) before it, clipped to ``[1 − ordinary_dip, 1]`` for drops and
  ``[1, 1 + ordinary_surge]`` for spikes; the size is measured against the baselines
  scaled by it, the significance (z) against the baselines, and the window must be
  significantly beyond an ordinary dip or surge.

**Volume verdicts** (``judge_volume``) on the trailing *complete* hours (the hour in
progress is never judged as a drop, only as silence, ``judge_silent``; it tells that a
series is back: ``recovered`` volume in it ends a stop or a drop):

- ``VOLUME_STOPPED`` (crit): the latest complete hours are all zero and at least
  ``stopped_min_expected`` (20) events were expected in them (hours expecting under
  half that which were empty in an earlier week too do not count: a small series' quiet
  night; and the events expected scaled by the reference's dip, as for a drop: on a
  holiday night the other side is as quiet, unless it is empty too), one empty hour
  alone reaches z ≤ −``single_hour_z`` and more hours z ≤ −``z`` as a drop must (unless
  the hour in progress is ``still_low``), and the hour in progress does not show the
  series ``recovered``;
- ``VOLUME_DROP``: over a window of the last 1 to ``max_window_hours`` (6) hours, at least
  ``min_expected`` (20) events expected per hour, observed at most ``1 − drop_warn`` (60 %)
  of expected × the level, robust z ≤ −``z`` (−3.5), every hour of the window at least
  half that far down (an ended drop stops alerting; a series back from a stop is judged
  only on the hours after its first one back, so its partial hour is no new drop), and
  *confirmed*: the hour in progress as far down so far (``still_low``) or two complete
  hours each at most 60 %; else z ≤ −``single_hour_z`` (−6), as a one-hour window needs
  (every hour of every series is tested: chance dips of an hour or two reach −3.5 weekly,
  and seldom go on). ``crit`` when observed ≤ ``1 − drop_crit`` (25 %) of expected or the
  drop has lasted ``persist_crit_hours`` (3) hours;
- ``VOLUME_SPIKE`` (warn): over the last ``spike_hours`` (2) hours or one more, at least
  ``spike_ratio`` (2.5×) expected and z ≥ ``spike_z`` (6), each hour at least half as far
  up: a promotion doubling the traffic stays below it, duplicate sends of a whole stream
  do not; a one-hour burst (a newsletter) is not reported.
"""

from __future__ import annotations

import dataclasses as dc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median

from checks.baseline import HOUR, Baseline, BaselineKind, burst_noise
from monitor.config import VolumeSettings
from monitor.model.findings import Severity

VOLUME_DROP = "VOLUME_DROP"
VOLUME_STOPPED = "VOLUME_STOPPED"
VOLUME_SPIKE = "VOLUME_SPIKE"


@dataclass(frozen=True, slots=True)
class Reference:
    """The same hour of a *reference* series: one that moves with the calendar (a
    holiday, a promotion, real traffic) but not with this series' own breakages (the rest
    of the dataset's events; the other side, browser or server). ``expected`` and
    ``variance`` are its baseline's."""

    observed: float
    expected: float
    variance: float


@dataclass(frozen=True, slots=True)
class HourPoint:
    """One complete hour of a series: what it held and what it was expected to hold."""

    hour: int
    observed: float
    baseline: Baseline
    reference: Reference | None = None


@dataclass(frozen=True, slots=True)
class VolumeVerdict:
    """A volume finding's numbers: over the hours ``[since, until)``."""

    code: str
    severity: Severity
    since: int
    until: int
    expected: float
    observed: float
    z: float
    persistence: int  # trailing hours each below expectation (drop) or zero (stopped)
    kind: BaselineKind  # cold start when any hour of the window was judged by it
    points: tuple[HourPoint, ...]
    level: float = 1.0  # the level the baselines were scaled by (``level``, ``reference_level``)
    referenced: bool = False  # the level is the reference series' over the same hours

    @property
    def hours(self) -> int:
        return (self.until - self.since) // HOUR

    @property
    def change(self) -> float:
        """Relative change of observed against expected (−1 = nothing arrived)."""
        return self.observed / self.expected - 1 if self.expected else 0.0


def _window_stats(points: Sequence[HourPoint], od: float) -> tuple[float, float, float, float]:
    expected = sum(p.baseline.expected for p in points)
    observed = sum(p.observed for p in points)
    variance = sum(p.baseline.variance(od) for p in points)
    z = (observed - expected) / math.sqrt(variance) if variance > 0 else 0.0
    return expected, observed, variance, z


def _kind(points: Sequence[HourPoint]) -> BaselineKind:
    kinds = {p.baseline.kind for p in points}
    if BaselineKind.COLD_START in kinds:
        return BaselineKind.COLD_START
    return BaselineKind.SHARE if kinds == {BaselineKind.SHARE} else BaselineKind.SEASONAL


def _verdict(
    code: str,
    severity: Severity,
    window: Sequence[HourPoint],
    z: float,
    persistence: int,
    level: float = 1.0,
    referenced: bool = False,
) -> VolumeVerdict:
    return VolumeVerdict(
        code=code,
        severity=severity,
        since=window[0].hour,
        until=window[-1].hour + HOUR,
        expected=sum(p.baseline.expected for p in window),
        observed=sum(p.observed for p in window),
        z=z,
        persistence=persistence,
        kind=_kind(window),
        points=tuple(window),
        level=level,
        referenced=referenced,
    )


def judge_stopped(
    points: Sequence[HourPoint],
    rules: VolumeSettings,
    resumed: bool = False,
    going_on: bool = False,
) -> VolumeVerdict | None:
    """``VOLUME_STOPPED`` when the trailing complete hours are zero where at least
    ``stopped_min_expected`` events were expected, unless the hour in progress shows the
    series ``resumed`` (``recovered``). One empty hour of a small bursty series happens
    by chance: a single hour must reach z ≤ −``single_hour_z``, as a one-hour drop
    must, and longer stops z ≤ −``z``, as a drop (a night without the two or three
    visitors a small shop expects is no stop), unless the hour in progress is still as
    low (``going_on``, ``still_low``)."""
    if resumed:
        return None
    run = 0
    while run < len(points) and points[len(points) - 1 - run].observed == 0:
        run += 1
    if not run:
        return None
    window = points[len(points) - run :]
    # A small hour that was empty in an earlier week too (a quiet night of a small
    # series) tells little about a stop: only the others count towards the events
    # expected. (A larger hour empty once was an earlier outage: it counts.)
    small = rules.stopped_min_expected / 2
    expected = sum(p.baseline.expected for p in window if not _quiet(p.baseline, small))
    if expected * _reference_dip(window, rules) < rules.stopped_min_expected:
        return None
    _, _, _, z = _window_stats(window, rules.overdispersion)
    if not going_on and z > -(rules.single_hour_z if run == 1 else rules.z):
        return None
    return _verdict(VOLUME_STOPPED, Severity.CRIT, window, z, run)


def _reference_dip(window: Sequence[HourPoint], rules: VolumeSettings) -> float:
    """How far the reference series fell over a stop's hours, as ``reference_level``
    measures it for a drop (1 without a reference that expected ``stopped_min_expected``
    events, as many as the stop itself needs, or when the reference is empty too: the
    whole site stopped). The other side of a quiet holiday night dips with this one; the
    other side of a stopped sender does not."""
    refs = [p.reference for p in window if p.reference is not None]
    if not any(r.observed for r in refs):
        return 1.0
    scaled = reference_level(window, rules, 0.0, 1.0, rules.stopped_min_expected)
    return 1.0 if scaled is None else scaled.level


def _quiet(b: Baseline, small: float) -> bool:
    """Whether an hour expects fewer than ``small`` events and was empty in one of its
    samples (a share baseline's samples are shares, from at least 20 events: never)."""
    return (
        b.expected < small and b.kind is not BaselineKind.SHARE and any(x <= 0 for x in b.samples)
    )


def expected_sum(points: Sequence[HourPoint]) -> float:
    return sum(p.baseline.expected for p in points)


def _ratio(p: HourPoint, min_reference: float = 0.0) -> float:
    """Observed ÷ expected of one hour; with a ``reference`` expecting at least
    ``min_reference`` events, relative to the reference's own level (at most 1): on a
    holiday at −25 % an hour at −25 % is normal."""
    if p.baseline.expected <= 0:
        return 1.0
    ratio = p.observed / p.baseline.expected
    ref = p.reference
    if ref is not None and min_reference > 0 and ref.expected >= min_reference:
        ratio /= max(min(1.0, ref.observed / ref.expected), 0.05)
    return ratio


@dataclass(frozen=True, slots=True)
class _Scaled:
    """A window judged against its reference: its baselines scaled by ``level``, and the
    z of observed against them."""

    level: float
    z: float


def reference_level(
    window: Sequence[HourPoint],
    rules: VolumeSettings,
    low: float,
    high: float,
    min_reference: float | None = None,
) -> _Scaled | None:
    """The window against its reference series (``Reference``) over the same hours:
    expected × ``level`` = observed ÷ expected of the reference, moved one standard
    deviation towards 1 and clipped to ``[low, high]``, its own noise counted in the z.
    ``None`` when the reference expected fewer than ``min_reference`` (default
    ``2 × min_expected``) events in the hours of the window it covers (too little to
    tell, or not known yet: Meta's counts arrive later than the logs); then the day's
    ``level`` before the window stands in."""
    expected, observed, _, z = _window_stats(window, rules.overdispersion)
    if all(p.baseline.kind is BaselineKind.SHARE for p in window):
        return _Scaled(1.0, z)  # share baselines follow the other events of each hour
    refs = [p.reference for p in window if p.reference is not None]
    ref_expected = sum(r.expected for r in refs)
    if ref_expected < (2 * rules.min_expected if min_reference is None else min_reference):
        return None
    # The level leaves 1 only by what the reference shows beyond one standard deviation
    # of its own noise: a small reference moves it little.
    level_var = sum(r.variance for r in refs) / ref_expected**2
    seen = sum(r.observed for r in refs) / ref_expected
    sd = math.sqrt(level_var)
    raw = min(1.0, seen + sd) if seen < 1 else max(1.0, seen - sd)
    f = min(high, max(low, raw))
    # Var(observed − f·expected). The reference carries the day's level, so what is left
    # of this series' noise is its count's own (``_residual``), not the day-to-day spread
    # of its samples; plus the level's uncertainty: all the reference's variance while the
    # level is unclipped; clipped, its count's noise unless the count is beyond that noise
    # on the side where the clipped level can only spare the series (a drop judged against
    # a reference above its usual level).
    own = sum(_residual(p.baseline, rules) for p in window)
    if low < raw < high:
        uncertainty = level_var
    else:  # clipped at ``f``: exact only where its count is beyond its noise past ``f``
        noise = sum(_count_noise(p, rules) for p in window) / ref_expected**2
        beyond = math.sqrt(noise)
        spares = seen >= f + beyond if f == high else seen <= f - beyond
        uncertainty = 0.0 if spares else noise
    variance = f * own + expected**2 * uncertainty
    z = (observed - f * expected) / math.sqrt(variance) if variance > 0 else 0.0
    return _Scaled(f, z)


def _residual(b: Baseline, rules: VolumeSettings) -> float:
    """An hour's noise around its reference's level: its count's own noise
    (``Baseline.noise``) where the pooled dispersion stays below its cap (the noise model
    holds: large series, whose samples spread by the day's level), else all its variance
    (a small bursty series, or a share baseline, whose spread is its noise)."""
    capped = b.dispersion >= rules.dispersion_cap**2 * b.expected
    if capped or b.kind is BaselineKind.SHARE:
        return b.variance(rules.overdispersion)
    return b.noise(rules.overdispersion)


def _count_noise(p: HourPoint, rules: VolumeSettings) -> float:
    """The noise of an hour's reference count, taken as bursty as this series'."""
    if p.reference is None:
        return 0.0
    return burst_noise(p.baseline.dispersion, p.reference.expected, rules.overdispersion)


def _beyond(window: Sequence[HourPoint], factor: float, rules: VolumeSettings) -> bool:
    """The window moved significantly beyond ``factor`` × expected: z ≤ −``dip_z`` below
    it (factor < 1: an ordinary dip, a holiday) or z ≥ ``dip_z`` above it (factor > 1: an
    ordinary surge, a promotion)."""
    expected = factor * sum(p.baseline.expected for p in window)
    observed = sum(p.observed for p in window)
    variance = factor * sum(p.baseline.variance(rules.overdispersion) for p in window)
    if variance <= 0:
        return False
    z = (observed - expected) / math.sqrt(variance)
    return z <= -rules.dip_z if factor < 1 else z >= rules.dip_z


def level(
    points: Sequence[HourPoint], k: int, rules: VolumeSettings, low: float, high: float
) -> float:
    """The day's level before a window of the last ``k`` hours: observed ÷ expected over
    the ``level_hours`` before it, clipped to ``[low, high]``; 1 when those hours expected
    too little to tell. A holiday or a promotion shows in the hours before a window; an
    incident starts in it."""
    before = points[max(0, len(points) - k - rules.level_hours) : len(points) - k]
    expected = sum(p.baseline.expected for p in before)
    if expected < rules.min_expected * 2:
        return 1.0
    return min(high, max(low, sum(p.observed for p in before) / expected))


def _since_stop(points: Sequence[HourPoint]) -> int:
    """How many trailing hours a drop window may cover: all of them, unless the series
    is back from zero hours (a stop, VOLUME_STOPPED's news): then only the hours after
    the first one back, which was partly stopped."""
    if points[-1].observed == 0:
        return len(points)
    for i in range(len(points) - 1, -1, -1):
        if points[i].observed == 0:
            return len(points) - i - 2
    return len(points)


def judge_drop(
    points: Sequence[HourPoint], rules: VolumeSettings, going_on: bool = False
) -> VolumeVerdict | None:
    """``VOLUME_DROP`` over the most significant trailing window (module docstring).
    ``going_on``: the hour in progress is as far down (``still_low``), so a drop seen in
    one complete hour, or not confirmed by a second one, needs only ``z``, not
    ``single_hour_z``.

    Every hour of the window is itself at least ``drop_warn / 2`` down (a window never
    reaches back over recovered hours), and a series back from zero hours is judged only
    on the hours after its first one back (``_since_stop``)."""
    low = 1 - rules.drop_warn / 2
    ref_min = 2 * rules.min_expected
    if not points or _ratio(points[-1], ref_min) > low:
        return None  # the latest hour is (about) normal: no ongoing drop
    persistence = 0
    while (
        persistence < len(points)
        and _ratio(points[-1 - persistence], ref_min) <= 1 - rules.drop_warn
    ):
        persistence += 1
    best: tuple[float, list[HourPoint], float, bool] | None = None
    for k in range(1, min(rules.max_window_hours, _since_stop(points)) + 1):
        if _ratio(points[-k], ref_min) > low:
            break  # longer windows would reach back over a normal hour
        if expected_sum(points[-k:]) < rules.min_expected * k:
            continue
        window = list(points[-k:])
        expected, observed, _, z = _window_stats(window, rules.overdispersion)
        # One hour is tested every hour on every series, and so is a drop with one hour
        # at most ``1 − drop_warn`` (a chance dip): it must stand out further, unless the
        # hour in progress shows the drop going on (module docstring: confirmed).
        unconfirmed = k == 1 or persistence < 2
        need = rules.single_hour_z if unconfirmed and not going_on else rules.z
        scaled = reference_level(window, rules, 0.0, 1.0)
        if scaled is not None:
            # Against the reference over the same hours: a holiday lowers it too, a
            # breakage of this series does not.
            f, z = scaled.level, scaled.z
        else:
            # The size against the day's level before the window (a holiday lowers it,
            # an incident's own hours never do), the significance against the baseline
            # and beyond an ordinary dip.
            if z > -need or not _beyond(window, 1 - rules.ordinary_dip, rules):
                continue
            f = level(points, k, rules, 1 - rules.ordinary_dip, 1.0)
        if z > -need:
            continue
        cold = _kind(window) is BaselineKind.COLD_START
        needed = max(rules.drop_warn, rules.cold_start_drop) if cold else rules.drop_warn
        if observed > (1 - needed) * expected * f:
            continue
        if best is None or z < best[0]:
            best = (z, window, f, scaled is not None)
    if best is None:
        return None
    z, chosen, f, referenced = best
    _, observed, _, _ = _window_stats(chosen, rules.overdispersion)
    severe = observed <= (1 - rules.drop_crit) * expected_sum(chosen)
    lasting = persistence >= rules.persist_crit_hours
    severity = Severity.CRIT if severe or lasting else Severity.WARN
    return _verdict(VOLUME_DROP, severity, chosen, z, persistence, f, referenced)


def judge_spike(points: Sequence[HourPoint], rules: VolumeSettings) -> VolumeVerdict | None:
    """``VOLUME_SPIKE`` (warn) over the last ``spike_hours`` (2) complete hours or more,
    every one of them up by at least half the ratio (module docstring)."""
    high = (1 + rules.spike_ratio) / 2
    n = rules.spike_hours
    if len(points) < n or any(_ratio(p) < high for p in points[-n:]):
        return None
    best: tuple[float, list[HourPoint], float, bool] | None = None
    for k in range(n, min(n + 1, len(points)) + 1):
        if expected_sum(points[-k:]) < rules.min_expected * k:
            continue
        surge = 1 + rules.ordinary_surge
        window = list(points[-k:])
        expected, observed, _, z = _window_stats(window, rules.overdispersion)
        # A promotion raises the reference as much; duplicate sends of this series do not.
        scaled = reference_level(window, rules, 1.0, math.inf)
        if scaled is not None:
            f, z = scaled.level, scaled.z
        else:
            f = level(points, k, rules, 1.0, surge)
            if not _beyond(window, surge, rules):
                continue
        if z < rules.spike_z or observed < rules.spike_ratio * expected * f:
            continue
        if best is None or z > best[0]:
            best = (z, window, f, scaled is not None)
    if best is None:
        return None
    z, chosen, f, referenced = best
    persistence = sum(1 for p in chosen if _ratio(p) >= rules.spike_ratio)
    return _verdict(VOLUME_SPIKE, Severity.WARN, chosen, z, persistence, f, referenced)


RECOVERY_MIN_EXPECTED = 10.0  # events expected so far in the hour in progress to trust it


def recovered(
    in_progress: float | None, expected_so_far: float | None, rules: VolumeSettings
) -> bool:
    """The hour in progress shows the series back to (nearly) normal: at least
    ``1 − drop_warn / 2`` of the events expected so far, once enough are expected for
    that to mean something. It can only end a drop, never start one."""
    so_far = _telling(in_progress, expected_so_far)
    return so_far is not None and so_far[0] >= (1 - rules.drop_warn / 2) * so_far[1]


def still_low(
    in_progress: float | None,
    expected_so_far: float | None,
    rules: VolumeSettings,
    dispersion: float = 1.0,
) -> bool:
    """The hour in progress is as far down as a drop: at most ``1 − drop_warn`` of the
    events expected so far, once enough are expected for that to mean something, and
    beyond its own noise (z ≤ −``dip_z``, the series' ``dispersion`` counted: senders
    flush in batches, so a quarter of an hour of a small series is lumpy). A chance dip
    of one hour seldom goes on into the next; a breakage does."""
    so_far = _telling(in_progress, expected_so_far)
    if so_far is None:
        return False
    observed, expected = so_far
    z = (observed - expected) / math.sqrt(expected * max(1.0, dispersion))
    return observed <= (1 - rules.drop_warn) * expected and z <= -rules.dip_z


def _telling(
    in_progress: float | None, expected_so_far: float | None
) -> tuple[float, float] | None:
    """(events, expected) of the hour in progress once at least ``RECOVERY_MIN_EXPECTED``
    are expected so far (fewer tell nothing either way), else ``None``."""
    if in_progress is None or expected_so_far is None:
        return None
    if expected_so_far < RECOVERY_MIN_EXPECTED:
        return None
    return in_progress, expected_so_far


def pooled(points: Sequence[HourPoint], rules: VolumeSettings) -> list[HourPoint]:
    """``points`` with one relative spread and one dispersion for all.

    A MAD of 3 to 6 samples is itself very noisy; the noise of one series is much the same
    from hour to hour, so pooling steadies it. Two parts: the relative spread (the median
    of the hours' ``spread / expected``: day-to-day moves, large series) and the dispersion
    (the median of ``spread² / expected``: visitors send events in bursts, senders in
    batches, so a quiet night hour is noisier relative to its mean than Poisson's). The
    dispersion counts only where it exceeds Poisson's, and only up to a relative noise of
    ``dispersion_cap`` per hour: a halving of a series of 20 or more an hour lasting
    ``persist_crit_hours`` stays beyond ``z``. A share baseline keeps its share's own
    measured dispersion when larger (``baseline.share_around``): that one is measured on
    a week of the very hours judged, not guessed from a few weekly samples."""
    judged = [p for p in points if p.baseline.expected >= 5]
    if not judged:
        return list(points)
    r = median(p.baseline.spread / p.baseline.expected for p in judged)
    d = median(p.baseline.spread**2 / p.baseline.expected for p in judged)
    out = []
    for p in points:
        b = p.baseline
        cap = rules.dispersion_cap**2 * b.expected
        disp = max(1.0, min(d, cap))
        if b.kind is BaselineKind.SHARE:  # its share's own measured dispersion, if larger
            disp = max(disp, b.dispersion)
        out.append(dc.replace(p, baseline=dc.replace(b, spread=r * b.expected, dispersion=disp)))
    return out


def judge_silent(
    points: Sequence[HourPoint],
    rules: VolumeSettings,
    current: HourPoint | None,
    until: float,
    last_seen: float = 0.0,
) -> VolumeVerdict | None:
    """``VOLUME_STOPPED`` (crit) before the complete hours can tell: no event from the
    series' last one (``last_seen``, its send time; 0: not known, the end of the last hour
    with events) to ``until`` (now less a flush margin), within the hour in progress
    (``current``) and the complete one before, for ≥ ``silent_minutes``, where the
    baselines of that span pro rata at the day's ``level`` expected ≥ 2 ×
    ``stopped_min_expected`` events and none at all is as unlikely as z ≤ −``single_hour_z``
    for a count varying as much as its hours do (``_silence_z``); in hours ``_vouched`` for."""
    if current is None or not points or rules.silent_minutes <= 0:
        return None
    busy = [p for p in (*points[-2:], current) if p.observed]
    if not busy:
        return None  # a longer stop: ``judge_stopped``'s
    since = last_seen if (h := busy[-1].hour) <= last_seen < h + HOUR else h + HOUR
    for p in points[-2:]:  # judged from the end of a complete hour not vouched for
        since = since if _vouched(p) else max(since, p.hour + HOUR)
    if until - since < rules.silent_minutes * 60:
        return None
    window = []
    for p in (*points[-2:], current):  # complete hours whole, the one in progress to until
        share = ((until if p is current else p.hour + HOUR) - max(since, p.hour)) / HOUR
        if share > 0:
            b = p.baseline
            part = dc.replace(b, expected=b.expected * share, spread=b.spread * share)
            window.append(dc.replace(p, observed=0, baseline=part))
    if not all(_vouched(p) for p in window):
        return None
    done = sum(p.hour < current.hour for p in window)  # complete hours in the window
    f = level(points, done, rules, 1 - rules.ordinary_dip, 1.0)
    expected, _, variance, _ = _window_stats(window, rules.overdispersion)
    if f * expected < 2 * rules.stopped_min_expected:
        return None
    z = _silence_z(f * expected, variance / expected**2)
    if z > -rules.single_hour_z:
        return None
    return _verdict(VOLUME_STOPPED, Severity.CRIT, window, z, len(window), f)


def _vouched(p: HourPoint) -> bool:
    """Whether silence in (part of) the hour ``p`` can be judged: no earlier week was empty
    there (batch uploads, a closed night), no share baseline (no weeks to vouch for)."""
    return p.baseline.kind is not BaselineKind.SHARE and all(x > 0 for x in p.baseline.samples)


def _silence_z(expected: float, relative_variance: float) -> float:
    """The z (normal quantile) of seeing no event where ``expected`` were, for a count
    whose rate varies with ``relative_variance`` (gamma-Poisson: its chance of zero is
    ``(1 + m·v)^(−1/v)``; Poisson's ``e^(−m)`` as v → 0)."""
    v = max(relative_variance, 1e-9)
    log_p = -math.log1p(expected * v) / v
    return NormalDist().inv_cdf(max(math.exp(log_p), 1e-300))


def judge_volume(
    points: Sequence[HourPoint],
    rules: VolumeSettings,
    in_progress: float | None = None,
    expected_so_far: float | None = None,
    current: tuple[HourPoint, float, float] | None = None,
) -> VolumeVerdict | None:
    """The volume verdict of a series' trailing complete hours (oldest first, contiguous,
    ending with the last complete hour), if any: stopped, else drop, else spike.
    ``in_progress``: events so far in the hour in progress, ``expected_so_far`` its
    baseline pro rata: never judged as a drop, but a recovery there ends one.
    ``current``: the hour in progress (its events so far, its whole hour's baseline), the
    time judged up to and the series' last send time (``judge_silent``), when nothing else
    has a verdict."""
    points = pooled(points, rules)
    if recovered(in_progress, expected_so_far, rules):
        return judge_spike(points, rules)
    dispersion = points[-1].baseline.dispersion if points else 1.0
    going_on = still_low(in_progress, expected_so_far, rules, dispersion)
    return (
        judge_stopped(points, rules, going_on=going_on)
        or judge_drop(points, rules, going_on)
        or (judge_silent(points, rules, *current) if current is not None else None)
        or judge_spike(points, rules)
    )

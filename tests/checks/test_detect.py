"""checks.baseline, checks.detect, checks.drift: hour-of-week arithmetic (DST included),
baselines, verdicts. Pure."""

from __future__ import annotations

import dataclasses as dc
import math
from datetime import UTC, datetime
from random import Random
from statistics import NormalDist, median
from zoneinfo import ZoneInfo

import pytest

from checks.baseline import (
    DAY,
    HOUR,
    Baseline,
    BaselineKind,
    counts_from,
    hour_baseline,
    share_around,
    share_baseline,
    share_dispersion,
    shifted_hour,
)
from checks.detect import (
    HourPoint,
    Reference,
    _silence_z,
    judge_silent,
    judge_volume,
    pooled,
    reference_level,
)
from checks.drift import (
    Window,
    block_sums,
    daily_blocks,
    judge_mean,
    judge_share,
    window_sums,
)
from monitor.config import VolumeSettings
from monitor.model.findings import Severity

RULES = VolumeSettings()
BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp())


# --- hours of the week, DST ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "hour", "days", "expected"),
    [
        # UTC: exactly one week back
        ("UTC", "2026-11-20T12:00:00+00:00", 7, "2026-11-13T12:00:00+00:00"),
        # Berlin after the autumn change (CET) -> the same wall time a week earlier (CEST):
        # one hour more than 7 × 24 h in UTC
        ("Europe/Berlin", "2026-10-26T09:00:00+01:00", 7, "2026-10-19T09:00:00+02:00"),
        # ... and before the spring change: one hour less
        ("Europe/Berlin", "2026-04-01T09:00:00+02:00", 7, "2026-03-25T09:00:00+01:00"),
        # the repeated hour (02:00 twice on 2026-10-25) resolves to its first occurrence
        ("Europe/Berlin", "2026-11-01T02:00:00+01:00", 7, "2026-10-25T02:00:00+02:00"),
        # New York changes a week later than Europe
        ("America/New_York", "2026-11-02T10:00:00-05:00", 7, "2026-10-26T10:00:00-04:00"),
        # half-hour zone: the hour bucket starting 17:30 local maps to 17:30 local
        ("Asia/Kolkata", "2026-11-20T12:00:00+00:00", 1, "2026-11-19T12:00:00+00:00"),
        # day-on-day over the spring change
        ("Europe/Berlin", "2026-03-29T09:00:00+02:00", 1, "2026-03-28T09:00:00+01:00"),
    ],
)
def test_shifted_hour_follows_the_wall_clock(
    zone: str, hour: str, days: int, expected: str
) -> None:
    assert shifted_hour(ts(hour), ZoneInfo(zone), days) == ts(expected)


def test_a_wall_time_skipped_by_dst_has_no_sample() -> None:
    # 2026-03-29 02:00-03:00 does not exist in Berlin
    assert shifted_hour(ts("2026-04-05T02:00:00+02:00"), BERLIN, 7) is None


def _local_profile(tz: ZoneInfo, start: int, end: int) -> dict[int, float]:
    """Counts that depend only on the local hour of the day: 100 + 10 × hour."""
    return {h: 100.0 + 10 * datetime.fromtimestamp(h, tz).hour for h in range(start, end, HOUR)}


def test_baseline_in_a_dst_week_keeps_the_local_hour() -> None:
    """After the autumn change the baseline of 09:00 comes from 09:00 of earlier weeks
    (value 190), not from the UTC hour that used to be 10:00 (200)."""
    start, end = ts("2026-09-28T00:00:00+02:00"), ts("2026-10-28T00:00:00+01:00")
    series = _local_profile(BERLIN, start, end)
    hour = ts("2026-10-27T09:00:00+01:00")
    b = hour_baseline(counts_from(series, start), hour, BERLIN, RULES)
    assert b is not None and b.kind is BaselineKind.SEASONAL
    assert b.expected == 190.0 and b.spread == 0.0 and len(b.samples) == 4
    # In UTC terms the same series would look shifted by an hour.
    utc_b = hour_baseline(counts_from(series, start), hour, UTC_ZONE, RULES)
    assert utc_b is not None and utc_b.expected == 200.0


@pytest.mark.parametrize(
    ("history_days", "kind", "samples"),
    [
        (40, BaselineKind.SEASONAL, 5),  # 5 whole weeks back fit in 40 days
        (21, BaselineKind.SEASONAL, 3),  # exactly min_weeks
        (20, BaselineKind.COLD_START, 2),  # under 3 weeks: week-on-week (2 samples)
        (7, BaselineKind.COLD_START, 1),  # one week back: week-on-week
        (6, BaselineKind.COLD_START, 6),  # first week: day-on-day, the last 6 days
        (3, BaselineKind.COLD_START, 3),  # cold_start_min_days
        (2, None, 0),  # too little history: not judged
    ],
)
def test_baseline_kind_by_history(
    history_days: int, kind: BaselineKind | None, samples: int
) -> None:
    hour = ts("2026-11-20T12:00:00+00:00")
    first = hour - history_days * DAY
    b = hour_baseline(counts_from({}, first), hour, UTC_ZONE, RULES)
    if kind is None:
        assert b is None
    else:
        assert b is not None and b.kind is kind and len(b.samples) == samples
        assert b.expected == 0.0  # hours without rows after the first hour count as zero


def test_baseline_is_robust_to_one_outlier_week() -> None:
    b = Baseline.of([100, 104, 400, 98], BaselineKind.SEASONAL)
    assert b.expected == 102.0
    assert b.spread < 10


def test_variance_has_a_poisson_floor_when_the_samples_agree() -> None:
    b = Baseline.of([50, 50, 50], BaselineKind.SEASONAL)
    assert b.spread == 0.0
    assert b.variance(0.0) > 50  # Poisson floor, inflated for a median of three


# --- volume verdicts ---------------------------------------------------------------------


def points(
    observed: list[float], expected: float, kind: BaselineKind = BaselineKind.SEASONAL
) -> list[HourPoint]:
    """Consecutive hours with a flat baseline (samples ±5 % around ``expected``)."""
    samples = [expected * f for f in (0.95, 1.0, 1.05, 1.0)]
    b = Baseline.of(samples, kind)
    start = ts("2026-11-20T00:00:00+00:00")
    return [HourPoint(start + i * HOUR, o, b) for i, o in enumerate(observed)]


COLD = BaselineKind.COLD_START
SEAS = BaselineKind.SEASONAL
STOPPED, DROP, SPIKE = "VOLUME_STOPPED", "VOLUME_DROP", "VOLUME_SPIKE"
WARN, CRIT = Severity.WARN, Severity.CRIT


# fmt: off
VOLUME_CASES = [
    # intent: ordinary noise is no finding
    ([400, 390, 410, 405, 395, 402], 400, 300, SEAS, None, None, None),
    # intent: a stream that stopped two hours ago, 30 expected per hour
    ([30, 31, 29, 30, 0, 0], 30, 0, SEAS, STOPPED, CRIT, 4),
    # intent: a few events in the hour in progress do not end a stop by themselves
    # (see test_recovery_in_the_hour_in_progress_ends_a_stop)
    ([60, 62, 58, 60, 60, 0], 60, 2, SEAS, STOPPED, CRIT, 5),
    # intent: one empty hour of a 30/h series (z ≈ −4.2, short of single_hour_z) is
    # tested every hour of every series: not yet a stop; two empty hours are (above)
    ([30, 31, 29, 30, 30, 0], 30, 0, SEAS, None, None, None),
    # intent: a low-volume series needs enough zero hours before it counts as stopped
    ([5, 5, 5, 5, 0, 0], 5, 0, SEAS, None, None, None),
    ([5, 0, 0, 0, 0, 0], 5, 0, SEAS, STOPPED, CRIT, 1),
    # intent: 60 % of the traffic lost for one hour on a big series (z ≈ −7.5): a warning
    # (a halving, z ≈ −6.0, waits for the hour in progress: the test below)
    ([400, 410, 395, 405, 400, 150], 400, 100, SEAS, DROP, WARN, 5),
    # intent: ... lasting three hours: critical (persistence)
    ([400, 410, 395, 200, 190, 210], 400, 100, SEAS, DROP, CRIT, 3),
    # intent: a fall to under a quarter: critical at once
    ([400, 410, 395, 405, 400, 60], 400, 30, SEAS, DROP, CRIT, 5),
    # intent: one hour at a third of a 60/h series (z ≈ −4.1) is tested every hour of
    # every series and is chance about weekly: no finding; two such hours are a drop
    ([60, 62, 58, 60, 61, 20], 60, 15, SEAS, None, None, None),
    ([60, 62, 58, 60, 20, 20], 60, 15, SEAS, DROP, WARN, 4),
    # intent: a 50 % hour on a 20/h series is within noise
    ([20, 21, 19, 20, 20, 10], 20, 5, SEAS, None, None, None),
    # intent: a 35 % dip (a holiday) is not a drop, however significant
    ([1000, 1000, 650, 640, 660, 650], 1000, 500, SEAS, None, None, None),
    # intent: the drop ended: the latest hour is back to normal
    ([400, 410, 200, 190, 210, 398], 400, 200, SEAS, None, None, None),
    # intent: under the cold-start rule a 45 % drop is not enough, 65 % is
    ([400, 410, 395, 405, 220, 220], 400, 100, COLD, None, None, None),
    ([400, 410, 395, 405, 140, 140], 400, 100, COLD, DROP, WARN, 4),
    # intent: three times the usual volume for two hours: a spike; a one-hour burst (a
    # newsletter) and a promotion at 1.8× are not
    ([400, 410, 395, 405, 1200, 1250], 400, 600, SEAS, SPIKE, WARN, 4),
    ([400, 410, 395, 405, 400, 1200], 400, 600, SEAS, None, None, None),
    ([400, 410, 395, 405, 720, 730], 400, 400, SEAS, None, None, None),
]
# fmt: on


@pytest.mark.parametrize(
    ("observed", "expected", "in_progress", "kind", "code", "severity", "since_index"),
    VOLUME_CASES,
)
def test_judge_volume(
    observed: list[float],
    expected: float,
    in_progress: float,
    kind: BaselineKind,
    code: str | None,
    severity: Severity | None,
    since_index: int | None,
) -> None:
    pts = points(observed, expected, kind)
    v = judge_volume(pts, RULES, in_progress)
    if code is None:
        assert v is None
        return
    assert v is not None and v.code == code and v.severity is severity
    assert since_index is not None and v.since == pts[since_index].hour
    assert v.until == pts[-1].hour + HOUR
    # the baselines follow the day's level in the hours before the window (here ~1)
    assert v.expected == pytest.approx(expected * len(pts[since_index:]), rel=0.03)


SMALL_DIP = ([60, 62, 58, 60, 61, 20], 60)  # one hour at a third of a 60/h series
BIG_DIP = ([400, 410, 395, 405, 400, 200], 400)  # one hour at half of a 400/h series


@pytest.mark.parametrize(
    ("series", "in_progress", "so_far", "code"),
    [
        # intent: one hour at a third of a 60/h series (z ≈ −4.1, short of single_hour_z)
        # followed by an hour in progress as far down: the drop goes on, it alerts
        (SMALL_DIP, 4, 15.0, DROP),
        # intent: ... the hour in progress back to normal: a chance dip, no finding
        (SMALL_DIP, 14, 15.0, None),
        # intent: ... too early in the hour to tell (5 expected so far): no finding yet
        (SMALL_DIP, 0, 5.0, None),
        # intent: ... 8 of the 15 expected so far: down by as much as a drop, but within
        # the noise of a quarter of an hour (z ≈ −1.8): no finding
        (SMALL_DIP, 8, 15.0, None),
        # intent: a halving of a 400/h series for one hour (z ≈ −6.0, just short of
        # single_hour_z): a chance hour of a big series can be that far down; a breakage
        # shows again in the first minutes of the next hour
        (BIG_DIP, 40, 100.0, DROP),
        (BIG_DIP, 95, 100.0, None),
        (BIG_DIP, 0, 5.0, None),
    ],
)
def test_a_one_hour_drop_going_on_in_the_hour_in_progress_alerts_sooner(
    series: tuple[list[float], float], in_progress: float, so_far: float, code: str | None
) -> None:
    v = judge_volume(points(*series), RULES, in_progress, so_far)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("in_progress", "so_far", "code"),
    [
        # intent: one empty hour of a series of ~22 an hour whose weeks differ by a third
        # (z ≈ −2.5): its visitors came in a few bursts, none this hour; no stop yet
        (None, None, None),
        (9, 11.0, None),
        # intent: ... the hour in progress still empty: it has stopped
        (0, 11.0, STOPPED),
    ],
)
def test_one_empty_hour_of_a_noisy_small_series_is_a_stop_only_when_it_goes_on(
    in_progress: float | None, so_far: float | None, code: str | None
) -> None:
    start = ts("2026-11-20T00:00:00+00:00")
    b = Baseline.of([13.0, 22, 21, 30], SEAS)
    pts = [HourPoint(start + i * HOUR, o, b) for i, o in enumerate([20, 25, 18, 23, 0])]
    v = judge_volume(pts, RULES, in_progress, so_far)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("empty_hours", "code"),
    [
        # intent: two empty night hours of a shop whose same hours held 8, 11 and 14
        # events (22 expected, z ≈ −2.8): two or three visitors not coming, no stop
        (2, None),
        # intent: ... four empty hours (44 expected, z ≈ −4.0): it has stopped
        (4, STOPPED),
    ],
)
def test_a_short_stop_of_a_small_series_needs_a_drops_significance(
    empty_hours: int, code: str | None
) -> None:
    start = ts("2026-11-23T00:00:00+00:00")
    b = Baseline.of([8.0, 11, 14], SEAS)
    pts = [HourPoint(start + i * HOUR, o, b) for i, o in enumerate([12, 9, 14])]
    pts += [HourPoint(start + (3 + i) * HOUR, 0, b) for i in range(empty_hours)]
    v = judge_volume(pts, RULES, None)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("night", "code"),
    [
        # intent: night hours of a small series that were empty in an earlier week: four
        # empty hours expecting 6 each are its quiet night, not a stop
        ([0.0, 7, 3, 6], None),
        # intent: ... the same hours never empty before: a stop
        ([5.0, 7, 3, 6], STOPPED),
    ],
)
def test_a_small_series_quiet_night_is_no_stop(night: list[float], code: str | None) -> None:
    start = ts("2026-11-20T00:00:00+00:00")
    day = Baseline.of([40.0, 42, 38, 40], SEAS)
    quiet = Baseline.of(night, SEAS)
    pts = [HourPoint(start + i * HOUR, 40, day) for i in range(4)]
    pts += [HourPoint(start + (4 + i) * HOUR, 0, quiet) for i in range(4)]
    v = judge_volume(pts, RULES, None)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("ref_level", "code"),
    [
        # intent: four empty night hours of one side (24 expected) while the other side
        # ran at 40 % (a holiday night of a small shop): no stop
        (0.4, None),
        # intent: ... the other side at its usual level: this side's sender stopped
        (1.0, STOPPED),
        # intent: ... the other side empty as well: the whole site stopped, still a stop
        (0.0, STOPPED),
    ],
)
def test_a_stop_is_judged_against_the_other_sides_level(ref_level: float, code: str | None) -> None:
    start = ts("2026-11-20T00:00:00+00:00")
    day, night = Baseline.of([40.0, 42, 38, 40], SEAS), Baseline.of([5.0, 7, 6, 8], SEAS)
    # the other side expects 32 events in those hours: more than a stop needs (20), fewer
    # than a drop's reference (40 a window)
    ref = Reference(8 * ref_level, 8, 8 * 1.5)
    pts = [HourPoint(start + i * HOUR, 40, day, Reference(30, 30, 45)) for i in range(4)]
    pts += [HourPoint(start + (4 + i) * HOUR, 0, night, ref) for i in range(4)]
    v = judge_volume(pts, RULES, None)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("observed", "in_progress", "so_far", "code"),
    [
        # intent: 20 of 24 expected so far: the stop is over
        ([30, 31, 29, 30, 0, 0], 20, 24.0, None),
        # intent: 3 of 24: still stopped (a trickle of retries is no recovery)
        ([30, 31, 29, 30, 0, 0], 3, 24.0, STOPPED),
        # intent: too early in the hour to tell (5 expected so far): still stopped
        ([30, 31, 29, 30, 0, 0], 5, 5.0, STOPPED),
        # intent: a drop ends the same way
        ([400, 410, 200, 190, 210, 200], 300, 320.0, None),
        # intent: the first hour after a stop, partly filled, is no new drop
        ([30, 31, 29, 0, 0, 14], 0, 1.0, None),
    ],
)
def test_recovery_in_the_hour_in_progress_ends_a_stop(
    observed: list[float], in_progress: float, so_far: float, code: str | None
) -> None:
    expected = 30 if observed[0] == 30 else 400
    v = judge_volume(points(observed, expected), RULES, in_progress, so_far)
    assert (v.code if v else None) == code


@pytest.mark.parametrize(
    ("observed", "code", "level"),
    [
        # intent: a holiday: the whole day at 62 %, nothing happened at 14:00
        ([620, 630, 610, 640, 600, 630, 620, 610, 600, 590, 610, 600], None, None),
        # intent: a normal morning, then half the traffic lost: a drop, level 1
        ([1000, 990, 1010, 1000, 995, 1005, 500, 480, 510, 490, 505, 500], DROP, 1.0),
        # intent: a holiday morning (75 %), then a real incident: still a drop, judged
        # against the holiday's level
        ([750, 760, 740, 750, 760, 740, 300, 310, 290, 300, 305, 300], DROP, 0.75),
    ],
)
def test_the_days_level_absorbs_holidays_not_incidents(
    observed: list[float], code: str | None, level: float | None
) -> None:
    v = judge_volume(points(observed, 1000), RULES, None)
    assert (v.code if v else None) == code
    if v is not None:
        assert v.level == pytest.approx(level, abs=0.01)


def referenced(observed: list[float], expected: float, ref_level: float, ref: float = 2000):
    """``points`` whose reference series (expecting ``ref`` per hour) ran at ``ref_level``."""
    out = []
    for p in points(observed, expected):
        r = Reference(ref * ref_level, ref, ref + (0.05 * ref) ** 2)
        out.append(HourPoint(p.hour, p.observed, p.baseline, r))
    return out


@pytest.mark.parametrize(
    ("observed", "ref_level", "code"),
    [
        # intent: a holiday: this series and its reference both at 70 % all day
        ([280, 285, 275, 280, 280, 285, 280, 275, 280, 280, 285, 280], 0.7, None),
        # intent: the same series with a reference at its usual level: the series broke
        ([400, 395, 405, 400, 400, 410, 400, 395, 400, 180, 175, 185], 1.0, DROP),
        # intent: a holiday (70 %) and a real breakage of this series on top: a drop
        ([280, 285, 275, 280, 280, 285, 280, 275, 280, 110, 105, 100], 0.7, DROP),
        # intent: a promotion: reference and series both at 2.6x: no spike
        ([1040, 1050, 1030, 1040, 1045, 1035, 1040, 1050, 1030, 1040, 1045, 1035], 2.6, None),
    ],
)
def test_a_reference_series_absorbs_the_calendar_not_breakages(
    observed: list[float], ref_level: float, code: str | None
) -> None:
    v = judge_volume(referenced(observed, 400, ref_level), RULES, None)
    assert (v.code if v else None) == code
    if v is not None:
        # the level is the reference's, moved towards 1 by its noise (a few per cent)
        assert v.referenced and ref_level <= v.level <= ref_level + 0.04


def test_the_reference_level_counts_only_what_its_noise_allows() -> None:
    window = referenced([300, 300], 400, 0.7)
    scaled = reference_level(window, RULES, 0.0, 1.0)
    assert scaled is not None
    # 0.7 moved towards 1 by one standard deviation of the reference's two hours
    assert scaled.level == pytest.approx(0.7 + (2 * 12000) ** 0.5 / 4000)
    # a reference expecting fewer than 2 × min_expected events: not used
    small = referenced([400, 405, 395, 400, 150, 155], 400, 0.7, ref=10)
    assert reference_level(small[-2:], RULES, 0.0, 1.0) is None
    v = judge_volume(small, RULES, None)  # the day's level before the window stands in
    assert v is not None and v.code == DROP and not v.referenced


def evening(observed: list[float], ref_level: float, ref: float) -> list[HourPoint]:
    """Ten quiet hours (200 expected each) and then busy ones (2,000), all with samples
    spread ±15 % (days run busier or quieter), each with a reference hour expecting
    ``ref`` and running at ``ref_level``."""
    start = ts("2026-11-20T08:00:00+00:00")
    out = []
    for i, o in enumerate(observed):
        m = 200.0 if i < 10 else 2000.0
        b = Baseline.of([m * f for f in (0.85, 0.95, 1.05, 1.15)], SEAS)
        r = Reference(ref * ref_level, ref, ref + (0.05 * ref) ** 2)
        out.append(HourPoint(start + i * HOUR, o, b, r))
    return out


@pytest.mark.parametrize(
    ("ref_level", "code"),
    [
        # intent: its reference at its usual level: the series broke. The spread of the
        # busy hours' samples is the day's level, which the reference carries: judged by
        # the series' pooled burst noise, two hours at 58 % stand out
        (1.0, DROP),
        # intent: the reference dipped as far: a quiet evening, not a breakage
        (0.58, None),
    ],
)
def test_against_its_reference_a_series_is_judged_by_its_burst_noise(
    ref_level: float, code: str | None
) -> None:
    observed = [200.0] * 10 + [1160.0, 1165.0]
    v = judge_volume(evening(observed, ref_level, 20_000), RULES, None)
    assert (v.code if v else None) == code
    if v is not None:
        assert v.referenced and v.hours == 2 and v.z <= -RULES.z
    # intent: without a reference, the samples' spread is the noise: no drop at 58 %
    alone = [HourPoint(p.hour, p.observed, p.baseline) for p in evening(observed, 1, 1)]
    assert judge_volume(alone, RULES, None) is None


def test_a_clipped_reference_level_keeps_its_count_noise() -> None:
    """A reference at or above its usual level sets the level to 1 (clipped). Within its
    count's noise of 1 it is no exact measure of the day: a small reference weakens the
    z more than a large one. Well above 1 the clipped level can only spare the series:
    the reference's size no longer matters."""
    observed = [200.0] * 10 + [1160.0, 1165.0]

    def z(ref_level: float, ref: float) -> float:
        scaled = reference_level(evening(observed, ref_level, ref)[-2:], RULES, 0.0, 1.0)
        assert scaled is not None and scaled.level == 1.0
        return scaled.z

    assert z(1.05, 20_000) < z(1.05, 300) < 0  # 300/h: ±9 % of noise over two hours
    assert z(1.3, 20_000) == pytest.approx(z(1.3, 300))


def test_a_share_baseline_scales_the_usual_share_to_the_rest() -> None:
    # 300 of 1200 events over comparable hours: a share of 25 %; 900 others this hour
    b = share_baseline(300, 1200, 900, 7)
    assert b is not None and b.kind is BaselineKind.SHARE
    assert b.expected == pytest.approx(300)  # 25 % / 75 % × 900
    # the share's uncertainty and the rest's own noise, on top of this hour's Poisson
    assert b.variance(0.0) > 300 + 300**2 / 300
    assert share_baseline(12, 1200, 900, 7) is None  # too few earlier events to tell
    # a share window follows the rest already: level 1, judged against it as it stands
    window = [HourPoint(0, 140, b), HourPoint(HOUR, 150, b)]
    scaled = reference_level(window, RULES, 0.0, 1.0)
    assert scaled is not None and scaled.level == 1.0 and scaled.z < -RULES.z


def test_a_share_baseline_measures_how_much_its_share_varies() -> None:
    """Night hours of 60 events: the PageView share swings 40-70 % from hour to hour when
    a handful of sessions, each from the website or the app, sets the mix; a share as
    steady as independent events keeps a dispersion of 1."""
    tz = ZoneInfo("UTC")
    hour = ts("2026-11-20T02:00:00Z")

    def total(h: int) -> float:
        return 60.0

    def swinging(h: int) -> float:
        return 42.0 if (h // HOUR) % 2 else 24.0

    def steady(h: int) -> float:
        return 33.0

    swung = share_around(swinging, total, hour, tz, 7, rest=27.0)
    assert swung is not None and swung.kind is BaselineKind.SHARE
    # 42, 24, 42 of 60 around each 02:00: a share of 60 %; χ² per day 2.5 + 10 + 2.5,
    # over 21 hours less one: φ = 105 / 20
    assert swung.dispersion == pytest.approx(5.25)
    assert swung.expected == pytest.approx(0.6 / 0.4 * 27)
    calm = share_around(steady, total, hour, tz, 7, rest=27.0)
    assert calm is not None and calm.dispersion == 1.0
    assert share_dispersion([(5, 10)], 0.5) == 1.0  # one hour tells nothing


def test_pooling_keeps_a_share_baselines_own_dispersion() -> None:
    base = share_baseline(600, 1200, 150, 7)
    assert base is not None
    share = dc.replace(base, dispersion=5.0)
    seasonal = Baseline.of([150.0, 160.0, 140.0], BaselineKind.SEASONAL)
    pts = pooled([HourPoint(0, 150, seasonal), HourPoint(HOUR, 150, share)], RULES)
    assert pts[1].baseline.dispersion == 5.0
    assert pts[0].baseline.dispersion < 5.0  # the pooled one, capped


def test_drop_verdict_explains_itself() -> None:
    v = judge_volume(points([400, 410, 395, 200, 190, 210], 400), RULES, 100)
    assert v is not None
    assert v.observed == 600 and v.hours == 3 and v.persistence == 3
    assert v.change == pytest.approx(-0.5) and v.z < -RULES.z
    assert v.kind is BaselineKind.SEASONAL


# --- ratios ------------------------------------------------------------------------------


def windows(*pairs: tuple[float, float]) -> list[Window]:
    return [Window(0, HOUR, n, d) for n, d in pairs]


@pytest.mark.parametrize(
    ("recent", "daily", "both_ways", "severity"),
    [
        # intent: a key present on every event disappears: critical
        ([(0, 60)], [(500, 500)] * 7, False, Severity.CRIT),
        # intent: a 30-point fall of an 85 % share: warning
        ([(33, 60), (110, 200)], [(425, 500)] * 7, False, Severity.WARN),
        # intent: sampling noise around 85 % is no finding
        ([(47, 60)], [(425, 500), (430, 500), (420, 500)] * 2, False, None),
        # intent: a share that rose is no drop ...
        ([(60, 60)], [(250, 500)] * 7, False, None),
        # ... unless both directions count (Meta's server share: a broken pixel)
        ([(60, 60)], [(250, 500)] * 7, True, Severity.CRIT),
        # intent: too few events in the window or too few days: not judged
        ([(0, 10)], [(500, 500)] * 7, False, None),
        ([(0, 60)], [(500, 500)], False, None),
    ],
)
def test_judge_share(
    recent: list[tuple[float, float]],
    daily: list[tuple[float, float]],
    both_ways: bool,
    severity: Severity | None,
) -> None:
    drift = judge_share(windows(*recent), daily, RULES, both_ways=both_ways)
    if severity is None:
        assert drift is None
    else:
        assert drift is not None and drift.severity is severity
        assert drift.days == len(daily)


def test_judge_share_ignores_shares_usually_low() -> None:
    assert judge_share(windows((0, 60)), [(50, 500)] * 7, RULES, min_baseline=0.2) is None


@pytest.mark.parametrize(
    ("recent_mean", "finding"),
    [(150.0, False), (120.0, False), (1.5, True), (15000.0, True), (60.0, True)],
)
def test_judge_mean(recent_mean: float, finding: bool) -> None:
    daily = [(150.0 * 40 * f, 40.0) for f in (0.9, 1.0, 1.1, 1.05, 0.95, 1.0, 1.0)]
    # hourly means of 5 values with a standard deviation of 120 around 150
    hourly = [(5 * (150 + d), 5.0) for d in (-50, 50, -30, 30, 0, -20, 20, 10, -10, 60, -60, 5) * 3]
    # three hours of 10 purchases each (the windows of 1, 2 and 3 hours)
    recent = windows(*[(recent_mean * 10 * k, 10 * k) for k in (1, 2, 3)])
    drift = judge_mean(recent, daily, hourly, RULES)
    assert (drift is not None) is finding


def test_judge_mean_needs_hourly_spread() -> None:
    daily = [(150.0 * 40, 40.0)] * 7
    assert judge_mean(windows((15000.0 * 30, 30)), daily, [(750.0, 5.0)] * 5, RULES) is None


def test_judge_mean_noisy_values_need_more_than_half() -> None:
    """With values as spread as baskets (σ ≈ mean), +56 % over 30 purchases is noise."""
    daily = [(200.0 * 40, 40.0)] * 7
    hourly = [(5 * (200 + d), 5.0) for d in (-90, 90, -60, 60, 0, -120, 120, 30, -30) * 3]
    assert judge_mean(windows((312.0 * 30, 30)), daily, hourly, RULES) is None


def test_judge_mean_of_skewed_baskets() -> None:
    """Order values skewed as baskets are (log-normal, σ = 1: a few large orders): the
    mean of 24 ordinary orders at 2.1 × the usual happens once in ~2,000 windows, and a
    dozen windows are judged every cycle: chance. Values in cents are not. The median of
    the hourly terms alone said 70 % of the spread here (z 5.45; now 4.76)."""
    rng = Random(7)
    orders = [[math.exp(rng.gauss(3.9, 1.0)) for _ in range(4)] for _ in range(7 * 24)]
    hourly = [(sum(h), float(len(h))) for h in orders]
    daily = [
        (sum(s for s, _ in hourly[d : d + 24]), sum(n for _, n in hourly[d : d + 24]))
        for d in range(0, len(hourly), 24)
    ]
    usual = sum(s for s, _ in daily) / sum(n for _, n in daily)
    assert judge_mean(windows((2.1 * usual * 24, 24)), daily, hourly, RULES) is None
    cents = judge_mean(windows((100 * usual * 24, 24)), daily, hourly, RULES)
    assert cents is not None and cents.z is not None and cents.z > 0


def test_judge_mean_one_hours_large_baskets_are_no_drift() -> None:
    """Usual mean 150; the last of three hours held 10 orders with two large baskets,
    the two before it ordinary ones: the mean of the 30 orders is twice the usual, the
    mean without that hour is not. The same mean from every hour is a drift; one hour
    of prices in cents (100 ×) is one at once."""
    daily = [(150.0 * 40, 40.0)] * 7
    # hourly means of 5 orders as spread as baskets are (σ ≈ 170 around 150)
    hourly = [(5.0 * (150 + d), 5.0) for d in (-90, 90, -60, 60, 0, -120, 120, 30, -30) * 16]
    baskets = 8 * 150.0 + 2 * 2250.0
    one = windows((baskets, 10), (baskets + 1500, 20), (baskets + 3000, 30))
    assert judge_mean(one, daily, hourly, RULES) is None
    every = windows(*[(k * baskets, 10 * k) for k in (1, 2, 3)])
    assert judge_mean(every, daily, hourly, RULES) is not None
    cents = windows((150.0 * 100 * 25, 25))
    assert judge_mean(cents, daily, hourly, RULES) is not None


def test_judge_mean_an_earlier_breakage_hour_does_not_mask() -> None:
    """One hour of values in cents inside the baseline days: values in cents now are
    still a drift (the hour's term is capped)."""
    hourly = [(5.0 * (150 + d), 5.0) for d in (-50, 50, -30, 30, 0, -20, 20, 10, -10, 60) * 16]
    hourly[30] = (5 * 15000.0, 5.0)
    daily = [(150.0 * 40, 40.0)] * 7
    assert judge_mean(windows((15000.0 * 30, 30)), daily, hourly, RULES) is not None


def test_windows_and_blocks_sum_hours() -> None:
    def value(hour: int) -> tuple[float, float]:
        return (1.0, 2.0)

    ws = window_sums(value, 10 * HOUR, 3, 10 * HOUR + 600)
    assert [(w.since, w.num, w.den) for w in ws] == [
        (10 * HOUR, 1, 2), (9 * HOUR, 2, 4), (8 * HOUR, 3, 6)
    ]  # fmt: skip
    blocks = daily_blocks(8 * HOUR + 2 * DAY, 2)
    assert blocks == [(8 * HOUR + DAY, 8 * HOUR + 2 * DAY), (8 * HOUR, 8 * HOUR + DAY)]
    assert block_sums(value, blocks) == [(24, 48), (24, 48)]


# --- bursty series: measured dispersion ----------------------------------------------------


def bursty(levels: list[float], observed: list[float], dispersion: float) -> list[HourPoint]:
    """Consecutive hours expecting ``levels``, each with five weekly samples spread as a
    series whose variance is ``dispersion`` × its mean (visitors send bursts of events):
    the relative spread is large at night, small by day."""
    start = ts("2026-11-20T00:00:00+00:00")
    out = []
    for i, (m, o) in enumerate(zip(levels, observed, strict=True)):
        s = math.sqrt(dispersion * m) / 0.7413  # 1.4826 × MAD = sqrt(dispersion × m)
        b = Baseline.of([m - s, m - s / 2, m, m + s / 2, m + s], BaselineKind.SEASONAL)
        out.append(HourPoint(start + i * HOUR, o, b))
    return out


EVENING = [1000.0] * 8  # the evening's hours before the night ones judged


@pytest.mark.parametrize(
    ("night", "observed", "code"),
    [
        # intent: a bursty series (variance 4 × the mean) at 200/h at night: one hour at
        # 110 is an ordinary gap between bursts (it alerted while the evening's small
        # relative spread stood for the night's)
        (200.0, [200, 196, 204, 110], None),
        # intent: ... at 30/h, one hour at 15 neither
        (30.0, [30, 28, 33, 15], None),
        # intent: a halving lasting 3 h of a 45/h and of a 20/h series alerts
        (45.0, [46, 22, 23, 21], DROP),
        (20.0, [21, 9, 9, 9], DROP),
        # intent: a stop still alerts
        (30.0, [31, 29, 0, 0], STOPPED),
    ],
)
def test_bursty_night_hours_are_judged_against_their_dispersion(
    night: float, observed: list[float], code: str | None
) -> None:
    levels = EVENING + [night] * len(observed)
    pts = bursty(levels, [*EVENING, *observed], dispersion=4.0)
    v = judge_volume(pts, RULES, None)
    assert (v.code if v else None) == code


def test_the_dispersion_is_capped_so_a_halving_stays_visible() -> None:
    # intent: however bursty the night measured, the dispersion adds at most
    # ``dispersion_cap`` of relative noise to an hour: a halving of a 45/h series over
    # 3 h stays beyond z
    pts = bursty([*EVENING, 45, 45, 45, 45], [*EVENING, 46, 22, 23, 21], 50.0)
    pts = pooled(pts, RULES)
    night = pts[-1].baseline
    assert night.dispersion == pytest.approx(max(1.0, RULES.dispersion_cap**2 * 45))
    assert 3 * 22.5 / math.sqrt(3 * night.dispersion * 45 * (1 + math.pi / 10)) >= RULES.z


def _busy(observed: list[float], samples: list[float]) -> list[HourPoint]:
    """Consecutive hours of a series whose weeks differ by a fifth (the spread that keeps
    one empty hour of it short of ``single_hour_z``)."""
    b = Baseline.of(samples, SEAS)
    start = ts("2026-11-20T06:00:00+00:00")
    return [HourPoint(start + i * HOUR, o, b) for i, o in enumerate(observed)]


WEEKS_600 = [480.0, 600, 720, 600]  # 600 an hour, weeks ±20 %


@pytest.mark.parametrize(
    ("hours", "samples", "in_progress", "quiet", "last", "code"),
    [
        # intent: a 600/h sender silent for the first 10 judged minutes of the hour (100
        # expected): it stopped, an hour before the complete hours can tell
        ([600] * 6, WEEKS_600, 0, 600.0, None, STOPPED),
        # intent: ... silent for 5 minutes only: a pause, not yet a stop
        ([600] * 6, WEEKS_600, 0, 300.0, None, None),
        # intent: ... three events in it, the last one's time not known: sending
        ([600] * 6, WEEKS_600, 3, 600.0, None, None),
        # intent: ... three events in its first 2 minutes, then 10 minutes of nothing: it
        # stopped after them (silence counts from the last event, not the hour's start)
        ([600] * 6, WEEKS_600, 3, 720.0, 120.0, STOPPED),
        # intent: ... the last of them 4 minutes ago: a pause
        ([600] * 6, WEEKS_600, 3, 720.0, 480.0, None),
        # intent: the last complete hour busy until 10 minutes before its end and 5 minutes
        # of the new hour judged empty: 15 minutes without its 150 events
        ([600] * 6, WEEKS_600, 0, 300.0, -600.0, STOPPED),
        # intent: ... a last event at the very end of that hour: 5 minutes, a pause
        ([600] * 6, WEEKS_600, 0, 300.0, -30.0, None),
        # intent: 120/h: 20 expected in 10 minutes is too few to tell; 50 in 25 enough
        ([120] * 6, [96.0, 120, 144, 120], 0, 600.0, None, None),
        ([120] * 6, [96.0, 120, 144, 120], 0, 1500.0, None, STOPPED),
        # intent: ... on a holiday at 70 % (the level clipped to 75 %): 40
        # expected in 20 minutes at the usual level, 30 at the day's: too few to tell
        ([84] * 6, [96.0, 120, 144, 120], 0, 1200.0, None, None),
        ([120] * 6, [96.0, 120, 144, 120], 0, 1200.0, None, STOPPED),
        # intent: this hour of an earlier week was empty (a sender uploading in batches):
        # an empty start of the hour is its habit
        ([600] * 6, [0.0, 600, 720, 600], 0, 1800.0, None, None),
        # intent: a bursty series (weeks ±60 %): half an hour without its 50 events is
        # chance for it (its rate varies that much), not a stop
        ([100] * 6, [40.0, 100, 160, 100], 0, 1800.0, None, None),
        # intent: a small bursty series' empty hour (42 expected, z ≈ −2) and the new hour
        # empty so far: chance, not yet a stop
        ([42] * 5 + [0], [21.0, 42, 63, 42], 0, 0.0, None, None),
        # intent: at the top of the hour, the latest complete hour empty (z ≈ −5: short of
        # single_hour_z alone) and the new one empty so far: still stopped
        ([600] * 5 + [0], WEEKS_600, 0, 0.0, None, STOPPED),
        # intent: ... 3 minutes into the new hour, judged up to 2 minutes before it: the
        # complete hour counts whole (the flush margin is the hour in progress's)
        ([600] * 5 + [0], WEEKS_600, 0, -120.0, None, STOPPED),
        # intent: ... events in the new hour: back (``recovered`` needs more expected)
        ([600] * 5 + [0], WEEKS_600, 2, 0.0, None, None),
    ],
)
def test_a_silent_hour_in_progress_is_a_stop_before_it_completes(
    hours: list[float],
    samples: list[float],
    in_progress: float,
    quiet: float,
    last: float | None,
    code: str | None,
) -> None:
    pts = _busy(hours, samples)
    current = HourPoint(pts[-1].hour + HOUR, in_progress, pts[-1].baseline)
    last_seen = 0.0 if last is None else current.hour + last
    silent = (current, current.hour + quiet, last_seen)
    v = judge_volume(pts, RULES, in_progress, None, silent)
    assert (v.code if v else None) == code
    if v is not None and quiet <= 0:  # the empty complete hour, whole
        assert [p.baseline.expected for p in v.points] == [pts[-1].baseline.expected]
    if v is not None and quiet > 0:  # the window reaches into the hour in progress, pro rata
        assert v.severity is Severity.CRIT
        assert v.until == current.hour + HOUR
        silence = quiet - max(0.0, last or 0.0)
        assert v.points[-1].baseline.expected == pytest.approx(median(samples) * silence / HOUR)
        assert all(p.observed == 0 for p in v.points)
        if last is not None and last < 0:  # the end of the complete hour, pro rata
            assert v.points[0].baseline.expected == pytest.approx(median(samples) * -last / HOUR)
    # the complete hours alone, without the hour in progress, have no verdict
    assert judge_volume(pts, RULES, in_progress, None) is None


def test_an_event_names_share_hour_is_judged_whole_silence_from_the_hour_in_progress() -> None:
    # intent: one event name's complete hours are judged by its share of the others (a
    # share baseline has no weekly samples to vouch for part of an hour): its silence
    # counts from the hour in progress, however late in the hour before its last event was
    pts = _busy([600] * 6, WEEKS_600)
    pts[-1] = dc.replace(pts[-1], baseline=dc.replace(pts[-1].baseline, kind=BaselineKind.SHARE))
    current = HourPoint(pts[-1].hour + HOUR, 0, _busy([600], WEEKS_600)[0].baseline)
    early = current.hour - 1800.0
    assert judge_silent(pts, RULES, current, current.hour + 300.0, early) is None
    v = judge_silent(pts, RULES, current, current.hour + 600.0, early)
    assert v is not None and v.code == STOPPED
    assert [p.hour for p in v.points] == [current.hour]


def test_a_stop_of_two_complete_hours_or_more_is_not_silence_but_judge_stoppeds() -> None:
    pts = _busy([600.0] * 4 + [0, 0], WEEKS_600)
    current = HourPoint(pts[-1].hour + HOUR, 0, pts[-1].baseline)
    assert judge_silent(pts, RULES, current, current.hour + 600.0) is None
    v = judge_volume(pts, RULES, 0, None, (current, current.hour + 600.0, 0.0))
    assert v is not None and v.code == STOPPED and v.until == current.hour


def test_silent_minutes_zero_turns_the_hour_in_progress_rule_off() -> None:
    pts = _busy([600] * 6, WEEKS_600)
    current = HourPoint(pts[-1].hour + HOUR, 0, pts[-1].baseline)
    off = RULES.model_copy(update={"silent_minutes": 0})
    until = current.hour + 1800.0
    assert judge_volume(pts, off, 0, None, (current, until, 0.0)) is None
    assert judge_volume(pts, RULES, 0, None, (current, until, 0.0)) is not None


def test_the_chance_of_silence_is_poissons_for_a_steady_rate_and_larger_for_a_varying_one() -> None:
    # a steady rate: Poisson's e^(-m)
    assert _silence_z(20.0, 0.0) == pytest.approx(NormalDist().inv_cdf(math.exp(-20)), abs=1e-3)
    # a rate that varies from hour to hour makes an empty stretch likelier: z less extreme
    assert _silence_z(100.0, 0.04) < _silence_z(100.0, 0.25) < _silence_z(100.0, 1.0) < 0
    # gamma-Poisson: (1 + m·v)^(-1/v) = (1 + 25)^(-4) for m = 100, v = 0.25
    assert _silence_z(100.0, 0.25) == pytest.approx(NormalDist().inv_cdf(26.0**-4), abs=1e-3)
    # no underflow for a silence that cannot be chance
    assert _silence_z(1e6, 0.01) < -30


@pytest.mark.parametrize(
    ("tail", "in_progress", "code"),
    [
        # intent: a 60/h series at 67 % then 33 % (z ≈ −4.3, one hour at most 60 %): a
        # chance dip looks like that; not yet a drop ...
        ([40, 20], None, None),
        # intent: ... unless the hour in progress is as far down ...
        ([40, 20], 6.0, DROP),
        # intent: ... or a second hour is (it goes on)
        ([40, 20, 22], None, DROP),
        # intent: a fall beyond what chance does to one hour (1 of 60, z ≤ −6) needs neither
        ([60, 1], None, DROP),
    ],
)
def test_a_drop_is_confirmed_by_a_second_hour_or_the_hour_in_progress(
    tail: list[float], in_progress: float | None, code: str | None
) -> None:
    pts = points([60, 61, 59, 60, 60, *tail], 60)
    so_far = None if in_progress is None else 15.0  # a quarter of the hour in progress
    v = judge_volume(pts, RULES, in_progress, so_far)
    assert (v.code if v else None) == code
    if tail[0] == 60:
        assert v is not None and v.z <= -RULES.single_hour_z and v.persistence < 2

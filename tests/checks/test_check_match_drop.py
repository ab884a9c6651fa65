"""MATCH_KEY_DROP from the logs (``checks.match_drop``, in the ``match_quality`` check)."""

from __future__ import annotations

import dataclasses as dc
import math
from collections.abc import Callable
from random import Random

import pytest

from checks.match_drop import MATCH_KEY_DROP, dispersion, key_drops
from checks.match_quality import MatchQuality
from monitor.config import MatchQualitySettings, settings_from_dict
from monitor.engine.series import build_history
from monitor.model.findings import Severity
from monitor.model.rollup import MATCH_KEYS, SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import VolumeHistory
from tests.support.checkutil import by_code, context, delivery, event

HOUR = 3600
DAY = 86400
NOW = 1_795_176_000 + 25 * 60  # 2026-11-20T12:25:00Z; 12:00 is in progress
CURRENT = NOW // HOUR * HOUR
EM = MATCH_KEYS.index("em")
IP = MATCH_KEYS.index("client_ip_address")
CFG = MatchQualitySettings()

# (hour, events) -> (events, events with em): what one hour of a bucket holds
Hour = Callable[[int, int, Random], tuple[int, int]]


def shape(hour: int) -> float:
    """Daily seasonality (UTC): busy afternoons, quiet nights."""
    h = (hour // HOUR) % 24
    return 0.3 + 0.7 * math.sin(math.pi * h / 24) ** 2


def sessions(share: float, size: int = 5, day_wobble: float = 0.0) -> Hour:
    """Identified visitors send all their ``size`` events with em, the others none (the
    over-dispersion of upper-funnel shares); the day's share wobbles by ``day_wobble``."""
    wobble: dict[int, float] = {}

    def hour(h: int, n: int, rng: Random) -> tuple[int, int]:
        day = h // DAY
        p = wobble.setdefault(day, share + rng.uniform(-day_wobble, day_wobble))
        visits = max(1, round(n / size))
        known = sum(rng.random() < p for _ in range(visits))
        return n, min(n, known * size)

    return hour


def rows(
    rate: float,
    em: Hour,
    *,
    days: int = 9,
    name: str = "PageView",
    source: str = "website",
    seed: int = 1,
    until: int = CURRENT,
) -> list[HourRollup]:
    """``days`` of hourly rollups of one bucket up to the hour ``until`` (a part of the
    hour in progress), the IP address on every event."""
    rng = Random(seed)
    out = []
    for h in range(until - days * DAY, until + HOUR, HOUR):
        mean = rate * shape(h) * (0.42 if h == CURRENT else 1.0)
        n = max(0, round(rng.gauss(mean, math.sqrt(mean))))
        n, k = em(h, n, rng)
        out.append(row(name, h, source, n, k))
    return out


def row(name: str, h: int, source: str, n: int, em: int) -> HourRollup:
    counts = [n] + [0] * len(MATCH_KEYS)
    counts[1 + EM], counts[1 + IP] = em, n
    return HourRollup("123", name, SOURCE_SERVER_LOG, h, events=n,
                      key_counts=counts[1:], source_keys={source: counts})  # fmt: skip


def row_of(r: HourRollup, counts: list[int]) -> HourRollup:
    """``r`` with the per-key ``counts`` (events first) of its one action_source."""
    (source,) = r.source_keys
    return dc.replace(r, key_counts=counts[1:], source_keys={source: counts})


def history(rollups: list[HourRollup]) -> VolumeHistory:
    return build_history(settings_from_dict({}), "123", rollups)


def after(start: int, em: Hour, broken: Callable[[int, int], int]) -> Hour:
    """``em`` until ``start``, then ``broken(events, em)`` events with em."""

    def hour(h: int, n: int, rng: Random) -> tuple[int, int]:
        n, k = em(h, n, rng)
        return (n, broken(n, k)) if h >= start else (n, k)

    return hour


def test_a_dropped_email_key_fires_on_an_upper_funnel_event() -> None:
    em = after(CURRENT - 2 * HOUR, sessions(0.35, day_wobble=0.05), lambda n, k: 0)
    (drop,) = key_drops(history(rows(300, em)), NOW, CFG)
    assert (drop.event_name, drop.source, drop.key) == ("PageView", "website", "em")
    assert drop.severity is Severity.WARN  # usually on 35 %: not crit
    assert drop.observed == 0.0 and drop.expected == pytest.approx(0.35, abs=0.05)
    assert drop.z <= -4 and drop.dispersion > 1.5  # five events per visit: dispersed


def test_a_key_on_most_events_that_is_all_but_gone_is_crit() -> None:
    em = after(CURRENT - 3 * HOUR, sessions(0.95, size=1), lambda n, k: 0)
    (drop,) = key_drops(history(rows(30, em, name="Purchase")), NOW, CFG)
    assert (drop.event_name, drop.severity) == ("Purchase", Severity.CRIT)


@pytest.mark.parametrize("seed", range(1, 6))
def test_a_noisy_upper_funnel_share_with_ordinary_wobble_never_fires(seed: int) -> None:
    """30 % of events carry em: sessions of 8 events, days ±8 points; judged every hour
    of two days, also with few events per hour."""
    for rate in (40, 400):
        h = history(rows(rate, sessions(0.30, size=8, day_wobble=0.08), days=11, seed=seed))
        for t in range(NOW - 2 * DAY, NOW + 1, HOUR):
            assert key_drops(h, t, CFG) == [], (rate, t)


def test_a_burst_is_judged_at_its_usual_count() -> None:
    """A queue flushed at once: ten times the usual hour, with a share that dips as one
    batch of visitors can (14 % against 30 %); at its raw count the z would be huge."""
    base = rows(200, sessions(0.30, size=5, day_wobble=0.03), seed=3)
    burst = base[-3]
    n = 10 * 200
    base[-3] = row("PageView", burst.hour, "website", n, round(0.14 * n))
    assert key_drops(history(base), NOW, CFG) == []
    # The same dip is a drop once it lasts: hours of it at the ordinary count.
    dipped = [
        row("PageView", r.hour, "website", r.events, round(0.05 * r.events))
        if r.hour >= CURRENT - 6 * HOUR
        else r
        for r in base
    ]
    assert [d.key for d in key_drops(history(dipped), NOW, CFG)] == ["em"]


def test_visitors_added_without_the_key_dilute_the_share_but_lose_nothing() -> None:
    """A newsletter: for six hours three times the usual events, the extra ones without
    the key (they came from an email, not an ad click). The share falls to a third; as
    many events as usual carry the key. Losing the key among them as well is a drop."""
    base = rows(300, sessions(0.30, size=5, day_wobble=0.03), seed=5)

    def crowd(keep: float) -> list[HourRollup]:
        return [
            row("PageView", r.hour, "website", 3 * r.events, round(keep * r.key_counts[EM]))
            if r.hour >= CURRENT - 5 * HOUR
            else r
            for r in base
        ]

    assert key_drops(history(crowd(1.0)), NOW, CFG) == []
    (drop,) = key_drops(history(crowd(0.3)), NOW, CFG)
    assert drop.key == "em" and drop.observed < 0.05


def test_keys_that_fall_together_need_stronger_evidence() -> None:
    """Identified visitors carry em and ph together. em alone falling to a fifth for three
    hours is a drop at z about -5; both falling alike (fewer identified visitors, or a
    night of them clustered) must reach -drop_joint_z (-6), which user_data lost
    altogether for six hours does."""
    ph = MATCH_KEYS.index("ph")
    base = rows(300, sessions(0.35, size=5, day_wobble=0.04), seed=7)

    def keep(em: float, phone: float, hours: int) -> list[HourRollup]:
        out = []
        for r in base:
            c = list(r.source_keys["website"])
            on = c[1 + EM]
            late = r.hour >= CURRENT - hours * HOUR
            c[1 + EM], c[1 + ph] = (round(on * em), round(on * phone)) if late else (on, on)
            out.append(row_of(r, c))
        return out

    (alone,) = key_drops(history(keep(0.2, 1.0, 3)), NOW, CFG)
    assert alone.key == "em" and -CFG.drop_joint_z < alone.z <= -CFG.drop_z
    assert key_drops(history(keep(0.2, 0.2, 3)), NOW, CFG) == []
    gone = key_drops(history(keep(0.0, 0.0, 6)), NOW, CFG)
    assert sorted(d.key for d in gone) == ["em", "ph"]
    assert all(d.z <= -CFG.drop_joint_z for d in gone)


def test_one_hour_alone_does_not_make_a_drop() -> None:
    """One hour without the key between ordinary ones (a fluke, one odd session or batch);
    the next hour without it too is a drop."""
    base = rows(30, sessions(0.6, size=1), seed=4)
    one = [row("PageView", r.hour, "website", r.events, 0) if r.hour == CURRENT - HOUR else r
           for r in base]  # fmt: skip
    assert key_drops(history(one), NOW, CFG) == []
    two = [row("PageView", r.hour, "website", r.events, 0) if r.hour >= CURRENT - HOUR else r
           for r in base]  # fmt: skip
    assert [d.key for d in key_drops(history(two), NOW, CFG)] == ["em"]


def test_a_key_on_every_event_gone_from_one_hour_is_a_drop_at_once() -> None:
    em = after(CURRENT, sessions(1.0, size=1), lambda n, k: 0)  # the hour in progress
    (drop,) = key_drops(history(rows(80, em)), NOW, CFG)
    assert drop.z <= -CFG.drop_one_hour_z and drop.since == CURRENT


def test_too_little_history_does_not_fire() -> None:
    em = after(CURRENT - 3 * HOUR, sessions(0.9, size=1), lambda n, k: 0)
    # two days of history, the window's 12 h included: under drop_min_days (3)
    assert key_drops(history(rows(300, em, days=2)), NOW, CFG) == []
    assert key_drops(history(rows(300, em, days=4)), NOW, CFG) != []
    # days with fewer than drop_min_day_events do not count either
    thin = rows(0.5, em, days=9)
    assert key_drops(history(thin), NOW, CFG) == []


def test_few_events_missing_do_not_fire() -> None:
    """A small bucket loses the key completely: 8 events lack it, under 10."""
    em = after(CURRENT - 1 * HOUR, sessions(0.9, size=1), lambda n, k: 0)
    low = rows(4, em, seed=2)
    drops = key_drops(history(low), NOW, CFG)
    assert drops == [] or all(d.missing >= CFG.drop_min_missing for d in drops)


def test_dispersion_is_one_for_independent_events_and_larger_for_sessions() -> None:
    rng = Random(5)
    indep = [[(n := 100), sum(rng.random() < 0.3 for _ in range(n))] for _ in range(24)]
    grouped = sessions(0.3, size=10)
    clustered = [list(grouped(0, 100, rng)) for _ in range(24)]
    one_key = [[c[0]] + [c[1]] * len(MATCH_KEYS) for c in indep]
    many = [[c[0]] + [c[1]] * len(MATCH_KEYS) for c in clustered]
    assert dispersion([one_key] * 3, 0, 1e9) == pytest.approx(1.0, abs=0.5)
    assert dispersion([many] * 3, 0, 1e9) > 4


def test_the_check_reports_it_under_match_quality_with_examples() -> None:
    em = after(CURRENT - 2 * HOUR, sessions(0.6, size=1), lambda n, k: 0)
    ctx = dc.replace(context(now=NOW), series=history(rows(100, em)))
    check = MatchQuality(ctx)
    ud = {"client_ip_address": "2001:db8::1", "client_user_agent": "Mozilla/5.0"}
    check.observe(delivery(event("PageView", NOW - 60, action_source="website", user_data=ud)))
    (f,) = by_code(check.result(), MATCH_KEY_DROP)
    assert (f.check, f.field, f.event_names) == ("match_quality", "user_data.em", ["PageView"])
    assert f.severity is Severity.CRIT  # 60 % -> 0 %
    assert f.evidence["action_source"] == "website" and f.evidence["baseline_kind"] == "recent_days"
    assert f.evidence["observed"] == 0.0 and f.count >= 10
    assert "PageView (website)" in f.message and "UTC" in f.message
    assert f.examples and "em" not in f.examples[0].value.split(": ")[1].split(",")


def test_no_stored_series_no_drop_judgement() -> None:
    check = MatchQuality(context(now=NOW))
    check.observe(delivery(event("PageView", NOW - 60, action_source="website", user_data={})))
    assert by_code(check.result(), MATCH_KEY_DROP) == []

"""``MATCH_KEY_DROP`` from the delivery logs (the ``match_quality`` check's log part): the
share of events of one event name and ``action_source`` that carry one match key fell
against its own recent history. Pure functions of the hourly rollups' per-source key
counts (``HourRollup.source_keys``); thresholds ``[checks.match_quality] drop_*``
(``monitor.config.MatchQualitySettings``). One finding per event name × action_source ×
key, ``field`` ``user_data.<key>``.

**Baseline.** The key's share on each of the ``drop_days`` (7) 24-hour days before the
window; days with fewer than ``drop_min_day_events`` (20) events of the bucket are left
out, and at least ``drop_min_days`` (3) must remain. ``p0`` = the median of the daily
shares, ``spread`` = 1.4826 × their MAD (the day-to-day wobble).

**Dispersion.** Events are not independent draws: a visitor's session sends several
events, all with or all without the key (a logged-in visitor), and the visitor mix moves
through the day. The factor ``φ`` (at least 1) measures it on the baseline: Pearson's
χ² of the hourly key counts against each day's own share, pooled over the days, per
degree of freedom (the quasi-binomial estimate). Upper-funnel events, with identifiers on
25–45 % of them, have a large ``φ`` (2–5), and days of heavy clustering count in full. An
earlier drop inside the baseline raises ``φ`` for a week: the check is then slower to
fire, never quicker.

**Window.** The last 1..``drop_hours`` (12) hours, the hour in progress included. A burst
(an hour holding more events than the bucket's usual busy hour, the 90th percentile of
its baseline hours with events: a flushed queue, a bulk import) is judged at that usual
count: its events and key counts are scaled down, so one batch weighs like one ordinary
hour, in the window and in ``φ``.

**Test.** With ``n`` the window's events (bursts scaled) and ``k`` those carrying the key::

    z = (k/n − p0) / √(φ · max(p0(1 − p0), 0.05) / n + spread² · (1 + π / 2d))

(``d`` days; the last term is the uncertainty of a median of ``d`` days). A window is a
finding when every condition holds: ``k/n ≤ drop_ratio × p0`` (half), ``p0 − k/n ≥
drop_points`` (10 points), ``n·p0 − k ≥ drop_min_missing`` (10 events lack the key beyond
the usual), ``z ≤ −drop_z`` (−4) and ``n/φ ≥ drop_min_effective`` (25: enough independent
evidence); the events carrying the key (unscaled) are at most ``drop_ratio`` of their usual
number, ``p0`` times the bucket's usual events in those hours (the median of the same
hour of the day over the ``drop_days`` days before): a newsletter's or a campaign's
visitors arriving without a click id (``fbc``) or an email lower the share while as many
events as usual still carry the key, a dilution, not a loss; and one hour alone does not
make a drop: without the window's hour lacking the key most, the other hours' share must
still be at most ``drop_ratio × p0``, unless ``z ≤ −drop_one_hour_z`` (−8). A deploy that
removes a key keeps it away hour after hour; one unlucky hour does not (hundreds of keys
and windows are judged every cycle, so a z of −4 turns up by chance now and then; a z of
−8 does not: a key that was on every event and is missing from the next 25 reaches −22).
When another key's share over the same window is at most ``drop_ratio`` of its own
baseline too, the fall must reach ``z ≤ −drop_joint_z`` (−6): identified visitors carry
the identity keys together, so fewer of them (a night of anonymous sessions, clustered
beyond what ``φ`` measured) moves every key at once, while a deploy that drops one key
leaves the others; ``user_data`` lost altogether still goes that far, later.
The lowest ``z`` is reported.

Severity ``warn``; ``crit`` when the key is all but gone (``k/n ≤ drop_crit_share``, 5 %)
from events that usually carried it (``p0 ≥ drop_crit_baseline``, 50 %).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from checks.base import Tally, make_finding
from checks.baseline import DAY, HOUR, MAD_SCALE, hour_start, local_label, mad
from checks.drift import daily_blocks
from checks.match_keys import ADVICE, source_label
from checks.volume_ratios import local_iso
from monitor.config import MatchQualitySettings
from monitor.model.findings import Example, Finding, Severity
from monitor.model.rollup import MATCH_KEYS, OTHER_EVENT, SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import VolumeHistory
from monitor.timeutil import iso_utc

MATCH_KEY_DROP = "MATCH_KEY_DROP"
CHECK_ID = "match_quality"
VARIANCE_FLOOR = 0.05  # of p0(1 − p0): a share of 100 % still varies a little
BUSY_QUANTILE = 0.9  # the usual busy hour: this quantile of the baseline's hours

Counts = Sequence[int]  # one ``source_keys`` entry: events, then one count per match key


@dataclass(frozen=True, slots=True)
class KeyDrop:
    """One key whose share fell (module docstring): ``expected`` = ``p0``, ``observed``
    over ``[since, until)``; ``events`` and ``missing`` after burst scaling."""

    event_name: str
    source: str
    key: str
    severity: Severity
    expected: float
    observed: float
    since: int
    until: float
    events: float
    missing: float
    z: float
    dispersion: float
    spread: float
    days: int


def key_drops(history: VolumeHistory, now: float, cfg: MatchQualitySettings) -> list[KeyDrop]:
    """Every key drop of ``history`` at ``now``, by event name, action_source and key."""
    last = hour_start(now)
    oldest = last - (cfg.drop_hours - 1) * HOUR
    blocks = daily_blocks(oldest, cfg.drop_days)
    out: list[KeyDrop] = []
    for name in sorted(history.rollups):
        if name == OTHER_EVENT:
            continue
        hours = history.rollups[name]
        window = [hours.get(last - k * HOUR) for k in range(cfg.drop_hours)]
        sources = {s for r in window if r is not None for s in r.source_keys}
        if not sources:
            continue
        days = [(block, history.block(name, *block).source_keys) for block in blocks]
        for source in sorted(sources):
            bucket = _Bucket(name, source, last, now, cfg)
            out += bucket.drops(window, hours, days)
    return out


class _Bucket:
    """The judgment of one (event name, action_source) at one time."""

    def __init__(
        self, name: str, source: str, last: int, now: float, cfg: MatchQualitySettings
    ) -> None:
        self.name, self.source, self.last, self.now, self.cfg = name, source, last, now, cfg

    def drops(
        self,
        window: Sequence[HourRollup | None],
        hours: Mapping[int, HourRollup],
        days: Sequence[tuple[tuple[int, int], Mapping[str, list[int]]]],
    ) -> list[KeyDrop]:
        cfg, source = self.cfg, self.source
        usable = [
            (block, c)
            for block, sums in days
            if (c := sums.get(source)) is not None and c[0] >= cfg.drop_min_day_events
        ]
        if len(usable) < cfg.drop_min_days:
            return []
        baselines = self._baselines([c for _, c in usable])
        if not baselines:
            return []
        day_hours = [self._hours(hours, block) for block, _ in usable]
        busy = sorted(c[0] for rows in day_hours for c in rows)
        cap = float(busy[int(BUSY_QUANTILE * (len(busy) - 1))])
        rows = [r.source_keys.get(source) if r is not None else None for r in window]
        # Read only by a window that passes every other test (rare): computed then, once.
        usual = functools.cache(lambda: self._usual(hours))

        @functools.cache
        def fallen(age: int) -> frozenset[int]:
            """The keys whose share over the window's last ``age + 1`` hours is at most
            ``drop_ratio`` of their baseline."""
            sums = [0.0] * (len(MATCH_KEYS) + 1)
            for c in rows[: age + 1]:
                if c is not None and c[0] > 0:
                    w = min(1.0, cap / c[0])
                    for x, v in enumerate(c):
                        sums[x] += w * v
            n = sums[0]
            return frozenset(
                j for j, (p, _) in baselines.items() if n and sums[j + 1] / n <= cfg.drop_ratio * p
            )

        out = []
        for i, (p0, spread) in baselines.items():
            drop = self._judge(i, p0, spread, len(usable), rows, day_hours, cap, usual, fallen)
            if drop is not None:
                out.append(drop)
        return out

    def _baselines(self, daily: Sequence[Counts]) -> dict[int, tuple[float, float]]:
        """Key index -> (p0, spread), for the keys usual enough to fall far enough."""
        out = {}
        for i in range(len(MATCH_KEYS)):
            shares = [c[i + 1] / c[0] for c in daily]
            p0 = median(shares)
            if 100 * p0 >= self.cfg.drop_points:
                out[i] = (p0, MAD_SCALE * mad(shares, p0))
        return out

    def _usual(self, hours: Mapping[int, HourRollup]) -> list[float]:
        """The bucket's usual events in each hour of the window (newest first): the median
        of the same hour of the day over the ``drop_days`` days before (an hour without
        a row held none), pro rata for the hour in progress."""
        out = []
        for age in range(self.cfg.drop_hours):
            hour = self.last - age * HOUR
            counts = []
            for d in range(1, self.cfg.drop_days + 1):
                r = hours.get(hour - d * DAY)
                c = r.source_keys.get(self.source) if r is not None else None
                counts.append(c[0] if c is not None else 0)
            part = min(1.0, (self.now - hour) / HOUR)
            out.append(median(counts) * part)
        return out

    def _hours(self, hours: Mapping[int, HourRollup], block: tuple[int, int]) -> list[Counts]:
        """The bucket's hourly counts (hours with events) of one baseline day."""
        out: list[Counts] = []
        for h in range(block[0], block[1], HOUR):
            r = hours.get(h)
            c = r.source_keys.get(self.source) if r is not None else None
            if c is not None and c[0] > 0:
                out.append(c)
        return out

    def _judge(
        self,
        i: int,
        p0: float,
        spread: float,
        days: int,
        rows: Sequence[Counts | None],
        day_hours: Sequence[Sequence[Counts]],
        cap: float,
        usual: Callable[[], Sequence[float]],
        fallen: Callable[[int], frozenset[int]],
    ) -> KeyDrop | None:
        cfg = self.cfg
        phi: float | None = None
        best: KeyDrop | None = None
        n = k = 0.0
        keyed = 0.0  # unscaled: the window's events with the key
        worst = (0.0, 0.0, -math.inf)  # the window's hour lacking the key most: n, k, deficit
        for age, c in enumerate(rows):
            if c is not None and c[0] > 0:
                w = min(1.0, cap / c[0])
                n_h, k_h = w * c[0], w * c[i + 1]
                n, k = n + n_h, k + k_h
                keyed += c[i + 1]
                if n_h * p0 - k_h > worst[2]:
                    worst = (n_h, k_h, n_h * p0 - k_h)
            share = k / n if n else 1.0
            missing = n * p0 - k
            if (
                share > cfg.drop_ratio * p0
                or 100 * (p0 - share) < cfg.drop_points
                or missing < cfg.drop_min_missing
            ):
                continue
            phi = phi if phi is not None else dispersion(day_hours, i, cap)
            if n / phi < cfg.drop_min_effective:
                continue
            var = phi * max(p0 * (1 - p0), VARIANCE_FLOOR) / n
            z = (share - p0) / math.sqrt(var + spread**2 * (1 + math.pi / (2 * days)))
            if z > -cfg.drop_z or (best is not None and z >= best.z):
                continue
            # One hour alone makes a drop only with overwhelming evidence (module docstring).
            rest = n - worst[0]
            alone = rest <= 0 or (k - worst[1]) / rest > cfg.drop_ratio * p0
            if alone and z > -cfg.drop_one_hour_z:
                continue
            if keyed > cfg.drop_ratio * p0 * sum(usual()[: age + 1]):
                continue  # diluted: as many events as usual carry it, among more without
            if z > -cfg.drop_joint_z and fallen(age) - {i}:
                continue  # other keys fell with it: fewer identified visitors, or all lost
            crit = share <= cfg.drop_crit_share and p0 >= cfg.drop_crit_baseline
            best = KeyDrop(
                self.name, self.source, MATCH_KEYS[i], Severity.CRIT if crit else Severity.WARN,
                p0, share, self.last - age * HOUR, self.now, n, missing, z, phi, spread, days,
            )  # fmt: skip
        return best


def dispersion(day_hours: Sequence[Sequence[Counts]], i: int, cap: float) -> float:
    """``φ`` of key ``i`` (module docstring): Pearson's χ² of the hourly counts (bursts
    scaled to ``cap``) against each day's own share, pooled over the days, per degree of
    freedom (one per hour, less one per day); at least 1, and 1 without a day that tells
    (a share of 0 or 1 varies not at all)."""
    chi2 = 0.0
    df = 0
    for rows in day_hours:
        scaled = [(w * c[0], w * c[i + 1]) for c in rows for w in (min(1.0, cap / c[0]),)]
        n = sum(a for a, _ in scaled)
        p = sum(b for _, b in scaled) / n if n else 0.0
        if len(rows) < 2 or not 0 < p < 1:
            continue
        chi2 += sum((b - a * p) ** 2 / (a * p * (1 - p)) for a, b in scaled)
        df += len(rows) - 1
    return max(1.0, chi2 / df) if df else 1.0


def drop_finding(drop: KeyDrop, history: VolumeHistory, examples: list[Example]) -> Finding:
    """The ``MATCH_KEY_DROP`` finding of one ``KeyDrop``; ``examples``: recent events of the
    bucket lacking the key (key names only), if this run saw any."""
    tz, key = history.tz, drop.key
    tally = Tally(MATCH_KEY_DROP, f"user_data.{key}")
    tally.count = max(1, round(drop.missing))
    tally.event_names[drop.event_name] = tally.count
    tally.examples = examples
    label = source_label(drop.source)
    message = (
        f"{drop.event_name} ({label}): user_data.{key} is on {drop.observed:.0%} of events "
        f"since {local_label(drop.since, tz)} ({history.timezone}), against {drop.expected:.0%} "
        f"usually: about {tally.count} events lack it."
    )
    remediation = (
        f"A change stopped sending {key}: check the last deploy of the integration that "
        "sends these events (checkout, login and form handlers) and the consent logic that "
        f"fills user_data; then {ADVICE[key]}."
    )
    evidence: dict[str, Any] = {
        "source": SOURCE_SERVER_LOG,  # the logs' side of the code (``graph_common.from_logs``)
        "action_source": drop.source,
        "key": key,
        "expected": round(drop.expected, 4),
        "observed": round(drop.observed, 4),
        "change": round(drop.observed - drop.expected, 4),
        "since": iso_utc(drop.since),
        "until": iso_utc(drop.until),
        "since_local": local_iso(drop.since, tz),
        "window_events": round(drop.events, 1),
        "missing": round(drop.missing, 1),
        "z": round(drop.z, 2),
        "dispersion": round(drop.dispersion, 2),
        "baseline": f"median of the daily share of events carrying {key} over the previous "
        f"{drop.days} days (day-to-day spread {drop.spread:.3g}); hourly shares vary "
        f"{drop.dispersion:.2g} × as much as independent events would",
        "baseline_kind": "recent_days",
    }
    return make_finding(CHECK_ID, tally, drop.severity, message, remediation, evidence)

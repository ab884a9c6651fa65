"""The ``volume`` check's ratio drifts: per event name, over the last ``ratio_hours``
hours against the median of the previous ``ratio_days`` days (``checks.drift``):

- ``EVENT_ID_SHARE_DROP``: fewer events carry ``event_id`` (deduplication breaks);
- ``VALUE_DRIFT``: the mean ``custom_data.value`` of Purchase-like events moved by half
  (on a ``[calendar]`` day, a sale's, beyond ×/÷ ``listed_value_factor``);
- ``PARITY_RATIO_DRIFT``: Meta's server share of an event name (server ÷ (server +
  browser)) moved: a broken pixel pushes it up, a broken server integration down.

Evidence as for the volume codes (``checks.volume``), with ``baseline_kind`` ``recent_days``.
A match key's coverage is the ``match_quality`` check's (``MATCH_KEY_DROP``,
``checks.match_drop``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from checks.baseline import DAY, HOUR, hour_start, local_label
from checks.drift import (
    RatioDrift,
    Window,
    block_sums,
    daily_blocks,
    judge_mean,
    judge_share,
    window_sums,
)
from checks.graph_common import graph_finding
from checks.volume_traffic import listed
from monitor.config import VolumeSettings
from monitor.model.findings import Finding
from monitor.model.rollup import SOURCE_SERVER_LOG, VALUE_EVENTS
from monitor.model.series import Sums, VolumeHistory
from monitor.timeutil import iso_utc

CHECK_ID = "volume"
LOGS = SOURCE_SERVER_LOG  # the series of the delivery logs
EVENT_ID_SHARE_DROP = "EVENT_ID_SHARE_DROP"
VALUE_DRIFT = "VALUE_DRIFT"
PARITY_RATIO_DRIFT = "PARITY_RATIO_DRIFT"


class RatioJudge:
    """The ratio judgments of one dataset's history at one time (for ``checks.volume``).
    ``judged`` counts the event names with enough history for their log ratios."""

    def __init__(self, history: VolumeHistory, now: float, rules: VolumeSettings) -> None:
        self.h = history
        self.now = now
        self.rules = rules
        self.tz: ZoneInfo = history.tz
        self.judged = 0

    def _windows_and_days(
        self, value: Callable[[int], tuple[float, float]], last: int, until: float
    ) -> tuple[list[Any], list[tuple[float, float]]]:
        rules = self.rules
        windows = window_sums(value, last, rules.ratio_hours, until)
        oldest = last - (rules.ratio_hours - 1) * HOUR
        days = block_sums(value, daily_blocks(oldest, rules.ratio_days))
        return windows, days

    def log_ratios(self, name: str) -> list[Finding]:
        rules = self.rules
        hours = self.h.rollups[name]
        last = hour_start(self.now)
        oldest = last - (rules.ratio_hours - 1) * HOUR
        # Sum the rows once per window and per day; every ratio reads these sums.
        windows: list[tuple[int, Sums]] = []
        acc = Sums()
        for k in range(rules.ratio_hours):
            h = last - k * HOUR
            if (r := hours.get(h)) is not None:
                acc.add(r)
            windows.append((h, acc.copy()))
        days = [self.h.block(name, a, b) for a, b in daily_blocks(oldest, rules.ratio_days)]
        if sum(d.events >= rules.ratio_min_events for d in days) < rules.ratio_min_days:
            return []  # too little history for any ratio of this event name
        self.judged += 1

        def judge(num: Callable[[Sums], float], min_baseline: float) -> RatioDrift | None:
            ws = [Window(h, self.now, num(a), a.events) for h, a in windows]
            ds = [(num(d), float(d.events)) for d in days]
            return judge_share(ws, ds, rules, min_baseline=min_baseline)

        out: list[Finding] = []
        drift = judge(lambda a: a.with_event_id, rules.key_min_share)
        if drift is not None:
            out.append(self._event_id_finding(name, drift))
        if name in VALUE_EVENTS:
            ws = [Window(h, self.now, a.value_sum, a.value_count) for h, a in windows]
            ds = [(d.value_sum, float(d.value_count)) for d in days]
            start = oldest - rules.ratio_days * DAY
            rows = (hours.get(h) for h in range(start, oldest, HOUR))
            hourly = [(r.value_sum, float(r.value_count)) for r in rows if r is not None]
            on_sale = any(listed(self.h, h, rules) for h, _ in windows)
            drift = judge_mean(ws, ds, hourly, rules, rules.listed_value_factor if on_sale else 1)
            if drift is not None:
                out.append(self._value_finding(name, drift))
        return out

    def parity(self, name: str, last: int) -> list[Finding]:
        """``PARITY_RATIO_DRIFT`` of ``name`` from Meta's counts up to the hour ``last``."""
        hours = self.h.graph[name]

        def value(hour: int) -> tuple[float, float]:
            pair = hours.get(hour)
            return (pair[1], pair[0] + pair[1]) if pair is not None else (0.0, 0.0)

        windows, days = self._windows_and_days(value, last, last + HOUR)
        drift = judge_share(windows, days, self.rules, min_baseline=0.0, both_ways=True)
        if drift is None:
            return []
        return [self._parity_finding(name, drift)]

    def _ratio_evidence(self, drift: RatioDrift, source: str, what: str) -> dict[str, Any]:
        w = drift.window
        evidence: dict[str, Any] = {
            "source": source,
            "expected": round(drift.expected, 4),
            "observed": round(drift.observed, 4),
            "change": round(drift.change, 4),
            "since": iso_utc(w.since),
            "until": iso_utc(w.until),
            "since_local": local_iso(w.since, self.tz),
            "window_events": int(w.den),
            "baseline": f"median of the {what} over the previous {drift.days} days, day by day "
            f"(day-to-day spread {drift.spread:.3g})",
            "baseline_kind": "recent_days",
        }
        if drift.z is not None:
            evidence["z"] = round(drift.z, 2)
        return evidence

    def _since_text(self, drift: RatioDrift) -> str:
        return f"since {local_label(int(drift.window.since), self.tz)} ({self.h.timezone})"

    def _event_id_finding(self, name: str, drift: RatioDrift) -> Finding:
        missing = round(drift.window.den - drift.window.num)
        message = (
            f"{name}: {drift.observed:.0%} of server events carry event_id "
            f"{self._since_text(drift)}, against {drift.expected:.0%} usually."
        )
        return graph_finding(
            CHECK_ID, EVENT_ID_SHARE_DROP, drift.severity, missing, message,
            "Restore event_id on every server event, with the same value the pixel sends for "
            "the same action: without it Meta cannot deduplicate browser and server events.",
            event_names=[name], field_name="event_id",
            evidence=self._ratio_evidence(drift, LOGS, "share of events with event_id"),
        )  # fmt: skip

    def _value_finding(self, name: str, drift: RatioDrift) -> Finding:
        change = drift.observed / drift.expected - 1
        message = (
            f"{name}: the mean custom_data.value is {drift.observed:,.2f} "
            f"{self._since_text(drift)}, against {drift.expected:,.2f} usually ({change:+.0%})."
        )
        evidence = self._ratio_evidence(drift, LOGS, "mean value")
        evidence["change"] = round(change, 4)
        return graph_finding(
            CHECK_ID, VALUE_DRIFT, drift.severity, round(drift.window.den), message,
            "Check how the value is computed: currency units vs cents, tax or shipping "
            "included, a fixed placeholder value, or the currency field.",
            event_names=[name], field_name="custom_data.value", evidence=evidence,
        )  # fmt: skip

    def _parity_finding(self, name: str, drift: RatioDrift) -> Finding:
        ratio = _odds(drift.observed)
        usual = _odds(drift.expected)
        side = "server" if drift.observed < drift.expected else "browser"
        message = (
            f"{name}: Meta counts {ratio} server events per browser event "
            f"{self._since_text(drift)}, against {usual} usually: the {side} side lost events."
        )
        evidence = self._ratio_evidence(drift, "meta", "server share (server ÷ (server + browser))")
        evidence["server_per_browser"] = {"expected": usual, "observed": ratio}
        remediation = (
            "Check the server integration (deploys, token, queue) of this event."
            if side == "server"
            else "Check the pixel: tag manager changes, consent banner, a removed or broken "
            "fbq('track') call on the page."
        )
        return graph_finding(
            CHECK_ID, PARITY_RATIO_DRIFT, drift.severity, round(drift.window.den), message,
            remediation, event_names=[name], evidence=evidence,
        )  # fmt: skip


def _odds(share: float) -> str:
    if share >= 1:
        return "∞"
    return f"{share / (1 - share):.2f}"


def local_iso(ts: float, tz: ZoneInfo) -> str:
    """``ts`` as ISO 8601 in ``tz`` (the ``since_local`` of the evidence)."""
    return datetime.fromtimestamp(ts, tz).isoformat()

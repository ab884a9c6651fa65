"""checks.volume on synthetic hourly series: codes, folding, explanations, ratios."""

from __future__ import annotations

import dataclasses as dc
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from random import Random
from typing import Any

import pytest

from checks.base import CheckContext
from checks.baseline import Baseline, BaselineKind
from checks.detect import VOLUME_DROP, HourPoint, Reference, VolumeVerdict
from checks.volume import Volume
from checks.volume_traffic import Traffic
from monitor.config import ChecksSettings, VolumeSettings, settings_from_dict
from monitor.engine.audit import run_audit
from monitor.engine.series import build_history, with_peers
from monitor.model.findings import CheckResult, Finding, Severity, Status
from monitor.model.graph import SourceCounts
from monitor.model.rollup import MATCH_KEYS, SOURCE_SERVER_LOG, HourRollup
from monitor.model.series import Current, VolumeHistory

HOUR = 3600
DAY = 86400
NOW = 1_795_176_000.0 + 25 * 60  # 2026-11-20T12:25:00Z, a Friday; 12:00 is in progress
CURRENT = int(NOW // HOUR * HOUR)
EM = MATCH_KEYS.index("em")
RATES = {"PageView": 300.0, "AddToCart": 60.0, "Purchase": 30.0}

Tweak = Callable[[str, int, HourRollup], None]


def shape(hour: int) -> float:
    """Daily seasonality (UTC): busy afternoons, quiet nights."""
    h = (hour // HOUR) % 24
    return 0.35 + 0.65 * math.sin(math.pi * h / 24) ** 2


def make_rollups(days: int = 28, tweak: Tweak | None = None, seed: int = 1) -> list[HourRollup]:
    """``days`` of hourly rollups up to the hour in progress, Poisson-like noise."""
    rng = Random(seed)
    out = []
    for hour in range(CURRENT - days * DAY, CURRENT + HOUR, HOUR):
        for name, rate in RATES.items():
            mean = rate * shape(hour) * (0.42 if hour == CURRENT else 1.0)  # 25 minutes so far
            n = max(0, round(rng.gauss(mean, math.sqrt(mean))))
            r = HourRollup("123", name, SOURCE_SERVER_LOG, hour, events=n, with_event_id=n)
            r.key_counts[EM] = n
            if name == "Purchase":
                r.value_sum, r.value_count = 120.0 * n, n
            if tweak is not None:
                tweak(name, hour, r)
            out.append(r)
    return out


def graph_counts(
    days: int = 28, browser_from: int | None = None, shift: int = 0
) -> list[SourceCounts]:
    """Meta's hourly counts; ``shift`` seconds past the UTC hour for an ad account in a
    half-hour zone (``+0530``: 1800), whose local hours those are."""
    out = []
    for hour in range(CURRENT - days * DAY, CURRENT + HOUR, HOUR):
        for name, rate in RATES.items():
            n = round(rate * shape(hour))
            browser = 0 if browser_from is not None and hour >= browser_from else round(0.9 * n)
            start = datetime.fromtimestamp(hour + shift - (HOUR if shift else 0), UTC)
            out.append(SourceCounts(start, name, browser, n))
    return out


def judge(
    rollups: list[HourRollup],
    graph: list[SourceCounts] = (),  # type: ignore[assignment]
    settings: dict[str, Any] | None = None,
    now: float = NOW,
    config: dict[str, Any] | None = None,
) -> CheckResult:
    history = build_history(settings_from_dict(config or {}), "123", rollups, graph)
    ctx = CheckContext("123", now, ChecksSettings.model_validate(settings or {}), series=history)
    return Volume(ctx).result()


def codes(result: CheckResult) -> dict[tuple[str, str | None], Finding]:
    return {(f.code, f.event_names[0] if f.event_names else None): f for f in result.findings}


def test_without_a_store_volume_is_skipped() -> None:
    ctx = CheckContext("123", NOW, ChecksSettings())
    assert Volume(ctx).result().status is Status.SKIPPED


def test_too_little_history_is_skipped_not_ok() -> None:
    result = judge(make_rollups(days=1))
    assert result.status is Status.SKIPPED
    assert "not enough history" in result.summary


def test_logs_gone_stale_are_not_judged_as_stopped() -> None:
    result = judge(make_rollups(), now=NOW + 5 * DAY)
    assert result.status is Status.SKIPPED
    assert "only while the logs are current" in result.summary


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_ordinary_weeks_raise_nothing(seed: int) -> None:
    result = judge(make_rollups(seed=seed), graph_counts())
    assert result.status is Status.OK, [f.message for f in result.findings]
    assert result.score == 100


@pytest.mark.parametrize("shift", [1800, 900], ids=["+0530", "+0545"])
def test_metas_local_hours_in_half_hour_zones_are_instants_not_labels(shift: int) -> None:
    # Labels compared as UTC hours would find no Meta hour at all: VOLUME_STOPPED.
    result = judge(make_rollups(seed=1), graph_counts(shift=shift))
    assert result.status is Status.OK, [f.message for f in result.findings]
    history = build_history(settings_from_dict({}), "123", [], graph_counts(shift=shift))
    hours = history.graph["Purchase"]
    assert all(h % HOUR == 0 for h in hours)  # spread over UTC hours, prorated
    assert history.graph_first_hour == CURRENT - 28 * DAY  # the partial first hour left out


def _from(start: int, change: Callable[[str, HourRollup], None]) -> Tweak:
    def tweak(name: str, hour: int, r: HourRollup) -> None:
        if hour >= start:
            change(name, r)

    return tweak


def _stop(only: str | None) -> Callable[[str, HourRollup], None]:
    def change(name: str, r: HourRollup) -> None:
        if only is None or name == only:
            r.events = r.with_event_id = r.key_counts[EM] = 0
            r.value_sum, r.value_count = 0.0, 0

    return change


def _scale(factor: float) -> Callable[[str, HourRollup], None]:
    def change(name: str, r: HourRollup) -> None:
        r.events = round(r.events * factor)
        r.with_event_id = r.key_counts[EM] = r.events
        r.value_count = r.events
        r.value_sum = 120.0 * r.events

    return change


def test_one_event_stops() -> None:
    result = judge(make_rollups(tweak=_from(CURRENT - 3 * HOUR, _stop("Purchase"))))
    found = codes(result)
    assert set(found) == {("VOLUME_STOPPED", "Purchase")}
    f = found[("VOLUME_STOPPED", "Purchase")]
    assert f.severity is Severity.CRIT and f.check == "volume"
    ev = f.evidence
    assert ev["since"] == "2026-11-20T09:00:00Z" and ev["until"] == "2026-11-20T12:00:00Z"
    assert ev["observed"] == 0 and ev["expected"] > 20 and ev["window_hours"] == 3
    # one event name is judged by its usual share of the dataset's events
    assert ev["baseline_kind"] == "share"
    assert "usual share" in ev["baseline"] and "UTC" in ev["baseline"]
    assert "no server events (delivery logs) since Fri 09:00" in f.message
    assert result.status is Status.CRIT


@pytest.mark.parametrize(("minutes", "stopped"), [(25, True), (12, False)])
def test_a_sender_silent_in_the_hour_in_progress_stops_before_the_hour_ends(
    minutes: int, stopped: bool
) -> None:
    # Every event stopped at 12:00; at 12:25 the 20 judged minutes expected ~130 events
    # (at 12:12 the 7 minutes are too short a silence to tell a stop from a pause).
    result = judge(make_rollups(tweak=_from(CURRENT, _stop(None))), now=CURRENT + minutes * 60)
    found = codes(result)
    assert (("VOLUME_STOPPED", None) in found) is stopped, [f.message for f in result.findings]
    if stopped:
        f = found[("VOLUME_STOPPED", None)]
        assert f.severity is Severity.CRIT
        assert "no server events (delivery logs) since Fri 12:00" in f.message
        assert "were expected by 12:20." in f.message
        assert f.evidence["until"] == "2026-11-20T13:00:00Z"
        assert f.evidence["observed"] == 0 and f.evidence["expected"] > 100


@pytest.mark.parametrize(("last", "stopped"), [(3, True), (18, False)])
def test_a_sender_that_stops_minutes_into_the_hour_stops_from_its_last_event(
    last: int, stopped: bool
) -> None:
    # intent: events until 12:03, then nothing; at 12:25 the 17 minutes judged since the
    # last one expected ~110 events: a stop, said from 12:03, not from the hour's start
    # (with the last event at 12:18, 2 minutes of silence are judged: a pause)
    def early(name: str, hour: int, r: HourRollup) -> None:
        if hour < CURRENT:
            r.last_sent = hour + HOUR - 1.0
        else:
            r.events = r.with_event_id = r.key_counts[EM] = round(RATES[name] * last / 60)
            r.last_sent = CURRENT + last * 60.0 - 20

    result = judge(make_rollups(tweak=early))
    found = codes(result)
    assert (("VOLUME_STOPPED", None) in found) is stopped, [f.message for f in result.findings]
    if stopped:
        f = found[("VOLUME_STOPPED", None)]
        assert "no server events (delivery logs) since Fri 12:02" in f.message
        assert "were expected by 12:20." in f.message
        assert f.evidence["last_event"] == "2026-11-20T12:02:40Z"
        assert f.evidence["observed"] == 0 and 100 < f.evidence["expected"] < 130


def test_a_one_shot_audits_last_minutes_are_no_silence() -> None:
    # intent: an audit (``Current.REPLACE``) of logs copied at 12:00, run at 12:25: the
    # copy ended, not the sender; the daemon tailing the same logs would see a stop
    rollups = make_rollups(tweak=_from(CURRENT, _stop(None)))
    stored = build_history(settings_from_dict({}), "123", [], current=Current.REPLACE)
    check = Volume(CheckContext("123", NOW, ChecksSettings(), series=stored))
    check.use_series(stored)
    check.use_rollups(rollups)
    result = check.result()
    assert not result.findings, [f.message for f in result.findings]
    assert ("VOLUME_STOPPED", None) in codes(judge(rollups))


def test_everything_halves_one_dataset_wide_finding_naming_the_events() -> None:
    result = judge(make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.45))))
    found = codes(result)
    assert ("VOLUME_DROP", None) in found
    total = found[("VOLUME_DROP", None)]
    assert total.event_names == []  # one dataset-wide alert
    assert "PageView" in total.evidence["event_names"]
    assert total.evidence["change"] == pytest.approx(-0.55, abs=0.06)
    assert not any(code == "VOLUME_DROP" and name for code, name in found)


def test_duplicate_sends_are_a_spike() -> None:
    found = codes(judge(make_rollups(tweak=_from(CURRENT - 2 * HOUR, _scale(3.0)))))
    assert ("VOLUME_SPIKE", None) in found
    assert found[("VOLUME_SPIKE", None)].severity is Severity.WARN


def test_a_key_that_disappears_is_not_volumes_to_judge() -> None:
    """Key coverage is ``match_quality``'s (MATCH_KEY_DROP, ``checks.match_drop``)."""

    def drop_em(name: str, r: HourRollup) -> None:
        r.key_counts[EM] = 0

    result = judge(make_rollups(tweak=_from(CURRENT - 2 * HOUR, drop_em)))
    assert not [f for f in result.findings if f.code == "MATCH_KEY_DROP"]
    assert result.status is Status.OK


def test_event_id_disappears() -> None:
    def no_ids(name: str, r: HourRollup) -> None:
        if name == "Purchase":
            r.with_event_id = 0

    found = codes(judge(make_rollups(tweak=_from(CURRENT - 2 * HOUR, no_ids))))
    assert set(found) == {("EVENT_ID_SHARE_DROP", "Purchase")}
    assert found[("EVENT_ID_SHARE_DROP", "Purchase")].field == "event_id"


def test_value_in_cents_is_a_value_drift() -> None:
    def cents(name: str, r: HourRollup) -> None:
        r.value_sum *= 100

    found = codes(judge(make_rollups(tweak=_from(CURRENT - 2 * HOUR, cents))))
    f = found[("VALUE_DRIFT", "Purchase")]
    assert f.evidence["expected"] == pytest.approx(120.0)
    assert f.evidence["observed"] == pytest.approx(12000.0)


@pytest.mark.parametrize(
    ("factor", "listed", "drift"),
    [
        # intent: a sale day's bundles double the mean order value: on a day listed in
        # [calendar] that is the sale, on another day a drift
        (2.0, True, False),
        (2.0, False, True),
        # intent: ... prices in cents, or a placeholder value, on the sale day: a drift
        (100.0, True, True),
        (0.01, True, True),
    ],
)
def test_on_a_listed_day_the_mean_value_must_move_beyond_a_sales(
    factor: float, listed: bool, drift: bool
) -> None:
    def values(name: str, r: HourRollup) -> None:
        r.value_sum *= factor

    config = {"calendar": {"days": ["2026-11-20" if listed else "2026-11-13"]}}
    found = codes(judge(make_rollups(tweak=_from(CURRENT - 2 * HOUR, values)), config=config))
    assert (("VALUE_DRIFT", "Purchase") in found) is drift


def test_broken_pixel_from_metas_counts() -> None:
    graph = graph_counts(browser_from=CURRENT - 5 * HOUR)
    found = codes(judge(make_rollups(), graph))
    stopped = found[("VOLUME_STOPPED", None)]
    assert stopped.evidence["source"] == "meta_browser"
    # Meta's hours are judged only once settled: 11:00 is not, so the window ends at 11:00
    assert stopped.evidence["until"] == "2026-11-20T11:00:00Z"
    assert ("PARITY_RATIO_DRIFT", "Purchase") in found
    assert "browser side lost events" in found[("PARITY_RATIO_DRIFT", "Purchase")].message


@pytest.mark.parametrize(
    ("mode", "stored_share", "expected_code"),
    [
        # audit: its hours replace the stored ones (the store holds the same lines)
        (Current.REPLACE, 1.0, None),
        # daemon: the history predates the cycle; the cycle's lines add up
        (Current.ADD, 0.0, None),
        (Current.ADD, 2.0, "VOLUME_SPIKE"),
    ],
)
def test_current_rollups_combine_with_the_history(
    mode: Current, stored_share: float, expected_code: str | None
) -> None:
    """The last two complete hours are in both the history (``stored_share`` of them)
    and the audit's own rollups (all of them)."""
    last = (CURRENT - 2 * HOUR, CURRENT - HOUR)
    rollups = make_rollups()
    own = [r for r in rollups if r.hour in last]
    stored = [r for r in rollups if r.hour not in last]
    for r in own:
        part = HourRollup(r.dataset_id, r.event_name, r.source, r.hour)
        part.events = round(r.events * stored_share)
        stored.append(part)
    history = build_history(settings_from_dict({}), "123", stored, current=mode)
    check = Volume(CheckContext("123", NOW, ChecksSettings(), series=history))
    check.use_rollups(own)
    found = {f.code for f in check.result().findings}
    assert (expected_code in found) if expected_code else not found


def test_cold_start_judges_with_the_last_days() -> None:
    result = judge(make_rollups(days=10, tweak=_from(CURRENT - 3 * HOUR, _stop(None))))
    stopped = codes(result)[("VOLUME_STOPPED", None)]
    assert stopped.evidence["baseline_kind"] == "cold_start"
    assert "cold start" in stopped.evidence["baseline"]


def test_history_time_zone_comes_from_the_dataset() -> None:
    settings = settings_from_dict(
        {"datasets": [{"id": "123", "timezone": "Europe/Berlin"}], "schedule": {"timezone": "UTC"}}
    )
    assert build_history(settings, "123", []).timezone == "Europe/Berlin"
    assert build_history(settings, "999", []).timezone == "UTC"


def test_run_audit_hands_the_series_after_reading() -> None:
    rollups = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _stop("Purchase")))
    settings = settings_from_dict({"datasets": [{"id": "123"}]})
    asked: list[list[str]] = []

    def series(ids: Any) -> dict[str, VolumeHistory]:
        asked.append(list(ids))
        return {"123": build_history(settings, "123", rollups, current=Current.REPLACE)}

    report = run_audit(settings, [], now=NOW, series=series)
    assert asked == [["123"]]
    volume = next(c for c in report.datasets[0].checks if c.id == "volume")
    assert volume.status is Status.CRIT
    assert [f.code for f in volume.findings] == ["VOLUME_STOPPED"]


# --- traffic or tracking (TRAFFIC_SHIFT) ------------------------------------------------

MIDNIGHT = CURRENT - 12 * HOUR  # 2026-11-20T00:00Z: local midnight of the UTC dataset


def _only(
    name: str, change: Callable[[str, HourRollup], None]
) -> Callable[[str, HourRollup], None]:
    def only(event: str, r: HourRollup) -> None:
        if event == name:
            change(event, r)

    return only


def test_holiday_drop_from_local_midnight_is_traffic_not_an_alert() -> None:
    result = judge(make_rollups(tweak=_from(MIDNIGHT, _scale(0.35))))
    found = codes(result)
    assert set(found) == {("TRAFFIC_SHIFT", None)}, [f.message for f in result.findings]
    shift = found[("TRAFFIC_SHIFT", None)]
    assert shift.severity is Severity.INFO and result.status is Status.OK
    assert shift.evidence["traffic"] == "local_midnight"
    assert shift.evidence["volume_code"] == "VOLUME_DROP"
    assert set(shift.evidence["event_names"]) == set(RATES)
    assert "since local midnight (Fri 00:00 UTC)" in shift.message


def test_local_midnight_is_the_datasets_own() -> None:
    # The same drop from UTC midnight, for a dataset in New York: it began at 19:00 local.
    config = {"datasets": [{"id": "123", "timezone": "America/New_York"}]}
    found = codes(judge(make_rollups(tweak=_from(MIDNIGHT, _scale(0.35))), config=config))
    assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found


def test_the_same_drop_from_mid_day_is_an_alert() -> None:
    found = codes(judge(make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.35)))))
    assert found[("VOLUME_DROP", None)].severity is Severity.CRIT
    assert ("TRAFFIC_SHIFT", None) not in found


def test_a_drop_that_began_the_evening_before_is_an_alert() -> None:
    found = codes(judge(make_rollups(tweak=_from(MIDNIGHT - 3 * HOUR, _scale(0.35)))))
    assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found


def test_a_promotion_that_grows_the_other_events_is_no_drop_of_one_event_name() -> None:
    """Checkouts four times their usual since 08:00 (a sale): PageView's share of the
    dataset falls to about half while its own count stays; only PageView's own count
    falling as well is a drop."""

    def sale(pageviews: float) -> Callable[[str, HourRollup], None]:
        def change(name: str, r: HourRollup) -> None:
            _scale(pageviews if name == "PageView" else 4.0)(name, r)

        return change

    def at_the_hour(pageviews: float) -> CheckResult:
        """Judged as 12:00 begins: the hour in progress holds nothing yet to tell."""
        rows = make_rollups(tweak=_from(CURRENT - 4 * HOUR, sale(pageviews)))
        return judge([r for r in rows if r.hour < CURRENT], now=CURRENT + 60)

    quiet = at_the_hour(1.0)
    assert [f.code for f in quiet.findings] == ["VOLUME_SPIKE"] * 2  # the checkouts
    lost = codes(at_the_hour(0.3))
    assert lost[("VOLUME_DROP", "PageView")].evidence["baseline_kind"] == "share"


def test_one_event_name_down_from_midnight_is_an_alert() -> None:
    tweak = _from(MIDNIGHT, _only("PageView", _scale(0.2)))
    found = codes(judge(make_rollups(tweak=tweak)))
    assert not any(code == "TRAFFIC_SHIFT" for code, _ in found)
    assert {("VOLUME_DROP", None), ("VOLUME_DROP", "PageView")} & set(found)


def test_a_server_stop_from_midnight_is_an_alert() -> None:
    found = codes(judge(make_rollups(tweak=_from(MIDNIGHT + 6 * HOUR, _stop(None)))))
    assert found[("VOLUME_STOPPED", None)].severity is Severity.CRIT
    assert not any(code == "TRAFFIC_SHIFT" for code, _ in found)


def test_server_down_while_metas_browser_count_is_not_is_an_alert() -> None:
    # Meta's browser counts are in for the hours of the drop and did not move.
    rollups = make_rollups(tweak=_from(MIDNIGHT, _scale(0.35)))
    found = codes(judge(rollups, graph_counts(), settings={"volume": {"graph_settle": 0}}))
    assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found


def test_black_friday_from_midnight_is_traffic_not_a_spike() -> None:
    # (a day at 3x is no spike at all: the day's level before the window is counted)
    found = codes(judge(make_rollups(tweak=_from(MIDNIGHT, _scale(6.0)))))
    assert set(found) == {("TRAFFIC_SHIFT", None)}
    assert found[("TRAFFIC_SHIFT", None)].evidence["volume_code"] == "VOLUME_SPIKE"


@pytest.mark.parametrize(
    "config",
    [
        {"calendar": {"days": ["2026-11-20"]}},
        {
            "calendar": {"countries": {"DE": ["2026-11-20"]}},
            "datasets": [{"id": "123", "country": "de"}],
        },
        {"datasets": [{"id": "123", "calendar_days": ["2026-11-20"]}]},
    ],
    ids=["days", "country", "dataset"],
)
def test_on_a_listed_day_a_dataset_wide_drop_at_any_hour_is_traffic(config: dict[str, Any]) -> None:
    rollups = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.35)))
    found = codes(judge(rollups, config=config))
    assert set(found) == {("TRAFFIC_SHIFT", None)}
    assert found[("TRAFFIC_SHIFT", None)].evidence["traffic"] == "calendar"
    # another country's day, or another day, changes nothing
    other = {"calendar": {"days": ["2026-11-19"], "countries": {"US": ["2026-11-20"]}}}
    assert ("VOLUME_DROP", None) in codes(judge(rollups, config=other))


def test_on_a_listed_day_a_stop_or_one_event_name_still_alerts() -> None:
    config = {"calendar": {"days": ["2026-11-20"]}}
    stop = codes(judge(make_rollups(tweak=_from(CURRENT - 3 * HOUR, _stop(None))), config=config))
    assert ("VOLUME_STOPPED", None) in stop
    tweak = _from(CURRENT - 3 * HOUR, _only("PageView", _scale(0.2)))
    found = codes(judge(make_rollups(tweak=tweak), config=config))
    assert not any(code == "TRAFFIC_SHIFT" for code, _ in found)


def _noisy_browser(factor: float, scale: float, seed: int = 3) -> list[SourceCounts]:
    """Meta's counts with a browser count ``scale`` times the logs' and a 30 % spread
    from week to week, at ``factor`` over the last two complete hours."""
    rng = Random(seed)
    out = []
    for c in graph_counts():
        hour = int(c.hour.timestamp())
        if hour >= CURRENT:
            continue
        browser = max(0.0, rng.gauss(c.server * scale, 0.3 * c.server * scale))
        if hour >= CURRENT - 2 * HOUR:
            browser = c.server * scale * factor
        out.append(dc.replace(c, browser=round(browser)))
    return out


def test_on_a_listed_day_only_a_reference_that_stayed_beyond_its_noise_disagrees() -> None:
    # intent: every event name at half on a listed day; Meta's small browser count, whose
    # weeks differ by 30 %, down 15 % only: within its noise of where the logs went, so it
    # does not say the logs broke: traffic
    config = {"calendar": {"days": ["2026-11-20"]}}
    settle = {"volume": {"graph_settle": 0}}
    rollups = _two_hour_dip(0.5)
    small = judge(rollups, _noisy_browser(0.85, 1 / 6), settings=settle, config=config)
    found = codes(small)
    assert set(found) == {("TRAFFIC_SHIFT", None)}, [f.message for f in small.findings]
    assert found[("TRAFFIC_SHIFT", None)].evidence["traffic"] == "calendar"
    # intent: ... a large browser count as steady is beyond its noise: the logs broke
    large = codes(judge(rollups, _noisy_browser(1.0, 0.9), settings=settle, config=config))
    assert ("VOLUME_DROP", None) in large and ("TRAFFIC_SHIFT", None) not in large
    # intent: a sales day lifting the logs 4x and Meta's large browser count 1.4x: the
    # other side moved far too (visits rise less than purchases), it does not disagree
    sale = _two_hour_dip(4.0)
    lifted = codes(
        judge(sale, _metas(lag_hours=0, browser_factor=1.4), settings=settle, config=config)
    )
    assert ("VOLUME_SPIKE", None) not in lifted and ("TRAFFIC_SHIFT", None) in lifted, lifted


@pytest.mark.parametrize(
    ("ref_sd", "listed", "disagrees"),
    [
        # intent: two hours of the logs at 41 %, Meta's browser count at 87 %, its weeks
        # 40 apart an hour: on a listed day that is within its noise of the logs' 41 %
        (40.0, True, False),
        # intent: ... on any other day the other side did not move 20 %: it disagrees
        # (a halving is not hidden while the reference is small)
        (40.0, False, True),
        # intent: ... a steady reference (10 an hour) is beyond its noise on a listed day too
        (10.0, True, True),
    ],
)
def test_the_other_sides_noise_excuses_a_disagreement_on_listed_days_only(
    ref_sd: float, listed: bool, disagrees: bool
) -> None:
    history = build_history(settings_from_dict({}), "123", make_rollups(days=3), [])
    baseline = Baseline(100.0, 10.0, (100.0,) * 4, BaselineKind.SEASONAL)
    ref = Reference(observed=87.0, expected=100.0, variance=ref_sd**2)
    points = tuple(HourPoint(CURRENT - k * HOUR, 41.0, baseline, ref) for k in (2, 1))
    v = VolumeVerdict(
        VOLUME_DROP, Severity.WARN, CURRENT - 2 * HOUR, CURRENT, 200.0, 82.0, -4.0, 2,
        BaselineKind.SEASONAL, points, referenced=True,
    )  # fmt: skip
    assert Traffic(history, VolumeSettings()).disagrees(v, listed) is disagrees


def test_the_night_after_a_listed_day_counts_as_the_day() -> None:
    rollups = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.35)))
    config = {"calendar": {"days": ["2026-11-19"]}}  # yesterday
    assert ("VOLUME_DROP", None) in codes(judge(rollups, config=config))  # 09:00 is morning
    night = {"volume": {"calendar_night_hours": 13}}  # (a night running to 13:00)
    found = codes(judge(rollups, settings=night, config=config))
    assert found[("TRAFFIC_SHIFT", None)].evidence["traffic"] == "calendar"


@pytest.mark.parametrize(("peer_factor", "shift"), [(0.35, True), (1.0, False)])
def test_a_drop_like_another_dataset_of_the_country_is_traffic(
    peer_factor: float, shift: bool
) -> None:
    config = settings_from_dict(
        {"datasets": [{"id": "123", "country": "DE"}, {"id": "456", "country": "de"}]}
    )
    mine = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.35)))
    theirs = make_rollups(seed=2, tweak=_from(CURRENT - 3 * HOUR, _scale(peer_factor)))
    for r in theirs:
        r.dataset_id = "456"
    histories = with_peers(
        config,
        {"123": build_history(config, "123", mine), "456": build_history(config, "456", theirs)},
    )
    assert [p.dataset_id for p in histories["123"].peers] == ["456"]
    ctx = CheckContext("123", NOW, ChecksSettings(), series=histories["123"])
    found = codes(Volume(ctx).result())
    if shift:
        assert set(found) == {("TRAFFIC_SHIFT", None)}
        assert found[("TRAFFIC_SHIFT", None)].evidence["peers_moved"] == ["456"]
    else:  # the other dataset did not move: this one broke
        assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found


@pytest.mark.parametrize("offset", range(-12, 15))
def test_a_dataset_wide_halving_at_any_local_hour_but_midnight_alerts(offset: int) -> None:
    # The drop starts at 09:00 UTC: at every local hour of the day across the zones.
    # Without Meta's counts, only one starting at local midnight itself reads as traffic.
    zone = f"Etc/GMT{'+' if offset < 0 else '-'}{abs(offset)}"
    config = {"datasets": [{"id": "123", "timezone": zone}]}
    found = codes(judge(make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.5))), config=config))
    start = (9 + offset) % 24
    if start == 0:
        assert set(found) == {("TRAFFIC_SHIFT", None)}
        # once Meta's browser counts of those hours are in, unchanged: an alert
        settle = {"volume": {"graph_settle": 0}}
        rollups = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.5)))
        found = codes(judge(rollups, graph_counts(), settings=settle, config=config))
        assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found
    else:
        assert ("VOLUME_DROP", None) in found and ("TRAFFIC_SHIFT", None) not in found, start


# --- a dip of all events waits for Meta's browser count --------------------------------


def _two_hour_dip(factor: float) -> list[HourRollup]:
    """Every event name at ``factor`` of its usual volume from two hours back (the last two
    complete hours and the hour in progress)."""
    return make_rollups(tweak=_from(CURRENT - 2 * HOUR, _scale(factor)))


def _metas(lag_hours: int, browser_factor: float = 1.0) -> list[SourceCounts]:
    """Meta's counts up to ``lag_hours`` before the hour in progress, its browser count
    at ``browser_factor`` over the last two complete hours."""
    out = []
    for c in graph_counts():
        hour = int(c.hour.timestamp())
        if hour >= CURRENT - lag_hours * HOUR:
            continue
        if CURRENT - 2 * HOUR <= hour < CURRENT:
            c = dc.replace(c, browser=round(c.browser * browser_factor))
        out.append(c)
    return out


def test_a_warn_dip_of_all_events_waits_while_metas_counts_are_late() -> None:
    # intent: two hours of every event name at 55 %: a warn drop. Meta's counts flow but
    # stop 3 hours back: no alert yet (a dip of real traffic shows on Meta's side too)
    settle = {"volume": {"graph_settle": 0}}
    rollups = _two_hour_dip(0.55)
    assert codes(judge(rollups))[("VOLUME_DROP", None)].severity is Severity.WARN
    waiting = codes(judge(rollups, _metas(lag_hours=3), settings=settle))
    assert ("VOLUME_DROP", None) not in waiting
    # intent: ... once Meta's browser count of those hours is in and did not dip: an alert
    found = codes(judge(rollups, _metas(lag_hours=0), settings=settle))
    assert found[("VOLUME_DROP", None)].evidence["level"] == 1.0
    # intent: ... and did dip as much: real traffic, no drop
    dipped = codes(judge(rollups, _metas(lag_hours=0, browser_factor=0.55), settings=settle))
    assert ("VOLUME_DROP", None) not in dipped
    # intent: Meta's counts stuck far behind (not flowing): no wait
    stuck = codes(judge(rollups, _metas(lag_hours=8), settings=settle))
    assert ("VOLUME_DROP", None) in stuck


def test_a_spike_of_all_events_waits_while_metas_counts_are_late() -> None:
    # intent: two hours of every event name at 3x: a spike, held back while Meta's counts
    # flow but are not in yet (a promotion raises Meta's browser count too)
    settle = {"volume": {"graph_settle": 0}}
    rollups = _two_hour_dip(3.0)
    assert ("VOLUME_SPIKE", None) in codes(judge(rollups))
    waiting = judge(rollups, _metas(lag_hours=3), settings=settle)
    assert waiting.status is Status.OK, [f.message for f in waiting.findings]
    # intent: ... once Meta's browser count of those hours is in and did not rise: duplicates
    found = codes(judge(rollups, _metas(lag_hours=0), settings=settle))
    assert ("VOLUME_SPIKE", None) in found
    # intent: ... and rose as much: no spike of the logs against it
    raised = codes(judge(rollups, _metas(lag_hours=0, browser_factor=3.0), settings=settle))
    assert not any(code == "VOLUME_SPIKE" and name is None for code, name in raised), raised


def test_a_crit_drop_of_all_events_never_waits_for_metas_counts() -> None:
    # intent: a fall to a fifth is crit: alerted before Meta's counts are in
    settle = {"volume": {"graph_settle": 0}}
    found = codes(judge(_two_hour_dip(0.2), _metas(lag_hours=3), settings=settle))
    assert found[("VOLUME_DROP", None)].severity is Severity.CRIT


def test_a_crit_drop_of_a_small_shop_waits_for_metas_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # intent: a shop of ~50 events an hour at a fifth for two hours: crit, but a few
    # sessions fewer do that; it waits for Meta's browser count like a warn dip ...
    monkeypatch.setattr(sys.modules[__name__], "RATES", {"PageView": 45.0, "Purchase": 10.0})
    settle = {"volume": {"graph_settle": 0}}
    rollups = _two_hour_dip(0.2)
    assert codes(judge(rollups))[("VOLUME_DROP", None)].severity is Severity.CRIT
    assert ("VOLUME_DROP", None) not in codes(judge(rollups, _metas(3), settings=settle))
    # intent: ... and alerts once Meta's count of those hours is in and did not fall
    found = codes(judge(rollups, _metas(0), settings=settle))
    assert found[("VOLUME_DROP", None)].severity is Severity.CRIT
    dipped = codes(judge(rollups, _metas(0, browser_factor=0.2), settings=settle))
    assert ("VOLUME_DROP", None) not in dipped
    # intent: a fall of such a shop that has lasted persist_crit_hours does not wait
    monkeypatch.setattr(sys.modules[__name__], "RATES", {"PageView": 24.0, "Purchase": 6.0})
    lasting = make_rollups(tweak=_from(CURRENT - 3 * HOUR, _scale(0.2)))
    drop = codes(judge(lasting, _metas(3), settings=settle))[("VOLUME_DROP", None)]
    assert drop.evidence["persistence_hours"] >= 3 and drop.evidence["expected"] < 100


def test_on_a_listed_day_a_crit_drop_or_a_stop_waits_for_metas_counts() -> None:
    # intent: on a [calendar] day (a holiday morning of a small shop can be empty) a fall
    # to a fifth and a stop wait too while Meta's counts flow but have not covered them
    settle = {"volume": {"graph_settle": 0}}
    listed = {"calendar": {"days": ["2026-11-20"]}}
    stopped = make_rollups(tweak=_from(CURRENT - 2 * HOUR, _stop(None)))
    for rollups, code in ((_two_hour_dip(0.2), "VOLUME_DROP"), (stopped, "VOLUME_STOPPED")):
        assert (code, None) in codes(judge(rollups, _metas(lag_hours=3), settings=settle))
        waiting = judge(rollups, _metas(lag_hours=3), settings=settle, config=listed)
        assert waiting.status is Status.OK, [f.message for f in waiting.findings]
    # intent: ... once Meta's browser count of those hours is in and the pixel kept firing:
    # the sender stopped
    found = codes(judge(stopped, _metas(lag_hours=0), settings=settle, config=listed))
    assert set(found) == {("VOLUME_STOPPED", None)}
    assert found[("VOLUME_STOPPED", None)].evidence["source"] == "server_log"
    # intent: ... and Meta's counts empty too: the whole site is quiet, as the day explains
    empty = [
        dc.replace(c, browser=0, server=0) if c.hour.timestamp() >= CURRENT - 2 * HOUR else c
        for c in _metas(lag_hours=0)
    ]
    quiet = judge(stopped, empty, settings=settle, config=listed)
    assert {f.code for f in quiet.findings} == {"TRAFFIC_SHIFT"}, [
        f.message for f in quiet.findings
    ]
    assert {f.evidence["volume_code"] for f in quiet.findings} == {"VOLUME_STOPPED"}
    # intent: on a day nobody listed, both sides empty is a stop
    assert ("VOLUME_STOPPED", None) in codes(judge(stopped, empty, settings=settle))


def test_a_drop_ending_in_an_empty_hour_never_waits_for_metas_counts() -> None:
    # intent: the sender stopped half-way through the last complete hour and nothing came
    # since: that is a stop's first hour, alerted before Meta's counts are in
    def stopped(name: str, hour: int, r: HourRollup) -> None:
        if hour == CURRENT - HOUR:
            _scale(0.5)(name, r)
        elif hour == CURRENT:
            _stop(None)(name, r)

    settle = {"volume": {"graph_settle": 0}}
    found = codes(judge(make_rollups(tweak=stopped), _metas(lag_hours=3), settings=settle))
    assert {("VOLUME_DROP", None), ("VOLUME_STOPPED", None)} & set(found), found

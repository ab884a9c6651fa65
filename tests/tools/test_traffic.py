"""monitor.tools.traffic: the independent, visitor-level traffic model. These tests check
the model's properties (identifier shares, the local calendar, DST, batching, Meta's side
consistent with the logs, incidents as planted), not exact outputs."""

from __future__ import annotations

import functools
import gzip
import itertools
import statistics
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from benchmarks import bench_detection
from monitor.config import settings_from_dict
from monitor.engine.series import dataset_calendar
from monitor.timeutil import parse_iso
from monitor.tools import traffic
from monitor.tools.traffic.localtime import black_friday, easter, public_holidays
from monitor.tools.traffic.run import SiteRun
from monitor.tools.traffic.world import ROSTER, Planted

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
BERGWERK, ROESTEREI, BRIGHTSIDE = "2000000001", "2000000002", "2000000003"
NO_BROWSER_KEYS = ("client_ip_address", "client_user_agent", "fbp", "fbc")


@pytest.fixture(scope="module")
def world() -> traffic.World:
    # Easter 2027: Good Friday (DE) in the quiet week, EU DST on its Sunday.
    return traffic.plan(11, weeks=3, datasets=3, anchor="easter", scale=0.4)


@pytest.fixture(scope="module")
def out(world: traffic.World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("traffic")
    summary = traffic.write(root, world)
    (root / "summary.json").write_bytes(orjson.dumps(summary))
    return root


@functools.cache
def _read(path: Path) -> tuple[dict[str, Any], ...]:
    with gzip.open(path) as f:
        return tuple(orjson.loads(line) for line in f)


def records(root: Path, dataset: str) -> Iterator[dict[str, Any]]:
    yield from _read(root / "logs" / f"{dataset}.jsonl.gz")


def events_of(rec: dict[str, Any]) -> list[dict[str, Any]]:
    return [orjson.loads(e) if isinstance(e, str) else e for e in rec["request"]["data"]]


def sent(rec: dict[str, Any]) -> float:
    value = rec["sent_at"]
    return float(value) if isinstance(value, int | float) else parse_iso(value)


# --- calendar ----------------------------------------------------------------------------


def test_holiday_rules_give_the_real_dates() -> None:
    assert easter(2026) == date(2026, 4, 5) and easter(2027) == date(2027, 3, 28)
    assert black_friday(2026) == date(2026, 11, 27)
    us, gb, de = (traffic.public_holidays(c, 2026) for c in ("US", "GB", "DE"))
    assert us[date(2026, 11, 26)][0] == "Thanksgiving Day"
    assert not us[date(2026, 10, 12)][1]  # Columbus Day: a minor holiday
    assert date(2026, 12, 28) in gb  # Boxing Day falls on a Saturday: Monday off
    assert de[date(2026, 10, 3)][0] == "German Unity Day"
    assert date(2027, 3, 26) in traffic.public_holidays("DE", 2027)  # Good Friday


def test_holidays_run_from_local_midnight_on_every_dataset_of_a_country() -> None:
    world = traffic.plan(2, weeks=3, datasets=5, anchor="easter")
    sites = {s.dataset_id: s for s in world.sites}
    days: dict[tuple[str, str], set[str]] = {}
    for e in (e for e in world.effects if e.kind == "holiday"):
        zone = ZoneInfo(sites[e.dataset_id].timezone)
        begin = datetime.fromtimestamp(e.start, zone)
        end = datetime.fromtimestamp(e.end, zone)
        assert (begin.hour, begin.minute, end.hour, end.minute) == (0, 0, 0, 0)
        assert end.date() - begin.date() == timedelta(days=1)
        days.setdefault((e.name, begin.date().isoformat()), set()).add(e.dataset_id)
    country = {s.dataset_id: s.country for s in world.sites}
    for (name, day), ids in days.items():
        expected = {d for d in sites if country[d] in {country[i] for i in ids}}
        assert ids == expected, (name, day)
    assert days[("Good Friday", "2027-03-26")] == {BERGWERK, ROESTEREI, "2000000004"}


def test_the_session_rate_falls_at_local_midnight_of_a_holiday(world: traffic.World) -> None:
    for site in world.sites[:2]:  # the German datasets
        run = SiteRun(world, site)
        (holiday,) = [
            e for e in world.effects if e.dataset_id == site.dataset_id and e.kind == "holiday"
        ][:1]
        day_before = sum(run.expected_rate(holiday.start - DAY + m * 600)[0] for m in range(144))
        week_before = sum(run.expected_rate(holiday.start - WEEK + m * 600)[0] for m in range(144))
        on_day = sum(run.expected_rate(holiday.start + m * 600)[0] for m in range(144))
        assert on_day < 0.92 * week_before  # a whole local day lower
        just_before = run.expected_rate(holiday.start - 60)[0]
        assert just_before == pytest.approx(run.expected_rate(holiday.start - WEEK - 60)[0], 0.06)
        assert day_before > 0.9 * sum(
            run.expected_rate(holiday.start - DAY - WEEK + m * 600)[0] for m in range(144)
        )


def test_black_friday_lifts_every_retail_dataset_together() -> None:
    world = traffic.plan(4, weeks=3, datasets=5, anchor="black-friday")
    sales = [e for e in world.effects if e.kind == "sale"]
    zones = {s.dataset_id: ZoneInfo(s.timezone) for s in world.sites}
    retail = {s.dataset_id for s in world.sites if s.vertical == "retail"}
    assert {e.dataset_id for e in sales} == retail and BRIGHTSIDE not in retail
    for e in sales:
        begin = datetime.fromtimestamp(e.start, zones[e.dataset_id])
        assert (begin.date(), begin.hour) == (date(2026, 11, 27), 0)
        assert e.sessions > 1.4 and e.conversion > 1.2  # more visitors, and they buy more
    thanksgiving = {
        e.dataset_id for e in world.effects if e.kind == "holiday" and "Thanksgiving" in e.name
    }
    assert thanksgiving == {BRIGHTSIDE, "2000000005"}


def test_dst_moves_the_day_with_the_local_clock(world: traffic.World, out: Path) -> None:
    site = world.sites[0]  # Europe/Berlin: CET -> CEST on 2027-03-28 01:00 UTC
    run = SiteRun(world, site)
    tue_before = datetime(2027, 3, 23, tzinfo=UTC).timestamp()

    def peak(day: float) -> int:
        return max(range(24), key=lambda h: run.expected_rate(day + h * HOUR + 1800)[0])

    assert peak(tue_before) - peak(tue_before + WEEK) == 1  # 20:30 local: 19 -> 18 UTC
    # In the logs too: the busiest UTC hour of Tuesday to Thursday moves an hour earlier.
    by_hour: Counter[tuple[bool, int]] = Counter()
    for rec in records(out, site.dataset_id):
        for ev in events_of(rec):
            t = ev["event_time"]
            if (
                ev["action_source"] == "website"
                and 1 <= datetime.fromtimestamp(t, UTC).weekday() <= 3
            ):
                by_hour[(t > tue_before + 5 * DAY, int(t % DAY // HOUR))] += 1

    def busiest(after: bool) -> int:
        return max(range(24), key=lambda h: sum(by_hour[(after, (h + k) % 24)] for k in (-1, 0, 1)))

    assert busiest(False) - busiest(True) == 1
    # Meta's hour labels carry the account's offset, which changes with it
    labels = {
        r["hour"][-5:]
        for r in map(orjson.loads, (out / "graph_counts.jsonl").read_bytes().splitlines())
        if r["dataset_id"] == site.dataset_id
    }
    assert labels == {"+0100", "+0200"}


# --- identifiers and action sources -----------------------------------------------------


def test_identifier_shares_are_those_of_anonymous_browsing(out: Path) -> None:
    summary = orjson.loads((out / "summary.json").read_bytes())
    for ds, s in summary["datasets"].items():
        shares = s["identified_share"]
        upper = [v for k, v in shares.items() if k.split("/")[0] in
                 ("PageView", "ViewContent", "AddToCart") and k.endswith("/website")]  # fmt: skip
        assert upper and all(0.22 <= v <= 0.48 for v in upper), (ds, shares)
        conversions = [v for k, v in shares.items() if k in ("Purchase/website", "Lead/website")]
        assert conversions and all(v >= 0.9 for v in conversions), (ds, shares)


def test_action_sources_carry_the_keys_they_can(out: Path) -> None:
    seen: dict[str, set[str]] = {}
    for ds in (BERGWERK, ROESTEREI, BRIGHTSIDE):
        for rec in records(out, ds):
            for ev in events_of(rec):
                source, ud = ev["action_source"], ev["user_data"]
                seen.setdefault(ds, set()).add(source)
                if source == "website":
                    assert ud["client_user_agent"] and ev["event_source_url"]
                elif source == "app":
                    assert ud["anon_id"] and len(ev["app_data"]["extinfo"]) == 16
                    assert "fbp" not in ud and "fbc" not in ud
                else:
                    assert not any(k in ud for k in NO_BROWSER_KEYS), ev
                    assert "event_source_url" not in ev
                    assert any(k in ud for k in ("em", "ph", "external_id"))
    assert seen[BERGWERK] == {"website", "app", "physical_store"}
    assert seen[ROESTEREI] == {"website", "system_generated"}
    assert seen[BRIGHTSIDE] == {"website", "phone_call"}


def test_the_smallest_shop_makes_a_few_purchases_a_day(tmp_path: Path) -> None:
    world = traffic.plan(5, weeks=2, sites=[ROSTER[1]])
    summary = traffic.write(tmp_path, world)
    assert 3 <= summary["datasets"][ROESTEREI]["purchases_per_day"] <= 10


# --- senders -----------------------------------------------------------------------------


def test_batched_and_single_senders(world: traffic.World, out: Path) -> None:
    flushes = []
    for rec in records(out, BERGWERK):  # a batched sGTM sender
        data = events_of(rec)
        assert len(data) <= world.sites[0].max_batch
        if data[0]["action_source"] == "website":
            flushes.append((sent(rec), len(data)))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(flushes)]
    assert statistics.mean(n for _, n in flushes) > 3  # many events per request
    assert min(gaps) >= 29 and 30 <= statistics.median(gaps) <= 120
    lags = []
    late = [i for i in world.incidents if i.type == "late_30h"]
    for rec in records(out, BRIGHTSIDE):  # a sender that posts each event on its own
        data = events_of(rec)
        if data[0]["action_source"] == "website" and not any(i.covers(sent(rec)) for i in late):
            assert len(data) == 1
            lags.append(sent(rec) - data[0]["event_time"])
            assert isinstance(rec["sent_at"], str) and rec["sent_at"][-6:] in ("-05:00", "-06:00")
    assert statistics.median(lags) < 5 and max(lags) < 60
    assert all(isinstance(r["sent_at"], float | int) for r in records(out, ROESTEREI))


# --- Meta's side -------------------------------------------------------------------------


def test_metas_server_counts_are_the_accepted_events(world: traffic.World, out: Path) -> None:
    """Accepted events by event_time, except those that reached Meta more than a day
    late (the late_30h replay): the daemon judged their hours before they came, and the
    backtest must not see them there 30 hours early."""
    graph = [orjson.loads(line) for line in (out / "graph_counts.jsonl").read_bytes().splitlines()]
    late = 0
    for site in world.sites:
        counted: Counter[tuple[str, int]] = Counter()
        for rec in records(out, site.dataset_id):
            if rec["response"]["status"] != 200 or "test_event_code" in rec["request"]:
                continue
            for ev in events_of(rec):
                if sent(rec) - ev["event_time"] > DAY:
                    late += 1
                    continue
                hour = ev["event_time"] // HOUR * HOUR  # whole-hour offsets: UTC hours
                if world.start <= hour < world.end:
                    counted[(ev["event_name"], hour)] += 1
        rows = [r for r in graph if r["dataset_id"] == site.dataset_id]
        meta = Counter({(r["event_name"], int(parse_iso(r["hour"]))): r["server"] for r in rows})
        assert +meta == +counted, site.name
        browser = sum(r["browser"] for r in rows)
        assert 0.5 * sum(counted.values()) < browser < 1.2 * sum(counted.values()), site.name
    assert late > 0  # the replay was accepted (HTTP 200) and left out


# --- incidents ---------------------------------------------------------------------------


def test_incidents_are_planted_as_the_truth_says(world: traffic.World, out: Path) -> None:
    truth = orjson.loads((out / "ground_truth.json").read_bytes())
    assert truth["model"] == "traffic" and truth["anchor"] == "easter"
    assert sorted(i["type"] for i in truth["incidents"]) == sorted(traffic.INCIDENT_TYPES)
    w0, w1 = world.incident_week
    for inc in world.incidents:
        assert w0 <= inc.start < inc.end <= w1
        others = [j for j in world.incidents if j is not inc and j.dataset_id == inc.dataset_id]
        assert all(j.end + 4 * HOUR <= inc.start or inc.end + 4 * HOUR <= j.start for j in others)
        if inc.event_name is None:
            assert inc.expected_per_hour > 0, inc
        if inc.first_affected is not None:
            assert inc.start <= inc.first_affected < inc.end
        checked = 0
        for rec in records(out, inc.dataset_id):
            if not inc.start <= sent(rec) < inc.end:
                continue
            evs = [e for e in events_of(rec) if inc.covers(sent(rec), e["event_name"])]
            checked += len(evs)
            if inc.type == "token_invalid":
                assert rec["response"]["body"]["error"]["code"] == 190
            elif inc.type == "test_event_code":
                assert rec["request"]["test_event_code"]
            elif inc.type == "server_stop":
                assert not evs
            elif inc.type == "email_missing":
                assert not any("em" in e["user_data"] for e in evs)
            elif inc.type == "event_id_missing":
                assert not any("event_id" in e for e in evs)
            elif inc.type == "plaintext_email":
                assert all("@" in str(e["user_data"]["em"]) for e in evs if "em" in e["user_data"])
            elif inc.type == "late_30h":
                assert all(sent(rec) - e["event_time"] > 27 * HOUR for e in evs)
        if inc.type != "server_stop" and inc.type != "pixel_broken" and inc.expected_per_hour:
            assert checked, inc


def test_a_lost_email_is_counted_on_the_events_that_carried_one() -> None:
    # The bench scores a lost key as "too small" by these counts: an anonymous event
    # cannot lose an email, so it does not count toward the incident's size.
    lost = Planted("email_missing", BERGWERK, "AddToCart", 1000.0, 2000.0)
    halved = Planted("drop_50", BERGWERK, "AddToCart", 1000.0, 2000.0)
    known = {"event_name": "AddToCart", "user_data": {"em": ["ab"], "fbp": "fb.1.1.1"}}
    anonymous = {"event_name": "AddToCart", "user_data": {"fbp": "fb.1.1.1"}}
    other = {"event_name": "PageView", "user_data": {"em": ["ab"]}}
    assert lost.exposes(1500.0, known) and not lost.exposes(1500.0, anonymous)
    assert not lost.exposes(1500.0, other) and not lost.exposes(2500.0, known)
    assert halved.exposes(1500.0, known) and halved.exposes(1500.0, anonymous)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        traffic.write(root, traffic.plan(3, weeks=2, datasets=2, scale=0.1))
    for rel in ("ground_truth.json", "graph_counts.jsonl", f"logs/{BERGWERK}.jsonl.gz"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_detection_benchmark_runs_on_the_traffic_model(tmp_path: Path) -> None:
    out = tmp_path / "detection-traffic.json"
    argv = ["--quick", "--model", "traffic", "--out", str(out), "--jobs", "1"]
    assert bench_detection.main(argv) == 0
    report = orjson.loads(out.read_bytes())
    assert report["settings"]["model"] == "traffic"
    assert set(report["aggregate"]["per_type"]) == {
        *traffic.INCIDENT_TYPES,
        bench_detection.DROP_ROW,
    }
    assert report["aggregate"]["notifications_per_dataset_week"] is not None


def test_the_config_lists_the_calendar_a_user_would_know(world: traffic.World) -> None:
    root = Path("/tmp/nowhere")
    listed = settings_from_dict(tomllib.loads(traffic.config_text(root, world)))
    bare = settings_from_dict(tomllib.loads(traffic.config_text(root, world, calendar=False)))
    for site in world.sites:
        days = dataset_calendar(listed, site.dataset_id)
        year = datetime.fromtimestamp(world.start, UTC).year
        assert set(public_holidays(site.country, year)) <= days
        assert (black_friday(year) in days) == (site.vertical == "retail")
        assert dataset_calendar(bare, site.dataset_id) == frozenset()

"""An independent traffic model: CAPI traffic built up from visitors, for validation.

``monitor.tools.simulate`` draws event counts per hour and dresses them as events. This
module starts one level lower and never shares its code or its numbers: it simulates
*people*, and what a CAPI setup logs (and what Meta counts) follows from what they do.
It exists so that detectors tuned on ``simulate`` can be judged on traffic they were not
built with (issue 11). Nothing here is tuned on the monitor's results.

**Visitors and sessions.** Per dataset, sessions arrive as a Poisson process whose rate
follows the site's local clock: a daily curve (sums of bumps: commute, lunch, evening;
a later, flatter one on weekends and holidays), weekday factors, a slow trend, and
correlated noise (a day-level and a 5-minute AR(1) in log space: ad delivery wanders, it
is not white noise). DST changes move the curve with the local clock. A session belongs
to a new or returning visitor (cookie ``fbp``, click id ``fbc`` for 90 days after a
Meta ad click, IP, user agent, consent, ad blocker, a hashed identity used only once the
visitor is *identified*) and walks a funnel: PageView per page, ViewContent on product
pages, then AddToCart → InitiateCheckout → Purchase with conversion probabilities (lead
sites: PageView, ViewContent, Lead, Contact, Schedule).

**Identifiers.** Upper-funnel events carry hashed identifiers only when the visitor is
logged in or came from an e-mail: 25–45 % of them depending on the site (``known_share``);
a checkout asks for an e-mail, so ~95 % of Purchases carry one. Website events always
carry IP and user agent, ``fbp`` with consent, ``fbc`` after an ad click.

**Several action sources in one dataset**: ``website``; ``app`` (``anon_id``, ``madid``
when tracking is allowed, ``app_data.extinfo``, no pixel); ``physical_store`` (till
sales with a loyalty card: hashed contact data, no IP, user agent or cookies, only in
opening hours, closed on Sundays and holidays where shops close); ``system_generated``
(a nightly subscription-renewal run, unaffected by the calendar); ``phone_call`` leads
(office hours). Datasets range from ~5 Purchases a day to thousands of events an hour.

**Calendar.** Public holidays come from each country's rules (Easter-based feasts,
n-th weekdays, substitutes) and apply to *every* dataset of that country from local
midnight to local midnight: the day takes the weekend curve and a lower level. Black
Friday to Cyber Monday lifts every retail dataset at once (more sessions, higher
conversion: the event mix changes), after a lull. Promotions (1–3 days, some starting in
the evening) raise conversion more than traffic; newsletters add a burst of identified
visitors that decays over hours. A scenario's weeks sit around a real season
(``ANCHORS``): Black Friday, Easter with the EU DST change, the autumn DST changes, May
holidays.

**Senders.** Website events go out with or without cookie consent, depending on the
setup (a consent-mode sGTM sends nothing without it). Per channel: one event per request
a second or so after it happened, or a queue flushed every 30–120 s (many events per
request, at most ``max_batch``); the tills every 15 minutes; the renewal run at night.
``sent_at`` is logged as ISO UTC, Unix seconds or ISO with the local offset depending on
the sender; one app backend logs ``data`` items as JSON strings (CONTRACTS §1 allows all
of these).

**Meta's side.** Per event name and hour *of the ad account's time zone* (which need not
be the site's): ``server`` = events Meta accepted (HTTP 200, no ``test_event_code``),
bucketed by ``event_time``, those that reached it within a day (a stuck queue's replay
lands in hours the daemon judged before it came: ``senders.COUNTED_WITHIN``);
``browser`` = pixel fires of the same sessions (consent, no ad blocker, the thank-you
page reached). Hour labels carry the account's offset
(``2026-11-23T00:00:00-0800``), as ``/stats`` reports them. [UNCONFIRMED: that ``/stats``
buckets server events by ``event_time`` rather than receipt.]

**Incidents** (``INCIDENT_TYPES``, the kinds ``simulate`` plants, so the same detection
codes score them): the sender stops (all events or one name); half of the requests (or
of one name's events) are lost; the e-mail key disappears; ``event_id`` disappears;
e-mails go out in clear text; a stuck queue replays events ~30 h old; the token dies;
``test_event_code`` is deployed; the pixel breaks (Meta's browser count of one name or
all drops to zero). One of each in the last week, on a random dataset, never
overlapping on one dataset; the truth records each window, the expected events per hour
of the affected series (counted, not assumed) and the first request that showed it.

Output (the layout ``simulate`` writes, so ``benchmarks.bench_detection`` and
``capi-monitor backtest`` read either): ``logs/<dataset_id>.jsonl.gz``,
``graph_counts.jsonl``, ``ground_truth.json`` (``model: "traffic"``), ``config.toml``.
Seeded: the same arguments write the same bytes.

Modules: ``localtime`` (holiday rules, seasons, the shape of a day), ``world`` (datasets,
calendar effects, incidents: ``plan``), ``people`` (visitors, catalogue), ``run``
(sessions, the pixel), ``senders`` (queues, incidents, records, Meta's server counts);
this module writes the files.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from monitor.tools.traffic.localtime import ANCHORS, DAY, HOUR, black_friday, public_holidays
from monitor.tools.traffic.run import SiteRun
from monitor.tools.traffic.world import (
    INCIDENT_TYPES,
    ROSTER,
    Planted,
    Site,
    World,
    iso,
    plan,
)

# --- writing -----------------------------------------------------------------------------


def write(out: str | Path, world: World) -> dict[str, Any]:
    """Write the world's files to ``out`` (module docstring); returns a summary with the
    identifier shares, batch sizes and events per action source of each dataset."""
    root = Path(out)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"out": str(root), "events": {}, "datasets": {}}
    with open(root / "graph_counts.jsonl", "wb") as graph:
        for site in world.sites:
            run = SiteRun(world, site)
            _write_logs(root / "logs" / f"{site.dataset_id}.jsonl.gz", run)
            graph.writelines(
                orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in run.graph_rows()
            )
            run.finish_truth()
            summary["events"][site.dataset_id] = run.tally.events
            summary["datasets"][site.dataset_id] = _site_summary(run)
    truth = ground_truth(world)
    (root / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    (root / "config.toml").write_text(config_text(root, world), encoding="utf-8")
    summary["incidents"] = len(world.incidents)
    return summary


def _write_logs(path: Path, run: SiteRun) -> None:
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with open(path, "wb") as raw, gzip.GzipFile(path.name[:-3], "wb", 1, raw, mtime=0) as gz:
        buf: list[bytes] = []
        for rec in run.records():
            buf.append(dumps(rec, option=opt))
            if len(buf) >= 2048:
                gz.write(b"".join(buf))
                buf.clear()
        gz.write(b"".join(buf))


def _site_summary(run: SiteRun) -> dict[str, Any]:
    t = run.tally
    days = run.world.weeks * 7
    purchases = sum(n[0] for (name, _), n in t.identified.items() if name == "Purchase")
    sizes = {c: round(sum(s) / len(s), 1) for c, s in sorted(t.batch_sizes.items()) if s}
    return {
        "sessions": t.sessions,
        "events": t.events,
        "requests": t.requests,
        "purchases_per_day": round(purchases / days, 1),
        "events_by_action_source": dict(sorted(t.by_source.items())),
        "identified_share": t.shares(),
        "mean_events_per_request": sizes,
    }


def _dst_changes(world: World, zone: str) -> list[str]:
    tz, out = ZoneInfo(zone), []
    prev = datetime.fromtimestamp(world.start, tz).utcoffset()
    for h in range(int(world.start), int(world.end), HOUR):
        off = datetime.fromtimestamp(h, tz).utcoffset()
        if off != prev:
            out.append(iso(h))
            prev = off
    return out


def ground_truth(world: World) -> dict[str, Any]:
    """The truth file: ``simulate``'s keys (the benchmark reads either) plus the model's
    own (anchor, DST changes, every calendar effect)."""
    quiet = world.quiet_week

    def effects(kind: str) -> list[dict[str, Any]]:
        return [
            {"dataset_id": e.dataset_id, "start": iso(e.start), "end": iso(e.end),
             "factor": round(e.sessions, 2), "conversion": round(e.conversion, 2),
             "name": e.name}
            for e in world.effects if e.kind == kind
        ]  # fmt: skip

    return {
        "model": "traffic",
        "seed": world.seed,
        "anchor": world.anchor,
        "start": iso(world.start),
        "end": iso(world.end),
        "weeks": world.weeks,
        "scale": world.scale,
        "datasets": [
            {
                "dataset_id": s.dataset_id,
                "name": s.name,
                "country": s.country,
                "timezone": s.timezone,
                "account_timezone": s.account_timezone,
                "vertical": s.vertical,
                "sessions_per_hour": s.sessions_per_hour * world.scale,
                "dst_changes": _dst_changes(world, s.timezone),
            }
            for s in world.sites
        ],
        "quiet_week": [iso(quiet[0]), iso(quiet[1])] if quiet else None,
        "incident_week": [iso(t) for t in world.incident_week],
        "holidays": effects("holiday"),
        "sales": effects("sale") + effects("lull"),
        "promotions": effects("promotion"),
        "newsletters": [
            {"dataset_id": b.dataset_id, "start": iso(b.start), "sessions": round(b.sessions)}
            for b in world.bursts
        ],
        "incidents": [i.to_dict() for i in world.incidents],
    }


def config_text(root: Path, world: World, *, calendar: bool = True) -> str:
    """A capi-monitor config for the generated datasets (the store in ``root``), each
    with its ``country``. With ``calendar``, the known days as a user would list them:
    every public holiday of each country in the years of the run
    (``[calendar.countries]``), and Black Friday to Cyber Monday for the retail
    datasets (``calendar_days``). Promotions and newsletters are not listed."""
    db = (root / "capi-monitor.db").resolve()
    lines = ["# Written by monitor.tools.traffic: the modelled datasets and their logs.",
             "[storage]", f'url = "sqlite:///{db}"', "",
             "[schedule]", 'logs_every = "15m"', 'timezone = "UTC"', ""]  # fmt: skip
    years = range(
        datetime.fromtimestamp(world.start - DAY, UTC).year,
        datetime.fromtimestamp(world.end + DAY, UTC).year + 1,
    )
    if calendar:
        lines.append("[calendar.countries]")
        for country in sorted({s.country for s in world.sites}):
            days = sorted(d for y in years for d in public_holidays(country, y))
            lines.append(f"{country} = {_toml_days(days)}")
        lines.append("")
    for site in world.sites:
        logs = (root / "logs" / f"{site.dataset_id}.jsonl.gz").resolve()
        lines += ["[[datasets]]", f'id = "{site.dataset_id}"', f'name = "{site.name}"',
                  f'logs = ["{logs}"]', f'timezone = "{site.timezone}"']  # fmt: skip
        lines.append(f'country = "{site.country}"')
        if calendar and site.vertical == "retail":
            sales = [black_friday(y) + timedelta(days=i) for y in years for i in range(4)]
            lines.append(f"calendar_days = {_toml_days(sales)}")
        lines.append("")
    return "\n".join(lines)


def _toml_days(days: Sequence[date]) -> str:
    return "[" + ", ".join(f'"{d.isoformat()}"' for d in days) + "]"


def write_scenario(
    out: str | Path, seed: int, *, weeks: int = 5, datasets: int = 3, scale: float = 1.0
) -> dict[str, Any]:
    """``plan`` + ``write``."""
    return write(out, plan(seed, weeks=weeks, datasets=datasets, scale=scale))


__all__: Sequence[str] = (
    "ANCHORS",
    "INCIDENT_TYPES",
    "ROSTER",
    "Planted",
    "Site",
    "SiteRun",
    "World",
    "plan",
    "public_holidays",
    "write",
    "write_scenario",
)

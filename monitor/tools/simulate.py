"""``capi-monitor simulate``: weeks of realistic CAPI traffic with injected incidents.

For each simulated dataset it writes what a real setup would leave behind, plus the truth:

- ``logs/<dataset_id>.jsonl.gz``: delivery records (docs/contracts.md §1), events made by the
  realistic generator ``monitor.tools.genlogs.TrafficFactory`` (SDK-style hashed user data,
  cookies, products, ``event_id``), so that healthy traffic raises no finding;
- ``graph_counts.jsonl``: Meta's hourly browser/server counts per event name, as the
  fake Graph API serves them (``python -m monitor.testing.fakegraph --counts FILE``) and as
  ``monitor.tools.graph_counts.load_graph_counts`` stores them (what the daemon's Graph
  polls would have stored);
- ``ground_truth.json``: every incident (type, dataset, event name or ``null`` for all,
  start, end, expected events per hour of the affected series) and the weeks: warm-up,
  the incident-free ``quiet_week`` (with a promotion and a holiday) and the
  ``incident_week``;
- ``config.toml``: the datasets, their logs and time zones, a store in the directory.

**Traffic.** Per dataset and local hour: ``rate × daily(hour) × weekly(weekday) ×
promotion × holiday × day noise × hour noise``, Poisson counts per event name (the site's
event mix), sends batched like a real sender (mostly single events, some batches), send
lags of seconds. The browser side is a share of the same traffic, with its own noise.
Promotions (two days, ×1.4–1.8) and holidays (one day, ×0.75–0.85) run from local
midnight to local midnight, as a site's calendar does.
Two sites alternate: a shop (Europe/Berlin, busy weekends) and a lead-gen site
(America/New_York, quiet weekends); both cross their DST change in late October.

**Incidents** (``INCIDENT_TYPES``), one of each per scenario in the incident week, on a
random dataset, never overlapping on one dataset: server events stop; a 50 % drop for a
few hours; the email key disappears; ``event_id`` disappears; plain-text emails appear;
events arrive 30 h late; the token dies (every request answered with error 190);
``test_event_code`` is deployed; the browser pixel breaks (Meta sees no browser events).

Seeded and reproducible: the same ``--seed`` writes byte-identical files.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from monitor.errors import ConfigError
from monitor.timeutil import iso_utc
from monitor.tools import genlogs

if TYPE_CHECKING:
    pass

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
DEFAULT_START = "2026-10-05T00:00:00Z"  # a Monday; both DST changes fall in week 4

INCIDENT_TYPES: tuple[str, ...] = (
    "server_stop",
    "drop_50",
    "email_missing",
    "event_id_missing",
    "plaintext_email",
    "late_30h",
    "token_invalid",
    "test_event_code",
    "pixel_broken",
)
# The codes that count as detecting each incident type (benchmarks/bench_detection.py).
# Server events lost (a stop, a halving) lower Meta's server count against its browser
# count too: PARITY_RATIO_DRIFT says so ("the server side lost events") once Meta's
# counts of those hours are in, as it says a broken pixel's browser side.
DETECTED_BY: dict[str, frozenset[str]] = {
    "server_stop": frozenset({"VOLUME_STOPPED", "VOLUME_DROP", "PARITY_RATIO_DRIFT"}),
    "drop_50": frozenset({"VOLUME_DROP", "VOLUME_STOPPED", "PARITY_RATIO_DRIFT"}),
    "email_missing": frozenset({"MATCH_KEY_DROP", "MATCH_KEY_COVERAGE_LOW"}),
    "event_id_missing": frozenset({"EVENT_ID_SHARE_DROP", "MISSING_EVENT_ID"}),
    "plaintext_email": frozenset({"HASH_PLAINTEXT"}),
    "late_30h": frozenset({"LATENCY_HIGH"}),
    "token_invalid": frozenset({"TOKEN_INVALID"}),
    "test_event_code": frozenset({"TEST_EVENT_CODE_PRESENT"}),
    "pixel_broken": frozenset(
        {"VOLUME_STOPPED", "VOLUME_DROP", "PARITY_RATIO_DRIFT", "PARITY_BROWSER_MISSING"}
    ),
}
# Incidents that concern one event name (else: every event of the dataset).
_PER_EVENT = {"server_stop": 0.5, "drop_50": 0.5, "email_missing": 1.0, "pixel_broken": 0.5}
_DURATION_H = {  # (min, max) hours
    "server_stop": (3, 6),
    "drop_50": (3, 6),
    "email_missing": (3, 6),
    "event_id_missing": (3, 6),
    "plaintext_email": (2, 4),
    "late_30h": (2, 4),
    "token_invalid": (2, 4),
    "test_event_code": (2, 4),
    "pixel_broken": (4, 8),
}


@dataclass(frozen=True, slots=True)
class DatasetPlan:
    """One simulated dataset: who it is and how its traffic looks."""

    dataset_id: str
    name: str
    site: str  # "shop" or "leadgen" (monitor.tools.genlogs sites)
    timezone: str
    rate: float  # mean server events per hour over a week
    weekend: float  # weekend traffic relative to weekdays
    browser_share: float  # browser events Meta counts per server event


PLANS: tuple[DatasetPlan, ...] = (
    DatasetPlan("1000000001", "Outdoor shop (DE)", "shop", "Europe/Berlin", 240.0, 1.2, 0.85),
    DatasetPlan("1000000002", "Solar quotes (US)", "leadgen", "America/New_York", 150.0, 0.6, 0.8),
    DatasetPlan("1000000003", "Outdoor shop (UK)", "shop", "Europe/London", 120.0, 1.15, 0.9),
)


@dataclass(frozen=True, slots=True)
class Incident:
    """One injected incident: ground truth for the detection benchmark."""

    type: str
    dataset_id: str
    event_name: str | None  # None: every event of the dataset
    start: float
    end: float
    expected_per_hour: float = 0.0  # mean events per hour of the affected series
    # The first request that carried the defect (incidents a request shows); None for
    # incidents shown by missing events (stops, drops, the pixel) or never sent.
    first_affected: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = iso_utc(self.start), iso_utc(self.end)
        d["expected_per_hour"] = round(self.expected_per_hour, 1)
        if self.first_affected is not None:
            d["first_affected"] = iso_utc(self.first_affected)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Incident:
        from monitor.timeutil import parse_iso

        return cls(
            type=d["type"],
            dataset_id=d["dataset_id"],
            event_name=d["event_name"],
            start=parse_iso(d["start"]),
            end=parse_iso(d["end"]),
            expected_per_hour=float(d.get("expected_per_hour", 0.0)),
            first_affected=parse_iso(d["first_affected"]) if d.get("first_affected") else None,
        )

    def covers(self, dataset_id: str, event_name: str, t: float) -> bool:
        return (
            self.dataset_id == dataset_id
            and self.start <= t < self.end
            and (self.event_name is None or self.event_name == event_name)
        )


@dataclass(slots=True)
class Scenario:
    """The plan of one simulation: datasets, weeks, calendar effects and incidents."""

    seed: int
    start: float
    weeks: int
    datasets: list[DatasetPlan]
    incidents: list[Incident] = field(default_factory=list)
    promotions: list[tuple[str, float, float, float]] = field(default_factory=list)
    holidays: list[tuple[str, float, float, float]] = field(default_factory=list)
    first_affected: dict[int, float] = field(default_factory=dict)  # incident index -> time

    @property
    def end(self) -> float:
        return self.start + self.weeks * WEEK

    @property
    def incident_week(self) -> tuple[float, float]:
        return (self.end - WEEK, self.end)

    @property
    def quiet_week(self) -> tuple[float, float] | None:
        """The incident-free week judged for false alerts (needs 3 weeks or more)."""
        if self.weeks < 3:
            return None
        return (self.end - 2 * WEEK, self.end - WEEK)


# --- planning ----------------------------------------------------------------------------


def plan(
    seed: int,
    *,
    weeks: int = 5,
    datasets: int = 2,
    start: float | None = None,
    scale: float = 1.0,
) -> Scenario:
    """The scenario of ``seed``: calendar effects in the quiet week, incidents in the last."""
    from monitor.timeutil import parse_iso

    if weeks < 2:
        raise ConfigError("simulate: --weeks must be at least 2 (history, then incidents)")
    if not 1 <= datasets <= len(PLANS):
        raise ConfigError(f"simulate: --datasets must be between 1 and {len(PLANS)}")
    rng = Random(f"plan-{seed}")
    t0 = parse_iso(DEFAULT_START) if start is None else start
    if scale <= 0:
        raise ConfigError("simulate: --scale must be positive")
    plans = [replace(p, rate=p.rate * scale) for p in PLANS[:datasets]]
    sc = Scenario(seed, t0, weeks, plans)
    quiet = sc.quiet_week
    if quiet is not None:
        for ds in sc.datasets:
            day = rng.randrange(0, 5)  # a promotion of two days on weekdays
            start, stop = _local_days(quiet[0], day, 2, ds.timezone)
            sc.promotions.append((ds.dataset_id, start, stop - start, rng.uniform(1.4, 1.8)))
            hday = rng.choice([d for d in range(7) if d not in (day, day + 1)])
            start, stop = _local_days(quiet[0], hday, 1, ds.timezone)
            sc.holidays.append((ds.dataset_id, start, stop - start, rng.uniform(0.75, 0.85)))
    _plan_incidents(sc, rng)
    return sc


def _local_days(week: float, offset: int, days: int, zone: str) -> tuple[float, float]:
    """Local midnight to local midnight in ``zone``: the ``days`` calendar days from the
    ``offset``-th day of the week starting at ``week`` (UTC). Holidays and promotions
    follow the site's own calendar, not UTC's."""
    first = datetime.fromtimestamp(week, UTC).date() + timedelta(days=offset)
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tzinfo=tz)
    stop = datetime.combine(first + timedelta(days=days), time(), tzinfo=tz)
    return start.timestamp(), stop.timestamp()


def _plan_incidents(sc: Scenario, rng: Random) -> None:
    """One incident of each type in the incident week, in random order, each in its own
    slot (so that incidents of one dataset never overlap and alerts can resolve)."""
    week_start, _ = sc.incident_week
    types = list(INCIDENT_TYPES)
    rng.shuffle(types)
    slot = WEEK / len(types)
    for i, kind in enumerate(types):
        lo, hi = _DURATION_H[kind]
        hours = rng.randint(lo, hi)
        offset = rng.uniform(0, slot - (hi + 8) * HOUR)
        start = week_start + i * slot + max(offset, 0.0)
        start = round(start / 60) * 60  # whole minutes, as a human reads them
        ds = rng.choice(sc.datasets)
        event = None
        if rng.random() < _PER_EVENT.get(kind, 0.0):
            event = _pick_event(ds, rng)
        sc.incidents.append(Incident(kind, ds.dataset_id, event, start, start + hours * HOUR))


def _pick_event(ds: DatasetPlan, rng: Random) -> str:
    weights = _event_weights(ds)
    names = list(weights)
    return rng.choices(names, [weights[n] for n in names])[0]


def _event_weights(ds: DatasetPlan) -> dict[str, float]:
    site = genlogs.SHOP if ds.site == "shop" else genlogs.LEADGEN
    total = sum(w for _, w in site.event_weights)
    return {n: w / total for n, w in site.event_weights}


# --- the traffic model -------------------------------------------------------------------


def _daily(hour: int) -> float:
    """Relative traffic by local hour: a night trough, an evening peak (mean ~1)."""
    return 0.12 + 1.6 * math.sin(math.pi * max(0.0, hour - 5) / 19) ** 2 if hour >= 5 else 0.12


_DAILY_MEAN = sum(_daily(h) for h in range(24)) / 24


class _Rates:
    """Expected server events per UTC hour of one dataset (noise drawn once, seeded)."""

    def __init__(self, sc: Scenario, ds: DatasetPlan) -> None:
        self.ds = ds
        self.tz = ZoneInfo(ds.timezone)
        rng = Random(f"rates-{sc.seed}-{ds.dataset_id}")
        self.day_noise: dict[str, float] = {}
        self.hour_noise = [math.exp(rng.gauss(0, 0.04)) for _ in range(sc.weeks * 7 * 24 + 48)]
        self.start = sc.start
        self.promotions = [(s, d, f) for i, s, d, f in sc.promotions if i == ds.dataset_id]
        self.holidays = [(s, d, f) for i, s, d, f in sc.holidays if i == ds.dataset_id]
        self.rng = rng
        weekday = 5 * 1.0 + 2 * ds.weekend
        self.norm = ds.rate / (_DAILY_MEAN * weekday / 7)

    def __call__(self, hour: float) -> float:
        local = datetime.fromtimestamp(hour, self.tz)
        day = local.date().isoformat()
        noise = self.day_noise.get(day)
        if noise is None:
            noise = self.day_noise[day] = math.exp(self.rng.gauss(0, 0.05))
        rate = self.norm * _daily(local.hour) * noise
        if local.weekday() >= 5:
            rate *= self.ds.weekend
        for s, d, f in self.promotions:
            if s <= hour < s + d:
                rate *= f
        for s, d, f in self.holidays:
            if s <= hour < s + d:
                rate *= f
        return rate * self.hour_noise[int((hour - self.start) // HOUR) % len(self.hour_noise)]


def _poisson(rng: Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- writing -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Counts:
    """Per (event, hour): events Meta accepted from the server (its SERVER count)."""

    server: dict[tuple[str, int], int] = field(default_factory=dict)


def simulate(out: str | Path, sc: Scenario) -> dict[str, Any]:
    """Write the scenario's files to ``out`` (module docstring); returns a summary."""
    root = Path(out)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    graph_rows: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    incidents = []
    for ds in sc.datasets:
        rates = _Rates(sc, ds)
        counts = _Counts()
        totals[ds.dataset_id] = _write_logs(
            root / "logs" / f"{ds.dataset_id}.jsonl.gz", sc, ds, rates, counts
        )
        graph_rows.extend(_graph_rows(sc, ds, rates, counts))
        weights = _event_weights(ds)
        for i, inc in enumerate(sc.incidents):
            if inc.dataset_id == ds.dataset_id:
                share = weights[inc.event_name] if inc.event_name else 1.0
                hours = range(int(inc.start // HOUR * HOUR), int(inc.end), HOUR)
                mean = sum(rates(h) for h in hours) / max(1, len(hours)) * share
                seen = sc.first_affected.get(i)
                incidents.append(replace(inc, expected_per_hour=mean, first_affected=seen))
    incidents.sort(key=lambda i: i.start)
    sc.incidents = incidents
    with open(root / "graph_counts.jsonl", "wb") as f:
        f.writelines(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in graph_rows)
    truth = ground_truth(sc)
    (root / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    (root / "config.toml").write_text(config_text(root, sc), encoding="utf-8")
    return {"out": str(root), "events": totals, "incidents": len(incidents)}


def ground_truth(sc: Scenario) -> dict[str, Any]:
    quiet = sc.quiet_week
    return {
        "seed": sc.seed,
        "start": iso_utc(sc.start),
        "end": iso_utc(sc.end),
        "weeks": sc.weeks,
        "datasets": [asdict(d) for d in sc.datasets],
        "quiet_week": [iso_utc(quiet[0]), iso_utc(quiet[1])] if quiet else None,
        "incident_week": [iso_utc(t) for t in sc.incident_week],
        "promotions": [
            {"dataset_id": i, "start": iso_utc(s), "end": iso_utc(s + d), "factor": round(f, 2)}
            for i, s, d, f in sc.promotions
        ],
        "holidays": [
            {"dataset_id": i, "start": iso_utc(s), "end": iso_utc(s + d), "factor": round(f, 2)}
            for i, s, d, f in sc.holidays
        ],
        "incidents": [i.to_dict() for i in sc.incidents],
    }


def config_text(root: Path, sc: Scenario, logs_every: str = "15m") -> str:
    """A config for the simulated datasets (no [meta]: the Graph counts come stored)."""
    db = (root / "capi-monitor.db").resolve()
    lines = [
        "# Written by capi-monitor simulate: the simulated datasets and their logs.",
        "[storage]",
        f'url = "sqlite:///{db}"',
        "",
        "[schedule]",
        f'logs_every = "{logs_every}"',
        'timezone = "UTC"',
        "",
    ]
    for ds in sc.datasets:
        logs = (root / "logs" / f"{ds.dataset_id}.jsonl.gz").resolve()
        lines += [
            "[[datasets]]",
            f'id = "{ds.dataset_id}"',
            f'name = "{ds.name}"',
            f'logs = ["{logs}"]',
            f'timezone = "{ds.timezone}"',
            "",
        ]
    return "\n".join(lines)


def _active(sc: Scenario, ds: DatasetPlan, kind: str, name: str, t: float) -> bool:
    return any(i.type == kind and i.covers(ds.dataset_id, name, t) for i in sc.incidents)


def _events_of_hour(
    rng: Random, rates: _Rates, names: list[str], weights: list[float], hour: int
) -> list[tuple[float, str]]:
    lam = rates(hour)
    out: list[tuple[float, str]] = []
    for name, w in zip(names, weights, strict=True):
        out.extend((hour + rng.random() * HOUR, name) for _ in range(_poisson(rng, lam * w)))
    out.sort()
    return out


def _requests(rng: Random, events: list[tuple[float, str]]) -> Iterator[list[tuple[float, str]]]:
    """Events grouped as a sender batches them: mostly alone, sometimes a few together."""
    i = 0
    while i < len(events):
        r = rng.random()
        k = 1 if r < 0.7 else rng.randint(2, 5) if r < 0.95 else rng.randint(6, 20)
        yield events[i : i + k]
        i += k


def _write_logs(path: Path, sc: Scenario, ds: DatasetPlan, rates: _Rates, counts: _Counts) -> int:
    site = genlogs.SHOP if ds.site == "shop" else genlogs.LEADGEN
    fac = genlogs.TrafficFactory(sc.seed * 1000 + int(ds.dataset_id[-2:]), site, persons=1024)
    rng = Random(f"traffic-{sc.seed}-{ds.dataset_id}")
    weights = _event_weights(ds)
    names, shares = list(weights), list(weights.values())
    written = 0
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with open(path, "wb") as raw, gzip.GzipFile(path.name[:-3], "wb", 1, raw, mtime=0) as out:
        for hour in range(int(sc.start), int(sc.end), HOUR):
            buf = []
            for batch in _requests(rng, _events_of_hour(rng, rates, names, shares, hour)):
                sent = batch[-1][0] + rng.uniform(0.2, 3.0)
                events = []
                for t, name in batch:
                    if _active(sc, ds, "server_stop", name, t):
                        continue
                    if _active(sc, ds, "drop_50", name, t) and rng.random() < 0.5:
                        continue
                    events.append(_event(fac, sc, ds, name, t, sent))
                if not events:
                    continue
                rec = fac.record(sent, events, ds.dataset_id)
                failed = _record_incidents(fac, sc, ds, rec, sent)
                _mark_affected(sc, ds, {e["event_name"] for e in events}, sent)
                if not failed:
                    for ev in events:
                        key = (ev["event_name"], int(sent // HOUR * HOUR))
                        counts.server[key] = counts.server.get(key, 0) + 1
                buf.append(dumps(rec, option=opt))
                written += len(events)
            out.write(b"".join(buf))
    return written


def _event(fac: Any, sc: Scenario, ds: DatasetPlan, name: str, t: float, sent: float) -> Any:
    late = _active(sc, ds, "late_30h", name, sent)
    ev = fac.event(name, int(t - (30 * HOUR if late else rng_lag(t))))
    if _active(sc, ds, "email_missing", name, sent):
        fac.replace_user_data(ev, em=None)
    if _active(sc, ds, "event_id_missing", name, sent):
        ev.pop("event_id", None)
    if _active(sc, ds, "plaintext_email", name, sent):
        fac.apply_event_defect(ev, "plaintext_email")
    return ev


def rng_lag(t: float) -> float:
    """A deterministic send lag of 1-20 s (the event happened just before it was sent)."""
    return 1.0 + (int(t * 1000) % 19000) / 1000.0


def _record_incidents(
    fac: Any, sc: Scenario, ds: DatasetPlan, rec: dict[str, Any], sent: float
) -> bool:
    """Plant the request-level incidents; True when Meta accepted nothing of it."""
    if _active_any(sc, ds, "token_invalid", sent):
        fac.apply_record_defect(rec, "error_190")
        return True
    if _active_any(sc, ds, "test_event_code", sent):
        rec["request"]["test_event_code"] = "TEST12345"
        return True  # test events do not count in Meta's production numbers
    return False


_SHOWN_BY_REQUESTS = frozenset(INCIDENT_TYPES) - {"server_stop", "drop_50", "pixel_broken"}


def _mark_affected(sc: Scenario, ds: DatasetPlan, names: set[str], sent: float) -> None:
    """Remember the first request each request-level incident changed."""
    for i, inc in enumerate(sc.incidents):
        if (
            inc.type in _SHOWN_BY_REQUESTS
            and inc.dataset_id == ds.dataset_id
            and inc.start <= sent < inc.end
            and (inc.event_name is None or inc.event_name in names)
        ):
            sc.first_affected.setdefault(i, sent)


def _active_any(sc: Scenario, ds: DatasetPlan, kind: str, t: float) -> bool:
    return any(
        i.type == kind and i.dataset_id == ds.dataset_id and i.start <= t < i.end
        for i in sc.incidents
    )


def _graph_rows(
    sc: Scenario, ds: DatasetPlan, rates: _Rates, counts: _Counts
) -> Iterator[dict[str, Any]]:
    """Meta's hourly counts: SERVER = what it accepted from the logs, BROWSER = the pixel's
    share of the traffic (zero while the pixel is broken)."""
    rng = Random(f"browser-{sc.seed}-{ds.dataset_id}")
    weights = _event_weights(ds)
    for hour in range(int(sc.start), int(sc.end), HOUR):
        lam = rates(hour) * ds.browser_share
        for name, w in weights.items():
            browser = _poisson(rng, lam * w)
            if _active(sc, ds, "pixel_broken", name, hour + HOUR / 2):
                browser = 0
            server = counts.server.get((name, hour), 0)
            if browser or server:
                yield {
                    "dataset_id": ds.dataset_id,
                    "event_name": name,
                    "hour": iso_utc(hour),
                    "browser": browser,
                    "server": server,
                }


def write_scenario(
    out: str | Path, seed: int, *, weeks: int = 5, datasets: int = 2, scale: float = 1.0
) -> dict[str, Any]:
    """``plan`` + ``simulate``: what ``capi-monitor simulate`` runs."""
    return simulate(out, plan(seed, weeks=weeks, datasets=datasets, scale=scale))


__all__: Sequence[str] = (
    "DETECTED_BY",
    "INCIDENT_TYPES",
    "Incident",
    "Scenario",
    "plan",
    "simulate",
    "write_scenario",
)

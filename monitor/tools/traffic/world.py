"""Datasets, calendar effects and incidents of a traffic-model run (the plan).

``plan`` decides everything that is not per-visitor chance: which datasets, which weeks
(around a season of ``ANCHORS``), each dataset's holidays, sales, promotions and
newsletters, and the incidents with their windows. ``monitor.tools.traffic.run`` then
draws the visitors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any, Literal
from zoneinfo import ZoneInfo

from monitor.errors import ConfigError
from monitor.tools.traffic.localtime import (
    ANCHORS,
    DAY,
    HOUR,
    SLOT,
    WEEK,
    Vertical,
    black_friday,
    public_holidays,
)

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
# Incident kinds a request shows (the others show as missing events): first_affected.
_SHOWN_BY_REQUESTS = frozenset(INCIDENT_TYPES) - {"server_stop", "drop_50", "pixel_broken"}
# (min, max) hours; drops and stops last >= 3 h (the recall target).
_DURATION_H: dict[str, tuple[float, float]] = {
    "server_stop": (3, 9),
    "drop_50": (3, 9),
    "email_missing": (2, 8),
    "event_id_missing": (2, 8),
    "plaintext_email": (1, 5),
    "late_30h": (1, 5),
    "token_invalid": (1, 5),
    "test_event_code": (1, 5),
    "pixel_broken": (3, 10),
}
# Probability that an incident concerns one event name (else every event of the dataset).
_ONE_NAME = {"server_stop": 0.6, "drop_50": 0.4, "email_missing": 0.7, "pixel_broken": 0.5}
_GAP = 4 * HOUR  # incidents of one dataset are at least this far apart

HASHED_KEYS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge", "external_id")

# --- datasets ----------------------------------------------------------------------------

TimeStyle = Literal["iso_z", "unix", "iso_local"]


@dataclass(frozen=True, slots=True)
class Site:
    """One dataset: the business behind it, its visitors and its CAPI setup."""

    dataset_id: str
    name: str
    country: str  # ISO 3166-1 alpha-2 (upper case): its public holidays
    timezone: str  # the business's clock: its visitors' day
    account_timezone: str  # the ad account's: Meta's hour buckets
    vertical: Vertical
    sessions_per_hour: float  # web + app sessions per hour, mean of an ordinary week
    known_share: float  # upper-funnel sessions whose visitor is identified
    currency: str
    host: str
    server_events: frozenset[str]  # names the server sends (the pixel sends its own)
    app_share: float = 0.0  # sessions in the app (action_source "app")
    store_sales_per_day: float = 0.0  # loyalty-card sales at the tills
    renewals_per_day: float = 0.0  # nightly subscription renewals (system_generated)
    phone_leads_per_day: float = 0.0  # call-centre leads (phone_call)
    web_sender: Literal["single", "batched"] = "single"
    max_batch: int = 500
    time_style: TimeStyle = "iso_z"
    list_values: bool = True  # hashed values as one-element lists (the SDKs' style)
    identity_keys: tuple[str, ...] = ("em", "ph", "fn", "ln", "ct", "zp", "country", "external_id")
    partner_agent: str | None = None
    stores_close_on_holidays: bool = True
    app_events_as_strings: bool = False  # the app backend logs data items as JSON strings
    server_needs_consent: bool = False  # no website server event without cookie consent


_RETAIL = frozenset({"PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase"})
_LEADS = frozenset({"PageView", "ViewContent", "Lead", "Contact", "Schedule"})

# Datasets are taken in this order (``plan(datasets=N)``): two German shops (a mid-size
# one with app and tills, a tiny one with ~5 Purchases a day), a US lead business, a large
# British shop with app and tills, and a very large US shop whose server sends only
# checkouts and Purchases (hundreds of Purchases an hour; its ~12,000 sessions an hour
# take several CPU minutes per simulated week at scale 1).
ROSTER: tuple[Site, ...] = (
    Site("2000000001", "Bergwerk Outdoor (DE)", "DE", "Europe/Berlin", "Europe/Berlin",
         "retail", 150.0, 0.35, "EUR", "www.bergwerk-outdoor.example", _RETAIL,
         app_share=0.2, store_sales_per_day=40.0, web_sender="batched",
         partner_agent="stape-gtmss-2.1.3", server_needs_consent=True),
    Site("2000000002", "Kleine Rösterei (DE)", "DE", "Europe/Berlin", "America/Los_Angeles",
         "retail", 12.0, 0.28, "EUR", "kleine-roesterei.example", _RETAIL,
         renewals_per_day=2.0, time_style="unix", list_values=False,
         identity_keys=("em", "external_id")),
    Site("2000000003", "Brightside Solar (US)", "US", "America/Chicago", "America/New_York",
         "leads", 80.0, 0.3, "USD", "brightside-solar.example", _LEADS,
         phone_leads_per_day=25.0, time_style="iso_local", list_values=False),
    Site("2000000004", "Hearth & Home (GB)", "GB", "Europe/London", "Europe/London",
         "retail", 300.0, 0.42, "GBP", "www.hearthandhome.example", _RETAIL,
         app_share=0.35, store_sales_per_day=120.0, web_sender="batched", max_batch=1000,
         stores_close_on_holidays=False, app_events_as_strings=True),
    Site("2000000005", "MegaMart (US)", "US", "America/Los_Angeles", "America/Los_Angeles",
         "retail", 12000.0, 0.3, "USD", "www.megamart.example",
         frozenset({"InitiateCheckout", "Purchase"}), web_sender="batched", max_batch=1000,
         stores_close_on_holidays=False),
)  # fmt: skip


# --- the plan ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """A calendar effect on one dataset over ``[start, end)`` (UTC seconds)."""

    kind: str  # "holiday", "sale", "lull", "promotion"
    dataset_id: str
    start: float
    end: float
    sessions: float  # multiplier of the session rate
    conversion: float = 1.0  # multiplier of the funnel's conversion probabilities
    name: str = ""
    weekend_curve: bool = False  # the day follows the weekend curve (holidays)
    stores_closed: bool = False


@dataclass(frozen=True, slots=True)
class Burst:
    """A newsletter: ``sessions`` extra identified sessions from ``start``, decaying with
    time constant ``tau`` seconds."""

    dataset_id: str
    start: float
    sessions: float
    tau: float


@dataclass(slots=True)
class Planted:
    """One planted incident and its truth (the keys of ``simulate``'s ground truth)."""

    type: str
    dataset_id: str
    event_name: str | None  # None: every event of the dataset
    start: float
    end: float
    # Counted: events of the affected series per hour; for a lost key (email_missing)
    # only those that carried it, the events the incident can change.
    expected_per_hour: float = 0.0
    first_affected: float | None = None
    _seen: int = 0  # affected-series events counted in the window (before the incident)

    def covers(self, t: float, name: str | None = None) -> bool:
        return (
            self.start <= t < self.end
            and (name is None or self.event_name is None or self.event_name == name)
        )  # fmt: skip

    def exposes(self, t: float, event: dict[str, Any]) -> bool:
        """Whether the incident can change ``event`` sent at ``t``: an event of its series
        in its window; for a lost email, one that carries an email."""
        if not self.covers(t, event["event_name"]):
            return False
        return self.type != "email_missing" or "em" in (event.get("user_data") or {})

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.type,
            "dataset_id": self.dataset_id,
            "event_name": self.event_name,
            "start": iso(self.start),
            "end": iso(self.end),
            "expected_per_hour": round(self.expected_per_hour, 1),
        }
        if self.first_affected is not None:
            d["first_affected"] = iso(self.first_affected)
        return d


@dataclass(slots=True)
class World:
    """Everything a run draws from: datasets, weeks, calendar and incidents."""

    seed: int
    anchor: str
    start: float
    weeks: int
    sites: list[Site]
    scale: float = 1.0
    effects: list[Effect] = field(default_factory=list)
    bursts: list[Burst] = field(default_factory=list)
    incidents: list[Planted] = field(default_factory=list)
    transient_errors: float = 0.0  # share of requests answered with a transient error

    @property
    def end(self) -> float:
        return self.start + self.weeks * WEEK

    @property
    def incident_week(self) -> tuple[float, float]:
        return (self.end - WEEK, self.end)

    @property
    def quiet_week(self) -> tuple[float, float] | None:
        return None if self.weeks < 3 else (self.end - 2 * WEEK, self.end - WEEK)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def plan(
    seed: int,
    *,
    weeks: int = 5,
    datasets: int = 3,
    scale: float = 1.0,
    anchor: str | None = None,
    sites: Sequence[Site] | None = None,
    transient_errors: float = 0.0,
) -> World:
    """The world of ``seed``: the first ``datasets`` of ``ROSTER`` (or ``sites``), the
    weeks around ``anchor`` (default: one per seed, in turn), calendar, incidents."""
    if weeks < 2:
        raise ConfigError("traffic: weeks must be at least 2 (history, then incidents)")
    if scale <= 0:
        raise ConfigError("traffic: scale must be positive")
    chosen = list(sites) if sites is not None else list(ROSTER[:datasets])
    if not chosen or (sites is None and not 1 <= datasets <= len(ROSTER)):
        raise ConfigError(f"traffic: datasets must be between 1 and {len(ROSTER)}")
    names = list(ANCHORS)
    anchor = anchor or names[seed % len(names)]
    if anchor not in ANCHORS:
        raise ConfigError(f"traffic: unknown anchor {anchor!r} (one of {', '.join(names)})")
    quiet = datetime.combine(ANCHORS[anchor], time(), tzinfo=UTC).timestamp()
    start = quiet - max(0, weeks - 2) * WEEK
    world = World(seed, anchor, start, weeks, chosen, scale, transient_errors=transient_errors)
    rng = Random(f"traffic-plan:{seed}")
    for site in chosen:
        world.effects += _holidays(world, site, Random(f"holidays:{seed}:{site.dataset_id}"))
        world.effects += _sales(world, site, Random(f"sales:{seed}:{site.dataset_id}"))
        world.effects += _promotions(world, site, rng)
        world.bursts += _newsletters(world, site, rng)
    world.incidents = _incidents(world, rng)
    return world


def _local_span(d: date, days: int, zone: ZoneInfo, hour: int = 0) -> tuple[float, float]:
    """From ``hour`` o'clock of local day ``d`` to local midnight ``days`` later."""
    begin = datetime.combine(d, time(hour), tzinfo=zone)
    stop = datetime.combine(d + timedelta(days=days), time(), tzinfo=zone)
    return begin.timestamp(), stop.timestamp()


def _local_dates(world: World, zone: ZoneInfo) -> list[date]:
    first = datetime.fromtimestamp(world.start - DAY, zone).date()
    last = datetime.fromtimestamp(world.end + DAY, zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _holidays(world: World, site: Site, rng: Random) -> list[Effect]:
    """Every public holiday of the site's country in the window, local midnight to
    midnight. The level is drawn per dataset: a shop loses less than a lead business."""
    zone = ZoneInfo(site.timezone)
    out = []
    years: dict[int, dict[date, tuple[str, bool]]] = {}
    for d in _local_dates(world, zone):
        cal = years.setdefault(d.year, public_holidays(site.country, d.year))
        if d not in cal:
            continue
        name, major = cal[d]
        if not major:
            level = rng.uniform(0.9, 0.98)
        elif site.vertical == "leads":
            level = rng.uniform(0.35, 0.6)
        else:
            level = rng.uniform(0.62, 0.88)
        start, end = _local_span(d, 1, zone)
        closed = major and site.stores_close_on_holidays
        out.append(Effect("holiday", site.dataset_id, start, end, level, 1.0, name, major, closed))
    return out


def _sales(world: World, site: Site, rng: Random) -> list[Effect]:
    """Black Friday to Cyber Monday on every retail dataset (one draw per dataset), after
    a lull in the days before it: the datasets move together."""
    if site.vertical != "retail":
        return []
    zone = ZoneInfo(site.timezone)
    out = []
    for year in sorted({d.year for d in _local_dates(world, zone)}):
        bf = black_friday(year)
        s, e = _local_span(bf, 4, zone)
        if e <= world.start or s >= world.end:
            continue
        lift, conv = rng.uniform(1.5, 2.3), rng.uniform(1.3, 1.7)
        out.append(Effect("sale", site.dataset_id, s, e, lift, conv, "Black Friday"))
        ls, le = _local_span(bf - timedelta(days=4), 3, zone)
        out.append(Effect("lull", site.dataset_id, ls, le, 0.93, 0.8, "before Black Friday"))
    return out


def _promotions(world: World, site: Site, rng: Random) -> list[Effect]:
    """About one promotion a fortnight: 1-3 days, from local midnight or an evening
    launch; conversion rises more than traffic (the event mix changes)."""
    zone = ZoneInfo(site.timezone)
    out = []
    days = _local_dates(world, zone)[1:-2]
    for d in days:
        if rng.random() < 1 / 14:
            hour = 18 if rng.random() < 0.25 else 0
            s, e = _local_span(d, rng.randint(1, 3), zone, hour)
            sessions, conv = rng.uniform(1.05, 1.4), rng.uniform(1.2, 1.7)
            out.append(Effect("promotion", site.dataset_id, s, e, sessions, conv, "promotion"))
    return out


def _newsletters(world: World, site: Site, rng: Random) -> list[Burst]:
    """About one newsletter a week, sent between 08:00 and 11:00 local on a weekday."""
    zone = ZoneInfo(site.timezone)
    out = []
    for d in _local_dates(world, zone):
        if d.weekday() < 5 and rng.random() < 1 / 5:
            hour = rng.uniform(8, 11)
            t = datetime.combine(d, time(int(hour), int(hour % 1 * 60)), tzinfo=zone)
            extra = rng.uniform(0.04, 0.2) * 24 * site.sessions_per_hour * world.scale
            out.append(Burst(site.dataset_id, t.timestamp(), extra, rng.uniform(1, 3) * HOUR))
    return out


def _incidents(world: World, rng: Random) -> list[Planted]:
    """One incident of each kind in the last week, never within ``_GAP`` of another
    incident of the same dataset (so that alerts can resolve in between)."""
    w0, w1 = world.incident_week
    kinds = list(INCIDENT_TYPES)
    rng.shuffle(kinds)
    out: list[Planted] = []
    for kind in kinds:
        lo, hi = _DURATION_H[kind]
        for _ in range(500):
            site = rng.choice(world.sites)
            length = round(rng.uniform(lo, hi) * 12) * SLOT
            start = round(rng.uniform(w0, w1 - length - 2 * HOUR))
            clash = any(
                p.dataset_id == site.dataset_id
                and start < p.end + _GAP
                and p.start < start + length + _GAP
                for p in out
            )
            if not clash:
                break
        else:
            raise ConfigError("traffic: cannot place the incidents (too few datasets)")
        name = None
        if rng.random() < _ONE_NAME.get(kind, 0.0):
            pool = _pixel_names(site) if kind == "pixel_broken" else sorted(site.server_events)
            name = rng.choice(pool)
        out.append(Planted(kind, site.dataset_id, name, float(start), float(start + length)))
    out.sort(key=lambda p: p.start)
    return out


def _pixel_names(site: Site) -> list[str]:
    return sorted(_RETAIL if site.vertical == "retail" else _LEADS)

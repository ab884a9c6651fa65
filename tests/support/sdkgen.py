"""Seeded generator of VALID events exactly as Meta's official Python SDK sends them.

Events are built with ``facebook_business.adobjects.serverside`` (``UserData``,
``CustomData``, ``Content``, ``AppData``, ``Event``) and serialised with
``EventRequest.get_params()`` — the SDK's own normalisation and hashing, no network
call. ``fbc``/``fbp`` come either from ``capi_param_builder`` (via
``Event.set_request_context``, so they carry the builder's appendices and the URL gets
one too) or from plain cookie values. Every check must stay quiet (no warn/crit) on this
corpus: it is the "no false alarms" baseline of docs/contracts.md §2.

The inputs vary on purpose: upper/lower case and padded emails, phones with country
codes in many formats, UTF-8 names, dates, genders, cities/states/zips/countries (incl.
``NA``, Namibia), multi-value lists, already-hashed inputs (also upper-case hex),
IPv4/IPv6 (a few with a parameter-builder appendix), user agents, every
``action_source``, every standard event plus custom events, values and currencies,
order ids, unique event ids.

Each ``action_source`` carries what it can (docs/contracts.md §12): website and app events
the visitor's IP address and user agent, website events ``fbp``/``fbc``, app events the
install id (``anon_id``) and, with tracking allowed, the advertiser id (``madid``);
store, CRM, call-centre, chat, e-mail and messaging events contact data only (messaging
ones sometimes a ``ctwa_clid``, CRM ones a ``lead_id``). Upper-funnel website events
mostly come from anonymous visitors: IP, user agent and cookies, no contact data.

Determinism: the same ``(n, seed, now)`` gives the same events within a process. The
SDK de-duplicates list values with ``set()``, so the *order* inside multi-value lists
may differ between interpreter runs (string hashing is randomised); content does not.
"""

from __future__ import annotations

import hashlib
import json
import random
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from unittest import mock

import orjson
from capi_param_builder import param_builder as param_builder_module
from capi_param_builder.model import PlainDataObject
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.app_data import AppData
from facebook_business.adobjects.serverside.content import Content
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.delivery_category import DeliveryCategory
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.extended_device_info import ExtendedDeviceInfo
from facebook_business.adobjects.serverside.gender import Gender
from facebook_business.adobjects.serverside.messaging_channel import MessagingChannel
from facebook_business.adobjects.serverside.normalize import Normalize
from facebook_business.adobjects.serverside.user_data import UserData

STANDARD_EVENTS: tuple[str, ...] = (
    "AddPaymentInfo", "AddToCart", "AddToWishlist", "CompleteRegistration", "Contact",
    "CustomizeProduct", "Donate", "FindLocation", "InitiateCheckout", "Lead", "PageView",
    "Purchase", "Schedule", "Search", "StartTrial", "SubmitApplication", "Subscribe",
    "ViewContent",
)  # fmt: skip
CUSTOM_EVENTS: tuple[str, ...] = (
    "NewsletterSignup", "VideoWatched50", "QuoteRequested", "store_visit", "ButtonClick",
    "WishlistShared", "refund_requested",
)  # fmt: skip
# PageView/ViewContent dominate real traffic; every standard name still appears.
_EVENT_WEIGHTS = {"PageView": 12, "ViewContent": 8, "AddToCart": 4, "Purchase": 3}
ACTION_SOURCES: tuple[ActionSource, ...] = tuple(ActionSource)
_SOURCE_WEIGHTS = {ActionSource.WEBSITE: 14, ActionSource.APP: 3}
# Sources with a browser or a device: they forward its IP address and user agent.
_DEVICE_SOURCES = frozenset({ActionSource.WEBSITE, ActionSource.APP})
CONVERSIONS = frozenset({"Purchase", "Lead", "CompleteRegistration", "Subscribe", "StartTrial",
                         "SubmitApplication", "Schedule", "Contact", "Donate"})  # fmt: skip
ANONYMOUS_SHARE = 0.6  # upper-funnel website events without contact data

FIRST_NAMES = (
    "John", "Mary", "José", "Zoë", "Valéry", "Øyvind", "Łukasz", "Ngọc", "李", "Андрей",
    "Fatima", "Aiko", "Seán", "Anne-Marie", "Jean-Luc", "Chloé", "Mohammed", "Priya",
    "Björn", "Nan", "O'Neil",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "O'Brien", "Müller", "García", "Nguyễn", "Kowalski", "Dubois", "Rossi",
    "van der Berg", "Ivanova", "Tanaka", "Papadopoulos", "Đặng", "Núñez", "Smith-Jones",
    "Na", "Wolfeschlegelsteinhausen", "Ó Súilleabháin",
)  # fmt: skip
_EMAIL_LOCALS = ("john", "mary", "jose", "zoe", "a.b", "first_last", "x99", "info+shop")
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.co.uk", "outlook.com", "web.de", "orange.fr", "icloud.com",
    "mail.example.org", "uni-example.edu",
)  # fmt: skip
# (country code, local digit groups): the SDK strips +, spaces, dashes and brackets.
PHONE_PLANS = (("1", (3, 3, 4)), ("44", (2, 4, 4)), ("49", (2, 8)), ("33", (1, 2, 2, 2, 2)),
               ("81", (1, 4, 4)), ("55", (2, 5, 4)), ("91", (5, 5)), ("61", (1, 4, 4)))  # fmt: skip
CITIES = (
    "New York", "San Francisco", "São Paulo", "München", "Saint-Étienne", "Los Angeles",
    "Zürich", "Kraków", "St. Louis", "Tokyo", "Windhoek",
)  # fmt: skip
STATES = ("CA", "NY", "tx", "FL", "WA", "BY", "be", "ON", "QC", "NSW")
ZIPS = ("94035", "94035-1234", "10115", "M1 1AE", "SW1A 1AA", "75008", "K1A 0B6", "2000")
COUNTRIES = ("US", "us", "DE", "fr", "GB", "BR", "JP", "CA", "AU", "IN", "NA", "ch")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "BRL", "INR", "CAD", "AUD", "CHF", "PLN", "usd", "eur")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36",
    "MyShopApp/5.2.1 (iOS 18.1; iPhone15,2)",
)
HOSTS = (
    "www.shop.example.com", "shop.example.com", "example.com", "www.shop.example.co.uk",
    "store.example.de:8443",
)  # fmt: skip
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LEGACY_APPENDICES = ("AQ", "Ag", "Aw", "BA", "BQ", "Bg")
WINDOW_SECONDS = 6 * 3600  # events fall within the last hours before ``now``


@dataclass(slots=True)
class Person:
    """One customer; several events may belong to the same person (realistic repeats)."""

    first: str
    last: str
    emails: list[str]
    phones: list[str]
    dob: str
    gender: Gender
    city: str
    state: str
    zip: str
    country: str
    external_ids: list[str]
    ip: str
    user_agent: str
    fbp: str
    fbclid: str | None
    prehashed: bool
    extras: dict[str, bool] = field(default_factory=dict)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def _phone(rng: random.Random) -> str:
    cc, groups = rng.choice(PHONE_PLANS)
    parts = [_digits(rng, g) for g in groups]
    style = rng.randrange(4)
    if style == 0:
        return f"+{cc} " + " ".join(parts)
    if style == 1:
        return f"+{cc} ({parts[0]}) " + "-".join(parts[1:])
    if style == 2:
        return f"00{cc} " + "".join(parts)
    return f"+{cc}" + "-".join(parts)


def _email(rng: random.Random, i: int) -> str:
    local = f"{rng.choice(_EMAIL_LOCALS)}{i}"
    email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    style = rng.randrange(4)
    if style == 0:
        return email.upper()
    if style == 1:
        return f"  {email.capitalize()} "
    return email


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "{}.{}.{}.{}".format(
            rng.choice((23, 81, 151, 172, 203, 92)), *rng.choices(range(256), k=3)
        )
    groups = [f"{rng.getrandbits(16):x}" for _ in range(4)]
    ip = "2a02:" + ":".join(groups) + "::" + f"{rng.getrandbits(16):x}"
    if rng.random() < 0.1:
        ip = ip + ".AQICAQMC"  # Node/PHP/JS parameter builders append to IPs too
    return ip


def _fbclid(rng: random.Random) -> str:
    body = "".join(rng.choices(_B64URL, k=rng.randint(20, 60)))
    return ("IwAR" + body) if rng.random() < 0.7 else ("IwZXh0bgNhZW0BMAB_aem_" + body)


def _person(rng: random.Random, i: int, now: float) -> Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    n_emails = rng.choices((0, 1, 2), (1, 8, 1))[0]
    n_phones = rng.choices((0, 1, 2), (3, 12, 1))[0] or (0 if n_emails else 1)
    emails = [_email(rng, i * 10 + k) for k in range(n_emails)]
    dob = f"{rng.randint(1940, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    cookie_ms = int((now - rng.uniform(60, 85 * 86400)) * 1000)
    fbp = f"fb.1.{cookie_ms}.{rng.randint(0, 2147483647)}"
    if rng.random() < 0.15:
        fbp += "." + rng.choice(_LEGACY_APPENDICES)
    ext = [str(uuid.UUID(int=rng.getrandbits(128), version=4))]
    if rng.random() < 0.2:
        ext = [f"cust-{i}", _sha(f"cust-{i}")]
    return Person(
        first, last, emails, [_phone(rng) for _ in range(n_phones)], dob,
        rng.choice((Gender.MALE, Gender.FEMALE)), rng.choice(CITIES), rng.choice(STATES),
        rng.choice(ZIPS), rng.choice(COUNTRIES), ext, _ip(rng), rng.choice(USER_AGENTS),
        fbp, _fbclid(rng) if rng.random() < 0.4 else None, rng.random() < 0.12,
        {k: rng.random() < p for k, p in (("external_id", 0.85), ("names", 0.8),
                                          ("address", 0.6), ("dob", 0.3), ("ge", 0.4))},
    )  # fmt: skip


def _prehash(field_name: str, value: str, rng: random.Random) -> str:
    """What a sender that hashes by itself passes to the SDK (sometimes in upper case)."""
    digest = Normalize.normalize_field(field_name, value)
    return digest.upper() if rng.random() < 0.3 else digest


def _user_data(p: Person, rng: random.Random, source: ActionSource, name: str) -> UserData:
    device = source in _DEVICE_SOURCES
    ud = UserData(client_ip_address=p.ip, client_user_agent=p.user_agent) if device else UserData()
    if (
        source is ActionSource.WEBSITE
        and name not in CONVERSIONS
        and (rng.random() < ANONYMOUS_SHARE)
    ):
        return ud  # an anonymous visitor: cookies are added with the request context
    hashed = (lambda f, vs: [_prehash(f, v, rng) for v in vs]) if p.prehashed else None
    ud.emails = hashed("em", p.emails) if hashed else list(p.emails)
    if p.phones:
        ud.phones = hashed("ph", p.phones) if hashed else list(p.phones)
    if p.extras["names"]:
        ud.first_names = hashed("fn", [p.first]) if hashed else [p.first]
        ud.last_names = hashed("ln", [p.last]) if hashed else [p.last]
    if p.extras["address"]:
        ud.cities, ud.states, ud.zip_codes = [p.city], [p.state], [p.zip]
    ud.country_codes = [p.country]
    if p.extras["dob"]:
        ud.dates_of_birth = [p.dob]
    if p.extras["ge"]:
        ud.genders = [p.gender]
    if p.extras["external_id"]:
        ud.external_ids = list(p.external_ids)
    return ud


_CONTENT_EVENTS = {"AddToCart", "AddToWishlist", "InitiateCheckout", "AddPaymentInfo",
                   "ViewContent", "CustomizeProduct"}  # fmt: skip
_VALUE_EVENTS = _CONTENT_EVENTS | {
    "Purchase", "Subscribe", "StartTrial", "Donate", "Lead", "CompleteRegistration",
    "SubmitApplication", "Schedule",
}  # fmt: skip


def _price(rng: random.Random, currency: str) -> float | int:
    if currency.upper() == "JPY" or rng.random() < 0.15:
        return rng.randint(0, 20000)
    return round(rng.uniform(0.5, 900.0), 2)


def _custom_data(name: str, rng: random.Random, order_id: str) -> CustomData | None:
    if name == "Search":
        return CustomData(search_string=rng.choice(("red shoes", "läufer größe 42", "tv")))
    if name not in _VALUE_EVENTS:
        return None if rng.random() < 0.7 else CustomData(content_name="Landing page")
    currency = rng.choice(CURRENCIES)
    items = [
        Content(product_id=f"SKU-{rng.randint(100, 99999)}", quantity=rng.randint(1, 3),
                item_price=_price(rng, currency), title="Blue T-shirt", brand="Acme",
                category="apparel", delivery_category=rng.choice(tuple(DeliveryCategory)))
        for _ in range(rng.randint(1, 3))
    ]  # fmt: skip
    cd = CustomData(value=_price(rng, currency), currency=currency, content_type="product",
                    contents=items, content_ids=[c.product_id for c in items])  # fmt: skip
    if name == "Purchase":
        cd.order_id, cd.num_items = order_id, sum(c.quantity for c in items)
    elif name == "CompleteRegistration":
        cd.status = "registered"
    elif name in ("Subscribe", "StartTrial"):
        cd.predicted_ltv = round(rng.uniform(10, 500), 2)
    return cd


@contextmanager
def _builder_clock(rng: random.Random, seconds: float) -> Iterator[None]:
    """Make the parameter builder deterministic: its clock and its random fbp number."""
    clock = types.SimpleNamespace(time=lambda: seconds)
    with (
        mock.patch.object(param_builder_module, "time", clock),
        mock.patch.object(param_builder_module, "random", rng),
    ):
        yield


def _set_browser_ids(event: Event, p: Person, rng: random.Random, t: int) -> None:
    """fbc/fbp (and maybe the URL) via the parameter builder, or as plain cookies."""
    host = rng.choice(HOSTS)
    path = rng.choice(("/", "/products/blue-t-shirt", "/checkout/thanks", "/search?q=tv"))
    if rng.random() < 0.5:
        cookies: dict[str, str] = {} if rng.random() < 0.2 else {"_fbp": p.fbp}
        if p.fbclid and rng.random() < 0.5:  # returning click: same fbclid, cookie kept
            cookies["_fbc"] = f"fb.1.{int((t - rng.uniform(60, 86400)) * 1000)}.{p.fbclid}"
        query = {"fbclid": [p.fbclid]} if p.fbclid else {}
        request = PlainDataObject(host, query, cookies, None, None, None, "https", path)
        with _builder_clock(rng, t - rng.uniform(1, 600)):
            event.set_request_context(request)
        if rng.random() < 0.5:
            event.event_source_url = f"https://{host}{path}"
        return
    event.user_data.fbp = p.fbp
    if p.fbclid:
        event.user_data.fbc = f"fb.1.{int((t - rng.uniform(1, 20 * 86400)) * 1000)}.{p.fbclid}"
    event.event_source_url = f"https://{host}{path}"


def _event(i: int, seed: int, t: int, p: Person, rng: random.Random) -> Event:
    weights = [_EVENT_WEIGHTS.get(n, 1) for n in STANDARD_EVENTS] + [1] * len(CUSTOM_EVENTS)
    name = rng.choices(STANDARD_EVENTS + CUSTOM_EVENTS, weights)[0]
    source = rng.choices(ACTION_SOURCES, [_SOURCE_WEIGHTS.get(s, 1) for s in ACTION_SOURCES])[0]
    order_id = f"ord-{seed}-{i}"
    event_id = order_id if name == "Purchase" and rng.random() < 0.5 else (
        f"{seed}.{i}.{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    )  # fmt: skip
    event = Event(
        event_name=name,
        event_time=t,
        event_id=event_id,
        action_source=source,
        user_data=_user_data(p, rng, source, name),
        custom_data=_custom_data(name, rng, order_id),
    )
    if source is ActionSource.WEBSITE:
        _set_browser_ids(event, p, rng, t)
        if rng.random() < 0.2:
            event.referrer_url = "https://www.google.com/"
    elif rng.random() < 0.2:
        event.user_data.fbp = p.fbp  # e.g. a chat or email follow-up of a web visitor
    if source is ActionSource.APP:
        tracking = rng.random() < 0.6
        event.user_data.anon_id = f"XZ{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        if tracking:
            event.user_data.madid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        event.app_data = AppData(
            advertiser_tracking_enabled=tracking, application_tracking_enabled=True,
            extinfo=ExtendedDeviceInfo(ext_info_version="i2", app_package_name="com.example.shop",
                                       short_version="5.2", long_version="5.2.1",
                                       os_version="18.1", device_model_name="iPhone15,2",
                                       locale="en_US", carrier="T-Mobile"),
        )  # fmt: skip
    if source is ActionSource.BUSINESS_MESSAGING:
        event.messaging_channel = MessagingChannel.WHATSAPP
        if rng.random() < 0.5:
            event.user_data.ctwa_clid = "ARA" + "".join(rng.choices(_B64URL, k=40))
    if source is ActionSource.SYSTEM_GENERATED and name == "Lead" and rng.random() < 0.5:
        event.user_data.lead_id = str(rng.randint(10**14, 10**15 - 1))
    roll = rng.random()
    if roll < 0.08:
        event.data_processing_options = ["LDU"]
        event.data_processing_options_country, event.data_processing_options_state = 1, 1000
    elif roll < 0.15:
        event.data_processing_options = []
    if rng.random() < 0.05:
        event.opt_out = False
    return event


def _sdk_objects(times: list[int], seed: int, now: float) -> list[Event]:
    rng = random.Random(seed)
    people = [_person(rng, k, now) for k in range(max(1, len(times) // 3))]
    return [_event(i, seed, t, rng.choice(people), rng) for i, t in enumerate(times)]


def _normalized(events: list[Event], dataset_id: str = "0", **request: Any) -> dict[str, Any]:
    """``EventRequest.get_params()``: ``data`` is a list of JSON strings, as the SDK posts."""
    return EventRequest(pixel_id=dataset_id, events=events, **request).get_params()


def sdk_events(n: int, seed: int, *, now: float) -> list[dict[str, Any]]:
    """``n`` valid events as the SDK would POST them, within the last hours before ``now``."""
    rng = random.Random(seed ^ 0x5EED)
    times = sorted(int(now - rng.uniform(300, WINDOW_SECONDS)) for _ in range(n))
    params = _normalized(_sdk_objects(times, seed, now))
    return [json.loads(item) for item in params["data"]]


def _batch_plan(n: int, rng: random.Random, now: float) -> list[tuple[float, int]]:
    """(sent_at, batch size) pairs totalling ``n`` events, oldest first."""
    sizes: list[int] = []
    left = n
    while left > 0:
        size = min(rng.choice((1, 1, 2, 5, 10, 25, 50, rng.randint(1, 50))), left)
        sizes.append(size)
        left -= size
    sends = sorted(now - rng.uniform(0, WINDOW_SECONDS) for _ in sizes)
    return list(zip(sends, sizes, strict=True))


def _sent_at(rng: random.Random, sent: float) -> str | float:
    roll = rng.random()
    if roll < 0.5:
        return (
            datetime.fromtimestamp(sent, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    if roll < 0.75:
        tz = timezone(timedelta(hours=rng.choice((-5, 1, 2, 9))))
        return datetime.fromtimestamp(sent, tz).isoformat(timespec="seconds")
    return round(sent, 3)


def _trace_id(rng: random.Random) -> str:
    return "A" + "".join(rng.choices(_B64URL, k=22))


def _record(
    rng: random.Random, sent: float, batch: list[Event], dataset_id: str, k: int
) -> dict[str, Any]:
    agent = {"partner_agent": "myplatform"} if rng.random() < 0.3 else {}
    params = _normalized(batch, dataset_id, **agent)
    roll = rng.random()
    if roll < 0.65:
        params["data"] = [json.loads(s) for s in params["data"]]
    elif roll < 0.72:
        params["data"] = json.dumps([json.loads(s) for s in params["data"]])
    # else: the SDK's own form, a list of JSON-encoded strings
    body = {"events_received": len(batch), "messages": [], "fbtrace_id": _trace_id(rng)}
    record: dict[str, Any] = {
        "sent_at": _sent_at(rng, sent),
        "dataset_id": dataset_id,
        "request": params,
        "response": {"status": 200, "body": body},
        "duration_ms": rng.randint(80, 900),
    }
    if rng.random() < 0.1:
        record["_sender"] = {"host": "app-1", "batch": k}  # "_" keys are ignored (§1)
    return record


def sdk_log_lines(n: int, seed: int, *, now: float, dataset_id: str) -> list[bytes]:
    """Delivery records (docs/contracts.md §1) carrying ``n`` SDK events in batches of 1-50.

    Each record's ``sent_at`` is seconds to a few minutes after its events; the response
    is a success with ``events_received`` equal to the batch size. About a third of the
    records keep ``request.data`` in the SDK's JSON-string form (per item or whole list).
    """
    rng = random.Random(seed ^ 0x10C5)
    plan = _batch_plan(n, rng, now)
    times = [int(sent - rng.uniform(1, 180)) for sent, size in plan for _ in range(size)]
    events = _sdk_objects(times, seed, now)
    lines: list[bytes] = []
    start = 0
    for k, (sent, size) in enumerate(plan):
        lines.append(orjson.dumps(_record(rng, sent, events[start : start + size], dataset_id, k)))
        start += size
    return lines

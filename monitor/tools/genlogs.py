"""Seeded generator of realistic Meta CAPI delivery-log lines (CONTRACTS.md §1, shape (a)).

One line per ``POST /{dataset_id}/events`` as a sender logs it: ``sent_at``, ``dataset_id``,
the request (``data`` = 1-50 events, mostly small batches), Meta's response and
``duration_ms``. The events look like what Meta's Python SDK sends for a web shop:
SHA-256 user data (real digests of fake people), public IPs, long real-world user agents,
``fbc``/``fbp`` cookies in the official format (some with parameter-builder appendices),
product ``custom_data``, a unique ``event_id`` on every event and send lags of seconds to
minutes.

With ``defects=0`` the output is clean: an audit must find nothing at ``warn`` or above.
With ``defects > 0`` each event, and independently each request, carries one realistic
defect with that probability (see ``EVENT_DEFECTS`` and ``RECORD_DEFECTS``).

Used by the audit benchmark, the bundled samples (``samples/generate.py``, which builds
on ``TrafficFactory``) and the tests. Dependency-light on purpose (stdlib + orjson).

    python -m monitor.tools.genlogs OUT --events N [--seed S] [--defects 0.01] [--gzip]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import gzip as gzip_mod
import hashlib
import ipaddress
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import IO, Any, Literal, cast

import orjson

EVENT_DEFECTS = (
    "plaintext_email",  # hashing skipped: em in clear text
    "md5_email",  # legacy helper hashed em with MD5
    "uppercase_hash",  # em/ph digests upper-cased (e.g. PHP strtoupper, .NET ToString("X2"))
    "ms_event_time",  # JavaScript Date.now() used as event_time
    "missing_event_id",  # dedup impossible
    "missing_user_agent",  # website event without client_user_agent
)
RECORD_DEFECTS = (
    "error_190",  # access token expired (HTTP 500, code 190 / subcode 463)
    "error_2804003",  # a stale event made Meta reject the whole batch
    "error_17",  # user request limit reached (throttled)
    "test_event_code",  # Test Events code left on in production
    "malformed",  # an extra unparseable line (truncated write, binary junk, text log)
)

EPOCH_S = 30 * 86400  # cookie "epoch": fbp/fbc creation times are renewed every 30 days
_DAY = 86400
_LUT = 1024  # size of the lookup tables that replace weighted random choices

_FIRST = (
    "anna", "lukas", "maria", "jonas", "emma", "noah", "sophie", "liam", "olivia", "james",
    "mia", "ben", "lea", "paul", "hannah", "felix", "laura", "david", "sarah", "michael",
    "julia", "thomas", "lisa", "daniel", "chloé", "lucas", "amélie", "léon", "marie", "elias",
    "clara", "max", "nina", "tim", "lena", "jan", "sofia", "mateo", "aiko", "yusuf", "zeynep",
    "fatima", "mehmet", "ali", "ana", "joão", "inês", "pierre", "camille", "louis", "manon",
    "giulia", "marco", "chiara", "luca", "emily", "jack", "grace", "oliver", "isla", "zoë",
)  # fmt: skip
_LAST = (
    "schmidt", "müller", "schneider", "fischer", "weber", "meyer", "wagner", "becker",
    "hoffmann", "schulz", "smith", "johnson", "williams", "brown", "jones", "garcia", "miller",
    "davis", "martin", "bernard", "dubois", "rossi", "russo", "ferrari", "silva", "santos",
    "kowalski", "nowak", "yılmaz", "kaya", "nguyen", "kim", "lee", "tanaka", "sato", "obrien",
    "vanderberg", "jansen", "dejong", "hansen", "larsen", "novak", "horvat", "popescu", "ivanova",
    "fernández", "lópez", "gonzález", "moreau", "laurent", "costa", "ricci", "taylor", "wilson",
)  # fmt: skip
# Reserved example domains (RFC 2606/6761): the fake addresses can never be someone's.
_MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")

# (city, state or "", zips, country, currency, weight). Values are already normalised the
# way Meta asks (lowercase, no spaces or punctuation), as a careful sender would do.
_PLACES: tuple[tuple[str, str, tuple[str, ...], str, str, int], ...] = (
    ("berlin", "be", ("10115", "10437", "12047", "10999"), "de", "EUR", 12),
    ("hamburg", "hh", ("20095", "22767", "20357"), "de", "EUR", 8),
    ("münchen", "by", ("80331", "80802", "81541"), "de", "EUR", 9),
    ("köln", "nw", ("50667", "50823"), "de", "EUR", 6),
    ("frankfurtammain", "he", ("60311", "60594"), "de", "EUR", 5),
    ("leipzig", "sn", ("04109", "04275"), "de", "EUR", 4),
    ("wien", "", ("1010", "1070", "1160"), "at", "EUR", 6),
    ("graz", "", ("8010",), "at", "EUR", 2),
    ("zürich", "zh", ("8001", "8004", "8050"), "ch", "CHF", 5),
    ("bern", "be", ("3011",), "ch", "CHF", 2),
    ("newyork", "ny", ("10001", "10011", "10025"), "us", "USD", 5),
    ("losangeles", "ca", ("90012", "90026"), "us", "USD", 3),
    ("chicago", "il", ("60601", "60614"), "us", "USD", 2),
    ("austin", "tx", ("78701", "78704"), "us", "USD", 2),
    ("seattle", "wa", ("98101", "98109"), "us", "USD", 2),
    ("boston", "ma", ("02108", "02116"), "us", "USD", 1),
    ("london", "", ("sw1a1aa", "ec1a1bb", "n19gu", "e28dy"), "gb", "GBP", 6),
    ("manchester", "", ("m11ae", "m204bx"), "gb", "GBP", 2),
    ("paris", "", ("75001", "75011", "75015"), "fr", "EUR", 4),
    ("lyon", "", ("69002",), "fr", "EUR", 1),
    ("amsterdam", "", ("1012ab", "1072ld"), "nl", "EUR", 3),
    ("utrecht", "", ("3511ce",), "nl", "EUR", 1),
)
_PHONE_PREFIX = {  # E.164 without "+", then how many random national digits follow
    "de": ("49151", 8), "at": ("43664", 7), "ch": ("4179", 7), "fr": ("336", 8),
    "nl": ("316", 8), "gb": ("447700900", 3), "us": ("1", 0),
}  # fmt: skip

_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.2849.80",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22B83 [FBAN/FBIOS;FBAV/490.0.0.43.104;FBBV/661234567;"
    "FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/18.1;FBSS/3;FBID/phone;FBLC/de_DE;FBOP/5;"
    "FBRV/663456789]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/22A3370 Instagram 356.0.2.27.86 (iPhone14,5; iOS 18_0_1; "
    "de_DE; de; scale=3.00; 1170x2532; 657432198)",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.102 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/489.0.0.66.81;]",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.6261.105 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.7 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
)
# Public first octets / IPv6 prefixes of large consumer ISPs; the rest is random and checked
# with ``is_global`` so that no address is private, reserved or documentation-only.
_V4_FIRST = (
    24, 31, 37, 46, 50, 62, 67, 68, 71, 73, 75, 76, 77, 78, 79, 80, 84, 85, 87, 88, 89, 91,
    92, 93, 94, 95, 98, 99, 109, 174, 176, 178, 185, 188, 212, 213, 217,
)  # fmt: skip
_V6_PREFIX = (
    "2a02:8108",
    "2a02:810d",
    "2a01:c22",
    "2003:e4",
    "2a00:20",
    "2600:1700",
    "2601:18c",
    "2a01:4b00",
    "2a01:e0a",
)
_PB_APPENDIX = ("AQIAAQEC", "AQICAQEC", "AQIDAQEC")  # capi-param-builder Python 1.1.2

_OUTDOOR_ADJ = ("trail", "summit", "alpine", "coastal", "urban", "nordic")
_OUTDOOR_ITEM = (  # (slug, base price)
    ("rain-jacket", 179.0), ("fleece", 79.0), ("hiking-boots", 159.0), ("backpack-30l", 119.0),
    ("merino-shirt", 69.0), ("down-vest", 139.0), ("beanie", 24.95), ("trail-socks", 16.95),
    ("softshell-pants", 99.0), ("headlamp", 44.9),
)  # fmt: skip
_COLOURS = ("black", "navy", "olive", "rust", "grey", "sand")
_CATEGORIES = ("jackets", "fleece", "footwear", "packs", "base-layers", "accessories", "sale")
_SEARCH = ("rain jacket", "merino", "boots size 42", "gore-tex", "kids", "backpack", "gloves")
_BLOG = (
    "how-to-layer-for-winter-hikes",
    "waterproof-ratings-explained",
    "alpine-packing-list",
    "caring-for-merino",
    "best-day-hikes-near-munich",
)
_LEAD_PAGES = (
    "solar-quote",
    "heat-pump-quote",
    "battery-storage",
    "wallbox-installation",
    "energy-audit",
)
_GUIDES = (
    "solar-roi-calculator",
    "heat-pump-subsidies-2026",
    "battery-sizing-guide",
    "installer-checklist",
)
_CAMPAIGNS = (
    "bf26_prospecting",
    "retargeting_cart",
    "winter_sale",
    "lookalike_buyers",
    "brand_awareness_q4",
)
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True, slots=True)
class Site:
    """What kind of traffic a dataset sees and how its sender formats it."""

    host: str
    kind: Literal["retail", "leadgen"]
    event_weights: tuple[tuple[str, int], ...]
    list_values: bool = True  # SDK style: hashed keys as one-element lists
    partner_agent: str | None = None
    full_share: float = 0.85  # events with every match key; the rest carry em+ids only


SHOP = Site(
    host="shop.example.com",
    kind="retail",
    event_weights=(
        ("PageView", 40),
        ("ViewContent", 26),
        ("AddToCart", 13),
        ("InitiateCheckout", 8),
        ("Purchase", 6),
        ("Lead", 3),
    ),
)
LEADGEN = Site(
    host="quotes.example.net",
    kind="leadgen",
    event_weights=(("PageView", 50), ("ViewContent", 25), ("Lead", 20), ("Contact", 5)),
    list_values=False,  # hand-written integration: plain strings
    partner_agent="formbridge",
)


@dataclass(frozen=True, slots=True)
class Person:
    """One fake visitor: clear values exist only to plant clear-text defects."""

    email: str
    digests: dict[str, str]  # em ph fn ln ct st zp country external_id -> SHA-256 hex
    email_md5: str
    ip: str
    user_agent: str
    currency: str
    fbp_age_s: int  # age of the _fbp cookie at the start of each cookie epoch (>= 1 day)
    fbp_random: int
    fbclid: str | None  # came through an ad click (has _fbc)
    fbc_age_s: int
    appendix: str | None  # parameter-builder appendix on the cookies, if any


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue item with prebuilt (per currency) ViewContent/AddToCart custom_data."""

    id: str
    price: float
    url: str
    view: dict[str, dict[str, Any]]
    cart: dict[str, dict[str, Any]]


def sha256_hex(value: str) -> str:
    """Lower-case SHA-256 hex of a normalised value, as Meta expects."""
    return hashlib.sha256(value.encode()).hexdigest()


def iso_z(t: float) -> str:
    """Unix seconds -> ``2026-11-20T12:00:03.412Z`` (what JavaScript's toISOString logs)."""
    ms = round(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_iso(value: str) -> float:
    """ISO 8601 (``Z`` or offset) -> Unix seconds; naive times are UTC."""
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _ascii(value: str) -> str:
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()


def _token(rng: Random, n: int) -> str:
    """``n`` random base64url characters (the fbclid alphabet)."""
    return base64.urlsafe_b64encode(rng.randbytes(n)).decode()[:n]


def _lut(rng: Random, weighted: list[tuple[Any, float]]) -> list[Any]:
    """A shuffled table of ``_LUT`` items in proportion to their weights (O(1) sampling)."""
    total = sum(w for _, w in weighted)
    table: list[Any] = []
    for item, w in weighted:
        table.extend([item] * round(_LUT * w / total))
    table = (table + [weighted[0][0]] * _LUT)[:_LUT]
    rng.shuffle(table)
    return table


def _person(rng: Random, i: int) -> Person:
    fn, ln = rng.choice(_FIRST), rng.choice(_LAST)
    city, st, zips, country, currency, _ = rng.choices(_PLACES, [p[5] for p in _PLACES])[0]
    local = rng.choice((f"{fn}.{ln}", f"{fn[0]}{ln}", f"{fn}{ln}", f"{fn}_{ln}"))
    email = f"{_ascii(local)}{rng.randrange(1, 99)}@{rng.choice(_MAIL_DOMAINS)}"
    prefix, n = _PHONE_PREFIX[country]
    if country == "us":  # 555-01xx numbers are reserved for fiction
        phone = f"1{rng.choice(('212', '310', '312', '512', '206'))}55501{rng.randrange(100):02d}"
    else:
        phone = prefix + str(rng.randrange(10**n)).zfill(n)
    clear = {
        "em": email,
        "ph": phone,
        "fn": fn,
        "ln": ln,
        "ct": city,
        "zp": rng.choice(zips),
        "country": country,
        "external_id": f"cust-{100000 + i * 7919 % 900000}",
    }
    if st:
        clear["st"] = st
    has_click = rng.random() < 0.3
    return Person(
        email=email,
        digests={k: sha256_hex(v) for k, v in clear.items()},
        email_md5=hashlib.md5(email.encode(), usedforsecurity=False).hexdigest(),
        ip=_ip(rng),
        user_agent=rng.choice(_USER_AGENTS),
        currency=currency,
        fbp_age_s=_DAY + rng.randrange(20 * _DAY),
        fbp_random=rng.randrange(2**31),
        fbclid=_fbclid(rng) if has_click else None,
        fbc_age_s=_DAY + rng.randrange(6 * _DAY),
        appendix=rng.choice(_PB_APPENDIX) if rng.random() < 0.1 else None,
    )


def _ip(rng: Random) -> str:
    while True:
        if rng.random() < 0.4:
            groups = ":".join(f"{rng.randrange(1, 0xFFFF):x}" for _ in range(6))
            addr = f"{rng.choice(_V6_PREFIX)}:{groups}"
        else:
            rest = ".".join(str(rng.randrange(1, 255)) for _ in range(3))
            addr = f"{rng.choice(_V4_FIRST)}.{rest}"
        ip = ipaddress.ip_address(addr)
        if ip.is_global:
            return str(ip)  # canonical (compressed) form, as servers log it


def _fbclid(rng: Random) -> str:
    head = rng.choice(("IwAR", "IwAR", "IwZXh0bgNhZW0BMAABHR", "IwY2xjawG"))
    body = _token(rng, rng.randrange(30, 56))
    return head + body + (f"_aem_{_token(rng, 22)}" if rng.random() < 0.2 else "")


def _lag_table(rng: Random) -> list[float]:
    """Send lag (seconds) of a real-time server integration: mostly seconds, a few minutes."""
    lags = [0.1 + rng.expovariate(1 / 2.5) for _ in range(870)]
    lags += [rng.uniform(10, 180) for _ in range(124)]
    lags += [rng.uniform(180, 900) for _ in range(_LUT - len(lags))]
    rng.shuffle(lags)
    return lags


def _catalogue(rng: Random, host: str) -> list[Product]:
    out: list[Product] = []
    for adj in _OUTDOOR_ADJ:
        for item, base in _OUTDOOR_ITEM:
            for colour in _COLOURS:
                pid = f"NW-{10000 + len(out) * 37 % 90000:05d}"
                price = round(base * rng.choice((0.8, 0.9, 1.0, 1.0, 1.1, 1.25)), 2)
                url = f"https://{host}/products/{adj}-{item}-{colour}"
                view, cart = {}, {}
                for cur in ("EUR", "USD", "GBP", "CHF"):
                    items = [{"id": pid, "quantity": 1, "item_price": price}]
                    common = {
                        "currency": cur,
                        "value": price,
                        "content_ids": [pid],
                        "content_type": "product",
                        "contents": items,
                    }
                    view[cur] = {**common, "content_category": item}
                    cart[cur] = common
                out.append(Product(pid, price, url, view, cart))
    return out


def _pages(rng: Random, site: Site) -> list[str]:
    if site.kind == "retail":
        paths = ["/", "/", "/", "/collections/new-arrivals"]
        paths += [f"/collections/{c}" for c in _CATEGORIES]
        paths += [f"/collections/{c}?page={n}" for c in _CATEGORIES for n in (2, 3)]
        paths += [f"/search?q={q.replace(' ', '+')}" for q in _SEARCH]
        paths += [f"/blog/{b}" for b in _BLOG]
    else:
        paths = ["/", "/about-us", "/reviews", "/faq", "/installers"]
        paths += [f"/lp/{p}" for p in _LEAD_PAGES for _ in range(3)]
        paths += [f"/guides/{g}" for g in _GUIDES]
    urls = [f"https://{site.host}{p}" for p in paths]
    for _ in range(len(urls) // 2):  # paid-social landings carry UTM and fbclid
        sep = "&" if "?" in (base := rng.choice(urls)) else "?"
        urls.append(
            f"{base}{sep}utm_source=facebook&utm_medium=paid_social&utm_campaign="
            f"{rng.choice(_CAMPAIGNS)}&utm_content=ad_{rng.randrange(1, 40):02d}"
            f"&fbclid={_fbclid(rng)}"
        )
    return urls


@dataclass(frozen=True, slots=True)
class Pools:
    """Everything precomputed for one (seed, site, size): read-only, shared between runs."""

    people: list[Person]
    email_of: dict[str, Person]  # em digest -> person
    names: list[str]  # event-name lookup table
    lags: list[float]
    sizes: list[int | str]
    products: list[Product]
    page_urls: list[str]


@functools.lru_cache(maxsize=8)
def build_pools(seed: int, site: Site, persons: int) -> Pools:
    """People, catalogue and URLs from their own RNG stream (cached: ~0.3 s to build)."""
    rng = Random(f"pools-{seed}")
    people = [_person(rng, i) for i in range(persons)]
    sizes = [(1, 55.0), (2, 12.0), (3, 8.0), (4, 6.0), (5, 4.0), ("mid", 12.0), ("large", 3.0)]
    return Pools(
        people=people,
        email_of={p.digests["em"]: p for p in people},
        names=_lut(rng, [(n, float(w)) for n, w in site.event_weights]),
        lags=_lag_table(rng),
        sizes=_lut(rng, list(sizes)),
        products=_catalogue(rng, site.host) if site.kind == "retail" else [],
        page_urls=_pages(rng, site),
    )


class TrafficFactory:
    """Builds clean events, requests and responses for one site, deterministically.

    The pools come from ``build_pools``; everything else random comes from one
    ``Random(seed)``, so the same calls in the same order give byte-identical output.
    Per-event work is a few table look-ups, which is what makes > 50k events/s possible.
    Events share their ``user_data`` dicts: copy before mutating (``replace_user_data``).
    """

    def __init__(self, seed: int = 1, site: Site = SHOP, *, persons: int = 4096) -> None:
        self.site = site
        self.rng = Random(seed)
        pools = build_pools(seed, site, persons)
        self.people = pools.people
        self.products = pools.products
        self._email_of = pools.email_of
        self._names, self._lags, self._sizes = pools.names, pools.lags, pools.sizes
        self._page_urls = pools.page_urls
        self._uds: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        self._orders = 0

    def _user_data(self, p: Person, epoch_start: int, full: bool) -> dict[str, Any]:
        wrap = self.wrap
        d = p.digests
        ud: dict[str, Any] = {"em": wrap(d["em"])}
        if full:
            for key in ("ph", "fn", "ln", "ct", "st", "zp", "country"):
                if key in d:
                    ud[key] = wrap(d[key])
        ud["external_id"] = wrap(d["external_id"])
        ud["client_ip_address"] = p.ip
        ud["client_user_agent"] = p.user_agent
        tail = f".{p.appendix}" if p.appendix else ""
        # Cookie creation times sit >= 1 day before the epoch starts, so never in the future
        # of any event that uses them and never more than ~50 days old.
        fbp_ms = (epoch_start - p.fbp_age_s) * 1000 + p.fbp_random % 1000
        ud["fbp"] = f"fb.1.{fbp_ms}.{p.fbp_random}{tail}"
        if p.fbclid:
            fbc_ms = (epoch_start - p.fbc_age_s) * 1000 + p.fbp_random % 997
            ud["fbc"] = f"fb.1.{fbc_ms}.{p.fbclid}{tail}"
        return ud

    def user_data_table(self, t: float) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(full, lite) ``user_data`` per person, valid for events at Unix time ``t``."""
        epoch = int(t) // EPOCH_S
        table = self._uds.get(epoch)
        if table is None:
            if len(self._uds) >= 3:  # bounded memory on very long runs
                del self._uds[min(self._uds)]
            start = epoch * EPOCH_S
            table = [
                (self._user_data(p, start, True), self._user_data(p, start, False))
                for p in self.people
            ]
            self._uds[epoch] = table
        return table

    # -- events ---------------------------------------------------------------------------

    def wrap(self, value: str) -> Any:
        """A hashed value in this sender's style (SDK list or plain string)."""
        return [value] if self.site.list_values else value

    def event_id(self) -> str:
        """A random UUID-4-shaped id, from the seeded RNG (so reproducible)."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def event(
        self, name: str, event_time: int, *, person: int | None = None, full: bool | None = None
    ) -> dict[str, Any]:
        """One clean event; ``person``/``full`` default to a random visitor and key set."""
        rnd = self.rng.random
        idx = int(rnd() * len(self.people)) if person is None else person
        if full is None:
            full = rnd() < self.site.full_share
        uds = self.user_data_table(event_time)[idx]
        return self._event(name, event_time, idx, uds[0] if full else uds[1])

    def _event(self, name: str, event_time: int, idx: int, ud: dict[str, Any]) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "event_name": name,
            "event_time": event_time,
            "event_id": self.event_id(),
            "action_source": "website",
            "event_source_url": "",
            "user_data": ud,
        }
        if self.site.kind == "retail":
            self._retail(ev, self.people[idx].currency)
        else:
            self._leadgen(ev)
        return ev

    def _retail(self, ev: dict[str, Any], cur: str) -> None:
        rng = self.rng
        name = ev["event_name"]
        if name == "PageView":
            ev["event_source_url"] = self._page_urls[int(rng.random() * len(self._page_urls))]
        elif name in ("ViewContent", "AddToCart"):
            prod = self.products[int(rng.random() * len(self.products))]
            ev["event_source_url"] = prod.url
            ev["custom_data"] = (prod.view if name == "ViewContent" else prod.cart)[cur]
        elif name in ("InitiateCheckout", "Purchase"):
            self._basket(ev, cur, purchase=name == "Purchase")
        else:  # Lead: newsletter sign-up
            ev["event_source_url"] = f"https://{self.site.host}/newsletter/confirm"
            ev["custom_data"] = {"content_name": "newsletter", "content_category": "signup"}

    def _basket(self, ev: dict[str, Any], cur: str, *, purchase: bool) -> None:
        rng = self.rng
        n = rng.choice((1, 1, 1, 1, 2, 2, 3, 4))
        items = [self.products[int(rng.random() * len(self.products))] for _ in range(n)]
        qty = [rng.choice((1, 1, 1, 1, 2)) for _ in items]
        contents = [
            {"id": p.id, "quantity": q, "item_price": p.price}
            for p, q in zip(items, qty, strict=True)
        ]
        total = sum(p.price * q for p, q in zip(items, qty, strict=True))
        cd: dict[str, Any] = {
            "currency": cur,
            "value": 0.0,
            "content_ids": [p.id for p in items],
            "content_type": "product",
            "contents": contents,
            "num_items": sum(qty),
        }
        if purchase:
            self._orders += 1
            order = f"SO-{self.rng.randrange(100, 999)}{self._orders:07d}"
            total += 0.0 if total >= 100 else 4.95  # shipping under the free threshold
            cd["order_id"] = order
            ev["event_source_url"] = f"https://{self.site.host}/checkout/thank-you?order={order}"
        else:
            ev["event_source_url"] = f"https://{self.site.host}/checkout"
        cd["value"] = round(total, 2)
        ev["custom_data"] = cd

    def _leadgen(self, ev: dict[str, Any]) -> None:
        rng, host, name = self.rng, self.site.host, ev["event_name"]
        if name == "PageView":
            ev["event_source_url"] = self._page_urls[int(rng.random() * len(self._page_urls))]
        elif name == "ViewContent":
            guide = rng.choice(_GUIDES)
            ev["event_source_url"] = f"https://{host}/guides/{guide}"
            ev["custom_data"] = {"content_name": guide, "content_category": "guides"}
        elif name == "Lead":
            page = rng.choice(_LEAD_PAGES)
            ev["event_source_url"] = f"https://{host}/lp/{page}?step=thank-you"
            ev["custom_data"] = {
                "content_name": page,
                "content_category": "quote_request",
                "value": 40.0,
                "currency": "EUR",
            }
        else:
            ev["event_source_url"] = f"https://{host}/contact"

    def batches(
        self, n_events: int, start: float, events_per_hour: float
    ) -> Iterator[tuple[float, list[dict[str, Any]]]]:
        """Yield ``(sent_at, events)`` requests totalling ``n_events``, in send order.

        Requests arrive as a Poisson process whose event rate is ``events_per_hour``;
        each event happened a realistic lag before its request was sent.
        """
        rng, rnd = self.rng, self.rng.random
        names, lags, sizes = self._names, self._lags, self._sizes
        n_people, full_share = len(self.people), self.site.full_share
        mean_gap = 3600.0 / events_per_hour
        t, left = start, n_events
        while left > 0:
            size = sizes[int(rnd() * _LUT)]
            k = (
                size
                if isinstance(size, int)
                else rng.randint(*((6, 20) if size == "mid" else (21, 50)))
            )
            k = min(k, left)
            t += rng.expovariate(1.0 / (mean_gap * k))
            queued = 0.0 if k == 1 else 60.0  # batched events waited in a queue first
            uds = self.user_data_table(t - _DAY / 2)
            events = []
            for _ in range(k):
                idx = int(rnd() * n_people)
                ud = uds[idx][0 if rnd() < full_share else 1]
                lag = lags[int(rnd() * _LUT)] + queued * rnd()
                events.append(self._event(names[int(rnd() * _LUT)], int(t - lag), idx, ud))
            left -= k
            yield t, events

    # -- requests and responses -------------------------------------------------------------

    def fbtrace_id(self) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(17)).decode().rstrip("=")

    def record(
        self, sent_at: float, events: list[dict[str, Any]], dataset_id: str | None
    ) -> dict[str, Any]:
        """A successful delivery record (shape (a)) for ``events`` sent at ``sent_at``."""
        rng = self.rng
        rec: dict[str, Any] = {"sent_at": iso_z(sent_at)}
        if dataset_id is not None:
            rec["dataset_id"] = dataset_id
        request: dict[str, Any] = {"data": events}
        if self.site.partner_agent:
            request["partner_agent"] = self.site.partner_agent
        rec["request"] = request
        body = {"events_received": len(events), "messages": [], "fbtrace_id": self.fbtrace_id()}
        rec["response"] = {"status": 200, "body": body}
        rec["duration_ms"] = int(70 + rng.expovariate(1 / 80) + 1.5 * len(events))
        return rec

    def error_response(
        self,
        status: int,
        code: int,
        subcode: int | None,
        message: str,
        *,
        title: str | None = None,
        transient: bool = False,
    ) -> dict[str, Any]:
        """Meta's error envelope (reference §8) as the sender logged it."""
        err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if subcode is not None:
            err["error_subcode"] = subcode
        err["is_transient"] = transient
        if title:
            err["error_user_title"] = title
        err["fbtrace_id"] = self.fbtrace_id()
        return {"status": status, "body": {"error": err}}

    # -- defects ----------------------------------------------------------------------------

    def replace_user_data(self, ev: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Give ``ev`` its own copy of ``user_data`` with ``changes`` (``None`` deletes)."""
        ud = dict(ev["user_data"])
        for key, value in changes.items():
            if value is None:
                ud.pop(key, None)
            else:
                ud[key] = value
        ev["user_data"] = ud
        return ud

    def person_of(self, ev: dict[str, Any]) -> Person:
        em = ev["user_data"]["em"]
        return self._email_of[em[0] if isinstance(em, list) else em]

    def apply_event_defect(self, ev: dict[str, Any], kind: str) -> None:
        """Plant one of ``EVENT_DEFECTS`` into a clean event (in place)."""
        if kind == "plaintext_email":
            self.replace_user_data(ev, em=self.wrap(self.person_of(ev).email))
        elif kind == "md5_email":
            self.replace_user_data(ev, em=self.wrap(self.person_of(ev).email_md5))
        elif kind == "uppercase_hash":
            ud = ev["user_data"]
            changes = {
                k: [v.upper() for v in ud[k]] if isinstance(ud[k], list) else ud[k].upper()
                for k in ("em", "ph")
                if k in ud
            }
            self.replace_user_data(ev, **changes)
        elif kind == "ms_event_time":
            ev["event_time"] = ev["event_time"] * 1000 + self.rng.randrange(1000)
        elif kind == "missing_event_id":
            del ev["event_id"]
        elif kind == "missing_user_agent":
            self.replace_user_data(ev, client_user_agent=None)
        else:
            raise ValueError(f"unknown event defect {kind!r}")

    def apply_record_defect(self, rec: dict[str, Any], kind: str) -> None:
        """Plant one of ``RECORD_DEFECTS`` (except ``malformed``) into a record (in place)."""
        if kind == "error_190":
            rec["response"] = self.error_response(
                500,
                190,
                463,
                "Error validating access token: Session has expired. The current time is "
                "later than the token's expiry.",
            )
        elif kind == "error_2804003":
            # The usual cause: a retry queue replays an event older than Meta's 7-day limit.
            first = rec["request"]["data"][0]
            first["event_time"] -= 8 * _DAY + self.rng.randrange(_DAY)
            rec["response"] = self.error_response(
                400, 100, 2804003, "Invalid parameter", title="Event Timestamp Too Old"
            )
        elif kind == "error_17":
            rec["response"] = self.error_response(
                500, 17, 2446079, "(#17) User request limit reached", transient=True
            )
        elif kind == "test_event_code":
            rec["request"]["test_event_code"] = f"TEST{self.rng.randrange(10000, 99999)}"
        else:
            raise ValueError(f"unknown record defect {kind!r}")

    def malformed_line(self, line: bytes, sent_at: float) -> bytes:
        """An unparseable line as real logs contain them (newline-terminated)."""
        rng = self.rng
        kind = rng.randrange(3)
        if kind == 0:  # writer killed mid-line
            return line[: rng.randrange(20, max(21, len(line) - 2))] + b"\n"
        if kind == 1:  # block of a crashed file system: NULs and junk
            junk = b"\x00" * rng.randrange(1, 16) + rng.randbytes(rng.randrange(16, 160))
            # No CR/LF inside: the junk stays one line whatever the reader's newline mode.
            return junk.replace(b"\n", b"\x00").replace(b"\r", b"\x00") + b"\n"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sent_at))
        return f"{stamp} WARNING capi.sender: retrying POST /events after timeout\n".encode()


@contextlib.contextmanager
def open_output(path: str | Path, gzip: bool) -> Iterator[IO[bytes]]:
    """A buffered binary writer; gzip output is reproducible (no mtime in the header)."""
    path = Path(path)
    with open(path, "wb", buffering=1 << 20) as raw:
        if not gzip:
            yield raw
            return
        name = path.name.removesuffix(".gz")
        with gzip_mod.GzipFile(name, "wb", compresslevel=6, fileobj=raw, mtime=0) as gz:
            yield cast(IO[bytes], gz)


def generate(
    path: str | Path,
    n_events: int,
    *,
    seed: int = 1,
    start: float,
    events_per_hour: float = 2000,
    dataset_id: str | None = "1234567890",
    defects: float = 0.0,
    gzip: bool = False,
    site: Site = SHOP,
) -> dict[str, Any]:
    """Write ``n_events`` events as delivery records to ``path``; return what was written.

    ``start`` is the Unix time the traffic starts. ``dataset_id=None`` omits the key (the
    dataset then comes from the config's ``logs`` glob). Malformed lines (a record defect)
    are *extra* lines: every one of the ``n_events`` events is in a well-formed record.
    The result counts ``events``, ``records``, ``lines``, ``bytes`` (uncompressed),
    ``malformed_lines``, ``defective_events``, ``defective_records``, ``defects`` per kind,
    ``first_sent_at``/``last_sent_at`` (ISO) and ``last_sent_ts``.
    """
    if not 0.0 <= defects <= 1.0:
        raise ValueError("defects must be a share between 0 and 1")
    began = time.perf_counter()
    fac = TrafficFactory(seed, site)
    rnd, choice = fac.rng.random, fac.rng.choice
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    kinds: Counter[str] = Counter()
    records = lines = nbytes = bad_events = bad_records = 0
    first = last = start
    buf: list[bytes] = []
    with open_output(path, gzip) as out:
        for sent_at, events in fac.batches(n_events, start, events_per_hour):
            if defects:
                for ev in events:
                    if rnd() < defects:
                        kind = choice(EVENT_DEFECTS)
                        fac.apply_event_defect(ev, kind)
                        kinds[kind] += 1
                        bad_events += 1
            rec = fac.record(sent_at, events, dataset_id)
            if defects and rnd() < defects:
                kind = choice(RECORD_DEFECTS)
                kinds[kind] += 1
                bad_records += 1
                if kind == "malformed":
                    buf.append(fac.malformed_line(dumps(rec), sent_at))
                else:
                    fac.apply_record_defect(rec, kind)
            buf.append(dumps(rec, option=opt))
            if records == 0:
                first = sent_at
            records += 1
            last = sent_at
            if len(buf) >= 512:
                lines += len(buf)
                nbytes += sum(map(len, buf))
                out.write(b"".join(buf))
                buf.clear()
        lines += len(buf)
        nbytes += sum(map(len, buf))
        out.write(b"".join(buf))
    return {
        "events": n_events,
        "records": records,
        "lines": lines,
        "bytes": nbytes,
        "malformed_lines": kinds["malformed"],
        "defective_events": bad_events,
        "defective_records": bad_records,
        "defects": dict(sorted(kinds.items())),
        "first_sent_at": iso_z(first),
        "last_sent_at": iso_z(last),
        "last_sent_ts": last,
        "seconds": round(time.perf_counter() - began, 3),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m monitor.tools.genlogs OUT --events N [...]``; prints the counts as JSON."""
    ap = argparse.ArgumentParser(
        prog="python -m monitor.tools.genlogs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out", help="output file (.jsonl, or .jsonl.gz with --gzip)")
    ap.add_argument("--events", type=int, required=True, help="number of events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--defects", type=float, default=0.0, help="defect rate, e.g. 0.01")
    ap.add_argument("--gzip", action="store_true", help="gzip the output")
    ap.add_argument("--start", default="2026-10-01T00:00:00Z", help="ISO time traffic starts")
    ap.add_argument("--events-per-hour", type=float, default=2000.0)
    ap.add_argument("--dataset-id", default="1234567890", help="'' omits dataset_id")
    ap.add_argument("--site", choices=("shop", "leadgen"), default="shop")
    args = ap.parse_args(argv)
    if args.events < 0:
        ap.error("--events must be >= 0")
    counts = generate(
        args.out,
        args.events,
        seed=args.seed,
        start=parse_iso(args.start),
        events_per_hour=args.events_per_hour,
        dataset_id=args.dataset_id or None,
        defects=args.defects,
        gzip=args.gzip,
        site=SHOP if args.site == "shop" else LEADGEN,
    )
    rate = counts["events"] / max(counts["seconds"], 1e-9)
    sys.stdout.write(orjson.dumps(counts, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stderr.write(
        f"{counts['events']} events, {counts['bytes'] / 1e6:.1f} MB in "
        f"{counts['seconds']:.1f} s ({rate:,.0f} events/s)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

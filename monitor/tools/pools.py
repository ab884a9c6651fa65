"""The fake world the traffic generator draws from: people, products, pages, sites.

Seeded pools of SHA-256-able fake identities (names, emails, phones, addresses), public
IPs, real-world user agents, ``fbclid`` values and a product catalogue per site, built
once per generator (``build_pools``) so that drawing an event is a few table look-ups.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any, Literal

EPOCH_S = 30 * 86400  # cookie "epoch": fbp/fbc creation times are renewed every 30 days
DAY = 86400
LUT = 1024  # size of the lookup tables that replace weighted random choices

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
LEAD_PAGES = (
    "solar-quote",
    "heat-pump-quote",
    "battery-storage",
    "wallbox-installation",
    "energy-audit",
)
GUIDES = (
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
    """A shuffled table of ``LUT`` items in proportion to their weights (O(1) sampling)."""
    total = sum(w for _, w in weighted)
    table: list[Any] = []
    for item, w in weighted:
        table.extend([item] * round(LUT * w / total))
    table = (table + [weighted[0][0]] * LUT)[:LUT]
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
        fbp_age_s=DAY + rng.randrange(20 * DAY),
        fbp_random=rng.randrange(2**31),
        fbclid=_fbclid(rng) if has_click else None,
        fbc_age_s=DAY + rng.randrange(6 * DAY),
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
    lags += [rng.uniform(180, 900) for _ in range(LUT - len(lags))]
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
        paths += [f"/lp/{p}" for p in LEAD_PAGES for _ in range(3)]
        paths += [f"/guides/{g}" for g in GUIDES]
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

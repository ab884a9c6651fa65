"""The people behind a dataset's events: visitors, their identity and cookies; and
what they look at (a catalogue). Fake, but in the formats Meta asks for: SHA-256 of
normalised values, ``fbp``/``fbc`` cookies, public IP addresses, real user agents."""

from __future__ import annotations

import hashlib
import math
from random import Random
from typing import Any

from monitor.tools.traffic.world import Site

# --- visitors ----------------------------------------------------------------------------

_UA_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/132.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.2 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:134.0) Gecko/20100101 Firefox/134.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
)
_UA_MOBILE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/132.0.6834.79 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A556B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Mobile/15E148 Instagram 362.0.0.33.241 (iPhone13,2; iOS 17_7; en_GB)",
)
_V4_NETS = (31, 46, 62, 79, 82, 86, 90, 94, 109, 151, 176, 188, 213, 217, 24, 47, 68, 73, 99)
_V6_NETS = ("2a02:908", "2a01:598", "2003:c1", "2a00:23c7", "2600:1702", "2601:640")
_CITIES: dict[str, tuple[tuple[str, str, str], ...]] = {  # city, state, zip (normalised)
    "DE": (("berlin", "be", "10405"), ("münchen", "by", "80469"), ("köln", "nw", "50674")),
    "GB": (("london", "", "sw1a"), ("leeds", "", "ls1"), ("bristol", "", "bs1")),
    "US": (("chicago", "il", "60614"), ("austin", "tx", "78704"), ("denver", "co", "80205")),
    "FR": (("paris", "", "75011"), ("lyon", "", "69003"), ("nantes", "", "44000")),
}
_CONSENT = {"DE": 0.68, "FR": 0.7, "GB": 0.75, "US": 0.93}  # cookie banners accepted
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Visitor:
    """One person behind a browser (or an app install). Identity hashes are built on the
    first identified event; ``fbc`` appears with the first ad click."""

    __slots__ = ("_ids", "adblock", "consent", "fbc", "fbp", "ip", "mobile", "n", "ua", "uid")

    def __init__(self, uid: int, rng: Random, site: Site, t: float) -> None:
        self.uid = uid
        self.n = site.dataset_id[-3:]
        self.mobile = rng.random() < 0.64
        self.consent = rng.random() < _CONSENT.get(site.country, 0.8)
        self.adblock = rng.random() < (0.06 if self.mobile else 0.22)
        self.ua = rng.choice(_UA_MOBILE if self.mobile else _UA_DESKTOP)
        self.ip = _ip(rng)
        ms = int(t * 1000) - rng.randrange(1000, 3_000_000)
        self.fbp = f"fb.1.{ms}.{rng.randrange(10**9, 2**31)}" if self.consent else None
        self.fbc: str | None = None
        self._ids: dict[str, str] | None = None

    def identity(self, site: Site) -> dict[str, str]:
        """Hashed identity keys (``clear_email`` kept for the clear-text incident)."""
        if self._ids is None:
            rng = Random(f"identity:{site.dataset_id}:{self.uid}")
            email = f"customer{self.uid}.{self.n}@example.org"
            city, st, zp = rng.choice(_CITIES.get(site.country, _CITIES["US"]))
            phone = f"{rng.choice(('49151', '447700', '1312555', '336'))}{rng.randrange(10**6):06d}"
            clear = {"em": email, "ph": phone, "fn": f"first{self.uid % 977}",
                     "ln": f"last{self.uid % 1447}", "ct": city, "st": st, "zp": zp,
                     "country": site.country.lower(),
                     "external_id": f"c{self.n}-{self.uid}"}  # fmt: skip
            self._ids = {k: sha(v) for k, v in clear.items() if v}
            self._ids["clear_email"] = email
        return self._ids

    def click(self, rng: Random, t: float) -> None:
        token = "".join(_B64[rng.randrange(64)] for _ in range(rng.randrange(40, 60)))
        self.fbc = f"fb.1.{int(t * 1000)}.IwAR{token}" if self.consent else None


def _ip(rng: Random) -> str:
    if rng.random() < 0.35:
        return f"{rng.choice(_V6_NETS)}:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}"
    return (
        f"{rng.choice(_V4_NETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


def catalogue(rng: Random, site: Site) -> list[dict[str, Any]]:
    """Products as their ViewContent/AddToCart ``custom_data`` (shared, never mutated)."""
    out = []
    prefix = site.host.split(".")[-2][:3].upper()
    for n in range(400):
        price = round(math.exp(rng.gauss(math.log(45), 0.7)), 2)
        pid = f"{prefix}-{n * 37 % 10000:04d}"
        out.append({"currency": site.currency, "value": price, "content_ids": [pid],
                    "content_type": "product"})  # fmt: skip
    return out


def app_data(v: Visitor) -> dict[str, Any]:
    ios = not v.mobile
    extinfo = ["i2" if ios else "a2", "com.example.shop", "5.4", "5.4.1",
               "18.2" if ios else "15", "iPhone15,3" if ios else "Pixel 9", "de_DE",
               "CET", "Telekom", "1179", "2556", "3.0", "6", "128", "41",
               "Europe/Berlin"]  # fmt: skip
    return {
        "advertiser_tracking_enabled": 1 if v.consent else 0,
        "application_tracking_enabled": 1,
        "extinfo": extinfo,
    }

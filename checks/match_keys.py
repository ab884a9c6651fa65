"""The estimated match quality of ``match_quality``: which keys an event can carry, what
each is worth, and the 0–10 estimate. Pure; no state.

Meta publishes no EMQ formula (docs/meta-capi.md §9): the estimate is a local heuristic,
labelled "estimated" everywhere. ``WEIGHTS`` follow the tiers of meta-capi.md §9: email
and ``fbc`` high; phone, ``external_id``, IP address, ``fbp`` (and the user agent that
always travels with the IP) medium; birthdate and country low-medium; names, city, state,
zip and gender low; the app's advertiser id (``madid``) like ``fbc``, its install id
(``anon_id``) like ``fbp``, and the CRM ``lead_id`` / click-to-WhatsApp ``ctwa_clid``
of messaging and lead-ads conversions as strong as an email. For ``phone_call`` events
the phone number is as strong as an email too (``weights``): it is the number the call
came from, the channel's own identifier (meta-capi.md §9: the best-practice page counts
phone among the high-quality keys).

**Per action_source** (docs/contracts.md §12). An event is charged only for the keys
its ``action_source`` can carry (``charged``); some more only earn credit (``credited``):

- ``website`` (and events without an ``action_source``): every web key;
- ``app``: the web keys but ``fbp``/``fbc`` (no browser cookies in an app); ``madid``,
  ``anon_id`` (and cookies, when a web view sent them) earn credit;
- ``physical_store``, ``system_generated``, ``phone_call``, ``chat``, ``email``,
  ``business_messaging``, ``other``: no IP address, user agent, ``fbp`` or ``fbc`` is
  charged (a till or a CRM has no browser); if sent they earn credit;
- ``lead_id`` and ``ctwa_clid`` earn credit anywhere.

The points of the keys present are scaled to what the source can reach, capped at 10::

    estimate = min(10, SCALE[source] × Σ WEIGHTS[k] × coverage[k])

``website`` (scale 1): a well-instrumented web setup (em, ph, IP, user agent, fbp, fbc on
~50 % of events, external_id, fn, ln) scores about 8.75, em + ph + IP + UA + fbp 6.5, IP
+ UA + fbp only 3.25. ``app`` (×1.29, every charged key at full coverage is worth what
every web key is): em + IP + UA + ``anon_id`` 6.8, with ``madid`` 8.7. Sources without a
browser (×2): their contact data is all they can carry, and email + phone, the best pair
an offline match has, then score what the good web setup does (6.5); with
``external_id`` 8.5; an email alone 4.0. A call centre's leads (phone, name and zip on
each, an email on half of them) score 7.4: the phone as strong as an email.

**Conversion events** (``CONVERSION_EVENTS``) are the ones that carry a customer's
contact data by nature (a checkout, a form); only they are held to an absolute floor.
Upper-funnel events come mostly from anonymous visitors and are judged against their
own history instead (``MATCH_KEY_DROP``, ``checks.volume_ratios``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from monitor.model.rollup import MATCH_KEYS, NO_SOURCE

MAX_SCORE = 10.0

# Points a key adds at 100 % coverage (module docstring).
WEIGHTS: dict[str, float] = {
    "em": 2.0,
    "fbc": 1.5,
    "ph": 1.25,
    "client_ip_address": 1.25,
    "external_id": 1.0,
    "fbp": 1.0,
    "client_user_agent": 1.0,
    "db": 0.4,
    "country": 0.4,
    "fn": 0.25,
    "ln": 0.25,
    "ct": 0.2,
    "st": 0.2,
    "zp": 0.2,
    "ge": 0.15,
    "madid": 1.5,
    "anon_id": 1.0,
    "lead_id": 2.0,
    "ctwa_clid": 2.0,
}

# Where a key is worth more for one action_source: the number a call came from is the
# phone_call channel's own identifier, matched as surely as a web checkout's email.
_SOURCE_WEIGHTS: dict[str, dict[str, float]] = {"phone_call": {**WEIGHTS, "ph": WEIGHTS["em"]}}

CONVERSION_EVENTS: frozenset[str] = frozenset(
    {"Purchase", "Lead", "CompleteRegistration", "Subscribe", "StartTrial",
     "SubmitApplication", "Schedule", "Contact", "Donate"}
)  # fmt: skip

BROWSER_KEYS = ("client_ip_address", "client_user_agent", "fbp", "fbc")
COOKIE_KEYS = ("fbp", "fbc")
APP_KEYS = ("madid", "anon_id")
ANYWHERE_KEYS = ("lead_id", "ctwa_clid")
WEB_KEYS: tuple[str, ...] = tuple(k for k in MATCH_KEYS if k not in APP_KEYS + ANYWHERE_KEYS)
# Sources without a browser: what they cannot carry is never charged (§12).
BROWSERLESS: frozenset[str] = frozenset(
    {"physical_store", "system_generated", "phone_call", "chat", "email",
     "business_messaging", "other"}
)  # fmt: skip
_WEB_TOTAL = sum(WEIGHTS[k] for k in WEB_KEYS)
BROWSERLESS_SCALE = 2.0  # email + phone score 6.5 (module docstring)


_HASHED = "normalised and SHA-256 hashed"
ADVICE: dict[str, str] = {
    "em": f"send the customer's email ({_HASHED}) as user_data.em whenever it is known "
    "(checkout, login, sign-up, lead forms)",
    "fbc": "send the _fbc cookie as user_data.fbc on every event (or build it from the "
    "fbclid URL parameter with capi-param-builder)",
    "ph": f"send the phone number with country code ({_HASHED}) as user_data.ph",
    "client_ip_address": "forward the visitor's IP address (prefer IPv6) from the request "
    "that triggered the event, not the server's own",
    "external_id": "send your stable customer or visitor id as user_data.external_id, in "
    "the same format as on the pixel",
    "fbp": "send the _fbp cookie as user_data.fbp on every web event",
    "client_user_agent": "forward the browser's User-Agent header as client_user_agent",
    "db": f"send the date of birth as YYYYMMDD ({_HASHED}) when collected",
    "country": f"send the two-letter country code ({_HASHED}) on every event",
    "fn": f"send the first name ({_HASHED}) when collected",
    "ln": f"send the last name ({_HASHED}) when collected",
    "ct": f"send the city ({_HASHED}) when collected",
    "st": f"send the two-letter state code ({_HASHED}) when collected",
    "zp": f"send the zip or postal code ({_HASHED}) when collected",
    "ge": f"send the gender as f or m ({_HASHED}) when collected",
    "madid": "send the device's advertiser id (IDFA/GAID) as user_data.madid when the user "
    "allows tracking",
    "anon_id": "send the app's install id as user_data.anon_id on every app event",
    "lead_id": "send the Meta lead id of lead-ads conversions as user_data.lead_id",
    "ctwa_clid": "send the click-to-WhatsApp click id as user_data.ctwa_clid",
}


def charged(action_source: str) -> tuple[str, ...]:
    """The keys an event of ``action_source`` is expected to carry."""
    if action_source == "app":
        return tuple(k for k in WEB_KEYS if k not in COOKIE_KEYS)
    if action_source in BROWSERLESS:
        return tuple(k for k in WEB_KEYS if k not in BROWSER_KEYS)
    return WEB_KEYS


def credited(action_source: str) -> tuple[str, ...]:
    """Every key that counts for an event of ``action_source`` (charged or credit only)."""
    if action_source == "app" or action_source in BROWSERLESS:
        return MATCH_KEYS
    return WEB_KEYS + ANYWHERE_KEYS


def weights(action_source: str) -> Mapping[str, float]:
    """The points each key adds at 100 % coverage for events of ``action_source``."""
    return _SOURCE_WEIGHTS.get(action_source, WEIGHTS)


def estimate(coverage: Mapping[str, float], action_source: str = "website") -> float:
    """The estimated match quality (0–10) of per-key coverage shares (0–1) of events of
    ``action_source`` (module docstring)."""
    w = weights(action_source)
    points = sum(w[k] * coverage.get(k, 0.0) for k in credited(action_source))
    return min(MAX_SCORE, points * scale(action_source))


def standard_error(coverage: Mapping[str, float], events: int, action_source: str) -> float:
    """The standard error of ``estimate`` over ``events`` events: each event scores the
    weights of the keys it carries, keys taken as independent (the rollups keep per-key
    counts, not which keys travel together)."""
    if events <= 0:
        return math.inf
    factor = scale(action_source)
    w = weights(action_source)
    var = sum(
        (factor * w[k]) ** 2 * coverage.get(k, 0.0) * (1 - coverage.get(k, 0.0))
        for k in credited(action_source)
    )
    return math.sqrt(var / events)


def scale(action_source: str) -> float:
    """How the points of an event of ``action_source`` are scaled (module docstring)."""
    if action_source in BROWSERLESS:
        return BROWSERLESS_SCALE
    return _WEB_TOTAL / sum(WEIGHTS[k] for k in charged(action_source))


def source_label(action_source: str) -> str:
    """How an ``action_source`` bucket is named in messages."""
    return "no action_source" if action_source == NO_SOURCE else action_source

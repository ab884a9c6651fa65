"""Scenarios of the fake Graph API: how each dataset behaves, and its ``/stats``. No I/O.

The answers have the shapes of Meta's real answers (``tests/data/meta/``, whose
``SOURCES.md`` names each origin): ``/stats`` hours in the ad account's local time with
an offset without a colon (``+0100``, ``+0530``, ``+0545``, ``-0330``: any account time
zone, set per scenario, ``Scenario.utc_offset``), ~24 hourly buckets per page with the
previous page's last bucket repeated (daily chunk boundaries double count; a community
report, tolerated by the client), ``paging.next`` URLs carrying ``access_token``, Meta's
names for match keys (``email``, ``phone``, ``ip_address``, combos like ``email,phone``).
The other bodies are in ``bodies.py``, the error envelopes in ``errors.py``.

Hourly counts are deterministic: a function of the dataset id, the event and the bucket
start, with a daily seasonality, so two polls of the same window give the same numbers.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

PAGE_BUCKETS = 24
HOUR = 3600

# Mean hourly volume per event (before dataset scale and seasonality).
EVENT_BASE = {
    "PageView": 400.0,
    "ViewContent": 160.0,
    "AddToCart": 35.0,
    "InitiateCheckout": 18.0,
    "Purchase": 9.0,
}
# Share of events seen by each side (pre-dedup, §2): both sides send everything.
BROWSER_SHARE = 0.92
SERVER_SHARE = 0.97
# /stats match_keys looks sampled (§2: 114 vs 59,935 PageViews): heavily for PageView.
MATCH_KEY_SAMPLE = 0.5
PAGEVIEW_KEY_SAMPLE = 0.01

_HEALTHY_KEYS = {
    "email": 0.95,
    "phone": 0.70,
    "email,phone": 0.66,
    "external_id": 0.90,
    "fbp": 0.98,
    "fbc": 0.35,
    "ip_address": 1.0,
    "user_agent": 1.0,
    "zip": 0.60,
    "ct": 0.60,
    "country": 0.90,
}
_LOW_KEYS = {"fbp": 0.60, "ip_address": 1.0, "user_agent": 1.0, "email": 0.08}
_PAGEVIEW_KEYS = {"fbp": 0.97, "ip_address": 1.0, "user_agent": 1.0}
_AGGREGATIONS = frozenset(
    {
        "browser_type",
        "custom_data_field",
        "device_os",
        "device_type",
        "event",
        "event_detection_method",
        "event_processing_results",
        "event_source",
        "event_total_counts",
        "event_value_count",
        "had_pii",
        "host",
        "match_keys",
        "pixel_fire",
        "url",
        "url_by_rule",
    }
)
_OFFSET = re.compile(r"^([+-])(\d\d)(\d\d)$")


class ScenarioKind(StrEnum):
    HEALTHY = "healthy"
    SERVER_MISSING = "server_missing"  # browser Purchases, no server Purchases
    EMQ_LOW = "emq_low"
    COVERAGE_LOW = "coverage_low"
    DEDUP_BROKEN = "dedup_broken"  # event_id on 12 % of server events
    SLOW_FRESHNESS = "slow_freshness"
    DA_CHECKS_FAILED = "da_checks_failed"  # pixel_decline failed
    TOKEN_INVALID = "token_invalid"  # 190: decrypt failure (HTTP 500) on /stats, 463 elsewhere
    RATE_LIMITED = "rate_limited"  # 80004 / 17 / 4 with usage headers, never recovers
    SERVER_ERROR = "server_error"  # 5xx with and without an envelope
    SLOW = "slow"  # every answer delayed by `latency`
    MALFORMED_JSON = "malformed_json"  # HTTP 200 with a truncated body
    FLAKY = "flaky"  # the first `fail_first` calls answer code 2 (HTTP 500), then healthy
    NO_ACCESS = "no_access"  # 100/33 GraphMethodException: wrong id or token without access
    BATCH_NULL = "batch_null"  # the first `fail_first` batched calls come back `null`


def offset_seconds(offset: str) -> int:
    """``+0530`` -> 19800, ``-0330`` -> -12600; ``ValueError`` for anything else."""
    m = _OFFSET.match(offset)
    if m is None or int(m.group(3)) >= 60:
        raise ValueError(f"not a UTC offset like +0530: {offset!r}")
    seconds = int(m.group(2)) * HOUR + int(m.group(3)) * 60
    return -seconds if m.group(1) == "-" else seconds


@dataclass(frozen=True, slots=True)
class Scenario:
    """One dataset's behaviour. ``Scenario.named("slow")`` gives each kind's defaults;
    ``"healthy@+0530"`` names a kind and the ad account's UTC offset.

    ``latency``: extra seconds per answer. ``fail_first``: failing calls of ``flaky`` and
    ``batch_null``. ``regain_minutes``: ``estimated_time_to_regain_access`` of
    ``rate_limited`` (MINUTES). ``app_usage_pct``: ``X-App-Usage`` percentages.
    ``token_expires_at``: ``debug_token`` ``expires_at`` (0 = never). ``utc_offset``: the
    ad account's offset; ``/stats`` buckets are its local hours. ``counts``: hourly counts
    from a file (``from_counts``): event name -> UTC hour start -> ``(browser, server)``;
    ``None``: the built-in model.
    """

    kind: ScenarioKind = ScenarioKind.HEALTHY
    latency: float = 0.0
    fail_first: int = 2
    regain_minutes: float = 1.0
    app_usage_pct: int = 7
    token_expires_at: int = 0
    utc_offset: str = "+0000"
    token_scopes: tuple[str, ...] = ("ads_read", "ads_management", "business_management")
    counts: Mapping[str, Mapping[int, tuple[int, int]]] | None = field(
        default=None, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        offset_seconds(self.utc_offset)  # fail early on a typo

    @property
    def offset_s(self) -> int:
        return offset_seconds(self.utc_offset)

    @classmethod
    def from_counts(cls, path: str) -> dict[str, Scenario]:
        """Healthy scenarios, one per dataset of a ``graph_counts.jsonl`` written by
        ``capi-monitor simulate`` (rows ``{dataset_id, event_name, hour, browser,
        server}``), whose ``/stats`` serve exactly those hourly counts."""
        by_ds: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                row = orjson.loads(line)
                hour = int(parse_time(row["hour"], 0))
                events = by_ds.setdefault(str(row["dataset_id"]), {})
                events.setdefault(row["event_name"], {})[hour] = (row["browser"], row["server"])
        return {ds: cls(counts=events) for ds, events in by_ds.items()}

    @classmethod
    def named(cls, name: str) -> Scenario:
        """A scenario by name (``kind`` or ``kind@+HHMM``); ``ValueError`` listing the
        known names otherwise."""
        text, _, offset = name.strip().lower().partition("@")
        try:
            kind = ScenarioKind(text)
        except ValueError:
            known = ", ".join(k.value for k in ScenarioKind)
            raise ValueError(f"unknown scenario {name!r} (known: {known})") from None
        extra: dict[str, Any] = {"utc_offset": offset} if offset else {}
        if kind is ScenarioKind.SLOW:
            return cls(kind=kind, latency=2.0, **extra)
        if kind is ScenarioKind.RATE_LIMITED:
            return cls(kind=kind, app_usage_pct=96, **extra)
        return cls(kind=kind, **extra)

    @classmethod
    def coerce(cls, value: str | Scenario) -> Scenario:
        return value if isinstance(value, Scenario) else cls.named(value)

    def with_(self, **changes: Any) -> Scenario:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, JSON-able body (or raw bytes), extra headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=UTF-8"

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.body)


# ----------------------------------------------------------------------- helpers


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return zlib.crc32("|".join(map(str, parts)).encode()) / 2**32


def graph_time(ts: float, offset: str = "+0000") -> str:
    """Meta's ``start_time`` format: local time and an offset without a colon (§2)."""
    local = datetime.fromtimestamp(ts + offset_seconds(offset), UTC)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + offset


def parse_time(value: str | None, default: float) -> float:
    """``start_time``/``end_time`` as Meta accepts them: Unix seconds or ISO 8601."""
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    dt = datetime.fromisoformat(text)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def hourly_count(dataset_id: str, event: str, hour_ts: float) -> int:
    """Events of one name in one hour: dataset scale x daily seasonality x noise."""
    scale = 0.5 + 1.5 * unit("scale", dataset_id)
    hour_of_day = (hour_ts // HOUR) % 24
    season = 1.0 + 0.6 * math.sin(2 * math.pi * (hour_of_day - 9) / 24)  # peak ~15:00 UTC
    noise = 0.9 + 0.2 * unit(dataset_id, event, int(hour_ts))
    return round(EVENT_BASE[event] * scale * season * noise)


def hours_between(start: float, end: float, offset_s: int = 0) -> list[float]:
    """Local-hour bucket starts (Unix seconds) from the one holding ``start`` up to
    (excluding) ``end``; ``offset_s`` is the account's UTC offset."""
    first = math.floor((start + offset_s) / HOUR) * HOUR - offset_s
    return [float(h) for h in range(int(first), math.ceil(end), HOUR) if h < end]


def page_hours(hours: list[float], page: int) -> tuple[list[float], bool]:
    """The buckets of one page (the previous page's last one repeated) and whether more follow."""
    lo, hi = page * PAGE_BUCKETS, (page + 1) * PAGE_BUCKETS
    chunk = hours[max(lo - 1, 0) : hi] if page else hours[lo:hi]
    return chunk, hi < len(hours)


# ------------------------------------------------------------------------ /stats


def event_names(sc: Scenario) -> list[str]:
    """The event names a dataset sends: the file's, else the built-in model's."""
    return list(sc.counts) if sc.counts is not None else list(EVENT_BASE)


def _file_counts(sc: Scenario, event: str, start: float) -> tuple[int, int]:
    """The file's counts (UTC hours) over the bucket ``[start, start + 1 h)``, prorated
    when the account's hours are not UTC hours."""
    hours = (sc.counts or {}).get(event, {})
    utc = int(start // HOUR * HOUR)
    share = (start - utc) / HOUR  # of the bucket that lies in the next UTC hour
    a, b = hours.get(utc, (0, 0)), hours.get(utc + HOUR, (0, 0))
    if not share:
        return a
    return (
        round(a[0] * (1 - share) + b[0] * share),
        round(a[1] * (1 - share) + b[1] * share),
    )


def _source_items(sc: Scenario, dataset_id: str, event: str, hour: float) -> dict[str, int]:
    if sc.counts is not None:
        browser, server = _file_counts(sc, event, hour)
        return {"BROWSER": browser, "SERVER": server}
    total = hourly_count(dataset_id, event, hour)
    counts = {"BROWSER": round(total * BROWSER_SHARE), "SERVER": round(total * SERVER_SHARE)}
    if sc.kind is ScenarioKind.SERVER_MISSING and event == "Purchase":
        counts["SERVER"] = 0
    return counts


def _match_key_items(sc: Scenario, dataset_id: str, hour: float) -> list[dict[str, Any]]:
    items = []
    for event in EVENT_BASE:
        if event == "ViewContent":
            continue
        keys = _PAGEVIEW_KEYS if event == "PageView" else _HEALTHY_KEYS
        if sc.kind is ScenarioKind.EMQ_LOW and event != "PageView":
            keys = _LOW_KEYS
        rate = PAGEVIEW_KEY_SAMPLE if event == "PageView" else MATCH_KEY_SAMPLE
        sample = hourly_count(dataset_id, event, hour) * rate
        for key, share in keys.items():
            if (n := round(sample * share)) > 0:
                items.append({"event": event, "value": key, "count": n})
    return items


def stats_items(
    sc: Scenario, dataset_id: str, aggregation: str, event: str | None, hour: float
) -> list[dict[str, Any]]:
    """The ``data`` of one hourly ``AdsPixelStatsResult`` (§2)."""
    if aggregation == "event" and sc.counts is not None:
        return [
            {"value": name, "count": n}
            for name in sc.counts
            if (n := sum(_file_counts(sc, name, hour))) > 0
        ]
    if aggregation == "event":
        return [
            {"value": name, "count": hourly_count(dataset_id, name, hour)} for name in EVENT_BASE
        ]
    if aggregation == "event_source":
        known = event_names(sc)
        names = [event] if event in known else ([] if event else known)
        sums = {"BROWSER": 0, "SERVER": 0}
        for name in names:
            for source, n in _source_items(sc, dataset_id, name, hour).items():
                sums[source] += n
        return [{"value": v, "count": n} for v, n in sums.items() if n > 0]
    if aggregation == "match_keys":
        return _match_key_items(sc, dataset_id, hour)
    return []


def stats_page(
    sc: Scenario,
    dataset_id: str,
    aggregation: str,
    event: str | None,
    start: float,
    end: float,
    page: int,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of ``/stats`` results (keys in the order of a real bucket: ``start_time``,
    ``aggregation``, ``data``) and whether a next page exists."""
    chunk, more = page_hours(hours_between(start, end, sc.offset_s), page)
    results = [
        {
            "start_time": graph_time(h, sc.utc_offset),
            "aggregation": aggregation,
            "data": stats_items(sc, dataset_id, aggregation, event, h),
        }
        for h in chunk
    ]
    return results, more


def valid_aggregation(aggregation: str) -> bool:
    return aggregation in _AGGREGATIONS

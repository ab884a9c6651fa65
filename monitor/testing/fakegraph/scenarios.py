"""Scenarios of the fake Graph API: what each dataset's answers look like. No I/O here.

Every body is built from the shapes documented in docs/meta-capi.md (§2 ``/stats``, §3
``dataset_quality``, §4 ``da_checks``, §8 errors and usage headers, appendix
``debug_token``), including the quirks the client must survive: ``+0000`` offsets, ~24
hourly buckets per page with the previous page's last bucket repeated (daily chunk
boundaries double count), ``paging.next`` URLs carrying ``access_token``, Meta's names
for match keys (``email``, ``phone``, ``ip_address``, combos like ``email,phone``),
upper-case ``PASS``/``FAIL`` da_checks results, ``dedup_key_feedback`` misspelt in answers.

Hourly counts are deterministic: a function of the dataset id, the event and the hour,
with a daily seasonality, so two polls of the same window give the same numbers.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

PAGE_BUCKETS = 24

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


class ScenarioKind(StrEnum):
    HEALTHY = "healthy"
    SERVER_MISSING = "server_missing"  # browser Purchases, no server Purchases
    EMQ_LOW = "emq_low"
    COVERAGE_LOW = "coverage_low"
    DEDUP_BROKEN = "dedup_broken"
    SLOW_FRESHNESS = "slow_freshness"
    DA_CHECKS_FAILED = "da_checks_failed"  # pixel_decline FAIL
    TOKEN_INVALID = "token_invalid"  # 190/463, HTTP 500 on /stats, 400 elsewhere
    RATE_LIMITED = "rate_limited"  # 80004 / 17 / 4 with usage headers, never recovers
    SERVER_ERROR = "server_error"  # 5xx with and without an envelope
    SLOW = "slow"  # every answer delayed by `latency`
    MALFORMED_JSON = "malformed_json"  # HTTP 200 with a truncated body
    FLAKY = "flaky"  # the first `fail_first` calls answer 500, then healthy


@dataclass(frozen=True, slots=True)
class Scenario:
    """One dataset's behaviour. ``Scenario.named("slow")`` gives each kind's defaults.

    ``latency``: extra seconds per answer. ``fail_first``: failing calls of ``flaky``.
    ``regain_minutes``: ``estimated_time_to_regain_access`` of ``rate_limited`` (MINUTES).
    ``app_usage_pct``: ``X-App-Usage`` percentages. ``token_expires_at``: ``debug_token``
    ``expires_at`` (0 = never). ``counts``: hourly counts from a file (``from_counts``):
    event name -> UTC hour start -> ``(browser, server)``; ``None``: the built-in model.
    """

    kind: ScenarioKind = ScenarioKind.HEALTHY
    latency: float = 0.0
    fail_first: int = 2
    regain_minutes: float = 1.0
    app_usage_pct: int = 7
    token_expires_at: int = 0
    counts: Mapping[str, Mapping[int, tuple[int, int]]] | None = field(
        default=None, compare=False, hash=False
    )

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
        """A scenario by name; ``ValueError`` listing the known names otherwise."""
        try:
            kind = ScenarioKind(name.strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in ScenarioKind)
            raise ValueError(f"unknown scenario {name!r} (known: {known})") from None
        if kind is ScenarioKind.SLOW:
            return cls(kind=kind, latency=2.0)
        if kind is ScenarioKind.RATE_LIMITED:
            return cls(kind=kind, app_usage_pct=96)
        return cls(kind=kind)

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


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return zlib.crc32("|".join(map(str, parts)).encode()) / 2**32


def graph_time(ts: float) -> str:
    """Meta's ``start_time`` format: an offset without a colon (§2)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


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
    scale = 0.5 + 1.5 * _unit("scale", dataset_id)
    hour_of_day = (hour_ts // 3600) % 24
    season = 1.0 + 0.6 * math.sin(2 * math.pi * (hour_of_day - 9) / 24)  # peak ~15:00 UTC
    noise = 0.9 + 0.2 * _unit(dataset_id, event, int(hour_ts))
    return round(EVENT_BASE[event] * scale * season * noise)


def hours_between(start: float, end: float) -> list[float]:
    """Hour-bucket starts from the hour of ``start`` up to (excluding) ``end``."""
    first = math.floor(start / 3600) * 3600
    return [float(h) for h in range(first, math.ceil(end), 3600) if h < end]


def page_hours(hours: list[float], page: int) -> tuple[list[float], bool]:
    """The buckets of one page (the previous page's last one repeated) and whether more follow."""
    lo, hi = page * PAGE_BUCKETS, (page + 1) * PAGE_BUCKETS
    chunk = hours[max(lo - 1, 0) : hi] if page else hours[lo:hi]
    return chunk, hi < len(hours)


# ------------------------------------------------------------------------ /stats


def event_names(sc: Scenario) -> list[str]:
    """The event names a dataset sends: the file's, else the built-in model's."""
    return list(sc.counts) if sc.counts is not None else list(EVENT_BASE)


def _file_counts(sc: Scenario, event: str, hour: float) -> tuple[int, int]:
    return (sc.counts or {}).get(event, {}).get(int(hour), (0, 0))


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
    """One page of ``/stats`` results and whether a next page exists."""
    chunk, more = page_hours(hours_between(start, end), page)
    results = [
        {
            "aggregation": aggregation,
            "start_time": graph_time(h),
            "data": stats_items(sc, dataset_id, aggregation, event, h),
        }
        for h in chunk
    ]
    return results, more


def valid_aggregation(aggregation: str) -> bool:
    return aggregation in _AGGREGATIONS


# ------------------------------------------------------------- dataset_quality


def _pct(value: float) -> dict[str, float]:
    return {"percentage": value}


def _dedupe(browser: float, server: float, overall: float, key: str = "event_id") -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "browser_events_with_dedupe_key": _pct(browser),
        "server_events_with_dedupe_key": _pct(server),
        "overall_browser_coverage_from_dedupe_key": _pct(overall),
    }


def _emq(score: float, coverage: Mapping[str, float], diagnostics: list[Any]) -> dict[str, Any]:
    feedback = [{"identifier": k, "coverage": _pct(v)} for k, v in coverage.items()]
    block: dict[str, Any] = {"composite_score": score, "match_key_feedback": feedback}
    if diagnostics:
        block["diagnostics"] = diagnostics
    return block


_GOOD_COVERAGE = {"email": 96.4, "ip_address": 99.1, "user_agent": 99.6, "external_id": 88.0}
_LOW_COVERAGE = {"email": 8.2, "ip_address": 97.0, "user_agent": 99.0}
_IP_DIAGNOSTIC = {
    "name": "Server sending mismatched IP addresses",
    "description": "Some server events carry an IP address that differs from the browser's.",
    "solution": "Send the client's IP address (prefer IPv6), not your server's.",
    "percentage": 62.5,
    "affected_event_count": 410,
    "total_event_count": 656,
}


def _conversion_entry(sc: Scenario, event: str) -> dict[str, Any]:
    kind = sc.kind
    low_emq = kind is ScenarioKind.EMQ_LOW
    entry: dict[str, Any] = {
        "event_name": event,
        "event_match_quality": _emq(
            3.1 if low_emq else 8.1,
            _LOW_COVERAGE if low_emq else _GOOD_COVERAGE,
            [_IP_DIAGNOSTIC] if low_emq else [],
        ),
        "event_coverage": {"percentage": 81.2, "goal_percentage": 75},
        "dedupe_key_feedback": [_dedupe(100, 100, 79.9), _dedupe(92.0, 88.5, 4.1, "external_id")],
        "data_freshness": {"upload_frequency": "real_time"},
        "acr": _pct(21.4),
        "event_potential_aly_acr_increase": _pct(3.5),
    }
    if kind is ScenarioKind.COVERAGE_LOW or (
        kind is ScenarioKind.SERVER_MISSING and event == "Purchase"
    ):
        entry["event_coverage"] = {
            "percentage": 0.0 if kind is ScenarioKind.SERVER_MISSING else 33.3,
            "goal_percentage": 75,
        }
    if kind is ScenarioKind.DEDUP_BROKEN:
        # The field table's spelling, seen in some answers (§3 spelling trap).
        del entry["dedupe_key_feedback"]
        entry["dedup_key_feedback"] = [_dedupe(100, 12.0, 9.5)]
    if kind is ScenarioKind.SLOW_FRESHNESS:
        entry["data_freshness"] = {"upload_frequency": "daily" if event == "Purchase" else "Weekly"}
    return entry


def dataset_quality_body(sc: Scenario) -> dict[str, Any]:
    """``{"web": [...]}``: full blocks for conversions, sparse ones for PageView (§3)."""
    web = [_conversion_entry(sc, e) for e in ("Purchase", "InitiateCheckout", "AddToCart")]
    # Sparse on purpose: absent coverage/dedupe/acr blocks mean "unknown", not zero.
    web.append(
        {
            "event_name": "PageView",
            "event_match_quality": {
                "composite_score": 6.4 if sc.kind is ScenarioKind.EMQ_LOW else 7.2
            },
            "data_freshness": {"upload_frequency": "real_time"},
        }
    )
    return {"web": web}


# -------------------------------------------------------------------- da_checks


def da_checks_body(sc: Scenario, dataset_id: str) -> dict[str, Any]:
    """``/da_checks`` items (§4); ``da_checks_failed`` uses the fixture's ``PASS``/``FAIL``."""
    failed = sc.kind is ScenarioKind.DA_CHECKS_FAILED
    ok = "PASS" if failed else "passed"
    uri = f"https://www.facebook.com/ads/manage/pixels/?pixel_id={dataset_id}"
    return {
        "data": [
            {
                "key": "pixel_missing_dpa_event",
                "title": "Missing events for dynamic ads",
                "description": "No ViewContent, AddToCart or Purchase in the last 24 hours.",
                "result": ok,
            },
            {
                "key": "pixel_missing_param_in_events",
                "title": "Missing parameters",
                "description": "Dynamic ads parameters are missing.",
                "result": ok,
            },
            {
                "key": "pixel_decline",
                "title": "Decline in number of pixel events",
                "description": "Events fell below half of the weekly average over 24 hours.",
                "result": "FAIL" if failed else "passed",
                "action_uri": uri,
            },
            {
                "key": "pixel_low_event_source_match_rate",
                "title": "Pixel has low event source match rate",
                "description": "Catalog content_ids do not match.",
                "result": "unavailable",
            },
        ]
    }


# ------------------------------------------------------------------ debug_token


def debug_token_body(sc: Scenario, now: float) -> dict[str, Any]:
    """A valid system-user token (appendix); ``expires_at`` 0 means never."""
    return {
        "data": {
            "app_id": "100200300",
            "type": "SYSTEM_USER",
            "application": "capi-monitor fake",
            "is_valid": True,
            "issued_at": int(now) - 86400 * 30,
            "expires_at": sc.token_expires_at,
            "data_access_expires_at": 0,
            "scopes": ["ads_read", "ads_management", "business_management"],
        }
    }


# ---------------------------------------------------------------- errors, usage


def error_body(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    type_: str = "OAuthException",
    transient: bool = False,
    trace: str = "AFakeTrace0001",
) -> dict[str, Any]:
    """Meta's error envelope (§8)."""
    err: dict[str, Any] = {
        "message": message,
        "type": type_,
        "code": code,
        "is_transient": transient,
        "fbtrace_id": trace,
    }
    if subcode is not None:
        err["error_subcode"] = subcode
    return {"error": err}


def usage_headers(
    sc: Scenario, dataset_id: str | None, *, throttled: bool = False
) -> dict[str, str]:
    """``X-App-Usage``, ``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage`` (§8)."""
    pct = sc.app_usage_pct
    headers = {
        "X-App-Usage": orjson.dumps(
            {"call_count": pct, "total_cputime": max(pct - 3, 0), "total_time": max(pct - 2, 0)}
        ).decode(),
        "X-Ad-Account-Usage": orjson.dumps(
            {"acc_id_util_pct": min(pct, 100), "reset_time_duration": 0}
        ).decode(),
    }
    if dataset_id is not None:
        entry = {
            "type": "ads_management",
            "call_count": 100 if throttled else pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": sc.regain_minutes if throttled else 0,
            "ads_api_access_tier": "standard_access",
        }
        headers["X-Business-Use-Case-Usage"] = orjson.dumps({dataset_id: [entry]}).decode()
    return headers


TOKEN_EXPIRED = (
    "Error validating access token: Session has expired on Thursday, 01-Jan-26 00:00:00 PST."
)


def token_error(status: int = 400) -> Reply:
    return Reply(status, error_body(190, TOKEN_EXPIRED, subcode=463))


def failure(sc: Scenario, endpoint: str, call_no: int, dataset_id: str | None) -> Reply | None:
    """The failing answer of scenario ``sc`` for call number ``call_no`` (0-based), if any.

    ``endpoint`` is ``stats``, ``dataset_quality``, ``da_checks`` or ``debug_token``.
    """
    kind = sc.kind
    if kind is ScenarioKind.TOKEN_INVALID:
        # Mocks pair 190 with HTTP 500 (§8): /stats answers 500, the rest 400.
        return token_error(500 if endpoint == "stats" else 400)
    if kind is ScenarioKind.RATE_LIMITED:
        headers = usage_headers(sc, dataset_id, throttled=True)
        if endpoint in ("stats", "da_checks"):
            body = error_body(
                80004,
                "There have been too many calls to this ad-account. Wait a bit and try again.",
                subcode=2446079,
                transient=True,
            )
            return Reply(400, body, headers)
        if endpoint == "dataset_quality":
            return Reply(
                500, error_body(17, "User request limit reached", subcode=2446079), headers
            )
        return Reply(400, error_body(4, "Application request limit reached"), headers)
    if kind is ScenarioKind.SERVER_ERROR:
        if endpoint in ("stats", "debug_token"):
            html = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            return Reply(503, None, raw=html, content_type="text/html")
        return Reply(500, error_body(1, "An unknown error occurred", transient=True))
    if kind is ScenarioKind.MALFORMED_JSON:
        return Reply(200, None, raw=b'{"data": [{"aggregation": "event", "start_time": "20')
    if kind is ScenarioKind.FLAKY and call_no < sc.fail_first:
        msg = "An unexpected error has occurred. Please retry your request later."
        return Reply(500, error_body(2, msg, transient=True))
    return None

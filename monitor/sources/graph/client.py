"""Graph API source: an async client for the reads behind the Graph-based checks.

Reads (docs/meta-capi.md §2-§4, appendix): ``/{dataset}/stats`` (``event``, ``event_source``,
``match_keys``), ``/dataset_quality``, ``/{dataset}/da_checks`` and ``/debug_token``. The
answers are normalised into the value types of ``graph_model`` (see there for the meaning
of each field); ``poll_dataset`` bundles one dataset's reads into a ``GraphSnapshot`` and
``poll_many`` polls every configured dataset that has a token, with a bound on in-flight
HTTP calls across all of them.

Contracts:

- **Secrets.** The token travels in the ``Authorization: Bearer`` header (Graph accepts it
  like the ``access_token`` query parameter), so URLs carry no token, except
  ``debug_token``'s ``input_token``. ``paging.next`` URLs returned by Meta do contain
  ``access_token``: it is stripped before they are followed, and they are never logged or
  stored. Every ``httpx`` error is converted into a ``GraphError`` built from safe parts,
  outside the ``except`` block (no ``__context__`` chain to the URL), with the token
  replaced and the text scrubbed. A log filter on the ``httpx`` logger redacts the tokens
  of live clients from its "HTTP Request: GET <url>" lines.
- **Errors** are classified from Meta's JSON error envelope, not the HTTP status (mocks pair
  190 and 17 with HTTP 500, §8) into ``GraphErrorKind``. Transient and throttling errors
  are retried with exponential backoff and full jitter; a throttled answer's
  ``estimated_time_to_regain_access`` (MINUTES, §8) replaces the backoff, capped at
  ``backoff_max``. 100, 190/102, 3, 10, 200-299, 368 are never retried.
- **Usage.** ``X-App-Usage``, ``X-Business-Use-Case-Usage`` and ``X-Ad-Account-Usage`` are
  read from every answer; above ``usage_slowdown_pct`` the client sleeps before each call,
  from 0 s at the threshold up to ``usage_slowdown_max`` at 100 %, to stay under the
  limit rather than hit it (§8: back off near 75-90 %).
- **Normalisation** (§2-§4, §12): ``start_time`` offsets without a colon (``+0000``) are
  parsed, buckets become aware UTC; buckets repeated across pages (daily chunk
  boundaries) are merged by ``(hour, event, value)`` keeping the larger count, never
  summed; match keys are mapped to the CAPI parameter names (``email`` -> ``em``...),
  unknown names kept lower-cased, combos such as ``email,phone`` kept as ONE key with
  mapped, sorted members (``em,ph``): splitting would count the same events again under
  the single keys. Two raw names mapping to one key in one bucket also keep the larger
  count (both are the same events under two names, as far as anyone knows [UNCONFIRMED]).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import random
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson

from monitor.config import DatasetSettings, MetaSettings, Settings
from monitor.errors import SourceError
from monitor.mask import scrub_text
from monitor.model.graph import (
    ALL_PARTS,
    DaCheck,
    DedupeFeedback,
    EmqDiagnostic,
    EventQuality,
    EventSource,
    GraphErrorKind,
    GraphSnapshot,
    Part,
    PartError,
    SourceCounts,
    StatsBucket,
    TokenInfo,
    Usage,
)
from monitor.timeutil import parse_iso

__all__ = [
    "DATASET_QUALITY_FIELDS",
    "PARITY_EVENTS",
    "GraphClient",
    "GraphError",
    "GraphErrorKind",
    "HttpPool",
    "canonical_match_key",
    "classify_error",
    "parse_da_checks",
    "parse_dataset_quality",
    "parse_debug_token",
    "parse_graph_time",
    "parse_usage",
    "poll_dataset",
    "poll_many",
    "poll_parts",
    "resolve_token",
    "stats_window",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# The spelling Meta's examples and SDK use; the field table's `dedup_key_feedback`
# reportedly fails with (#100) "nonexisting field" (docs/meta-capi.md §3, spelling trap).
DATASET_QUALITY_FIELDS = (
    "web{event_name,"
    "event_match_quality{composite_score,"
    "match_key_feedback{identifier,coverage{percentage}},diagnostics},"
    "event_coverage{percentage,goal_percentage},"
    "dedupe_key_feedback{dedupe_key,browser_events_with_dedupe_key{percentage},"
    "server_events_with_dedupe_key{percentage},"
    "overall_browser_coverage_from_dedupe_key{percentage}},"
    "data_freshness{upload_frequency},acr{percentage},"
    "event_potential_aly_acr_increase{percentage}}"
)

# Events split by source with one `event_source&event=` read each (§2: `event` reportedly
# splits one event by source). These are the events both pixel and server should send;
# limiting the split to them bounds the calls per dataset (each read is 2+ pages).
PARITY_EVENTS = (
    "Purchase",
    "Lead",
    "CompleteRegistration",
    "InitiateCheckout",
    "AddToCart",
    "AddPaymentInfo",
    "Subscribe",
    "StartTrial",
    "SubmitApplication",
    "Contact",
    "Schedule",
)

_REDACTED = "[redacted]"
_MAX_MESSAGE = 300


# --------------------------------------------------------------------------- errors


class GraphError(SourceError):
    """A Graph API call failed. ``str(err)`` is scrubbed and never contains the token."""

    def __init__(
        self,
        message: str,
        *,
        kind: GraphErrorKind,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool | None = None,
        regain_access_s: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.regain_access_s = regain_access_s
        self.attempts = attempts

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def retryable(self) -> bool:
        """Transient and throttling errors; Meta's ``is_transient`` only for unknown codes."""
        if self.kind in (GraphErrorKind.TRANSIENT, GraphErrorKind.RATE_LIMITED):
            return True
        return self.kind is GraphErrorKind.UNKNOWN and bool(self.is_transient)

    def clone(self, *, attempts: int | None = None) -> GraphError:
        """A fresh copy (for re-raising a shared outcome without a shared traceback)."""
        return GraphError(
            self.message,
            kind=self.kind,
            code=self.code,
            subcode=self.subcode,
            http_status=self.http_status,
            fbtrace_id=self.fbtrace_id,
            is_transient=self.is_transient,
            regain_access_s=self.regain_access_s,
            attempts=self.attempts if attempts is None else attempts,
        )

    def to_part_error(self, part: Part) -> PartError:
        return PartError(
            part=part,
            kind=self.kind,
            code=self.code,
            subcode=self.subcode,
            message_scrubbed=self.message,
            http_status=self.http_status,
            attempts=self.attempts,
        )

    def __repr__(self) -> str:
        return (
            f"GraphError(kind={self.kind.value!r}, code={self.code!r}, "
            f"subcode={self.subcode!r}, http_status={self.http_status!r}, "
            f"message={self.message!r})"
        )


def classify_error(
    code: int | None, subcode: int | None, http_status: int | None
) -> GraphErrorKind:
    """Classify a Graph error from its envelope code (docs/meta-capi.md §8), else the HTTP
    status."""
    if code is None:
        return _classify_status(http_status)
    if code in (190, 102):
        return GraphErrorKind.TOKEN_INVALID
    if code in (4, 17, 32, 341, 613) or 80000 <= code <= 80014:
        return GraphErrorKind.RATE_LIMITED
    if code in (3, 10, 368) or 200 <= code <= 299:
        return GraphErrorKind.PERMISSION
    # 2044055: dataset_quality "unknown dataset" (§3); 100/33: object missing (§8).
    if code in (2044055, 803) or (code == 100 and subcode == 33):
        return GraphErrorKind.NOT_FOUND
    if code in (100, 2500):
        return GraphErrorKind.INVALID
    if code in (1, 2):
        return GraphErrorKind.TRANSIENT
    return GraphErrorKind.UNKNOWN


def _classify_status(http_status: int | None) -> GraphErrorKind:
    if http_status is None or http_status >= 500:
        return GraphErrorKind.TRANSIENT
    if http_status == 429:
        return GraphErrorKind.RATE_LIMITED
    if http_status in (401, 403):
        return GraphErrorKind.PERMISSION
    if http_status == 404:
        return GraphErrorKind.NOT_FOUND
    return GraphErrorKind.UNKNOWN


# ------------------------------------------------------------------ log redaction


class _SecretRedactor(logging.Filter):
    """Replaces registered secrets in records of the logger it is attached to.

    Attached to the ``httpx`` logger, whose INFO line "HTTP Request: GET <url>" includes
    the query string (``debug_token``'s ``input_token``). Logger filters are not inherited
    by child loggers; ``httpcore``'s loggers print no URLs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] += 1

    def discard(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] -= 1
            if self._secrets[secret] <= 0:
                del self._secrets[secret]

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is not ours to fix, only to not leak
            text = str(record.msg)
        if any(s in text for s in secrets):
            for s in secrets:
                text = text.replace(s, _REDACTED)
            record.msg, record.args = text, None
        return True


_REDACTOR = _SecretRedactor()


def _install_redactor() -> None:
    logger = logging.getLogger("httpx")
    if _REDACTOR not in logger.filters:
        logger.addFilter(_REDACTOR)


# ----------------------------------------------------------------- normalisation

_MATCH_KEY_ALIASES = {
    "email": "em",
    "emails": "em",
    "phone": "ph",
    "phone_number": "ph",
    "zip": "zp",
    "zip_code": "zp",
    "postal_code": "zp",
    "ip_address": "client_ip_address",
    "client_ip": "client_ip_address",
    "ip": "client_ip_address",
    "user_agent": "client_user_agent",
    "first_name": "fn",
    "last_name": "ln",
    "city": "ct",
    "state": "st",
    "date_of_birth": "db",
    "birthdate": "db",
    "gender": "ge",
}


@functools.lru_cache(maxsize=1024)  # a small open vocabulary, met ~1000 times per poll
def canonical_match_key(name: str) -> str:
    """Meta's match-key / identifier name -> the CAPI ``user_data`` parameter name.

    ``email``->``em``, ``phone``->``ph``, ``zip``->``zp``, ``ip_address``/``client_ip``->
    ``client_ip_address``, ``user_agent``->``client_user_agent`` (§2, §3). Already-canonical
    and unknown names are kept, lower-cased. A combo (``email,phone``) stays one key with
    each member mapped, de-duplicated and sorted (``em,ph``).
    """
    parts = [p.strip().lower() for p in name.split(",") if p.strip()]
    mapped = sorted({_MATCH_KEY_ALIASES.get(p, p) for p in parts})
    return ",".join(mapped) if mapped else name.strip().lower()


def parse_graph_time(value: object) -> datetime | None:
    """A Graph time (ISO 8601 with ``+0000``-style offsets, or Unix seconds) -> aware UTC."""
    if isinstance(value, str):
        return _parse_graph_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


@functools.lru_cache(maxsize=4096)  # the same hour strings recur on every page and dataset
def _parse_graph_text(value: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(parse_iso(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def stats_window(now: float, hours: int) -> tuple[float, float]:
    """``[start, end)`` covering the last ``hours`` hourly buckets, the current one included.

    The start is aligned to the hour so 48 hours are exactly two pages of ~24 buckets.
    """
    start = math.floor(now / 3600) * 3600 - (max(hours, 1) - 1) * 3600
    return float(start), float(now)


def _num(value: object) -> float | None:
    """A number Meta sent (possibly as a string); ``None`` for anything else. Never 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _int(value: object) -> int | None:
    f = _num(value)
    return int(f) if f is not None else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _pct(block: object) -> float | None:
    """``{"percentage": x}`` (or a bare number) -> x; absent -> ``None`` (unknown, not 0)."""
    if isinstance(block, dict):
        return _num(block.get("percentage"))
    return _num(block)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def normalise_stats(
    aggregation: str,
    results: Iterable[object],
    *,
    event: str | None = None,
    window: tuple[float, float] | None = None,
) -> list[StatsBucket]:
    """``/stats`` ``data`` items (``AdsPixelStatsResult``) -> sorted, de-duplicated buckets.

    ``event`` fills items that carry no ``event`` (``event_source`` asked with ``event=``).
    Buckets outside ``window`` and items without a usable value/count are dropped. Repeats
    of ``(hour, event, value)`` keep the larger count (see the module docstring).
    """
    lo, hi = (math.floor(window[0] / 3600) * 3600, window[1]) if window else (-math.inf, math.inf)
    normalise = _VALUE_NORMALISERS.get(aggregation, _identity)
    merged: dict[tuple[float, str, str], int] = {}
    for result in results:
        if not isinstance(result, dict):
            continue
        hour = parse_graph_time(result.get("start_time"))
        if hour is None or not lo <= hour.timestamp() < hi:
            continue
        ts = hour.timestamp()
        for item in _dicts(result.get("data")):
            # Hot loop (thousands of items per poll): exact-type fast paths first.
            value, count = item.get("value"), item.get("count")
            if type(count) is not int:
                count = _int(count)
            if not isinstance(value, str) or not value.strip() or count is None or count < 0:
                continue
            item_event = item.get("event")
            ev = item_event if isinstance(item_event, str) and item_event else (event or "")
            key = (ts, ev, normalise(value))
            if count >= merged.get(key, 0):
                merged[key] = count
    hours = {t: datetime.fromtimestamp(t, UTC) for t in {t for t, _, _ in merged}}
    return [
        StatsBucket(hour=hours[t], event=e or None, value=v, count=c)
        for (t, e, v), c in sorted(merged.items())
    ]


def _identity(value: str) -> str:
    return value


def _upper(value: str) -> str:
    return value.strip().upper()  # event_source is compared case-insensitively (§2, §12)


_VALUE_NORMALISERS: dict[str, Callable[[str], str]] = {
    "match_keys": canonical_match_key,
    "event_source": _upper,
}


def source_counts(buckets: Iterable[StatsBucket]) -> list[SourceCounts]:
    """``event_source`` buckets -> one ``SourceCounts`` per (hour, event)."""
    grouped: dict[tuple[datetime, str | None], dict[str, int]] = {}
    for b in buckets:
        values = grouped.setdefault((b.hour, b.event), {})
        values[b.value] = values.get(b.value, 0) + b.count
    out = []
    for (hour, event), values in grouped.items():
        browser = values.pop(EventSource.BROWSER.value, 0)
        server = values.pop(EventSource.SERVER.value, 0)
        out.append(
            SourceCounts(hour=hour, event=event, browser=browser, server=server, other=values)
        )
    out.sort(key=lambda s: (s.hour, s.event or ""))
    return out


def _diagnostic(item: dict[str, Any]) -> EmqDiagnostic | None:
    name = _str(item.get("name"))
    if name is None:
        return None
    return EmqDiagnostic(
        name=name,
        description=_str(item.get("description")),
        solution=_str(item.get("solution")),
        percentage=_num(item.get("percentage")),
        affected_event_count=_int(item.get("affected_event_count")),
        total_event_count=_int(item.get("total_event_count")),
    )


def _dedupe(item: dict[str, Any]) -> DedupeFeedback | None:
    key = _str(item.get("dedupe_key")) or _str(item.get("dedup_key"))
    if key is None:
        return None
    return DedupeFeedback(
        key=key.strip().lower(),
        browser_pct=_pct(item.get("browser_events_with_dedupe_key")),
        server_pct=_pct(item.get("server_events_with_dedupe_key")),
        overall_pct=_pct(item.get("overall_browser_coverage_from_dedupe_key")),
    )


def _frequency(block: object) -> str | None:
    if not isinstance(block, dict):
        return None
    raw = _str(block.get("upload_frequency"))
    return re.sub(r"[\s-]+", "_", raw.strip().lower()) if raw else None


def _event_quality(item: dict[str, Any]) -> EventQuality | None:
    name = _str(item.get("event_name"))
    if name is None:
        return None
    emq = item.get("event_match_quality")
    emq = emq if isinstance(emq, dict) else {}
    coverage: dict[str, float] = {}
    for fb in _dicts(emq.get("match_key_feedback")):
        ident, pct = _str(fb.get("identifier")), _pct(fb.get("coverage"))
        if ident is not None and pct is not None:
            key = canonical_match_key(ident)
            coverage[key] = max(coverage.get(key, pct), pct)
    # Both spellings are accepted in answers (§3 spelling trap); absent -> None (unknown).
    raw_dedupe = item.get("dedupe_key_feedback", item.get("dedup_key_feedback"))
    event_cov = item.get("event_coverage")
    return EventQuality(
        event_name=name,
        composite_score=_num(emq.get("composite_score")),
        match_key_coverage=coverage,
        diagnostics=[d for d in map(_diagnostic, _dicts(emq.get("diagnostics"))) if d],
        coverage_pct=_pct(event_cov),
        coverage_goal_pct=_num(event_cov.get("goal_percentage"))
        if isinstance(event_cov, dict)
        else None,
        dedupe=None if raw_dedupe is None else [d for d in map(_dedupe, _dicts(raw_dedupe)) if d],
        upload_frequency=_frequency(item.get("data_freshness")),
        acr_pct=_pct(item.get("acr")),
        potential_acr_increase_pct=_pct(item.get("event_potential_aly_acr_increase")),
    )


def parse_dataset_quality(body: Mapping[str, Any]) -> list[EventQuality]:
    """A ``/dataset_quality`` answer -> one ``EventQuality`` per event name (§3).

    Reads ``{"web": [...]}``; also tolerates the list wrapped in ``data`` (as a Graph edge
    would). Entries without an ``event_name`` are skipped: they cannot be attributed.
    """
    web = body.get("web")
    if web is None and isinstance(body.get("data"), list):
        data = _dicts(body["data"])
        web = data[0].get("web") if data and "web" in data[0] else data
    return [q for q in map(_event_quality, _dicts(web)) if q]


_RESULT_ALIASES = {"pass": "passed", "fail": "failed", "ok": "passed"}


def parse_da_checks(items: Iterable[object]) -> list[DaCheck]:
    """``/da_checks`` ``data`` items -> ``DaCheck`` list; ``result`` folded case-insensitively."""
    out = []
    for item in items:
        if not isinstance(item, dict) or _str(item.get("key")) is None:
            continue
        raw = (_str(item.get("result")) or "unknown").strip().lower()
        out.append(
            DaCheck(
                key=str(item["key"]).strip(),
                title=_str(item.get("title")),
                description=_str(item.get("description")),
                result=_RESULT_ALIASES.get(raw, raw),
                action_uri=_str(item.get("action_uri")),
                user_message=_str(item.get("user_message")),
            )
        )
    return out


def _expiry(value: object) -> float | None:
    ts = _num(value)
    return ts if ts else None  # 0 means "never expires" (appendix)


def parse_debug_token(body: Mapping[str, Any], *, now: float, secret: str = "") -> TokenInfo:
    """A ``/debug_token`` answer -> ``TokenInfo``; raises ``GraphError`` without ``is_valid``."""
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("is_valid"), bool):
        raise GraphError("debug_token: answer without data.is_valid", kind=GraphErrorKind.UNKNOWN)
    err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
    scopes = data.get("scopes")
    app_id = _str(data.get("app_id")) or _int(data.get("app_id"))
    return TokenInfo(
        valid=data["is_valid"],
        checked_at=now,
        expires_at=_expiry(data.get("expires_at")),
        data_access_expires_at=_expiry(data.get("data_access_expires_at")),
        type=_str(data.get("type")),
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        app_id=str(app_id) if app_id is not None else None,
        error=_safe(str(err["message"]), secret) if _str(err.get("message")) else None,
        code=_int(err.get("code")),
        subcode=_int(err.get("subcode", err.get("error_subcode"))),
    )


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _max_pct(obj: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    values = [v for k in keys if (v := _num(obj.get(k))) is not None]
    return max(values) if values else None


_USAGE_KEYS = ("call_count", "total_cputime", "total_time")


def parse_usage(headers: Mapping[str, str]) -> Usage | None:
    """Rate-limit usage headers (§8) -> ``Usage``; ``None`` when none was sent or readable."""
    app = _json_header(headers.get("x-app-usage"))
    buc = _json_header(headers.get("x-business-use-case-usage"))
    acc = _json_header(headers.get("x-ad-account-usage"))
    app_pct = _max_pct(app, _USAGE_KEYS) if isinstance(app, dict) else None
    business: list[float] = []
    regain: list[float] = []
    for entries in buc.values() if isinstance(buc, dict) else ():
        for entry in _dicts(entries):
            if (pct := _max_pct(entry, _USAGE_KEYS)) is not None:
                business.append(pct)
            if (minutes := _num(entry.get("estimated_time_to_regain_access"))) is not None:
                regain.append(minutes * 60.0)  # MINUTES in the header (§8)
    acc_pct = _num(acc.get("acc_id_util_pct")) if isinstance(acc, dict) else None
    if app_pct is None and not business and not regain and acc_pct is None:
        return None
    return Usage(
        app_pct=app_pct,
        business_pct=max(business) if business else None,
        ad_account_pct=acc_pct,
        regain_access_s=max(regain) if regain else None,
    )


def _safe(text: str, secret: str) -> str:
    """Text fit for an error, a log or the store: token replaced, then scrubbed, bounded."""
    if secret:
        text = text.replace(secret, _REDACTED)
    text = scrub_text(" ".join(text.split()))
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


# --------------------------------------------------------------------- the client

# HTTP calls made on behalf of one dataset: set by `poll_dataset`, inherited by the tasks
# it spawns, so one client shared by many datasets still attributes its calls.
_DATASET_CALLS: ContextVar[list[int] | None] = ContextVar("graph_dataset_calls", default=None)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a request goes: a URL without query, its parameters, and a log-safe label."""

    url: str
    params: dict[str, str] = field(repr=False)  # may hold debug_token's input_token
    label: str = ""


class HttpPool:
    """One or more ``httpx.AsyncClient`` connection pools used as one, least-busy first.

    Why: httpcore's pool does O(connections²) bookkeeping plus one ``poll()`` per
    connection on every request start and end (``_assign_requests_to_connections``); at
    64 connections that costs more CPU than the calls themselves. Pools of at most
    ``per_pool`` connections keep it small. Never more than ``size`` connections in all
    when at most ``size`` requests are in flight (``poll_many``'s limiter ensures it).
    A given ``transport`` (tests) means a single pool on that transport.
    """

    def __init__(
        self,
        *,
        size: int = 100,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        per_pool: int = 8,
    ) -> None:
        shards = 1 if transport is not None else max(1, math.ceil(size / max(per_pool, 1)))
        cap = max(1, math.ceil(size / shards))
        limits = httpx.Limits(max_connections=cap, max_keepalive_connections=cap)
        self._clients = [
            httpx.AsyncClient(
                transport=transport, limits=limits, timeout=timeout, follow_redirects=False
            )
            for _ in range(shards)
        ]
        self._busy = [0] * shards

    @property
    def shards(self) -> int:
        return len(self._clients)

    async def get(
        self, url: str, *, params: Mapping[str, str], headers: Mapping[str, str], timeout: float
    ) -> httpx.Response:
        i = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[i] += 1
        try:
            return await self._clients[i].get(url, params=params, headers=headers, timeout=timeout)
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


class GraphClient:
    """Async Graph API client for one token. Use as ``async with GraphClient(...) as c``.

    ``transport`` (tests: a real loopback server or ``httpx.MockTransport``), ``sleep``
    and ``rng`` are injectable. ``limiter`` bounds in-flight HTTP calls (shared by the
    clients of ``poll_many``); ``http`` is a shared ``HttpPool`` this client then does not
    close. ``calls`` counts HTTP requests made; ``usage`` is the latest usage.
    """

    def __init__(
        self,
        *,
        graph_url: str,
        api_version: str,
        token: str,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        usage_slowdown_pct: float = 75.0,
        usage_slowdown_max: float = 10.0,
        limiter: asyncio.Semaphore | None = None,
        http: HttpPool | None = None,
    ) -> None:
        if not token:
            raise ValueError("GraphClient needs a non-empty access token")
        self._base = graph_url.rstrip("/")
        self._version = api_version.strip("/")
        self._token = token
        self._timeout = timeout
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slowdown_pct = usage_slowdown_pct
        self._slowdown_max = usage_slowdown_max
        self._limiter = limiter
        self._owns_http = http is None
        self._http = http or HttpPool(timeout=timeout, transport=transport)
        self._token_lock = asyncio.Lock()
        self._token_memo: tuple[float, TokenInfo | GraphError] | None = None
        self._closed = False
        self.calls = 0
        self.usage = Usage()
        _install_redactor()
        _REDACTOR.add(token)

    def __repr__(self) -> str:
        return f"GraphClient(graph_url={self._base!r}, api_version={self._version!r})"

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the owned HTTP client; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_http:
            await self._http.aclose()
        _REDACTOR.discard(self._token)

    # -- generic reads

    async def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET ``/{version}/{path}``; the decoded JSON object, or ``GraphError``."""
        return await self._request(self._target(path, params))

    async def get_all(
        self, path: str, params: Mapping[str, str], *, max_pages: int = 500
    ) -> list[dict[str, Any]]:
        """All ``data`` items of ``path``, following ``paging.next`` to the end (§2).

        Raises ``GraphError`` (kind ``unknown``) rather than return a silently truncated
        list when paging does not end within ``max_pages``: a partial read has produced
        false findings before (§2).
        """
        target = self._target(path, params)
        body = await self._request(target)
        items, seen = _dicts(body.get("data")), {_key(target)}
        while (nxt := _next_url(body)) is not None:
            target = self._rebase(nxt, target.label)
            if _key(target) in seen:
                break  # a next link pointing back: Meta's paging ended
            if len(seen) >= max_pages:
                msg = f"{target.label}: paging did not end after {max_pages} pages"
                raise GraphError(msg, kind=GraphErrorKind.UNKNOWN)
            seen.add(_key(target))
            body = await self._request(target)
            items.extend(_dicts(body.get("data")))
        return items

    # -- typed reads

    async def stats(
        self,
        dataset_id: str,
        aggregation: str,
        start: float,
        end: float,
        *,
        event: str | None = None,
    ) -> list[StatsBucket]:
        """``/{dataset}/stats`` over ``[start, end)``, all pages, normalised (§2)."""
        params = {
            "aggregation": aggregation,
            "start_time": str(int(start)),
            "end_time": str(int(end)),
        }
        if event is not None:
            params["event"] = event
        results = await self.get_all(f"{dataset_id}/stats", params)
        return normalise_stats(aggregation, results, event=event, window=(start, end))

    async def dataset_quality(self, dataset_id: str) -> list[EventQuality]:
        """``/dataset_quality?dataset_id=..`` web block, per event name (§3)."""
        body = await self.get(
            "dataset_quality", {"dataset_id": dataset_id, "fields": DATASET_QUALITY_FIELDS}
        )
        return parse_dataset_quality(body)

    async def da_checks(self, dataset_id: str) -> list[DaCheck]:
        """``/{dataset}/da_checks``, all checks, all pages (§4)."""
        return parse_da_checks(await self.get_all(f"{dataset_id}/da_checks", {}, max_pages=20))

    async def debug_token(self, now: float) -> TokenInfo:
        """Probe this client's own token with ``/debug_token`` (appendix).

        A 190/102 on the probe itself means the token is invalid: that is an answer,
        ``TokenInfo(valid=False, ...)``, not an error. The outcome is memoised per ``now``
        (one probe per poll for all datasets sharing the token); other failures raise
        ``GraphError`` (a fresh copy for each caller).
        """
        async with self._token_lock:
            if self._token_memo is None or self._token_memo[0] != now:
                self._token_memo = (now, await self._probe_token(now))
            outcome = self._token_memo[1]
        if isinstance(outcome, GraphError):
            raise outcome.clone()
        return outcome

    async def _probe_token(self, now: float) -> TokenInfo | GraphError:
        try:
            body = await self.get("debug_token", {"input_token": self._token})
            return parse_debug_token(body, now=now, secret=self._token)
        except GraphError as err:
            if err.kind is not GraphErrorKind.TOKEN_INVALID:
                return err
            return TokenInfo(
                valid=False, checked_at=now, error=err.message, code=err.code, subcode=err.subcode
            )

    # -- plumbing

    def _target(self, path: str, params: Mapping[str, str]) -> _Target:
        clean = path.strip("/")
        url = f"{self._base}/{self._version}/{clean}"
        return _Target(url=url, params=dict(params), label=f"GET /{self._version}/{clean}")

    def _rebase(self, next_url: str, label: str) -> _Target:
        """A ``paging.next`` URL -> a target on our ``graph_url``, ``access_token`` removed.

        The host is ours, not the link's: a proxy in ``graph_url`` must not be bypassed,
        and the token header must not go to a host we were not configured for.
        """
        try:
            url: httpx.URL | None = httpx.URL(next_url)
        except (httpx.InvalidURL, TypeError):
            url = None
        if url is None:  # raised outside the except: no context holding the link's token
            raise GraphError(f"{label}: unusable paging.next link", kind=GraphErrorKind.UNKNOWN)
        base = httpx.URL(self._base)
        same_origin = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
        path = url.path if same_origin else base.path.rstrip("/") + url.path
        params = {k: v for k, v in url.params.multi_items() if k != "access_token"}
        return _Target(url=str(base.copy_with(path=path)), params=params, label=label)

    async def _request(self, target: _Target) -> dict[str, Any]:
        for attempt in range(self._max_retries + 1):
            await self._throttle()
            outcome = await self._attempt(target)
            if not isinstance(outcome, GraphError):
                return outcome
            if not outcome.retryable or attempt == self._max_retries:
                raise outcome.clone(attempts=attempt + 1)
            delay = self._retry_delay(attempt, outcome)
            log.info(
                "%s: %s (code %s), retry %d/%d in %.1fs",
                target.label,
                outcome.kind.value,
                outcome.code,
                attempt + 1,
                self._max_retries,
                delay,
            )
            await self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, attempt: int, err: GraphError) -> float:
        # Throttled answers say when access returns (minutes -> s, §8): wait that long,
        # within backoff_max; otherwise exponential backoff with full jitter.
        if err.kind is GraphErrorKind.RATE_LIMITED and err.regain_access_s:
            return min(err.regain_access_s, self._backoff_max)
        cap = min(self._backoff_max, self._backoff_base * 2**attempt)
        return self._rng.uniform(0.0, cap)

    def usage_delay(self) -> float:
        """Seconds to wait before the next call given the latest usage (0 below threshold)."""
        pct = self.usage.max_pct
        if pct <= self._slowdown_pct:
            return 0.0
        share = min(1.0, (pct - self._slowdown_pct) / max(100.0 - self._slowdown_pct, 1e-9))
        return share * self._slowdown_max

    async def _throttle(self) -> None:
        delay = self.usage_delay()
        if delay > 0:
            log.debug("usage at %.0f%%: slowing down %.2fs", self.usage.max_pct, delay)
            await self._sleep(delay)

    async def _attempt(self, target: _Target) -> dict[str, Any] | GraphError:
        """One HTTP request; never raises for HTTP or API failures (returns the error)."""
        headers = {"Authorization": f"Bearer {self._token}"}
        failure: GraphError | None = None
        limiter = self._limiter or contextlib.nullcontext()
        async with limiter:
            self.calls += 1
            if (counter := _DATASET_CALLS.get()) is not None:
                counter[0] += 1
            try:
                response = await self._http.get(
                    target.url, params=target.params, headers=headers, timeout=self._timeout
                )
            except httpx.TimeoutException as exc:
                failure = self._network_error(target, exc, "timed out")
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                failure = self._network_error(target, exc, "bad URL", GraphErrorKind.UNKNOWN)
            except httpx.TransportError as exc:
                failure = self._network_error(target, exc, "connection failed")
        # Raised (by the caller) outside the `except` blocks: no __context__ chain back to
        # the httpx exception, whose request holds the URL.
        if failure is not None:
            return failure
        usage = parse_usage(response.headers)
        if usage is not None:
            self.usage = usage
        return self._decode(target, response, usage)

    def _network_error(
        self,
        target: _Target,
        exc: Exception,
        what: str,
        kind: GraphErrorKind = GraphErrorKind.TRANSIENT,
    ) -> GraphError:
        detail = _safe(str(exc), self._token) or type(exc).__name__
        msg = f"{target.label}: {what} ({type(exc).__name__}: {detail})"
        return GraphError(_safe(msg, self._token), kind=kind)

    def _decode(
        self, target: _Target, response: httpx.Response, usage: Usage | None
    ) -> dict[str, Any] | GraphError:
        status = response.status_code
        try:
            body: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return self._envelope_error(target, status, body["error"], usage)
        if status >= 400:
            kind = _classify_status(status)
            return GraphError(
                f"{target.label}: HTTP {status} without error body", kind=kind, http_status=status
            )
        if not isinstance(body, dict):
            # A truncated or garbled 2xx body: worth a retry (TRANSIENT, per the brief).
            msg = f"{target.label}: malformed JSON body (HTTP {status})"
            return GraphError(msg, kind=GraphErrorKind.TRANSIENT, http_status=status)
        return body

    def _envelope_error(
        self, target: _Target, status: int, err: dict[str, Any], usage: Usage | None
    ) -> GraphError:
        code, subcode = _int(err.get("code")), _int(err.get("error_subcode"))
        kind = classify_error(code, subcode, status)
        text = _str(err.get("message")) or "no message"
        if title := _str(err.get("error_user_title")):
            text = f"{text} ({title})"
        trace = _str(err.get("fbtrace_id"))
        msg = (
            f"{target.label}: {kind.value} (code {code}, subcode {subcode}, HTTP {status}): {text}"
        )
        if trace:
            msg += f" [fbtrace_id {trace}]"
        # Only this answer's own header says when access returns (§8), not an older one.
        throttled = kind is GraphErrorKind.RATE_LIMITED and usage is not None
        regain = usage.regain_access_s if throttled and usage is not None else None
        transient = err.get("is_transient")
        return GraphError(
            _safe(msg, self._token),
            kind=kind,
            code=code,
            subcode=subcode,
            http_status=status,
            fbtrace_id=trace,
            is_transient=transient if isinstance(transient, bool) else None,
            regain_access_s=regain,
        )


def _next_url(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    return _str(paging.get("next")) if isinstance(paging, dict) else None


def _key(target: _Target) -> tuple[str, tuple[tuple[str, str], ...]]:
    return target.url, tuple(sorted(target.params.items()))


# ------------------------------------------------------------------------ polling


async def _guarded(part: Part, coro: Awaitable[T], errors: list[PartError]) -> T | None:
    """Run one part; its failure becomes a ``PartError`` in ``errors``, never an exception."""
    try:
        return await coro
    except GraphError as err:
        errors.append(err.to_part_error(part))
    except Exception as err:  # a shape we failed to tolerate must not stop the poll
        log.warning("graph part %s: unexpected %s", part.value, type(err).__name__)
        msg = f"{part.value}: unexpected {type(err).__name__} while reading the answer"
        errors.append(PartError(part, GraphErrorKind.UNKNOWN, None, None, msg))
    return None


async def _gather_all(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Like ``gather`` but lets every call finish before raising the first error."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)  # type: ignore[arg-type]


def _split_events(buckets: Sequence[StatsBucket], limit: int) -> list[str]:
    totals: Counter[str] = Counter()
    for b in buckets:
        totals[b.value] += b.count
    ranked = [name for name, _ in totals.most_common()]
    chosen = [n for n in ranked if n in PARITY_EVENTS] or ranked
    return chosen[:limit]


def poll_parts(
    parts: Iterable[Part | str] | None, split_events: Sequence[str] | None = None
) -> frozenset[Part]:
    """The parts a poll asked for ``parts`` reads (``None``: all of them).

    ``event_source`` is split per event name taken from the ``event`` list, so asking for
    it reads that list too, unless ``split_events`` names the events.
    """
    wanted = ALL_PARTS if parts is None else frozenset(Part(p) for p in parts)
    if Part.STATS_EVENT_SOURCE in wanted and split_events is None:
        wanted |= {Part.STATS_EVENT}
    return wanted


async def poll_dataset(
    client: GraphClient,
    dataset_id: str,
    *,
    now: float,
    hours: int = 48,
    split_events: Sequence[str] | None = None,
    max_split_events: int = 8,
    parts: Iterable[Part | str] | None = None,
) -> GraphSnapshot:
    """Read what the Graph-based checks need about one dataset; never raises.

    Stats over ``stats_window(now, hours)``: ``event``, then ``event_source`` split per
    event name (``split_events``, else the ``PARITY_EVENTS`` seen, else the busiest
    events, at most ``max_split_events``; dataset-wide only if the event list could not
    be read) and ``match_keys``; plus ``dataset_quality``, ``da_checks`` and the token.
    ``parts`` limits the reads to those parts (see ``poll_parts``; default: all); the
    snapshot's ``parts`` says which were asked for.
    Each part's failure is a ``PartError`` in ``errors`` and leaves that part empty/None.
    """
    start, end = stats_window(now, hours)
    wanted = poll_parts(parts, split_events)
    errors: list[PartError] = []
    counter = [0]
    reset = _DATASET_CALLS.set(counter)
    try:

        async def read(part: Part, make: Callable[[], Awaitable[T]]) -> T | None:
            # The coroutine is made only for a part asked for: one never awaited warns.
            return await _guarded(part, make(), errors) if part in wanted else None

        async def events_and_sources() -> tuple[list[StatsBucket], list[SourceCounts]]:
            events = await read(
                Part.STATS_EVENT, lambda: client.stats(dataset_id, "event", start, end)
            )
            if Part.STATS_EVENT_SOURCE not in wanted:
                return events or [], []
            names: list[str | None] = [None]  # dataset-wide when events are unknown
            if split_events is not None and (events is not None or Part.STATS_EVENT not in wanted):
                names = list(split_events)
            elif events is not None:
                names = list(_split_events(events, max_split_events))
            reads = [client.stats(dataset_id, "event_source", start, end, event=n) for n in names]
            sources = await _guarded(Part.STATS_EVENT_SOURCE, _gather_all(reads), errors)
            flat = [b for per_event in sources or [] for b in per_event]
            return events or [], source_counts(flat)

        (events, sources), keys, quality, checks, token = await asyncio.gather(
            events_and_sources(),
            read(Part.STATS_MATCH_KEYS, lambda: client.stats(dataset_id, "match_keys", start, end)),
            read(Part.DATASET_QUALITY, lambda: client.dataset_quality(dataset_id)),
            read(Part.DA_CHECKS, lambda: client.da_checks(dataset_id)),
            read(Part.TOKEN, lambda: client.debug_token(now)),
        )
    finally:
        _DATASET_CALLS.reset(reset)
    order = list(Part)
    errors.sort(key=lambda e: order.index(e.part))
    return GraphSnapshot(
        dataset_id=dataset_id,
        polled_at=now,
        window_start=start,
        window_end=end,
        event_counts=events,
        source_counts=sources,
        match_key_counts=keys or [],
        quality=quality,
        da_checks=checks,
        token=token,
        errors=errors,
        calls=counter[0],
        usage=client.usage,
        parts=wanted,
    )


def resolve_token(
    meta: MetaSettings, dataset: DatasetSettings, env: Mapping[str, str]
) -> str | None:
    """The token for ``dataset``: its own ``access_token_env`` if set, else ``[meta]``'s.

    A dataset naming its own variable does NOT fall back to the shared token when that
    variable is unset: silently polling with another account's token would mislead.
    """
    name = dataset.access_token_env or meta.access_token_env
    token = (env.get(name) or "").strip()
    return token or None


async def poll_many(
    settings: Settings,
    *,
    now: float,
    concurrency: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
    env: Mapping[str, str] = os.environ,
    hours: int = 48,
    timeout: float = 30.0,
    max_retries: int = 4,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    parts: Iterable[Part | str] | None = None,
) -> dict[str, GraphSnapshot]:
    """Poll every configured dataset that has a token, at most ``concurrency`` calls in flight.

    Without ``[meta]``, or for datasets without a token, no call is made and the dataset
    is absent from the result (its Graph checks are ``skipped``, docs/contracts.md §6). One
    ``GraphClient`` per distinct token; all share one ``HttpPool`` and one limiter.
    Result order follows the config. ``parts``: see ``poll_dataset`` (default: all).
    """
    meta = settings.meta
    if meta is None:
        return {}
    jobs = [(ds.id, tok) for ds in settings.datasets if (tok := resolve_token(meta, ds, env))]
    if not jobs:
        return {}
    bound = max(1, concurrency)
    limiter = asyncio.Semaphore(bound)
    http = HttpPool(size=bound, timeout=timeout, transport=transport)
    clients: dict[str, GraphClient] = {}
    try:
        for _, tok in jobs:
            if tok not in clients:
                clients[tok] = GraphClient(
                    graph_url=meta.graph_url,
                    api_version=meta.api_version,
                    token=tok,
                    timeout=timeout,
                    max_retries=max_retries,
                    sleep=sleep,
                    rng=rng,
                    limiter=limiter,
                    http=http,
                )
        snaps = await asyncio.gather(
            *(
                poll_dataset(clients[tok], ds_id, now=now, hours=hours, parts=parts)
                for ds_id, tok in jobs
            )
        )
    finally:
        for client in clients.values():
            await client.aclose()
        await http.aclose()
    return {ds_id: snap for (ds_id, _), snap in zip(jobs, snaps, strict=True)}

"""Normalising Graph API answers into the value types of ``monitor.model.graph``. No I/O.

Reads (docs/meta-capi.md §2-§4, §8, appendix): ``/stats`` results (``normalise_stats``,
``source_counts``), ``/dataset_quality`` (``parse_dataset_quality``), ``/da_checks``
(``parse_da_checks``), ``/debug_token`` (``parse_debug_token``) and the rate-limit usage
headers (``parse_usage``). Missing means unknown: ``None``, never 0.

- ``start_time`` offsets without a colon (``+0000``) are parsed, buckets become aware
  UTC; buckets repeated across pages (daily chunk boundaries) are merged by
  ``(hour, event, value)`` keeping the larger count, never summed.
- Match keys are mapped to the CAPI parameter names (``email`` -> ``em``...), unknown
  names kept lower-cased, combos such as ``email,phone`` kept as ONE key with mapped,
  sorted members (``em,ph``): splitting would count the same events again under the
  single keys. Two raw names mapping to one key in one bucket also keep the larger count
  (both are the same events under two names, as far as anyone knows [UNCONFIRMED]).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from monitor.model.graph import (
    DaCheck,
    DedupeFeedback,
    EmqDiagnostic,
    EventQuality,
    EventSource,
    GraphErrorKind,
    SourceCounts,
    StatsBucket,
    TokenInfo,
    Usage,
)
from monitor.model.meta_errors import MetaError
from monitor.sources.graph.errors import GraphError, classify_status, envelope_error
from monitor.sources.graph.redact import safe
from monitor.timeutil import parse_iso

__all__ = [
    "as_dicts",
    "as_float",
    "as_int",
    "as_str",
    "canonical_match_key",
    "decode_answer",
    "normalise_stats",
    "parse_da_checks",
    "parse_dataset_quality",
    "parse_debug_token",
    "parse_graph_time",
    "parse_usage",
    "source_counts",
    "stats_window",
]

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


def as_float(value: object) -> float | None:
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


def as_int(value: object) -> int | None:
    f = as_float(value)
    return int(f) if f is not None else None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _pct(block: object) -> float | None:
    """``{"percentage": x}`` (or a bare number) -> x; absent -> ``None`` (unknown, not 0)."""
    if isinstance(block, dict):
        return as_float(block.get("percentage"))
    return as_float(block)


def as_dicts(value: object) -> list[dict[str, Any]]:
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
    fallback = event or ""
    names: dict[str, str] = {}  # raw value -> normalised, for this read
    by_hour: dict[float, list[tuple[str, str, int]]] = {}
    for result in results:
        if type(result) is not dict:
            continue
        hour = parse_graph_time(result.get("start_time"))
        if hour is None:
            continue
        ts = hour.timestamp()
        items = result.get("data")
        if not lo <= ts < hi or type(items) is not list:
            continue
        rows = by_hour.setdefault(ts, [])  # a bucket repeated on the next page joins
        append = rows.append
        for item in items:
            # Hot loop (about a million items per poll of 500 datasets): exact types first.
            if type(item) is not dict:
                continue
            value, count = item.get("value"), item.get("count")
            if type(count) is not int:
                count = as_int(count)
                if count is None:
                    continue
            if count < 0 or type(value) is not str:
                continue
            name = names.get(value)
            if name is None:
                if not value or value.isspace():
                    continue
                name = names[value] = normalise(value)
            ev = item.get("event")
            append((ev if type(ev) is str and ev else fallback, name, count))
    out: list[StatsBucket] = []
    for ts in sorted(by_hour):
        hour_dt = datetime.fromtimestamp(ts, UTC)
        rows = by_hour[ts]
        rows.sort()  # equal (event, value) pairs end with their largest count, which wins
        best = {(e, v): c for e, v, c in rows}
        out += [StatsBucket(hour_dt, e or None, v, c) for (e, v), c in best.items()]
    return out


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
    name = as_str(item.get("name"))
    if name is None:
        return None
    return EmqDiagnostic(
        name=name,
        description=as_str(item.get("description")),
        solution=as_str(item.get("solution")),
        percentage=as_float(item.get("percentage")),
        affected_event_count=as_int(item.get("affected_event_count")),
        total_event_count=as_int(item.get("total_event_count")),
    )


def _dedupe(item: dict[str, Any]) -> DedupeFeedback | None:
    key = as_str(item.get("dedupe_key")) or as_str(item.get("dedup_key"))
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
    raw = as_str(block.get("upload_frequency"))
    return re.sub(r"[\s-]+", "_", raw.strip().lower()) if raw else None


def _event_quality(item: dict[str, Any]) -> EventQuality | None:
    name = as_str(item.get("event_name"))
    if name is None:
        return None
    emq = item.get("event_match_quality")
    emq = emq if isinstance(emq, dict) else {}
    coverage: dict[str, float] = {}
    for fb in as_dicts(emq.get("match_key_feedback")):
        ident, pct = as_str(fb.get("identifier")), _pct(fb.get("coverage"))
        if ident is not None and pct is not None:
            key = canonical_match_key(ident)
            coverage[key] = max(coverage.get(key, pct), pct)
    # Both spellings are accepted in answers (§3 spelling trap); absent -> None (unknown).
    raw_dedupe = item.get("dedupe_key_feedback", item.get("dedup_key_feedback"))
    event_cov = item.get("event_coverage")
    return EventQuality(
        event_name=name,
        composite_score=as_float(emq.get("composite_score")),
        match_key_coverage=coverage,
        diagnostics=[d for d in map(_diagnostic, as_dicts(emq.get("diagnostics"))) if d],
        coverage_pct=_pct(event_cov),
        coverage_goal_pct=as_float(event_cov.get("goal_percentage"))
        if isinstance(event_cov, dict)
        else None,
        dedupe=None if raw_dedupe is None else [d for d in map(_dedupe, as_dicts(raw_dedupe)) if d],
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
        data = as_dicts(body["data"])
        web = data[0].get("web") if data and "web" in data[0] else data
    return [q for q in map(_event_quality, as_dicts(web)) if q]


_RESULT_ALIASES = {"pass": "passed", "fail": "failed", "ok": "passed"}


def parse_da_checks(items: Iterable[object]) -> list[DaCheck]:
    """``/da_checks`` ``data`` items -> ``DaCheck`` list; ``result`` folded case-insensitively."""
    out = []
    for item in items:
        if not isinstance(item, dict) or as_str(item.get("key")) is None:
            continue
        raw = (as_str(item.get("result")) or "unknown").strip().lower()
        out.append(
            DaCheck(
                key=str(item["key"]).strip(),
                title=as_str(item.get("title")),
                description=as_str(item.get("description")),
                result=_RESULT_ALIASES.get(raw, raw),
                action_uri=as_str(item.get("action_uri")),
                user_message=as_str(item.get("user_message")),
            )
        )
    return out


def _expiry(value: object) -> float | None:
    ts = as_float(value)
    return ts if ts else None  # 0 means "never expires" (appendix)


def parse_debug_token(body: Mapping[str, Any], *, now: float, secret: str = "") -> TokenInfo:
    """A ``/debug_token`` answer -> ``TokenInfo``; raises ``GraphError`` without ``is_valid``."""
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("is_valid"), bool):
        raise GraphError("debug_token: answer without data.is_valid", kind=GraphErrorKind.UNKNOWN)
    err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
    scopes = data.get("scopes")
    app_id = as_str(data.get("app_id")) or as_int(data.get("app_id"))
    return TokenInfo(
        valid=data["is_valid"],
        checked_at=now,
        expires_at=_expiry(data.get("expires_at")),
        data_access_expires_at=_expiry(data.get("data_access_expires_at")),
        type=as_str(data.get("type")),
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        app_id=str(app_id) if app_id is not None else None,
        error=safe(str(err["message"]), secret) if as_str(err.get("message")) else None,
        code=as_int(err.get("code")),
        subcode=as_int(err.get("subcode", err.get("error_subcode"))),
    )


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _max_pct(obj: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    values = [v for k in keys if (v := as_float(obj.get(k))) is not None]
    return max(values) if values else None


_USAGE_KEYS = ("call_count", "total_cputime", "total_time")


def parse_usage(headers: Mapping[str, str]) -> Usage | None:
    """Rate-limit usage headers (§8) -> ``Usage``; ``None`` when none was sent or readable."""
    return _usage(
        headers.get("x-app-usage"),
        headers.get("x-business-use-case-usage"),
        headers.get("x-ad-account-usage"),
    )


@functools.lru_cache(maxsize=4096)  # every batch item carries them; they change slowly
def _usage(app_text: str | None, buc_text: str | None, acc_text: str | None) -> Usage | None:
    app = _json_header(app_text)
    buc = _json_header(buc_text)
    acc = _json_header(acc_text)
    app_pct = _max_pct(app, _USAGE_KEYS) if isinstance(app, dict) else None
    business: list[float] = []
    regain: list[float] = []
    for entries in buc.values() if isinstance(buc, dict) else ():
        for entry in as_dicts(entries):
            if (pct := _max_pct(entry, _USAGE_KEYS)) is not None:
                business.append(pct)
            if (minutes := as_float(entry.get("estimated_time_to_regain_access"))) is not None:
                regain.append(minutes * 60.0)  # MINUTES in the header (§8)
    acc_pct = as_float(acc.get("acc_id_util_pct")) if isinstance(acc, dict) else None
    if app_pct is None and not business and not regain and acc_pct is None:
        return None
    return Usage(
        app_pct=app_pct,
        business_pct=max(business) if business else None,
        ad_account_pct=acc_pct,
        regain_access_s=max(regain) if regain else None,
    )


def decode_answer(
    label: str, status: int, content: bytes, usage: Usage | None, secret: str = ""
) -> dict[str, Any] | GraphError:
    """One Graph answer (a direct one, or one item of a batch) -> its JSON object, or the
    ``GraphError`` it describes; never raises.

    Meta's error envelope is classified whole (``MetaError``), whatever the HTTP status;
    an error status without an envelope by the status; a 2xx body that is not a JSON
    object (truncated, garbled) is transient: worth a retry. ``usage`` is this answer's
    own usage headers (a throttled answer's time to regain access comes from them).
    """
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        regain = usage.regain_access_s if usage is not None else None
        meta = MetaError.from_envelope(body["error"], status)
        return envelope_error(label, meta, secret=secret, regain_access_s=regain)
    if status >= 400:
        kind = classify_status(status)
        return GraphError(
            f"{label}: HTTP {status} without error body", kind=kind, http_status=status
        )
    if not isinstance(body, dict):
        msg = f"{label}: malformed JSON body (HTTP {status})"
        return GraphError(msg, kind=GraphErrorKind.TRANSIENT, http_status=status)
    return body

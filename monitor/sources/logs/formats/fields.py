"""Field readers shared by the sender formats: Graph URLs, tokens, times, JSON text.

Everything here reads a value and returns a plain Python value or ``None``; nothing
quotes its input in an error, because the input may hold an access token.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

# Request keys that carry credentials (docs/contracts.md §7): removed from every request
# body as soon as it is decoded, and never looked up in a URL's query.
TOKEN_KEYS = ("access_token", "appsecret_proof")

# /{dataset}/events, with or without the version segment (the Graph API defaults to the
# app's version when it is left out).
_EVENTS_PATH = re.compile(r"/(?:v\d+(?:\.\d+)?/)?(\d+)/events/?")
_PIXEL_ID = re.compile(r"Pixel ID:\s*(\d+)")
_REASON_WORD = re.compile(r"[A-Za-z_]{1,32}")
# Unix times above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLIS_ABOVE = 1e11
_MAX_UNWRAP = 3  # JSON text inside JSON text: BigQuery rows hold bodies encoded up to twice


def is_graph_host(host: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """``graph.facebook.com`` and its variants (``graph.beta.facebook.com``), plus the
    hosts the caller adds (a configured ``[meta] graph_url``: a proxy, a test server)."""
    host = host.lower()
    if host in extra_hosts:
        return True
    return host == "graph.facebook.com" or (
        host.startswith("graph.") and host.endswith(".facebook.com")
    )


def events_dataset(url: Any, extra_hosts: frozenset[str] = frozenset()) -> str | None:
    """The dataset id of a Graph ``POST /{id}/events`` URL; ``None`` for any other URL
    (another endpoint, another vendor, not a URL). Only the host and the path are read:
    the query, where senders put ``access_token``, is never looked at."""
    if type(url) is not str:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # malformed IPv6 brackets; the message is fixed text
        return None
    if not is_graph_host(host, extra_hosts):
        return None
    match = _EVENTS_PATH.fullmatch(parts.path)
    return match.group(1) if match else None


def drop_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """Remove ``access_token`` and ``appsecret_proof`` from a decoded request body (in
    place: the caller owns the freshly decoded object) and from its events."""
    for key in TOKEN_KEYS:
        body.pop(key, None)
    data = body.get("data")
    if type(data) is list:
        for item in data:
            if type(item) is dict:
                for key in TOKEN_KEYS:
                    item.pop(key, None)
    return body


def pixel_id(message: Any) -> str | None:
    """The dataset id in a Stape ``Message`` (``"Pixel ID: 123"``, also inside
    ``"Request failed or timed out. Pixel ID: 123"``)."""
    if type(message) is not str:
        return None
    match = _PIXEL_ID.search(message)
    return match.group(1) if match else None


def decode_json(value: Any) -> Any:
    """A value that may be JSON text (possibly JSON text of JSON text) -> the decoded value;
    anything that is not JSON text is returned as it is."""
    for _ in range(_MAX_UNWRAP):
        if type(value) is not str:
            return value
        text = value.strip()
        if not text or text[0] not in '{["':
            return value
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
    return value


def decode_object(value: Any) -> dict[str, Any] | None:
    """An object given as an object or as (possibly twice-encoded) JSON text; else None."""
    value = decode_json(value)
    return value if type(value) is dict else None


def as_int(value: Any) -> int | None:
    """An integer, or its decimal text (BigQuery exports INT64 columns as text).
    ``None`` stays ``None``; any other value raises ``ValueError``."""
    if value is None or value == "":
        return None
    if type(value) is int:
        return value
    if type(value) is str and value.strip().isdigit():
        return int(value.strip())
    if type(value) is float and value.is_integer():
        return int(value)
    raise ValueError("not an integer")


def as_text(value: Any) -> str | None:
    """A string key (tag name, trace id, event name); numbers are stringified."""
    kind = type(value)
    if kind is str:
        return value or None
    if kind is int or kind is float:
        return str(value)
    return None


def parse_time(value: Any) -> float | None:
    """ISO 8601 / RFC 3339 text (any offset, up to nanoseconds, BigQuery's ``... UTC``),
    Unix seconds or milliseconds as a number or as text -> Unix seconds; None when absent
    or unparsable."""
    kind = type(value)
    if kind is int or kind is float:
        return _seconds(float(value))
    if kind is not str:
        return None
    text = value.strip()
    try:
        return _seconds(float(text))
    except ValueError:
        pass
    upper = text.upper()
    if upper.endswith(" UTC"):
        upper = upper[:-4] + "Z"
    try:
        moment = datetime.fromisoformat(upper)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _seconds(number: float) -> float | None:
    if number != number or abs(number) == float("inf"):
        return None
    return number / 1000.0 if number > _MILLIS_ABOVE else number


def parse_duration(value: Any) -> float | None:
    """WooCommerce's ``duration: 0.41234s`` -> milliseconds."""
    if type(value) is not str:
        return None
    text = value.strip().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        return None
    return round(seconds * 1000.0, 3) if seconds >= 0 else None


def failure_word(reason: Any) -> str:
    """A short, fixed-alphabet word for a call that got no answer, from Stape's
    ``Reason`` (``{"reason":"timed_out"}``, ``{"reason":"failed"}``). Anything else gives
    ``"failed"``: the text itself is never kept."""
    decoded = decode_json(reason)
    if type(decoded) is dict:
        decoded = decoded.get("reason")
    if type(decoded) is str and _REASON_WORD.fullmatch(decoded):
        return decoded.lower()
    return "failed"

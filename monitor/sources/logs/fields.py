"""Fields of a delivery-log line: coercion of each key to its typed value, timestamps.

Contract: docs/contracts.md §1 (the three shapes, aliases, types) and §6 "Reading" (what makes
a line or an event malformed). Every function here is pure; a line-level defect raises
``Malformed`` with a short reason that never quotes the line's content.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from monitor.model.meta_errors import MetaError, code_from_message
from monitor.model.observations import ResponseInfo

# Unix times above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
MILLIS_ABOVE = 1e11
# A time (seconds, milliseconds normalised) outside [TIME_MIN, TIME_MAX) is no time at all:
# before 1970, or after the year 5138 (also in milliseconds). Such a sent_at makes its
# line malformed, such an event_time its event: nothing downstream (hour arithmetic,
# datetimes, the store's 64-bit integers) ever sees it.
TIME_MIN = 0.0
TIME_MAX = 1e11
# Integers the reader hands on (codes, counts) fit a signed 64-bit column, with room.
_INT_LIMIT = 1 << 53
_INT_DIGITS = 15  # numeric strings longer than this are not codes or counts
HTTP_STATUS_MAX = 999


class Malformed(Exception):
    """A line-level defect; ``args[0]`` is a short reason that never quotes line content."""


def parse_timestamp(text: str) -> float | None:
    """ISO 8601 (any offset: ``Z``, ``+00:00``, ``+0000``; none means UTC) or a string of
    Unix seconds -> Unix seconds; None when unparsable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _parse_timestamp_slow(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_timestamp_slow(text: str) -> float | None:
    cleaned = text.strip()
    try:
        number = float(cleaned)
    except ValueError:
        pass
    else:
        return unix_seconds(number) if math.isfinite(number) else None
    upper = cleaned.upper()  # "z" suffix, "t" separator
    if upper.endswith(" UTC"):
        upper = upper[:-4] + "Z"
    try:
        moment = datetime.fromisoformat(upper)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def unix_seconds(value: float) -> float:
    """A Unix time in seconds; one given in milliseconds (above ``MILLIS_ABOVE``) is
    divided by 1000. The only place where the unit of a logged time is decided: the
    reader applies it to ``sent_at`` and ``event_time``, checks read seconds only. An
    integer too large for a float is infinite."""
    try:
        number = float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    return number / 1000.0 if number > MILLIS_ABOVE else number


def in_time_range(seconds: float) -> bool:
    """Whether a time in seconds (after ``unix_seconds``) is one: ``TIME_MIN`` to
    ``TIME_MAX``, finite (NaN compares false)."""
    return TIME_MIN <= seconds < TIME_MAX


def event_times(events: Sequence[dict[str, Any]]) -> tuple[list[float], list[bool] | None]:
    """``(times, millis)`` of well-formed events for a ``Delivery``: each ``event_time``
    in seconds (``unix_seconds``), and which were in milliseconds (None: none were)."""
    times = [unix_seconds(e["event_time"]) for e in events]
    millis = None
    for t, e in zip(times, events, strict=True):
        if t != e["event_time"]:  # only milliseconds are changed (huge integers too)
            millis = [e["event_time"] > MILLIS_ABOVE for e in events]
            break
    return times, millis


def own_dataset(obj: dict[str, Any]) -> str | None:
    """The line's own dataset (``dataset_id``, alias ``pixel_id``; a string or an integer)."""
    value = obj.get("dataset_id")
    if value is None or value == "":
        value = obj.get("pixel_id")
    if value is None or value == "":
        return None
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    raise Malformed("dataset_id: expected a string or an integer")


def data_list(value: Any, field: str) -> list[Any]:
    """``data`` as a list: a list, or one JSON string holding the list (an SDK quirk)."""
    if type(value) is list:
        return value
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Malformed(f"{field}: string is not a JSON list") from None
        if type(value) is list:
            return value
    if value is None:
        raise Malformed(f"{field}: missing")
    raise Malformed(f"{field}: expected a list of events")


def decode_event(item: Any) -> dict[str, Any] | None:
    """A data item given as a JSON-encoded string (the facebook-business SDK's form)."""
    if type(item) is not str:
        return None
    try:
        decoded = orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
    return decoded if type(decoded) is dict else None


def event_defect(event: dict[str, Any]) -> str:
    if "event_name" not in event:
        return "event_name: missing"
    if type(event["event_name"]) is not str:
        return "event_name: expected a string"
    if "event_time" not in event:
        return "event_time: missing"
    return "event_time: expected a number"


def response_info(raw: Any) -> ResponseInfo | None:
    """``response`` -> ResponseInfo: ``status`` plus a success body or an error envelope
    (docs/meta-capi.md §8). A body that is text but not JSON (a proxy's HTML error page) is
    kept as "status only"; any other non-object body makes the line malformed. Without a
    status, ``transport_error`` means the call got no answer (a failure)."""
    if raw is None:
        return None
    if type(raw) is not dict:
        raise Malformed("response: expected an object")
    status = raw.get("status")
    if status is not None:
        if type(status) is not int:
            raise Malformed("response.status: expected an integer")
        if not 0 <= status <= HTTP_STATUS_MAX:
            raise Malformed("response.status: out of range")
    transport = raw.get("transport_error")
    if transport is not None and transport is not False and status is None:
        return ResponseInfo(transport_error=transport_word(transport))
    body = raw.get("body")
    if type(body) is not dict:
        if type(body) is str:
            body = _decode_object(body)
        elif body is not None:
            raise Malformed("response.body: expected an object or a string")
        if body is None:
            return ResponseInfo(status)
    error = body.get("error")
    if error is not None:
        return _error_response(status, body, error)
    received = _int(body.get("events_received"))
    trace = _str(body.get("fbtrace_id"))
    messages = body.get("messages")
    if messages:  # usually [] (docs/contracts.md §9: surfaced as META_WARNING)
        texts = _messages(messages)
        return ResponseInfo(status, received, None, None, None, None, None, trace, messages=texts)
    return ResponseInfo(status, received, None, None, None, None, None, trace)


MAX_MESSAGES = 5  # of one answer; each cut to MAX_MESSAGE_CHARS
MAX_MESSAGE_CHARS = 300


def _messages(raw: Any) -> tuple[str, ...]:
    """``messages`` of a successful answer as text (their content is undocumented: a
    string, an object or anything else is kept, as text)."""
    items = raw if type(raw) is list else [raw]
    texts = []
    for item in items[:MAX_MESSAGES]:
        text = item if type(item) is str else orjson.dumps(item, default=str).decode()
        if text.strip():
            texts.append(text[:MAX_MESSAGE_CHARS])
    return tuple(texts)


def transport_word(value: Any) -> str:
    """``response.transport_error`` as one fixed word: ``timed_out``, ``no_status`` or
    ``failed``. Senders may log an exception's text there, and HTTP clients put the
    request URL (with its ``access_token``) in theirs: the text itself is never kept."""
    text = value.lower() if type(value) is str else ""
    if "time" in text:
        return "timed_out"
    if "status" in text:
        return "no_status"
    return "failed"


def _error_response(status: int | None, body: dict[str, Any], error: Any) -> ResponseInfo:
    """An error envelope, read by the classifier the Graph side shares (``MetaError``)."""
    received = _int(body.get("events_received"))
    trace = _str(body.get("fbtrace_id"))
    if type(error) is str:
        code = code_from_message(error)
        return ResponseInfo(status, received, code, error_message=error, fbtrace_id=trace)
    if type(error) is not dict:
        return ResponseInfo(status, received, fbtrace_id=trace)
    meta = MetaError.from_envelope(error, status)
    return ResponseInfo(
        status=status,
        events_received=received,
        error_code=meta.code,
        error_subcode=meta.subcode,
        error_type=meta.type,
        error_title=meta.user_title,
        error_message=meta.message,
        fbtrace_id=meta.fbtrace_id or trace,
        error_user_msg=meta.user_msg,
        is_transient=meta.is_transient,
    )


def _decode_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def _int(value: Any) -> int | None:
    """An integer field (a code, a count); numeric strings are tolerated (some proxies
    stringify codes). Anything else, or beyond ±2**53, is unknown (None)."""
    if type(value) is str:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= _INT_DIGITS):
            return None
        value = int(text)
    elif type(value) is not int:
        return None
    return value if -_INT_LIMIT < value < _INT_LIMIT else None


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def label_text(value: Any) -> str | None:
    """A request-level label (test_event_code, partner_agent); a number is stringified,
    any other type is ignored rather than making the line malformed."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float:
        return str(value)
    return None


def optional_number(value: Any) -> float | None:
    """A finite number as a float (``duration_ms``); any other value is unknown (None)."""
    kind = type(value)
    if kind is not int and kind is not float:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None

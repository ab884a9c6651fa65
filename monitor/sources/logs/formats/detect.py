"""Which format a file is written in, from its first lines (never from its name).

The first non-blank line decides when it can: a JSON array is an export (its first
element says of what; an empty one is a ``gcloud`` export that found nothing), and a
WooCommerce entry header anywhere is WooCommerce. Otherwise each JSON object line is
looked at in turn until one is recognised: a LogEntry, a BigQuery row (before any v1
shape: rows carry ``event_name``), a GTMS line, a v1 line. Lines that say nothing
(container start-up text, unrelated JSON) are passed over (docs/contracts.md §7).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from monitor.sources.logs.formats.array import ArraySplitter
from monitor.sources.logs.formats.base import opens_array
from monitor.sources.logs.formats.woocommerce import HEADER

V1 = "v1"
GTMS = "gtms"
CLOUD_LOGGING = "cloud-logging"
GTMS_BIGQUERY = "gtms-bigquery"
WOOCOMMERCE = "woocommerce"

SNIFF_LINES = 64  # non-blank lines looked at before giving up (the caller then uses v1)
SNIFF_BYTES = 1 << 20  # nor more than this many bytes

_LOG_ENTRY_PAYLOADS = ("jsonPayload", "textPayload", "protoPayload")
_BIGQUERY_COLUMNS = ("tag_name", "request_url", "response_status_code")
_GTMS_KEYS = ("Name", "TraceId", "EventName", "RequestUrl", "ResponseStatusCode")
_BOM = b"\xef\xbb\xbf"


def detect(lines: Iterable[bytes]) -> str | None:
    """The format of a file that starts with ``lines`` (raw, newline included or not);
    None when they do not tell (no recognisable line yet)."""
    array: ArraySplitter | None = None
    seen = size = 0
    for raw in lines:
        line = raw.removeprefix(_BOM) if not seen else raw
        stripped = line.strip()
        if not stripped:
            continue
        seen += 1
        size += len(line)
        if seen == 1 and opens_array(line):
            array = ArraySplitter(SNIFF_BYTES)
        if array is not None:
            for piece in array.feed(line, seen):
                if piece.text is not None:
                    return _element_format(piece.text)
        elif HEADER.fullmatch(line.rstrip(b"\r\n")):
            return WOOCOMMERCE
        else:
            found = _line_format(stripped)
            if found is not None:
                return found
        if seen >= SNIFF_LINES or size >= SNIFF_BYTES:
            break
    return CLOUD_LOGGING if array is not None else None


def _element_format(text: bytes) -> str:
    """The format of an export array, from its first element. Anything but a LogEntry,
    a BigQuery row or a GTMS object is v1, whose reader reports the array as malformed."""
    found = _line_format(text)
    return found if found in (CLOUD_LOGGING, GTMS_BIGQUERY, GTMS) else V1


def _line_format(line: bytes) -> str | None:
    if line[:1] != b"{":
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return object_format(obj) if type(obj) is dict else None


def object_format(obj: dict[str, Any]) -> str | None:
    """The format one decoded JSON object belongs to, or None."""
    if "insertId" in obj or "logName" in obj or any(k in obj for k in _LOG_ENTRY_PAYLOADS):
        return CLOUD_LOGGING
    if "type" in obj and "request" not in obj and any(k in obj for k in _BIGQUERY_COLUMNS):
        return GTMS_BIGQUERY
    if "Type" in obj and any(k in obj for k in _GTMS_KEYS):
        return GTMS
    if "request" in obj or "data" in obj or "event_name" in obj:
        return V1
    return None

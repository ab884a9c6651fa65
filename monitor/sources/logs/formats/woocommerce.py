"""``woocommerce``: "Facebook for WooCommerce" API logging (debug mode on).

With debug mode on, the plugin logs every Graph API call it makes through WooCommerce's
logger (``wp-content/uploads/wc-logs/facebook_for_woocommerce-<date>-<hash>.log``) as two
entries written one after the other by the same PHP request::

    2026-05-12T09:14:03+00:00 NOTICE Request
    method: POST
    uri: https://graph.facebook.com/v21.0/1234567890/events
    user-agent: Facebook-for-WooCommerce/3.5.4 (WooCommerce/9.8.1; WordPress/6.8)
    body: {"data":[{...}],"partner_agent":"woocommerce-9.8.1-3.5.4"}
    duration: 0.41234s

    2026-05-12T09:14:03+00:00 NOTICE Response
    code: 200
    message: OK
    body: {"events_received":1,"messages":[],"fbtrace_id":"..."}

An entry starts with a line ``<gmdate('c')> <LEVEL> <message>``; the lines up to the next
such line belong to it. The request body is ``wp_json_encode`` output (``\\/`` escapes);
``headers:`` (only when the merchant asks for them) is a multi-line ``print_r`` dump with
the Authorization header masked. A call that got no HTTP answer (a WordPress transport
error) logs a Response with empty ``code:``, ``message:`` and ``body:``. Entries carry no
key tying a Response to its Request: they pair by adjacency. Requests to other Graph
endpoints (catalog sync, settings) and the plugin's other messages are skipped
(docs/contracts.md §7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.sources.logs.formats.base import FormatReader, ProblemSink
from monitor.sources.logs.formats.fields import (
    decode_object,
    drop_tokens,
    events_dataset,
    parse_duration,
    parse_time,
)
from monitor.sources.logs.formats.pairing import Answer, Call, graph_body

LEVELS = ("EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")
HEADER = re.compile(
    rb"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) "
    rb"(" + "|".join(LEVELS).encode() + rb") ?(.*)"
)
# The keys of the plugin's Request and Response arrays, one per line at column 0;
# print_r continuation lines are indented or are "(" / ")".
_FIELD = re.compile(rb"(method|uri|user-agent|headers|body|duration|code|message):(?: (.*))?")
# The last key of each array: the entry is complete once it is read.
_LAST = {"Request": b"duration", "Response": b"body"}


@dataclass(slots=True)
class _Entry:
    line: int
    offset: int
    time: float | None
    kind: str | None  # "Request", "Response", or None for any other message
    fields: dict[bytes, bytes] = field(default_factory=dict)
    size: int = 0


class WooCommerceReader(FormatReader):
    """WooCommerce log files of the Facebook for WooCommerce plugin."""

    name = "woocommerce"

    def __init__(self, on_problem: ProblemSink | None = None, **options: Any) -> None:
        super().__init__(on_problem, **options)
        self._entry: _Entry | None = None
        self._orphan_lines = False  # text before the first entry header

    def _line(self, line: bytes, lineno: int, offset: int) -> None:
        text = line.rstrip(b"\r\n")
        header = HEADER.fullmatch(text)
        if header is not None:
            self._end()
            message = header.group(3).strip().decode("utf-8", "replace")
            kind = message if message in _LAST else None
            time = parse_time(header.group(1).decode())
            self._entry = _Entry(lineno, offset, time, kind, size=len(line))
            return
        entry = self._entry
        if entry is None:
            if text.strip() and not self._orphan_lines:
                self._orphan_lines = True  # the tail of an entry from a previous file
                self.counts.entries += 1
                self.counts.skipped += 1
            return
        if entry.kind is None:
            return
        entry.size += len(line)
        if entry.size > self.max_entry_bytes:
            entry.fields.clear()
            return
        found = _FIELD.fullmatch(text)
        if found is None:
            return
        key = found.group(1)
        entry.fields[key] = found.group(2) or b""
        if key == _LAST[entry.kind]:
            self._end()

    def _end(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        self.counts.entries += 1
        if entry.size > self.max_entry_bytes:
            self._problem(entry.line, f"entry longer than {self.max_entry_bytes} bytes")
        elif entry.kind == "Request":
            self._request(entry)
        elif entry.kind == "Response":
            self._dispatch(self._answer(entry))
        else:
            self.counts.skipped += 1

    def _open_offset(self) -> int | None:
        entry = self._entry
        return entry.offset if entry is not None and entry.offset >= 0 else None

    def _request(self, entry: _Entry) -> None:
        f = entry.fields
        seq = self._next_seq()
        uri = f.pop(b"uri", b"").decode("utf-8", "replace")
        dataset = events_dataset(uri, self.graph_hosts)
        del uri  # other endpoints' URIs may carry access_token in their query
        method = f.get(b"method", b"POST").strip().upper()
        if dataset is None or method != b"POST":
            self._dispatch(_placeholder(entry, seq, None))
            return
        try:
            body = orjson.loads(f.pop(b"body", b""))
        except orjson.JSONDecodeError:
            body = None
        if type(body) is not dict:
            self._problem(entry.line, "body: not a JSON object")
            self._dispatch(_placeholder(entry, seq, dataset))  # its Response is skipped
            return
        duration = parse_duration(f.get(b"duration", b"").decode("ascii", "replace"))
        call = Call(entry.line, seq, entry.time, None, None, None, dataset, drop_tokens(body))
        call.duration_ms = duration
        call.offset = entry.offset
        self._dispatch(call)

    def _answer(self, entry: _Entry) -> Answer:
        f = entry.fields
        code = f.get(b"code", b"").strip()
        status = int(code) if code.isdigit() else None
        body = decode_object(f.get(b"body", b"").decode("utf-8", "replace"))
        failure = None if status is not None else "no status"
        return Answer(
            entry.line,
            self._next_seq(),
            entry.time,
            None,
            None,
            None,
            None,
            status,
            body,
            failure,
            graph_body(body),
        )


def _placeholder(entry: _Entry, seq: int, dataset: str | None) -> Call:
    return Call(entry.line, seq, entry.time, None, None, None, dataset, None, offset=entry.offset)

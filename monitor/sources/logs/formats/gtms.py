"""``gtms``: Stape's sGTM "Facebook Conversions API" tag logging to the console.

The tag (``stape-io/facebook-tag``, option "Always log to console") follows Stape's
GTMS-3 logging standard: each line is ``JSON.stringify`` of one object,

- ``{"Name":"Facebook","Type":"Request","EventName","RequestMethod":"POST","RequestUrl":
  "https://graph.facebook.com/v24.0/{pixel}/events?access_token=…","RequestBody":{…},
  "TraceId"?}``;
- ``{"Name":"Facebook","Type":"Response","EventName","ResponseStatusCode",
  "ResponseHeaders":{…},"ResponseBody":"<Meta's answer as JSON text>","Message":
  "Pixel ID: …","TraceId"?}``;
- a call that failed or timed out logs a Response with only ``Message`` ("Request failed
  or timed out. Pixel ID: …") and ``Reason`` (``{"reason":"failed"}``);
- ``Type: "Message"`` lines report other trouble and are skipped.

``TraceId`` is the incoming request's ``trace-id`` header and is absent where no proxy
sets one; older tag versions put no ``Pixel ID`` in the Message. A console line carries
no time of its own. Any other tag following GTMS-3 is read the same way when its request
URL is a Graph ``/{id}/events`` URL; lines of other tags and non-JSON container output
are skipped (docs/contracts.md §7).
"""

from __future__ import annotations

from typing import Any

from monitor.sources.logs.formats.base import EntryError, Item, JsonEntryReader
from monitor.sources.logs.formats.fields import (
    as_int,
    as_text,
    decode_json,
    decode_object,
    drop_tokens,
    events_dataset,
    failure_word,
    pixel_id,
)
from monitor.sources.logs.formats.pairing import Answer, Call, graph_body


def gtms_item(
    obj: dict[str, Any],
    time: float | None,
    lineno: int,
    offset: int,
    seq: int,
    graph_hosts: frozenset[str],
) -> Item:
    """One GTMS object (console keys: ``Name``, ``Type``, ``RequestUrl``, ...) -> a call, an
    answer, both (``Type: "Request-Response"``), or None when it is skipped."""
    kind = obj.get("Type")
    if kind == "Request":
        return _call(obj, time, lineno, offset, seq, graph_hosts)
    if kind == "Response":
        return _answer(obj, time, lineno, seq)
    if kind == "Request-Response":
        call = _call(obj, time, lineno, offset, seq, graph_hosts)
        if call.request is None:
            return None
        return call, _answer(obj, time, lineno, seq)
    return None  # "Message", another tag's own types, not a GTMS line at all


def _call(
    obj: dict[str, Any],
    time: float | None,
    lineno: int,
    offset: int,
    seq: int,
    graph_hosts: frozenset[str],
) -> Call:
    # The URL holds the token in clear: take it out of the entry at once and keep only
    # the dataset id of its path.
    dataset = events_dataset(obj.pop("RequestUrl", None), graph_hosts)
    tag, trace, event = _keys(obj)
    method = obj.get("RequestMethod")
    if dataset is None or (type(method) is str and method.upper() != "POST"):
        return Call(lineno, seq, time, tag, trace, event, None, None, offset=offset)
    body = decode_json(obj.pop("RequestBody", None))
    if type(body) is not dict:
        broken = Call(lineno, seq, time, tag, trace, event, dataset, None, offset=offset)
        reason = "RequestBody: missing" if body is None else "RequestBody: not a JSON object"
        raise EntryError(reason, broken)
    return Call(lineno, seq, time, tag, trace, event, dataset, drop_tokens(body), offset=offset)


def _answer(obj: dict[str, Any], time: float | None, lineno: int, seq: int) -> Answer:
    tag, trace, event = _keys(obj)
    message = obj.get("Message")
    if message is None:
        message = obj.get("message")
    dataset = pixel_id(message)
    try:
        status = as_int(obj.get("ResponseStatusCode"))
    except ValueError:
        raise EntryError("ResponseStatusCode: expected an integer") from None
    body = decode_object(obj.get("ResponseBody"))
    failure = None
    if status is None:
        reason = obj.get("Reason")
        failure = failure_word(reason if reason is not None else obj.get("reason"))
    graph = dataset is not None or graph_body(body)
    return Answer(lineno, seq, time, tag, trace, event, dataset, status, body, failure, graph)


def _keys(obj: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return as_text(obj.get("Name")), as_text(obj.get("TraceId")), as_text(obj.get("EventName"))


class GtmsReader(JsonEntryReader):
    """Console output of an sGTM container: GTMS lines among any other output."""

    name = "gtms"
    foreign_text_is_skipped = True

    def _object(self, obj: dict[str, Any], lineno: int, offset: int) -> Item:
        return gtms_item(obj, None, lineno, offset, self._next_seq(), self.graph_hosts)

"""``cloud-logging``: Google Cloud Logging LogEntry objects holding GTMS console lines.

Cloud Run sends a container's stdout to Cloud Logging. A line that is a JSON object
becomes the entry's ``jsonPayload``, any other line its ``textPayload``; the entry adds
``insertId``, ``timestamp`` (RFC 3339, up to nanoseconds), ``receiveTimestamp``,
``resource``, ``logName``, ``severity``. Two ways out of Cloud Logging are read:

- log-sink files in Cloud Storage: one LogEntry per line, hourly files
  (``run.googleapis.com/stdout/YYYY/MM/DD/HH:00:00_HH:59:59_S0.json``); a sink may write
  an entry twice, so repeated ``insertId`` values are skipped;
- ``gcloud logging read --format=json``: one pretty-printed JSON array, newest first.

The entry's ``timestamp`` is the send time of a Request. Entries whose payload is not a
GTMS line (request logs, other programs, system messages) are skipped
(docs/contracts.md §7).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from monitor.sources.logs.formats.base import EntryError, Item, JsonEntryReader, ProblemSink
from monitor.sources.logs.formats.fields import parse_time
from monitor.sources.logs.formats.gtms import gtms_item
from monitor.sources.logs.formats.pairing import Call

RECENT_IDS = 4096  # insertIds remembered to drop a sink's duplicate writes


def payload(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The GTMS object inside a LogEntry, from ``jsonPayload`` or JSON ``textPayload``."""
    value = entry.get("jsonPayload")
    if type(value) is dict:
        return value
    value = entry.get("textPayload")
    if type(value) is not str or value.lstrip()[:1] != "{":
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if type(decoded) is dict else None


class CloudLoggingReader(JsonEntryReader):
    """LogEntries, one per line or as one JSON array, in any time order."""

    name = "cloud-logging"
    symmetric = True  # gcloud prints newest first; sink files are not strictly ordered

    def __init__(self, on_problem: ProblemSink | None = None, **options: Any) -> None:
        super().__init__(on_problem, **options)
        self._recent: OrderedDict[str, None] = OrderedDict()

    def _object(self, obj: dict[str, Any], lineno: int, offset: int) -> Item:
        if self._seen(obj.get("insertId")):
            return None
        gtms = payload(obj)
        if gtms is None:
            return None
        stamp = obj.get("timestamp")
        if stamp is None:
            stamp = obj.get("receiveTimestamp")
        time = parse_time(stamp)
        item = gtms_item(gtms, time, lineno, offset, self._next_seq(), self.graph_hosts)
        unparsable = time is None and stamp is not None
        if unparsable and isinstance(item, Call) and item.request is not None:
            item.request = None  # stands in for the broken call (see EntryError)
            raise EntryError("timestamp: unparsable", item)
        return item

    def _seen(self, insert_id: Any) -> bool:
        if type(insert_id) is not str:
            return False
        recent = self._recent
        if insert_id in recent:
            return True
        recent[insert_id] = None
        if len(recent) > RECENT_IDS:
            recent.popitem(last=False)
        return False

"""``gtms-bigquery``: rows of Stape tags' "Log to BigQuery" option, exported as JSON.

Stape's GTMS-7 standard renames the console keys to snake_case columns (``tag_name``,
``type``, ``trace_id``, ``event_name``, ``request_method``, ``request_url``,
``request_body``, ``response_status_code``, ``response_headers``, ``response_body``,
``message``, ``reason``) and adds ``timestamp`` in Unix milliseconds. The Facebook tag
stores the bodies with ``JSON.stringify``; its ``ResponseBody`` is already text, so the
response body arrives encoded twice. Its ``Message``/``Reason`` keys are not renamed
(BigQuery column names ignore case, so they land in ``message``/``reason``).

Exports differ by tool: ``bq extract`` to newline-delimited JSON writes INT64 columns as
text and JSON columns as text or as nested values; ``bq query --format=json`` prints one
array. All of these are read; rows come in no particular order, so Request and Response
are paired by time and keys, not by position (docs/contracts.md §7).
"""

from __future__ import annotations

from typing import Any

from monitor.sources.logs.formats.base import EntryError, Item, JsonEntryReader
from monitor.sources.logs.formats.fields import parse_time
from monitor.sources.logs.formats.gtms import gtms_item
from monitor.sources.logs.formats.pairing import Call

# BigQuery column -> GTMS console key.
COLUMNS = {
    "tag_name": "Name",
    "type": "Type",
    "trace_id": "TraceId",
    "event_name": "EventName",
    "request_method": "RequestMethod",
    "request_url": "RequestUrl",
    "request_body": "RequestBody",
    "response_status_code": "ResponseStatusCode",
    "response_body": "ResponseBody",
    "message": "Message",
    "reason": "Reason",
}


def gtms_keys(row: dict[str, Any]) -> dict[str, Any]:
    """A BigQuery row with its columns under their console names (response headers are
    left out: nothing reads them). The row's own ``request_url`` is removed with it."""
    out: dict[str, Any] = {}
    for column, key in COLUMNS.items():
        value = row.pop(column, None)
        if value is None:
            value = row.pop(key, None)  # a row written with console key names
        if value is not None:
            out[key] = value
    return out


class BigQueryReader(JsonEntryReader):
    """Exported rows: JSON lines or one JSON array, in any order."""

    name = "gtms-bigquery"
    symmetric = True

    def _object(self, obj: dict[str, Any], lineno: int, offset: int) -> Item:
        stamp = obj.get("timestamp")
        time = parse_time(stamp)
        item = gtms_item(gtms_keys(obj), time, lineno, offset, self._next_seq(), self.graph_hosts)
        unparsable = time is None and stamp is not None
        if unparsable and isinstance(item, Call) and item.request is not None:
            item.request = None  # stands in for the broken call (see EntryError)
            raise EntryError("timestamp: unparsable", item)
        return item

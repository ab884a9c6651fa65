"""What real senders already log, read as v1 delivery records (docs/contracts.md §7).

Formats, detected per file from its content (``detect``):

- ``gtms``: Stape's sGTM Facebook tag logging to the console (``gtms.py``);
- ``cloud-logging``: those console lines as Google Cloud Logging entries, from log-sink
  files or ``gcloud logging read --format=json`` (``cloud_logging.py``);
- ``gtms-bigquery``: the same tag's "Log to BigQuery" rows, exported (``bigquery.py``);
- ``woocommerce``: Facebook for WooCommerce's debug log (``woocommerce.py``);
- ``v1`` is capi-monitor's own format and is read by ``monitor.sources.logs.reader``.

Each reader is fed physical lines and returns ``Emitted`` v1 delivery records
(``{"sent_at"?, "dataset_id", "request": {"data": [...], ...}, "response"?: {"status",
"body"} | {"status": None, "transport_error"}, "duration_ms"?}``) that the v1 path turns
into ``Delivery`` observations, so every check sees these senders exactly as if they had
written v1. A Request and its Response become one record (``pairing``); access tokens
never leave the reader: request URLs are reduced to the dataset id of their path, and
``access_token``/``appsecret_proof`` are removed from request bodies when decoded.

A call that got no HTTP answer (timeout, network failure) is written with
``"response": {"status": None, "transport_error": "<word>"}``: v1 needs that key for the
``delivery`` check to count it as a failure ("no answer").
"""

from __future__ import annotations

from typing import Any

from monitor.sources.logs.formats.base import FormatReader, ProblemSink
from monitor.sources.logs.formats.bigquery import BigQueryReader
from monitor.sources.logs.formats.cloud_logging import CloudLoggingReader
from monitor.sources.logs.formats.detect import (
    CLOUD_LOGGING,
    GTMS,
    GTMS_BIGQUERY,
    SNIFF_BYTES,
    SNIFF_LINES,
    V1,
    WOOCOMMERCE,
    detect,
)
from monitor.sources.logs.formats.gtms import GtmsReader
from monitor.sources.logs.formats.pairing import Emitted, FormatCounts
from monitor.sources.logs.formats.woocommerce import WooCommerceReader

AUTO = "auto"
READERS: dict[str, type[FormatReader]] = {
    GTMS: GtmsReader,
    CLOUD_LOGGING: CloudLoggingReader,
    GTMS_BIGQUERY: BigQueryReader,
    WOOCOMMERCE: WooCommerceReader,
}
FORMATS = (V1, *READERS)  # every format name, v1 first
CHOICES = (AUTO, *FORMATS)  # what --format and logs_format accept


def open_reader(name: str, on_problem: ProblemSink | None = None, **options: Any) -> FormatReader:
    """A fresh reader of format ``name`` (any of ``READERS``; ``v1`` has none here).
    ``options``: ``graph_hosts``, ``max_entry_bytes``, ``max_pending``, ``max_wait``."""
    try:
        cls = READERS[name]
    except KeyError:
        raise ValueError(f"no sender-format reader for {name!r}") from None
    return cls(on_problem, **options)


__all__ = [
    "AUTO",
    "CHOICES",
    "CLOUD_LOGGING",
    "FORMATS",
    "GTMS",
    "GTMS_BIGQUERY",
    "READERS",
    "SNIFF_BYTES",
    "SNIFF_LINES",
    "V1",
    "WOOCOMMERCE",
    "Emitted",
    "FormatCounts",
    "FormatReader",
    "detect",
    "open_reader",
]

"""Meta's hourly counts as a generator writes them (``graph_counts.jsonl``), read back.

One JSON line per dataset × event name × UTC hour: ``{"dataset_id", "event_name",
"hour" (ISO 8601), "browser", "server"}``. ``load_graph_counts`` stores them as the
daemon's Graph polls would have, for a backtest or a benchmark.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from monitor.timeutil import parse_iso

if TYPE_CHECKING:
    from monitor.store.db import Store

HOUR = 3600


def read_graph_counts(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``graph_counts.jsonl`` (``hour`` as Unix seconds)."""
    rows = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                row = orjson.loads(line)
                row["hour"] = int(parse_iso(row["hour"]))
                rows.append(row)
    return rows


def load_graph_counts(store: Store, path: str | Path, *, until: float | None = None) -> int:
    """Store Meta's counts of ``path`` (hours before ``until``) as the daemon's Graph polls
    would have: one snapshot per dataset, polled when the last hour was complete."""
    from monitor.model.graph import GraphSnapshot, SourceCounts
    from monitor.store.graph import record_graph

    by_ds: dict[str, list[SourceCounts]] = {}
    last: dict[str, int] = {}
    for row in read_graph_counts(path):
        if until is not None and row["hour"] >= until:
            continue
        sc = SourceCounts(
            datetime.fromtimestamp(row["hour"], UTC),
            row["event_name"],
            row["browser"],
            row["server"],
        )
        by_ds.setdefault(row["dataset_id"], []).append(sc)
        last[row["dataset_id"]] = max(last.get(row["dataset_id"], 0), row["hour"])
    snaps = [
        GraphSnapshot(
            ds,
            last[ds] + HOUR,
            min(c.hour.timestamp() for c in cs),
            last[ds] + HOUR,
            source_counts=cs,
        )
        for ds, cs in by_ds.items()
    ]
    return record_graph(store, snaps)

"""Wiring the Graph API source into an audit: poll, attach stored history, never crash.

``audit --config`` (``monitor.cli``) calls ``poll_graph`` once per run with the run's
clock, then ``graph_inputs`` with the history loaded from the store, and hands the
result to ``monitor.engine.audit.run_audit(graph=...)``:

- Without ``[meta]``, or for datasets without a token, nothing is polled and the dataset
  is absent from the result: its Graph-based checks are ``skipped`` (docs/contracts.md §6).
- Every other configured dataset gets a snapshot, even when the poll as a whole blew
  up: then every part carries a ``PartError`` and the checks report ``error``, while
  ``diagnostics`` says ``SOURCE_UNAVAILABLE``. A Graph failure never ends an audit.

The HTTP client (httpx, asyncio) is imported only when something is polled: an audit
without a Graph source does not pay for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.model.graph import (
    DatasetGraph,
    GraphErrorKind,
    GraphHistory,
    GraphSnapshot,
    Part,
    PartError,
)
from monitor.sources.graph.parse import stats_window
from monitor.sources.graph.tokens import resolve_token

if TYPE_CHECKING:
    import httpx

    from monitor.store.db import Store

Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)


def graph_datasets(settings: Settings, env: Mapping[str, str] = os.environ) -> list[str]:
    """Ids of the configured datasets that have a Graph source (``[meta]`` and a token)."""
    meta = settings.meta
    if meta is None:
        return []
    return [ds.id for ds in settings.datasets if resolve_token(meta, ds, env)]


def poll_graph(
    settings: Settings,
    *,
    now: float,
    env: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep | None = None,
    parts: Iterable[Part] | None = None,
) -> dict[str, GraphSnapshot]:
    """One poll of every dataset with a Graph source (``poll_many`` under ``asyncio.run``).

    ``[meta]`` sets the concurrency (default 20 calls in flight), timeout, retries and
    the hours of ``/stats`` read. ``env`` holds the tokens; ``transport`` and ``sleep``
    are for tests (``sleep`` default ``asyncio.sleep``). ``parts`` limits the reads
    (``monitor.sources.graph.poll.poll_parts``).
    """
    meta = settings.meta
    if meta is None or not graph_datasets(settings, env):
        return {}
    import asyncio

    from monitor.sources.graph.poll import poll_many

    try:
        return asyncio.run(
            poll_many(
                settings,
                now=now,
                concurrency=meta.concurrency,
                transport=transport,
                env=env,
                hours=meta.stats_hours,
                timeout=meta.timeout,
                max_retries=meta.max_retries,
                sleep=sleep or asyncio.sleep,
                parts=parts,
            )
        )
    except Exception as err:  # a bug or an environment problem: report, never crash
        log.warning("Graph API poll failed: %s", type(err).__name__)
        return {
            ds: failed_snapshot(ds, now, settings, err, parts)
            for ds in graph_datasets(settings, env)
        }


def failed_snapshot(
    dataset_id: str,
    now: float,
    settings: Settings,
    err: Exception,
    parts: Iterable[Part] | None = None,
) -> GraphSnapshot:
    """A snapshot in which every part asked for failed (kind ``unknown``): read as "not
    evaluated"."""
    from monitor.sources.graph.poll import poll_parts

    hours = settings.meta.stats_hours if settings.meta else 48
    start, end = stats_window(now, hours)
    message = f"the Graph API poll failed unexpectedly ({type(err).__name__})"
    wanted = poll_parts(parts)
    errors = [
        PartError(p, GraphErrorKind.UNKNOWN, None, None, message) for p in Part if p in wanted
    ]
    return GraphSnapshot(dataset_id, now, start, end, errors=errors, parts=wanted)


def graph_inputs(
    snapshots: Mapping[str, GraphSnapshot], history: Mapping[str, GraphHistory] | None = None
) -> dict[str, DatasetGraph]:
    """Snapshots plus their stored history, in the shape ``run_audit(graph=...)`` takes."""
    history = history or {}
    return {ds: DatasetGraph(snap, history.get(ds)) for ds, snap in snapshots.items()}


def collect_graph(
    settings: Settings,
    *,
    now: float,
    store: Store | None,
    env: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep | None = None,
) -> dict[str, DatasetGraph]:
    """Poll (``poll_graph``) and attach each dataset's stored history from ``store``
    (readings of the last ``[checks.match_quality] history_window`` before ``now``;
    none without a store). Store the snapshots afterwards with ``store_graph``."""
    snapshots = poll_graph(settings, now=now, env=env, transport=transport, sleep=sleep)
    history = None
    if store is not None and snapshots:
        from monitor.store.graph import load_graph_history  # deferred: SQLAlchemy import

        window = settings.checks.match_quality.history_window
        history = load_graph_history(store, snapshots, now=now, window=window)
    return graph_inputs(snapshots, history)


def store_graph(store: Store, graph: Mapping[str, DatasetGraph]) -> int:
    """Record this run's snapshots in ``store`` (see ``monitor.store.graph.record_graph``)."""
    from monitor.store.graph import record_graph

    return record_graph(store, (g.snapshot for g in graph.values()))

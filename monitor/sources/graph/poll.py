"""Polling: one dataset's Graph reads bundled into a ``GraphSnapshot``, many datasets at once.

``poll_dataset`` reads what the Graph-based checks need about one dataset and never
raises (each part's failure is a ``PartError``); ``poll_many`` polls every configured
dataset that has a token, with a bound on in-flight HTTP calls across all of them.
"""

from __future__ import annotations

import asyncio
import dataclasses as dc
import logging
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from monitor.config import Settings
from monitor.model.graph import (
    ALL_PARTS,
    GraphErrorKind,
    GraphSnapshot,
    Part,
    PartError,
    SourceCounts,
    StatsBucket,
)
from monitor.sources.graph.client import DATASET_CALLS, ClientSettings, GraphClient, HttpPool
from monitor.sources.graph.errors import GraphError
from monitor.sources.graph.parse import source_counts, stats_window
from monitor.sources.graph.tokens import resolve_token

__all__ = ["PARITY_EVENTS", "poll_dataset", "poll_many", "poll_parts", "resolve_token"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Events split by source with one `event_source&event=` read each (§2: `event` reportedly
# splits one event by source). These are the events both pixel and server should send;
# limiting the split to them bounds the calls per dataset (each read is 2+ pages).
PARITY_EVENTS = (
    "Purchase",
    "Lead",
    "CompleteRegistration",
    "InitiateCheckout",
    "AddToCart",
    "AddPaymentInfo",
    "Subscribe",
    "StartTrial",
    "SubmitApplication",
    "Contact",
    "Schedule",
)


async def _guarded(part: Part, coro: Awaitable[T], errors: list[PartError]) -> T | None:
    """Run one part; its failure becomes a ``PartError`` in ``errors``, never an exception."""
    try:
        return await coro
    except GraphError as err:
        errors.append(err.to_part_error(part))
    except Exception as err:  # a shape we failed to tolerate must not stop the poll
        log.warning("graph part %s: unexpected %s", part.value, type(err).__name__)
        msg = f"{part.value}: unexpected {type(err).__name__} while reading the answer"
        errors.append(PartError(part, GraphErrorKind.UNKNOWN, None, None, msg))
    return None


async def _gather_all(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Like ``gather`` but lets every call finish before raising the first error."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)  # type: ignore[arg-type]


def _split_events(buckets: Sequence[StatsBucket], limit: int) -> list[str]:
    totals: Counter[str] = Counter()
    for b in buckets:
        totals[b.value] += b.count
    ranked = [name for name, _ in totals.most_common()]
    chosen = [n for n in ranked if n in PARITY_EVENTS] or ranked
    return chosen[:limit]


def poll_parts(
    parts: Iterable[Part | str] | None, split_events: Sequence[str] | None = None
) -> frozenset[Part]:
    """The parts a poll asked for ``parts`` reads (``None``: all of them).

    ``event_source`` is split per event name taken from the ``event`` list, so asking for
    it reads that list too, unless ``split_events`` names the events.
    """
    wanted = ALL_PARTS if parts is None else frozenset(Part(p) for p in parts)
    if Part.STATS_EVENT_SOURCE in wanted and split_events is None:
        wanted |= {Part.STATS_EVENT}
    return wanted


async def poll_dataset(
    client: GraphClient,
    dataset_id: str,
    *,
    now: float,
    hours: int = 48,
    split_events: Sequence[str] | None = None,
    max_split_events: int = 8,
    parts: Iterable[Part | str] | None = None,
) -> GraphSnapshot:
    """Read what the Graph-based checks need about one dataset; never raises.

    Stats over ``stats_window(now, hours)``: ``event``, then ``event_source`` split per
    event name (``split_events``, else the ``PARITY_EVENTS`` seen, else the busiest
    events, at most ``max_split_events``; dataset-wide only if the event list could not
    be read) and ``match_keys``; plus ``dataset_quality``, ``da_checks`` and the token.
    ``parts`` limits the reads to those parts (see ``poll_parts``; default: all); the
    snapshot's ``parts`` says which were asked for.
    Each part's failure is a ``PartError`` in ``errors`` and leaves that part empty/None.
    """
    start, end = stats_window(now, hours)
    wanted = poll_parts(parts, split_events)
    errors: list[PartError] = []
    counter = [0]
    reset = DATASET_CALLS.set(counter)
    try:

        async def read(part: Part, make: Callable[[], Awaitable[T]]) -> T | None:
            # The coroutine is made only for a part asked for: one never awaited warns.
            return await _guarded(part, make(), errors) if part in wanted else None

        async def events_and_sources() -> tuple[list[StatsBucket], list[SourceCounts]]:
            events = await read(
                Part.STATS_EVENT, lambda: client.stats(dataset_id, "event", start, end)
            )
            if Part.STATS_EVENT_SOURCE not in wanted:
                return events or [], []
            names: list[str | None] = [None]  # dataset-wide when events are unknown
            if split_events is not None and (events is not None or Part.STATS_EVENT not in wanted):
                names = list(split_events)
            elif events is not None:
                names = list(_split_events(events, max_split_events))
            reads = [client.stats(dataset_id, "event_source", start, end, event=n) for n in names]
            sources = await _guarded(Part.STATS_EVENT_SOURCE, _gather_all(reads), errors)
            flat = [b for per_event in sources or [] for b in per_event]
            return events or [], source_counts(flat)

        (events, sources), keys, quality, checks, token = await asyncio.gather(
            events_and_sources(),
            read(Part.STATS_MATCH_KEYS, lambda: client.stats(dataset_id, "match_keys", start, end)),
            read(Part.DATASET_QUALITY, lambda: client.dataset_quality(dataset_id)),
            read(Part.DA_CHECKS, lambda: client.da_checks(dataset_id)),
            read(Part.TOKEN, lambda: client.debug_token(now)),
        )
    finally:
        DATASET_CALLS.reset(reset)
    order = list(Part)
    errors.sort(key=lambda e: order.index(e.part))
    return GraphSnapshot(
        dataset_id=dataset_id,
        polled_at=now,
        window_start=start,
        window_end=end,
        event_counts=events,
        source_counts=sources,
        match_key_counts=keys or [],
        quality=quality,
        da_checks=checks,
        token=token,
        errors=errors,
        calls=counter[0],
        usage=client.usage,
        parts=wanted,
    )


async def poll_many(
    settings: Settings,
    *,
    now: float,
    concurrency: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
    env: Mapping[str, str] = os.environ,
    hours: int = 48,
    timeout: float = 30.0,
    max_retries: int = 4,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    parts: Iterable[Part | str] | None = None,
) -> dict[str, GraphSnapshot]:
    """Poll every configured dataset that has a token, at most ``concurrency`` calls in flight.

    Without ``[meta]``, or for datasets without a token, no call is made and the dataset
    is absent from the result (its Graph checks are ``skipped``, docs/contracts.md §6). One
    ``GraphClient`` per distinct token; all share one ``HttpPool`` and one limiter.
    Result order follows the config. ``parts``: see ``poll_dataset`` (default: all).
    """
    meta = settings.meta
    if meta is None:
        return {}
    jobs = [(ds.id, tok) for ds in settings.datasets if (tok := resolve_token(meta, ds, env))]
    if not jobs:
        return {}
    bound = max(1, concurrency)
    limiter = asyncio.Semaphore(bound)
    http = HttpPool(size=bound, timeout=timeout, transport=transport)
    clients: dict[str, GraphClient] = {}
    client_settings = dc.replace(
        ClientSettings.from_meta(meta), timeout=timeout, max_retries=max_retries
    )
    try:
        for _, tok in jobs:
            if tok not in clients:
                clients[tok] = GraphClient(
                    tok, client_settings, sleep=sleep, rng=rng, limiter=limiter, http=http
                )
        snaps = await asyncio.gather(
            *(
                poll_dataset(clients[tok], ds_id, now=now, hours=hours, parts=parts)
                for ds_id, tok in jobs
            )
        )
    finally:
        for client in clients.values():
            await client.aclose()
        await http.aclose()
    return {ds_id: snap for (ds_id, _), snap in zip(jobs, snaps, strict=True)}

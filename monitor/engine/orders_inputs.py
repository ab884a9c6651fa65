"""Wiring the orders sources into an audit: readers from config, one read per source.

``audit`` hands ``orders_loader(...)`` to ``run_audit(orders=...)``; after the logs are
read it is called with each dataset's window start (``--since``, else its earliest send
time) and reads every source its datasets need once, from the earliest window start
minus the ±48 h matching window up to ``now`` (docs/contracts.md §8):

- A dataset with ``orders = "<name>"`` is reconciled with that ``[[orders]]`` entry;
  ``audit --orders FILE`` replaces every dataset's source with the export.
- A source that cannot be read (missing key or token variable, 401, a failed page, a
  bad export row) gives a snapshot carrying only its reason: ``reconcile`` reports
  ``SOURCE_UNAVAILABLE`` and ``error``. An orders failure never ends an audit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from checks.reconcile import ReconcileRules
from monitor.config import OrdersSettings, Settings
from monitor.model.orders import OrderSnapshot, SourceKind
from monitor.sources.orders import OrdersReader, read_snapshot
from monitor.sources.orders.common import RetryPolicy, Sleep, default_sleep
from monitor.sources.orders.file import FileOrders

if TYPE_CHECKING:  # the HTTP readers (httpx) are imported only when a source needs them
    import httpx

MATCH_WINDOW = ReconcileRules().match_window
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class DatasetOrders:
    """What ``reconcile`` gets for one dataset."""

    snapshot: OrderSnapshot
    rules: ReconcileRules
    since: float | None  # --since (the window start) when given


def rules_for(entry: OrdersSettings | None) -> ReconcileRules:
    if entry is None:
        return ReconcileRules()
    return ReconcileRules(
        match_field=entry.match_field, grace=entry.grace, value_tolerance=entry.value_tolerance
    )


def dataset_rules(settings: Settings, dataset_id: str) -> ReconcileRules:
    """The reconcile rules of a dataset (its ``[[orders]]`` entry's, else the defaults)."""
    ds = settings.dataset(dataset_id)
    return rules_for(settings.orders_source(ds.orders) if ds else None)


class _Unavailable:
    """A reader that fails at once (a missing secret): the failure becomes a snapshot."""

    def __init__(self, name: str, kind: SourceKind, reason: str) -> None:
        self.name, self.kind, self.reason = name, kind, reason

    async def read(self, since: float, until: float) -> OrderSnapshot:
        return OrderSnapshot.failed(self.name, self.kind, since, until, self.reason)


def make_reader(
    entry: OrdersSettings,
    *,
    env: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = default_sleep,
) -> OrdersReader | _Unavailable:
    """The reader of one ``[[orders]]`` entry; secrets come from the environment."""
    policy = RetryPolicy(max_retries=entry.max_retries, timeout=entry.timeout)
    kind = SourceKind(entry.kind)
    if kind is SourceKind.FILE:
        return FileOrders(
            name=entry.name,
            paths=entry.paths,
            columns=entry.columns,
            paid_statuses=entry.paid_statuses,
        )
    var = entry.api_key_env if kind is SourceKind.STRIPE else entry.token_env
    secret = (env.get(var or "") or "").strip()
    if not secret:
        return _Unavailable(entry.name, kind, f"the environment variable {var} is not set")
    if kind is SourceKind.STRIPE:
        from monitor.sources.orders.stripe import DEFAULT_API_URL as STRIPE_URL
        from monitor.sources.orders.stripe import StripeOrders

        return StripeOrders(
            name=entry.name, api_key=secret, api_url=entry.api_url or STRIPE_URL,
            order_id_from=entry.order_id_from, policy=policy, transport=transport, sleep=sleep,
        )  # fmt: skip
    from monitor.sources.orders.shopify import ShopifyOrders

    return ShopifyOrders(
        name=entry.name, shop=entry.shop or "", token=secret, api_url=entry.api_url,
        api_version=entry.api_version, policy=policy, transport=transport, sleep=sleep,
    )  # fmt: skip


def check_exports(paths: Sequence[str]) -> None:
    """``audit --orders``: every FILE (or glob) must match a file (``InputError``, exit 2)."""
    from monitor.errors import InputError
    from monitor.sources.orders.common import OrdersError
    from monitor.sources.orders.file import expand_paths

    for path in paths:
        try:
            expand_paths([path])
        except OrdersError as err:
            raise InputError(f"--orders: {err}") from None


def collect_orders(
    settings: Settings,
    windows: Mapping[str, float | None],
    *,
    now: float,
    since: float | None = None,
    export: Sequence[str] = (),
    env: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = default_sleep,
) -> dict[str, DatasetOrders]:
    """Read the orders of the datasets in ``windows`` (dataset id -> window start, None
    when it saw no delivery) that have a source; datasets without one are absent."""
    plan: dict[str, tuple[OrdersReader | _Unavailable, OrdersSettings | None]] = {}
    needed: dict[str, list[str]] = {}
    for dataset_id, _start in windows.items():
        ds = settings.dataset(dataset_id)
        entry = settings.orders_source(ds.orders) if ds else None
        if export:
            key = "--orders"
            if key not in plan:
                plan[key] = (FileOrders(name=Path(export[0]).name, paths=list(export)), None)
        elif entry is not None:
            key = entry.name
            if key not in plan:
                plan[key] = (make_reader(entry, env=env, transport=transport, sleep=sleep), entry)
        else:
            continue
        needed.setdefault(key, []).append(dataset_id)
    starts = {
        key: min((s for d in ids if (s := windows[d]) is not None), default=now)
        for key, ids in needed.items()
    }

    import asyncio  # deferred: an audit without orders sources never gets here

    async def read_all() -> list[OrderSnapshot]:
        reads = [read_snapshot(plan[key][0], starts[key] - MATCH_WINDOW, now) for key in needed]
        return list(await asyncio.gather(*reads))

    snapshots = dict(zip(needed, asyncio.run(read_all()), strict=True))
    out: dict[str, DatasetOrders] = {}
    for key, ids in needed.items():
        for dataset_id in ids:
            out[dataset_id] = DatasetOrders(
                snapshots[key], dataset_rules(settings, dataset_id), since
            )
    return out


def orders_loader(
    settings: Settings,
    *,
    now: float,
    since: float | None = None,
    export: Sequence[str] = (),
) -> Callable[[Mapping[str, float | None]], Mapping[str, DatasetOrders]] | None:
    """What ``run_audit(orders=...)`` calls after reading; None when no dataset has a
    source and no export was given (``reconcile`` is then ``skipped`` everywhere)."""
    if not export and not any(ds.orders for ds in settings.datasets):
        return None

    def load(windows: Mapping[str, float | None]) -> Mapping[str, DatasetOrders]:
        return collect_orders(settings, windows, now=now, since=since, export=export)

    return load


# --- the daemon's windows ----------------------------------------------------------------


def reconciled_datasets(settings: Settings) -> dict[str, OrdersSettings]:
    """The configured datasets that name an orders source, with their ``[[orders]]`` entry."""
    out = {}
    for ds in settings.datasets:
        entry = settings.orders_source(ds.orders)
        if entry is not None:
            out[ds.id] = entry
    return out


def judged_span(settings: Settings, entry: OrdersSettings, now: float) -> tuple[float, float]:
    """What the daemon's ``orders`` job judges at ``now``: the ``[alerts] window`` that
    ended ``grace`` ago. Orders created in it are "sent" or not by now; Purchases logged
    in it have had ``grace`` for their order to reach the source (webhooks and exports
    lag). Both are judged over the same span, so ``accuracy`` compares like with like."""
    end = now - entry.grace
    return end - settings.alerts.window, end


def kept_since(settings: Settings, now: float) -> float:
    """How far back the daemon keeps orders and Purchases: the longest judged span of any
    source, the ±48 h matching window around it, and an hour's margin."""
    grace = max((e.grace for e in reconciled_datasets(settings).values()), default=0.0)
    return now - grace - settings.alerts.window - MATCH_WINDOW - HOUR

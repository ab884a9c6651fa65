"""Wiring: what the commands build from the settings (the store, the series loader).

Deferred imports keep ``--help`` and store-less runs from paying for SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monitor.config import Settings

DEFAULT_DB = "sqlite:///capi-monitor.db"


def series_loader(stores: list[Any], settings: Settings, clock: float) -> Any:
    """What ``run_audit(series=...)`` calls after reading: the stored hourly series of
    the datasets (``volume``), none without a store. This audit's own rollups replace
    the stored ones of the same hours, as ``record_audit`` will."""

    def load(dataset_ids: Sequence[str]) -> Any:
        if not stores:
            return {}
        from monitor.engine.series import load_volume_history
        from monitor.model.series import Current

        return load_volume_history(stores[0], settings, clock, dataset_ids, current=Current.REPLACE)

    return load


def store_url(settings: Settings) -> str:
    return settings.storage.url if settings.source_path else DEFAULT_DB


def open_store(url: str):  # type: ignore[no-untyped-def]
    from monitor.store import Store  # deferred: SQLAlchemy import is slow, --help need not pay

    return Store.open(url)

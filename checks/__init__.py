"""The registry of checks: one module per check, listed here explicitly and in order.

Adding a check = one module + one line below. ``registry()`` refuses duplicate ids at
import time rather than at 3 a.m.
"""

from __future__ import annotations

from checks.base import Check, CheckContext
from checks.dedup import Dedup
from checks.delivery import DeliveryCheck
from checks.diagnostics import Diagnostics
from checks.hash_validity import HashValidity
from checks.latency import Latency
from checks.match_quality import MatchQuality
from checks.parity import Parity
from checks.payload import Payload
from checks.reconcile import ReconcileCheck
from checks.volume import Volume

CHECKS: tuple[type[Check], ...] = (
    HashValidity,
    Payload,
    Dedup,
    Latency,
    DeliveryCheck,
    MatchQuality,
    Parity,
    Diagnostics,
    Volume,
    ReconcileCheck,
)

# How much each check weighs in a dataset's health score (checks not listed weigh 1).
HEALTH_WEIGHTS: dict[str, float] = {
    "hash_validity": 2.0,
    "payload": 1.5,
    "dedup": 1.5,
    "latency": 1.0,
    "delivery": 2.0,
    "match_quality": 1.5,
    "parity": 1.5,
    "diagnostics": 1.0,
    "volume": 1.5,
    "reconcile": 1.5,
}

# Checks with a Graph API part (``checks.graph_common``): the engine asks them for a result
# even when a dataset has no log events, since Meta's side may still be judged. ``volume``
# too: it judges stored series, and no events at all is what VOLUME_STOPPED is about.
GRAPH_CHECKS: frozenset[str] = frozenset(
    {"dedup", "latency", "match_quality", "parity", "diagnostics", "volume"}
)


def registry() -> dict[str, type[Check]]:
    """Check id -> class; raises ``ValueError`` on a duplicate id."""
    out: dict[str, type[Check]] = {}
    for cls in CHECKS:
        if cls.id in out:
            raise ValueError(f"duplicate check id {cls.id!r}")
        out[cls.id] = cls
    return out


__all__ = ["CHECKS", "GRAPH_CHECKS", "HEALTH_WEIGHTS", "Check", "CheckContext", "registry"]

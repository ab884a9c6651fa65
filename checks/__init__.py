"""The registry of checks: one module per check, listed here explicitly and in order.

Adding a check = one module (its ``id``, ``title``, ``weight`` and ``reads_graph`` are
class attributes) + one line below. ``registry()`` refuses duplicate ids; the engine
calls it when an audit starts, so a duplicate fails at start-up, not at 3 a.m.
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


def registry() -> dict[str, type[Check]]:
    """Check id -> class; raises ``ValueError`` on a duplicate id."""
    out: dict[str, type[Check]] = {}
    for cls in CHECKS:
        if cls.id in out:
            raise ValueError(f"duplicate check id {cls.id!r}")
        out[cls.id] = cls
    return out


__all__ = ["CHECKS", "Check", "CheckContext", "registry"]

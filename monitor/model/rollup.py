"""Hourly aggregates of server events: the value type and the names it is keyed by.

One ``HourRollup`` per dataset × event name × source × hour: counts, events with
``event_id``, match-key coverage counts (all together and per ``action_source``), a
latency histogram and error counts. No raw event or customer data ever enters a rollup.
Hours are UTC hour starts (Unix seconds).
``monitor.engine.rollup`` fills them from observations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from monitor.model.observations import Delivery

MATCH_KEYS: tuple[str, ...] = (
    "em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge",
    "external_id", "client_ip_address", "client_user_agent", "fbc", "fbp",
    "madid", "anon_id", "lead_id", "ctwa_clid",
)  # fmt: skip
# The ``action_source`` values Meta defines; events without one count under NO_SOURCE,
# any other value under UNKNOWN_SOURCE (a bounded set of keys, whatever the logs hold).
ACTION_SOURCES: frozenset[str] = frozenset(
    {"website", "app", "physical_store", "system_generated", "phone_call", "chat", "email",
     "business_messaging", "other"}
)  # fmt: skip
NO_SOURCE = "(none)"
UNKNOWN_SOURCE = "(unknown)"

# Upper bounds (seconds) of latency buckets: send time - event_time. The last is open.
LATENCY_BOUNDS: tuple[float, ...] = (
    60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 86400,
)  # fmt: skip
SOURCE_SERVER_LOG = "server_log"
OTHER_EVENT = "(other)"
MAX_EVENT_NAMES = 500
# Events whose numeric ``custom_data.value`` is summed (the ``volume`` check's VALUE_DRIFT).
VALUE_EVENTS: frozenset[str] = frozenset({"Purchase", "Subscribe", "StartTrial"})


@dataclass(slots=True)
class HourRollup:
    dataset_id: str
    event_name: str
    source: str
    hour: int  # Unix seconds of the UTC hour start
    events: int = 0  # accepted or unknown outcome
    failed: int = 0  # events in requests Meta answered with an error
    with_event_id: int = 0
    key_counts: list[int] = field(default_factory=lambda: [0] * len(MATCH_KEYS))
    latency_hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    error_codes: dict[str, int] = field(default_factory=dict)
    value_sum: float = 0.0  # numeric custom_data.value of accepted VALUE_EVENTS
    value_count: int = 0
    # action_source -> [events, then per MATCH_KEYS the events carrying the key]
    source_keys: dict[str, list[int]] = field(default_factory=dict)
    # The latest send time of its accepted events (0: not known, e.g. a row stored before
    # it was kept): how long a sender has been silent (``checks.detect.judge_silent``).
    last_sent: float = 0.0

    def copy(self) -> HourRollup:
        """A copy that shares no mutable part with this row."""
        return dataclasses.replace(
            self,
            key_counts=list(self.key_counts),
            latency_hist=list(self.latency_hist),
            error_codes=dict(self.error_codes),
            source_keys={s: list(c) for s, c in self.source_keys.items()},
        )

    def key_coverage(self) -> dict[str, int]:
        return dict(zip(MATCH_KEYS, self.key_counts, strict=True))

    def source_coverage(self) -> dict[str, dict[str, int]]:
        """``action_source`` -> ``{"events": n, key: count, ...}`` (keys that occurred)."""
        return {
            src: {"events": c[0], **{k: n for k, n in zip(MATCH_KEYS, c[1:], strict=True) if n}}
            for src, c in sorted(self.source_keys.items())
        }

    def merge(self, other: HourRollup) -> None:
        self.events += other.events
        self.failed += other.failed
        self.with_event_id += other.with_event_id
        self.key_counts = [a + b for a, b in zip(self.key_counts, other.key_counts, strict=True)]
        self.latency_hist = [
            a + b for a, b in zip(self.latency_hist, other.latency_hist, strict=True)
        ]
        for code, n in other.error_codes.items():
            self.error_codes[code] = self.error_codes.get(code, 0) + n
        self.value_sum += other.value_sum
        self.value_count += other.value_count
        add_source_keys(self.source_keys, other.source_keys)
        self.last_sent = max(self.last_sent, other.last_sent)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "event_name": self.event_name,
            "source": self.source,
            "hour": self.hour,
            "events": self.events,
            "failed": self.failed,
            "with_event_id": self.with_event_id,
            "key_counts": self.key_coverage(),
            "latency_hist": list(self.latency_hist),
            "error_codes": dict(self.error_codes),
            "value_sum": self.value_sum,
            "value_count": self.value_count,
            "source_keys": self.source_coverage(),
            "last_sent": self.last_sent,
        }


def source_counts() -> list[int]:
    """A fresh ``HourRollup.source_keys`` entry: events, then one count per match key."""
    return [0] * (1 + len(MATCH_KEYS))


def add_source_keys(into: dict[str, list[int]], more: dict[str, list[int]]) -> None:
    """Add the per-source counts ``more`` to ``into`` (new lists, never shared)."""
    for src, counts in more.items():
        mine = into.get(src)
        if mine is None:
            into[src] = list(counts)
        else:
            into[src] = [a + b for a, b in zip(mine, counts, strict=True)]


def source_keys_from(stored: Any) -> dict[str, list[int]]:
    """``HourRollup.source_keys`` from its stored form (``source_coverage``)."""
    out: dict[str, list[int]] = {}
    for src, counts in (stored or {}).items():
        if isinstance(counts, dict):
            keys = [int(counts.get(k, 0)) for k in MATCH_KEYS]
            out[str(src)] = [int(counts.get("events", 0)), *keys]
    return out


def source_key(value: Any) -> str:
    """The ``source_keys`` entry an event's ``action_source`` counts under."""
    if value is None:
        return NO_SOURCE
    return value if value.__class__ is str and value in ACTION_SOURCES else UNKNOWN_SOURCE


def error_key(delivery: Delivery) -> str:
    r = delivery.response
    if r is None:
        return "unknown"
    if r.transport_error is not None:
        return "no_answer"
    if r.error_code is None:
        return f"http_{r.status}"
    return f"{r.error_code}/{r.error_subcode}" if r.error_subcode else str(r.error_code)


def key_layouts(d: Delivery) -> list[tuple[str, tuple[Any, ...]]]:
    """Per event of ``d``, in order: its ``source_key`` and its ``present_keys`` (``()``
    without a ``user_data`` object), what the rollups and ``match_quality`` count events
    by. Computed once per delivery and kept on it (``Delivery.layouts``): both read it."""
    layouts = d.layouts
    if layouts is not None:
        return layouts
    layouts = d.layouts = []
    append = layouts.append
    sources = ACTION_SOURCES
    for ev in d.events:
        src = ev.get("action_source")
        if src.__class__ is not str or src not in sources:
            src = source_key(src)
        ud = ev.get("user_data")
        if ud.__class__ is dict:
            # Every value truthy means every key present: the C-level all() fast path.
            append((src, tuple(ud) if all(ud.values()) else present_keys(ud)))
        else:
            append((src, ()))
    return layouts


def present_keys(user_data: dict[Any, Any]) -> tuple[Any, ...]:
    """The keys of ``user_data`` whose value is present: not null, ``""`` or ``[]``
    (0 and false count as present). The one rule of rollups and the match-quality check."""
    return tuple(k for k, v in user_data.items() if v is not None and v != "" and v != [])

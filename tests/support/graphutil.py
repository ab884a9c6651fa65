"""Builders of Graph API observations for check tests: snapshots, counts, quality, history.

Everything is built from the value types of ``monitor.model.graph``, as the client
would produce them, so the checks are tested as pure functions of a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from checks.base import Check, CheckContext
from monitor.config import ChecksSettings
from monitor.model.findings import CheckResult
from monitor.model.graph import (
    DaCheck,
    DedupeFeedback,
    EmqDiagnostic,
    EventQuality,
    GraphErrorKind,
    GraphHistory,
    GraphSnapshot,
    Part,
    PartError,
    QualityPoint,
    SourceCounts,
    StatsBucket,
    TokenInfo,
)
from monitor.model.rollup import HourRollup
from monitor.sources.graph.parse import stats_window

NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
HOUR = 3600
DAY = 86400.0
# The last complete hour the parity check judges by default (settle 1 h): 10:00-11:00.
LAST_JUDGED = int(NOW) - 2 * HOUR


def hour(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def judged_hours(n: int = 24, last: int = LAST_JUDGED) -> list[int]:
    """The ``n`` hour starts ending with ``last`` (the default parity window)."""
    return [last - i * HOUR for i in reversed(range(n))]


def sources(
    event: str | None, browser: int, server: int, hours: Iterable[int] | None = None
) -> list[SourceCounts]:
    """Per-hour BROWSER/SERVER counts of one event over ``hours`` (default: judged)."""
    return [
        SourceCounts(hour=hour(h), event=event, browser=browser, server=server)
        for h in (judged_hours() if hours is None else hours)
    ]


def event_counts(volumes: dict[str, int], hours: Iterable[int] | None = None) -> list[StatsBucket]:
    """``aggregation=event`` buckets: ``volumes[name]`` events per hour."""
    return [
        StatsBucket(hour=hour(h), event=None, value=name, count=n)
        for h in (judged_hours() if hours is None else hours)
        for name, n in volumes.items()
    ]


def quality(name: str = "Purchase", **fields: Any) -> EventQuality:
    return EventQuality(event_name=name, **fields)


def dedupe(browser: float | None, server: float | None, key: str = "event_id") -> DedupeFeedback:
    return DedupeFeedback(key=key, browser_pct=browser, server_pct=server, overall_pct=None)


def diag(
    name: str = "Server sending mismatched IP addresses", affected: int | None = 410
) -> EmqDiagnostic:
    return EmqDiagnostic(name, "desc", "Send the client's IP.", 62.5, affected, 656)


def da(key: str, result: str, title: str | None = None) -> DaCheck:
    return DaCheck(key=key, title=title or key, description=None, result=result)


def failure(
    part: Part, kind: GraphErrorKind = GraphErrorKind.TRANSIENT, code: int | None = None
) -> PartError:
    return PartError(part, kind, code, None, f"{part.value}: {kind.value} (code {code})", 503)


VALID_TOKEN = TokenInfo(valid=True, checked_at=NOW, type="SYSTEM_USER")


def snapshot(
    *,
    source_counts: Sequence[SourceCounts] = (),
    events: Sequence[StatsBucket] | None = None,
    quality_: Sequence[EventQuality] | None = (),
    da_checks: Sequence[DaCheck] | None = (),
    token: TokenInfo | None = VALID_TOKEN,
    errors: Sequence[PartError] = (),
    dataset_id: str = "123",
) -> GraphSnapshot:
    """A snapshot over the default 48 h window. ``events=None`` derives the per-name
    volumes from ``source_counts`` (browser + server), as Meta's ``event`` totals would."""
    start, end = stats_window(NOW, 48)
    if events is None:
        events = [
            StatsBucket(sc.hour, None, sc.event, sc.browser + sc.server)
            for sc in source_counts
            if sc.event is not None
        ]
    failed = {e.part for e in errors}
    return GraphSnapshot(
        dataset_id=dataset_id,
        polled_at=NOW,
        window_start=start,
        window_end=end,
        event_counts=[] if Part.STATS_EVENT in failed else list(events),
        source_counts=[] if Part.STATS_EVENT_SOURCE in failed else list(source_counts),
        quality=None if Part.DATASET_QUALITY in failed or quality_ is None else list(quality_),
        da_checks=None if Part.DA_CHECKS in failed or da_checks is None else list(da_checks),
        token=None if Part.TOKEN in failed else token,
        errors=list(errors),
    )


def history(readings: dict[str, Sequence[tuple[float | None, dict[str, float]]]]) -> GraphHistory:
    """Readings per event name, one per day before ``NOW`` (oldest first)."""
    points = {
        name: [
            QualityPoint(NOW - (len(rs) - i) * DAY, score, dict(keys))
            for i, (score, keys) in enumerate(rs)
        ]
        for name, rs in readings.items()
    }
    return GraphHistory("123", NOW - 7 * DAY, NOW, points)


def context(
    graph: GraphSnapshot | None,
    settings: dict[str, Any] | None = None,
    history_: GraphHistory | None = None,
) -> CheckContext:
    return CheckContext(
        "123", NOW, ChecksSettings.model_validate(settings or {}), graph=graph, history=history_
    )


def run_graph(
    check_cls: type[Check],
    graph: GraphSnapshot | None,
    settings: dict[str, Any] | None = None,
    history_: GraphHistory | None = None,
    rollups: Sequence[HourRollup] | None = None,
) -> CheckResult:
    """A fresh check that observed no delivery, given ``graph`` (and ``rollups``)."""
    check = check_cls(context(graph, settings, history_))
    if rollups is not None:
        check.use_rollups(rollups)  # type: ignore[attr-defined]
    return check.result()


def accepted(name: str, per_hour: int, hours: Iterable[int] | None = None) -> list[HourRollup]:
    """Log rollups: ``per_hour`` accepted server events of ``name`` per hour."""
    return [
        HourRollup("123", name, "server_log", h, events=per_hour)
        for h in (judged_hours() if hours is None else hours)
    ]

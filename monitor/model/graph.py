"""Value types of what the Graph API observed about one dataset. No I/O here.

Produced by ``monitor.sources.graph`` (normalised by its ``parse`` module), consumed by
the Graph-based checks (parity, EMQ, dedup, freshness, diagnostics, volume) and the store.

Conventions, because Meta leaves much of this undocumented (docs/meta-capi.md §12):

- **Missing means unknown.** A field or block Meta did not send is ``None`` (or absent from
  a mapping), never ``0``. Checks must treat ``None`` as "could not evaluate".
- **Open vocabularies stay open.** Unknown match keys, event sources, ``upload_frequency``
  values and ``da_checks`` keys are kept verbatim (lower-cased where noted), never dropped.
- **A failed part is explicit.** ``GraphSnapshot.errors`` holds one ``PartError`` per part
  that could not be read; that part's data is then empty and must not be read as "zero".
- **No secrets.** Nothing here ever holds an access token or a ``paging.next`` URL.
"""

from __future__ import annotations

import dataclasses as dc
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class GraphErrorKind(StrEnum):
    """Why a Graph API call failed, classified from Meta's whole error envelope
    (``monitor.model.meta_errors``; docs/contracts.md §9, docs/meta-capi.md §8)."""

    TOKEN_INVALID = "token_invalid"  # 190 (458/459/460/463/464/467), 102
    RATE_LIMITED = "rate_limited"  # 4, 17, 32, 341, 613, 80000-80014, HTTP 429
    PERMISSION = "permission"  # 3, 10, 200-299
    NOT_FOUND = "not_found"  # 100/33 (missing or not accessible), 803, 2044055, HTTP 404
    INVALID = "invalid"  # 100, 2500, 2804xxx: the request is wrong
    TRANSIENT = "transient"  # 1, 2, 368 (wait and retry), 5xx, timeouts, connection, bad JSON
    UNKNOWN = "unknown"


HOUR = 3600


def utc_hour_shares(start: float, length: float = HOUR) -> list[tuple[int, float]]:
    """How a Meta bucket ``[start, start + length)`` spreads over UTC hours: ``(hour start,
    fraction of the bucket)`` pairs, fractions summing to 1.

    ``/stats`` hours are the ad account's local hours (docs/contracts.md §9): in a
    ``+0530`` account a bucket starts at xx:30 UTC and is half in each of two UTC hours.
    Hours are instants; a count is compared with another source over the same instants,
    prorated where a bucket straddles the other side's bucket boundary.
    """
    if length <= 0:
        return []
    out = []
    t, end = start, start + length
    while t < end:
        hour = int(t // HOUR * HOUR)
        part = min(end, hour + HOUR) - t
        out.append((hour, part / length))
        t += part
    return out


class Part(StrEnum):
    """The independently polled parts of a snapshot; each may fail on its own."""

    STATS_EVENT = "stats.event"
    STATS_EVENT_SOURCE = "stats.event_source"
    STATS_MATCH_KEYS = "stats.match_keys"
    DATASET_QUALITY = "dataset_quality"
    DA_CHECKS = "da_checks"
    TOKEN = "debug_token"


# Which parts each daemon job polls (``monitor.daemon.graph_jobs``): ``/stats`` every
# ``[schedule] graph_every``, Meta's slower-moving aggregates every ``quality_every``.
ALL_PARTS: frozenset[Part] = frozenset(Part)
STATS_PARTS: frozenset[Part] = frozenset(
    {Part.STATS_EVENT, Part.STATS_EVENT_SOURCE, Part.STATS_MATCH_KEYS}
)
QUALITY_PARTS: frozenset[Part] = frozenset({Part.DATASET_QUALITY, Part.DA_CHECKS, Part.TOKEN})


class EventSource(StrEnum):
    """``/stats?aggregation=event_source`` values Meta documents (compared case-insensitively)."""

    BROWSER = "BROWSER"
    SERVER = "SERVER"


@dataclass(slots=True)
class StatsBucket:
    """One ``(hour, event, value) -> count`` item of ``/{dataset}/stats`` (docs/meta-capi.md §2).

    ``hour`` is the aware UTC start of the hourly bucket (the ad account's local hour: it
    need not start on a UTC hour). ``event`` is the event name on per-event aggregations
    (``match_keys``, or ``event_source`` asked with ``event=``) and ``None`` otherwise.
    ``value`` depends on the aggregation: the event name for ``event``,
    ``BROWSER``/``SERVER``/other (upper-case) for ``event_source``, a canonical match key
    for ``match_keys``. Read-only by convention, not frozen: a poll of 500 datasets makes
    about a million of them, and a frozen dataclass takes four times as long to build.
    """

    hour: datetime
    event: str | None
    value: str
    count: int

    @property
    def ts(self) -> float:
        """Unix seconds of ``hour``."""
        return self.hour.timestamp()


@dataclass(frozen=True, slots=True)
class SourceCounts:
    """Events received per hour and event name, by source: pre-deduplication (§2).

    ``event`` is ``None`` for dataset-wide counts (only polled when event names are
    unknown). ``other`` holds source values that are neither BROWSER nor SERVER, verbatim.
    A bucket Meta returned without a SERVER item has ``server == 0``: Meta saw none.
    """

    hour: datetime
    event: str | None
    browser: int
    server: int
    other: dict[str, int] = dc.field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.browser + self.server + sum(self.other.values())


@dataclass(frozen=True, slots=True)
class EmqDiagnostic:
    """One ``event_match_quality.diagnostics`` entry (docs/meta-capi.md §3); Meta's own text."""

    name: str
    description: str | None = None
    solution: str | None = None
    percentage: float | None = None
    affected_event_count: int | None = None
    total_event_count: int | None = None


@dataclass(frozen=True, slots=True)
class DedupeFeedback:
    """One ``dedupe_key_feedback`` entry: share of events carrying ``key`` (§3).

    ``overall_pct`` is ``overall_browser_coverage_from_dedupe_key`` (incremental per key).
    """

    key: str
    browser_pct: float | None
    server_pct: float | None
    overall_pct: float | None


@dataclass(frozen=True, slots=True)
class EventQuality:
    """Dataset Quality API (``dataset_quality``, ``web`` block) for one event name (§3).

    - ``composite_score``: EMQ 0-10, ``None`` when the EMQ block is absent.
    - ``match_key_coverage``: canonical key (``em``, ``ph``, ``client_ip_address``...)
      -> coverage %. Only keys Meta reported with a number; a missing key is unknown.
    - ``coverage_pct``/``coverage_goal_pct``: ``event_coverage`` (7-day average; goal 75).
    - ``dedupe``: ``None`` when the block is absent (dedup never set up or not reported),
      ``[]`` when present but empty. Read from ``dedupe_key_feedback`` or the misspelt
      ``dedup_key_feedback``.
    - ``upload_frequency``: lower-case, spaces as ``_`` (``real_time``, ``hourly``,
      ``daily``, ``weekly``, or any unknown string kept as such); ``None`` when absent.
    - ``acr_pct``: additional conversions reported, last 7 days.
    """

    event_name: str
    composite_score: float | None = None
    match_key_coverage: dict[str, float] = dc.field(default_factory=dict)
    diagnostics: list[EmqDiagnostic] = dc.field(default_factory=list)
    coverage_pct: float | None = None
    coverage_goal_pct: float | None = None
    dedupe: list[DedupeFeedback] | None = None
    upload_frequency: str | None = None
    acr_pct: float | None = None
    potential_acr_increase_pct: float | None = None

    def dedupe_for(self, key: str) -> DedupeFeedback | None:
        """The feedback for one dedup key (``event_id``, ``external_id``, ``fbp``), if any."""
        return next((d for d in self.dedupe or () if d.key == key), None)


@dataclass(frozen=True, slots=True)
class DaCheck:
    """One ``/{dataset}/da_checks`` entry (docs/meta-capi.md §4).

    ``result`` is lower-case with Meta's fixture spellings folded: ``PASS`` -> ``passed``,
    ``FAIL`` -> ``failed``; ``unavailable`` is not a failure; anything else is kept
    lower-cased, and a missing result is ``unknown``. Unknown ``key`` values are kept.
    """

    key: str
    title: str | None
    description: str | None
    result: str
    action_uri: str | None = None
    user_message: str | None = None

    @property
    def failed(self) -> bool:
        return self.result == "failed"

    @property
    def passed(self) -> bool:
        return self.result == "passed"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What ``/debug_token`` said about the token (docs/meta-capi.md appendix).

    ``expires_at``/``data_access_expires_at`` are Unix seconds, ``None`` when Meta says
    ``0`` (never expires) or did not say. ``valid=False`` comes either from
    ``is_valid: false`` or from a code-190 error on the probe itself; ``error`` then holds
    Meta's scrubbed reason and ``code``/``subcode`` the error codes when known.
    """

    valid: bool
    checked_at: float
    expires_at: float | None = None
    data_access_expires_at: float | None = None
    type: str | None = None
    scopes: tuple[str, ...] = ()
    app_id: str | None = None
    error: str | None = None
    code: int | None = None
    subcode: int | None = None

    def expires_within(self, seconds: float) -> bool:
        """True when the token expires less than ``seconds`` after ``checked_at``."""
        return self.expires_at is not None and self.expires_at - self.checked_at < seconds


@dataclass(frozen=True, slots=True)
class PartError:
    """Why one part of a snapshot could not be read. ``message_scrubbed`` holds no secret."""

    part: Part
    kind: GraphErrorKind
    code: int | None
    subcode: int | None
    message_scrubbed: str
    http_status: int | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class Usage:
    """Latest rate-limit usage headers (docs/meta-capi.md §8), in percent of the limit.

    ``app_pct`` from ``X-App-Usage``, ``business_pct`` from ``X-Business-Use-Case-Usage``
    (max over objects and types), ``ad_account_pct`` from ``X-Ad-Account-Usage``.
    ``regain_access_s`` is ``estimated_time_to_regain_access`` converted from MINUTES.
    """

    app_pct: float | None = None
    business_pct: float | None = None
    ad_account_pct: float | None = None
    regain_access_s: float | None = None

    @property
    def max_pct(self) -> float:
        values = [v for v in (self.app_pct, self.business_pct, self.ad_account_pct) if v]
        return max(values, default=0.0)


@dataclass(frozen=True, slots=True)
class GraphSnapshot:
    """Everything one poll of the Graph API observed for one dataset.

    - ``window_start``/``window_end``: the ``/stats`` window (Unix seconds).
    - ``event_counts``: ``aggregation=event`` buckets; ``value`` is the event name.
    - ``source_counts``: per hour x event name, BROWSER/SERVER/other (pre-dedup).
    - ``match_key_counts``: ``aggregation=match_keys`` buckets, canonical keys; a proxy
      only (Meta samples: totals can be far below event totals, §2).
    - ``quality``: Dataset Quality per event, ``da_checks``, ``token``: ``None`` when that
      part failed (see ``errors``) -- never an empty stand-in.
    - ``calls``: HTTP requests made on behalf of this dataset (retries and pages included;
      a token probe shared by several datasets counts for the first one only).
    - ``usage``: the latest rate-limit usage the client had seen when the poll ended.
    - ``parts``: the parts this poll asked for (default: all). A part not asked for is
      neither ``ok`` nor failed: it was not read in this poll, and the checks that need
      it report ``skipped`` (the daemon reads ``/stats`` and Dataset Quality in
      different jobs).
    """

    dataset_id: str
    polled_at: float
    window_start: float
    window_end: float
    event_counts: list[StatsBucket] = dc.field(default_factory=list)
    source_counts: list[SourceCounts] = dc.field(default_factory=list)
    match_key_counts: list[StatsBucket] = dc.field(default_factory=list)
    quality: list[EventQuality] | None = None
    da_checks: list[DaCheck] | None = None
    token: TokenInfo | None = None
    errors: list[PartError] = dc.field(default_factory=list)
    calls: int = 0
    usage: Usage | None = None
    parts: frozenset[Part] = ALL_PARTS

    def polled(self, part: Part | str) -> bool:
        """True when this poll asked for ``part`` (read successfully or not)."""
        return part in self.parts

    def ok(self, part: Part | str) -> bool:
        """True when ``part`` was polled and read successfully (its data can be trusted)."""
        return self.polled(part) and self.error(part) is None

    def error(self, part: Part | str) -> PartError | None:
        return next((e for e in self.errors if e.part == part), None)

    @property
    def token_invalid(self) -> bool:
        """Meta rejected the token, by ``debug_token`` or by a 190/102 on any call."""
        if self.token is not None and not self.token.valid:
            return True
        return any(e.kind is GraphErrorKind.TOKEN_INVALID for e in self.errors)

    @property
    def rate_limited(self) -> bool:
        """Some part stayed throttled after retries: "throttled", not an outage (§8)."""
        return any(e.kind is GraphErrorKind.RATE_LIMITED for e in self.errors)

    def quality_for(self, event_name: str) -> EventQuality | None:
        return next((q for q in self.quality or () if q.event_name == event_name), None)


@dataclass(frozen=True, slots=True)
class QualityPoint:
    """One earlier Dataset Quality reading of one event name (from the store)."""

    polled_at: float
    composite_score: float | None
    match_key_coverage: dict[str, float] = dc.field(default_factory=dict)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True, slots=True)
class GraphHistory:
    """Earlier Dataset Quality readings of one dataset: the baseline of EMQ_DROP and
    MATCH_KEY_DROP (docs/meta-capi.md §9: trend ``composite_score``, explain drops with
    ``match_key_feedback``).

    ``points`` maps an event name to its readings, oldest first, taken in
    ``[since, until)``; the poll being judged is never part of it. A reading without a
    score or without a key is unknown for that value, never zero.
    """

    dataset_id: str
    since: float
    until: float
    points: dict[str, list[QualityPoint]] = dc.field(default_factory=dict)

    def scores(self, event_name: str) -> list[float]:
        """The known ``composite_score`` readings of ``event_name``, oldest first."""
        return [
            p.composite_score
            for p in self.points.get(event_name, ())
            if p.composite_score is not None
        ]

    def key_coverages(self, event_name: str, key: str) -> list[float]:
        """The known coverage % readings of one match key of ``event_name``, oldest first."""
        return [
            p.match_key_coverage[key]
            for p in self.points.get(event_name, ())
            if key in p.match_key_coverage
        ]

    def median_score(self, event_name: str) -> float | None:
        return _median(self.scores(event_name))

    def median_key_coverage(self, event_name: str, key: str) -> float | None:
        return _median(self.key_coverages(event_name, key))


@dataclass(frozen=True, slots=True)
class DatasetGraph:
    """What the engine hands the checks about one dataset's Graph source.

    ``snapshot`` is this run's poll; ``history`` the stored readings before it (``None``
    when no store is used: drop detection is then not evaluated).
    """

    snapshot: GraphSnapshot
    history: GraphHistory | None = None

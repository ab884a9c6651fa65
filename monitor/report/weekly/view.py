"""The weekly report's view model: what each page shows, with week-over-week deltas."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.alerts.silences import Silence
from monitor.model.findings import Example, Severity
from monitor.model.orders import FunnelHour
from monitor.model.rollup import HourRollup
from monitor.report.charts import Chart
from monitor.report.format import fmt_duration, fmt_number, fmt_percent, grade
from monitor.report.window import ReportWindow
from monitor.store.weekly import AlertEpisode, CheckRow, FindingAgg, StatusSeen

TREND_WEEKS = 6
KEY_EVENTS = 4  # event names drawn in the volume chart
TOP_PROBLEMS = 3
EMQ_EVENTS = 6
SHOWN_KEYS = ("em", "ph", "external_id", "client_ip_address", "client_user_agent", "fbp", "fbc")
CHECK_ORDER = (
    "hash_validity", "payload", "dedup", "latency", "delivery", "match_quality", "parity",
    "diagnostics", "volume",
)  # fmt: skip
STATUS_RANK = {"crit": 5, "warn": 4, "error": 3, "ok": 2, "skipped": 1}
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
Kind = Literal["count", "ratio", "score", "seconds", "emq", "pct"]
Better = Literal["up", "down", "none"]


# --- week-over-week deltas -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delta:
    """A number this window and the window before. ``better`` says which way is good
    (``none``: neither, e.g. volume). ``kind`` picks the formatting: ``ratio`` values are
    0–1 shares shown in %, ``pct`` are already percentages (Meta's)."""

    value: float | None
    previous: float | None
    kind: Kind = "count"
    better: Better = "none"

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def tone(self) -> str:
        """``good``, ``bad``, ``flat`` or ``none`` (no comparison): the CSS class."""
        change = self.change
        if change is None:
            return "none"
        if abs(change) < 1e-9:
            return "flat"
        if self.better == "none":
            return "neutral"
        return "good" if (change > 0) == (self.better == "up") else "bad"

    @property
    def arrow(self) -> str:
        change = self.change
        if change is None or abs(change) < 1e-9:
            return "="
        return "▲" if change > 0 else "▼"

    @property
    def text(self) -> str:
        """The value for people: ``1,234``, ``12.5%``, ``8.1``, ``2h 5m``."""
        return _fmt(self.value, self.kind)

    @property
    def change_text(self) -> str:
        """The change for people: ``+120 (+11%)``, ``−2.5 pts``, ``new``, ``n/a``."""
        change = self.change
        if change is None:
            return "new" if self.previous is None and self.value else "n/a"
        if abs(change) < 1e-9:
            return "no change"
        sign = "+" if change > 0 else "−"
        size = abs(change)
        if self.kind == "count":
            rel = f" ({sign}{fmt_percent(size / self.previous, 0)})" if self.previous else ""
            return f"{sign}{fmt_number(round(size))}{rel}"
        if self.kind == "ratio":
            return f"{sign}{size * 100:.1f} pts" if size >= 0.0005 else f"{sign}<0.1 pts"
        if self.kind == "pct":
            return f"{sign}{size:.1f} pts"
        if self.kind == "seconds":
            return f"{sign}{fmt_duration(size)}"
        if self.kind == "emq":
            return f"{sign}{size:.1f}"
        return f"{sign}{size:g}"


def _fmt(value: float | None, kind: Kind) -> str:
    if value is None:
        return "n/a"
    if kind == "count":
        return fmt_number(round(value))
    if kind == "ratio":
        return fmt_percent(value)
    if kind == "pct":
        return f"{value:.1f}%".replace(".0%", "%")
    if kind == "seconds":
        return fmt_duration(value)
    if kind == "emq":
        return f"{value:.1f}"
    return f"{value:g}"


# --- view model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding of the week in the shape ``_macros.finding_card`` prints, plus deltas."""

    code: str
    severity: Severity
    check: str
    count: int
    message: str
    remediation: str
    event_names: list[str]
    field: str | None
    examples: list[Example]
    evidence: list[tuple[str, str]]
    runs: int
    peak: int
    last_seen: float
    delta: Delta
    # Set when the runs that found it judged data beyond this window (an audit of several
    # weeks at once): says which span its numbers cover.
    span: str | None = None


@dataclass(frozen=True, slots=True)
class CheckView:
    id: str
    status: str
    worst: str
    score: Delta
    summary: str
    runs: int
    trend: list[tuple[str, str]]  # (week label, status) oldest first


@dataclass(frozen=True, slots=True)
class EventRow:
    name: str
    events: Delta
    failed: Delta
    event_id_share: Delta
    p95: Delta
    coverage: list[Delta]  # SHOWN_KEYS order


@dataclass(frozen=True, slots=True)
class QualityRow:
    name: str
    emq: Delta
    coverage: Delta
    goal: float | None
    dedup_browser: float | None
    dedup_server: float | None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    source: str  # "da_checks" or an event name
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class TokenView:
    valid: bool | None
    expires_at: float | None  # None: unknown; 0 means never (Meta's convention)
    data_access_expires_at: float | None
    days_left: float | None
    error: str | None
    polled_at: float


@dataclass(frozen=True, slots=True)
class EpisodeView:
    code: str
    event_name: str | None
    severity: str
    fired_at: float
    resolved_at: float | None
    duration: float | None  # time to resolve, or open so far (at the window's end)
    muted: bool


@dataclass(frozen=True, slots=True)
class FunnelView:
    """The reconciliation funnel of the window (docs/contracts.md §8): one row per stage,
    one value per time bucket (``None``: not known) and the window's total."""

    labels: list[str]
    rows: list[tuple[str, list[int | None], int | None]]
    chart: Chart | None = None

    @property
    def accuracy(self) -> float | None:
        """Purchases accepted by Meta ÷ paid orders over the window (``None`` when either
        is unknown); above 1 when reloads or duplicates add Purchases."""
        totals = {name: total for name, _, total in self.rows}
        paid, accepted = totals.get(FUNNEL_PAID), totals.get(FUNNEL_ACCEPTED)
        return accepted / paid if paid and accepted is not None else None


FUNNEL_PAID = "Paid orders"
FUNNEL_ACCEPTED = "Accepted by Meta"
FUNNEL_STAGES = (
    FUNNEL_PAID,
    "Purchases sent",
    FUNNEL_ACCEPTED,
    "Meta's server count",
    "Meta's browser count",
)


@dataclass(slots=True)
class DatasetPage:
    """Everything one dataset's page (and its index row) shows."""

    dataset_id: str
    name: str | None
    client: str | None
    owner: str | None
    page: str  # file name in the output directory
    score: Delta
    status: str
    headline: list[tuple[str, Delta]]
    top: list[FindingView]
    checks: list[CheckView]
    findings: list[FindingView]
    severity_counts: dict[str, int]
    events: list[EventRow]
    keys: list[tuple[str, Delta]]
    error_codes: list[tuple[str, Delta]]
    alerts_opened: list[EpisodeView]
    alerts_resolved: list[EpisodeView]
    alerts_open: list[EpisodeView]
    alert_stats: list[tuple[str, Delta]]
    silences: list[Silence]
    has_graph: bool
    quality: list[QualityRow]
    diagnostics: list[Diagnostic]
    token: TokenView | None
    charts: list[Chart] = field(default_factory=list)
    funnel: FunnelView | None = None  # when the dataset names an orders source
    # Whether any check evaluated this dataset's data of the window: without it the page
    # says so, and never "no problems".
    evaluated: bool = True

    @property
    def title(self) -> str:
        return self.name or self.dataset_id

    @property
    def grade(self) -> str:
        return grade(self.score.value)

    @property
    def previous_grade(self) -> str:
        return grade(self.score.previous)


@dataclass(slots=True)
class WeeklyReport:
    window: ReportWindow
    previous: ReportWindow
    generated_at: float
    datasets: list[DatasetPage]
    charts: list[Chart] = field(default_factory=list)

    @property
    def groups(self) -> list[tuple[str | None, list[DatasetPage]]]:
        """Datasets grouped by ``client`` label (named clients first, by name)."""
        by: dict[str | None, list[DatasetPage]] = defaultdict(list)
        for ds in self.datasets:
            by[ds.client].append(ds)
        return sorted(by.items(), key=lambda kv: (kv[0] is None, (kv[0] or "").lower()))

    @property
    def totals(self) -> list[tuple[str, Delta]]:
        """Headline numbers of all datasets together (the index page, Slack, email)."""
        out = []
        for label, better in (
            ("Server events", "none"),
            ("Failed events", "down"),
            ("Alerts opened", "down"),
            ("Crit findings", "down"),
        ):
            value, previous = _pair(self.datasets, label)
            out.append((label, Delta(value, previous, "count", better)))  # type: ignore[arg-type]
        return out

    def headline_text(self) -> list[str]:
        """One line per dataset: grade, score and delta, top problem (Slack, email)."""
        lines = []
        for d in self.datasets:
            if not d.evaluated:
                lines.append(f"{d.title}: not evaluated (no check ran on its data of the week)")
                continue
            top = f"; top problem {d.top[0].code}" if d.top else ""
            lines.append(
                f"{d.title}: grade {d.grade}, score {d.score.text} ({d.score.change_text})"
                f", {dict(d.headline)['Server events'].text} server events{top}"
            )
        return lines


def _sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _pair(datasets: Sequence[DatasetPage], label: str) -> tuple[float | None, float | None]:
    ds = [dict(d.headline)[label] for d in datasets]
    return _sum(d.value for d in ds), _sum(d.previous for d in ds)


# --- inputs of one dataset -------------------------------------------------------------


@dataclass(slots=True)
class DatasetInputs:
    """What the store holds about one dataset, already split by window (plain data)."""

    dataset_id: str
    name: str | None = None
    client: str | None = None
    owner: str | None = None
    scores: tuple[float | None, float | None] = (None, None)
    checks: tuple[list[CheckRow], list[CheckRow]] = ([], [])
    statuses: list[list[StatusSeen]] = field(default_factory=list)  # per trend week
    findings: tuple[list[FindingAgg], list[FindingAgg]] = ([], [])
    rollups: list[list[HourRollup]] = field(default_factory=list)  # per trend week
    counts: list[Mapping[str, Any]] = field(default_factory=list)  # Graph, this window
    quality: list[list[Mapping[str, Any]]] = field(default_factory=list)  # per trend week
    polls: list[Mapping[str, Any]] = field(default_factory=list)  # this window
    alerts: list[AlertEpisode] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)
    graph_tables: bool = True
    funnel: list[FunnelHour] | None = None  # None: no orders source configured


def page_name(dataset_id: str, taken: set[str]) -> str:
    """``<dataset_id>.html`` (docs/contracts.md §6); an id unfit for a file name (it may come
    from a log line) gets a safe, unique stand-in instead."""
    base = dataset_id if _SAFE_FILE.match(dataset_id) and dataset_id != "index" else None
    if base is None:
        import hashlib

        digest = hashlib.sha256(dataset_id.encode("utf-8", "replace")).hexdigest()[:12]
        base = f"dataset-{digest}"
    name = f"{base}.html"
    n = 2
    while name.lower() in taken:
        name, n = f"{base}-{n}.html", n + 1
    taken.add(name.lower())
    return name

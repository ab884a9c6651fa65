"""The weekly audit report: store -> ``WeeklyReport`` view model -> HTML pages.

``build_weekly_report(store, settings, window)`` reads what the store holds about the
window and the one before it (``monitor.report.weekly.data``) and hands plain data to
pure builders (``build_dataset``), which compute every number the pages show together
with its week-over-week ``Delta``. ``render_pages`` turns the model into
``index.html`` plus one ``<dataset>.html`` per dataset (``templates/weekly_*.html.j2``,
which extend the audit report's ``base.html.j2`` and share its macros); ``write_pages``
writes them.

Where the numbers come from:

- health score, check statuses, findings: the audit runs (``capi-monitor audit`` and
  the daemon's cycles) evaluated in the window; a check's status is its newest
  evaluated result (``skipped`` only when it never ran), its trend the same per week.
  A finding's count adds up the runs that reported it: the daemon checks each delivery
  in one cycle only, so for a daemon this is the events affected in the week.
- volumes, event_id share, key coverage, latency, delivery errors: the hourly rollups
  of the delivery logs, by send time.
- browser counts, EMQ, event coverage, Meta's diagnostics, token: the Graph API
  snapshots, when the store has them ("no Graph data" otherwise).
- alerts: episodes opened, resolved and still open; silences in force.

Nothing here marks text as safe: event names, messages and Meta's words reach the page
through Jinja's autoescape only.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from monitor.config import Settings
from monitor.model.findings import Example, Severity
from monitor.model.rollup import LATENCY_BOUNDS, MATCH_KEYS, HourRollup
from monitor.report import charts
from monitor.report.charts import Chart
from monitor.report.html import environment, fmt_duration, fmt_number, fmt_percent, grade
from monitor.report.weekly import data as weekly_data
from monitor.report.weekly.data import AlertRow, CheckRow, FindingAgg, StatusSeen
from monitor.report.window import ReportWindow, zone
from monitor.store import Store

TREND_WEEKS = 6
KEY_EVENTS = 4  # event names drawn in the volume chart
TOP_PROBLEMS = 3
EMQ_EVENTS = 6
SHOWN_KEYS = ("em", "ph", "external_id", "client_ip_address", "client_user_agent", "fbp", "fbc")
CHECK_ORDER = (
    "hash_validity", "payload", "dedup", "latency", "delivery", "match_quality", "parity",
    "diagnostics", "volume",
)  # fmt: skip
_STATUS_RANK = {"crit": 5, "warn": 4, "error": 3, "ok": 2, "skipped": 1}
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
class AlertView:
    code: str
    event_name: str | None
    severity: str
    fired_at: float
    resolved_at: float | None
    duration: float | None  # time to resolve, or open so far (at the window's end)
    muted: bool


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
    alerts_opened: list[AlertView]
    alerts_resolved: list[AlertView]
    alerts_open: list[AlertView]
    alert_stats: list[tuple[str, Delta]]
    silences: list[weekly_data.Silence]
    has_graph: bool
    quality: list[QualityRow]
    diagnostics: list[Diagnostic]
    token: TokenView | None
    charts: list[Chart] = field(default_factory=list)

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
    alerts: list[AlertRow] = field(default_factory=list)
    silences: list[weekly_data.Silence] = field(default_factory=list)
    graph_tables: bool = True


def page_name(dataset_id: str, taken: set[str]) -> str:
    """``<dataset_id>.html`` (CONTRACTS.md §6); an id unfit for a file name (it may come
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


# --- pure builders ---------------------------------------------------------------------


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of a latency histogram over ``LATENCY_BOUNDS``, linear
    within its bucket; the open last bucket reports its lower bound."""
    total = sum(hist)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for i, n in enumerate(hist):
        if n and seen + n >= rank:
            if i >= len(LATENCY_BOUNDS):
                return float(LATENCY_BOUNDS[-1])
            upper = float(LATENCY_BOUNDS[i])
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
        lower = float(LATENCY_BOUNDS[i]) if i < len(LATENCY_BOUNDS) else lower
    return float(LATENCY_BOUNDS[-1])


@dataclass(slots=True)
class Totals:
    """Rollups added up: one event name, one window (or a bucket of it)."""

    events: int = 0
    failed: int = 0
    with_event_id: int = 0
    keys: list[int] = field(default_factory=lambda: [0] * len(MATCH_KEYS))
    hist: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, r: HourRollup) -> None:
        self.events += r.events
        self.failed += r.failed
        self.with_event_id += r.with_event_id
        self.keys = [a + b for a, b in zip(self.keys, r.key_counts, strict=True)]
        self.hist = [a + b for a, b in zip(self.hist, r.latency_hist, strict=True)]
        self.errors.update(r.error_codes)

    def share(self, n: int) -> float | None:
        return n / self.events if self.events else None

    def key_share(self, key: str) -> float | None:
        return self.share(self.keys[MATCH_KEYS.index(key)])

    @property
    def error_rate(self) -> float | None:
        sent = self.events + self.failed
        return self.failed / sent if sent else None


def totals(rollups: Iterable[HourRollup]) -> dict[str, Totals]:
    """Per event name, plus ``""`` for all names together."""
    out: dict[str, Totals] = defaultdict(Totals)
    for r in rollups:
        out[r.event_name].add(r)
        out[""].add(r)
    return out


def _latest_status(seen: Sequence[StatusSeen]) -> str:
    evaluated = [s for s in seen if s.status != weekly_data.SKIPPED] or list(seen)
    return max(evaluated, key=lambda s: s.last_run_id).status if evaluated else "skipped"


def _worst(seen: Sequence[StatusSeen]) -> str:
    return max((s.status for s in seen), key=lambda s: _STATUS_RANK.get(s, 0), default="skipped")


def build_checks(inputs: DatasetInputs, weeks: Sequence[ReportWindow]) -> list[CheckView]:
    """Every check seen in the window or the trend weeks, in the registry's order."""
    now_rows = {c.check_id: c for c in inputs.checks[0]}
    prev_rows = {c.check_id: c for c in inputs.checks[1]}
    per_week: list[dict[str, list[StatusSeen]]] = []
    for week_seen in inputs.statuses:
        grouped: dict[str, list[StatusSeen]] = defaultdict(list)
        for s in week_seen:
            grouped[s.check_id].append(s)
        per_week.append(grouped)
    ids = set(now_rows) | {c for w in per_week for c in w}
    order = {c: i for i, c in enumerate(CHECK_ORDER)}
    out = []
    for cid in sorted(ids, key=lambda c: (order.get(c, len(order)), c)):
        this = per_week[-1].get(cid, []) if per_week else []
        row, prev = now_rows.get(cid), prev_rows.get(cid)
        out.append(
            CheckView(
                id=cid,
                status=row.status if row else "skipped",
                worst=_worst(this),
                score=Delta(
                    None if row is None else row.score,
                    None if prev is None else prev.score,
                    "score",
                    "up",
                ),
                summary=row.summary if row else "not run in this window",
                runs=sum(s.runs for s in this),
                trend=[
                    (w.short(), _latest_status(week.get(cid, [])))
                    for w, week in zip(weeks, per_week, strict=True)
                ],
            )
        )
    return out


def _evidence(evidence: Mapping[str, Any], limit: int = 8) -> list[tuple[str, str]]:
    """Evidence as short (key, value) text pairs; nested values are summarised."""
    out = []
    for k, v in list(evidence.items())[:limit]:
        out.append((str(k), _evidence_value(v)))
    return out


def _evidence_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, int):
        return fmt_number(v)
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else fmt_number(v, 0)
    if isinstance(v, Mapping):
        text = ", ".join(f"{k}: {_evidence_value(x)}" for k, x in list(v.items())[:6])
        return text + (", …" if len(v) > 6 else "")
    if isinstance(v, list | tuple):
        text = ", ".join(_evidence_value(x) for x in v[:6])
        return text + (", …" if len(v) > 6 else "")
    text = str(v)
    return text if len(text) <= 200 else text[:199] + "…"


def _finding_key(f: FindingAgg) -> tuple[str, str, str | None]:
    return (f.check_id, f.code, f.field)


def build_findings(this: Sequence[FindingAgg], prev: Sequence[FindingAgg]) -> list[FindingView]:
    """The week's findings, most important first: severity, affected count, recency."""
    before = {_finding_key(f): f.total for f in prev}
    views = [
        FindingView(
            code=f.code,
            severity=f.severity,
            check=f.check_id,
            count=f.total,
            message=f.message,
            remediation=f.remediation,
            event_names=list(f.event_names),
            field=f.field,
            examples=[
                Example(str(e.get("file", "")), int(e.get("line", 0)), str(e.get("value", "")))
                for e in f.examples
            ],
            evidence=_evidence(f.evidence),
            runs=f.runs,
            peak=f.peak,
            last_seen=f.last_seen,
            delta=Delta(f.total, before.get(_finding_key(f), 0), "count", "down"),
        )
        for f in this
    ]
    return sorted(views, key=lambda v: (-v.severity.rank, -v.count, -v.last_seen, v.code))


def build_events(now: Mapping[str, Totals], prev: Mapping[str, Totals]) -> list[EventRow]:
    """Per event name (by volume), this window against the last."""
    names = sorted((n for n in now if n), key=lambda n: (-now[n].events, n))
    names += sorted(n for n in prev if n and n not in now)
    empty = Totals()
    rows = []
    for name in names:
        a, b = now.get(name, empty), prev.get(name, empty)
        rows.append(
            EventRow(
                name=name,
                events=Delta(a.events, b.events, "count"),
                failed=Delta(a.failed, b.failed, "count", "down"),
                event_id_share=Delta(
                    a.share(a.with_event_id), b.share(b.with_event_id), "ratio", "up"
                ),
                p95=Delta(percentile(a.hist, 0.95), percentile(b.hist, 0.95), "seconds", "down"),
                coverage=[Delta(a.key_share(k), b.key_share(k), "ratio", "up") for k in SHOWN_KEYS],
            )
        )
    return rows


def build_alerts(
    rows: Sequence[AlertRow], window: ReportWindow
) -> tuple[list[AlertView], list[AlertView], list[AlertView]]:
    """(opened in the window, resolved in it, still open at its end)."""

    def view(a: AlertRow) -> AlertView:
        resolved = (
            a.resolved_at if a.resolved_at is not None and a.resolved_at < window.end else None
        )
        end = resolved if resolved is not None else window.end
        return AlertView(
            a.code, a.event_name, a.severity, a.fired_at, resolved, end - a.fired_at,
            a.muted_by is not None,
        )  # fmt: skip

    opened = [view(a) for a in rows if window.contains(a.fired_at)]
    resolved = [
        view(a) for a in rows if a.resolved_at is not None and window.contains(a.resolved_at)
    ]
    still = [
        view(a)
        for a in rows
        if a.fired_at < window.end and (a.resolved_at is None or a.resolved_at >= window.end)
    ]
    return opened, resolved, still


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def alert_stats(
    rows: Sequence[AlertRow], window: ReportWindow, prev: ReportWindow
) -> list[tuple[str, Delta]]:
    a_open, a_res, a_still = build_alerts(rows, window)
    b_open, b_res, b_still = build_alerts(rows, prev)
    return [
        ("Opened", Delta(len(a_open), len(b_open), "count", "down")),
        ("Resolved", Delta(len(a_res), len(b_res), "count", "up")),
        ("Still open", Delta(len(a_still), len(b_still), "count", "down")),
        (
            "Median time to resolve",
            Delta(
                _median([a.duration for a in a_res]),
                _median([a.duration for a in b_res]),
                "seconds",
                "down",
            ),
        ),
    ]


def _latest_by_event(readings: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for r in readings:  # oldest first: later readings win
        out[r["event_name"]] = r
    return out


def _dedup_pct(row: Mapping[str, Any] | None, side: str) -> float | None:
    for d in (row or {}).get("dedupe") or []:
        if isinstance(d, dict) and d.get("key") == "event_id":
            value = d.get(f"{side}_pct")
            return float(value) if isinstance(value, int | float) else None
    return None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_quality(
    this: Sequence[Mapping[str, Any]], prev: Sequence[Mapping[str, Any]]
) -> list[QualityRow]:
    """Meta's Dataset Quality per event: the newest reading of each window."""
    a, b = _latest_by_event(this), _latest_by_event(prev)
    rows = []
    for name in sorted(a):
        r, p = a[name], b.get(name)
        rows.append(
            QualityRow(
                name=name,
                emq=Delta(
                    _num(r["composite_score"]), _num(p and p["composite_score"]), "emq", "up"
                ),
                coverage=Delta(_num(r["coverage_pct"]), _num(p and p["coverage_pct"]), "pct", "up"),
                goal=_num(r["coverage_goal_pct"]),
                dedup_browser=_dedup_pct(r, "browser"),
                dedup_server=_dedup_pct(r, "server"),
            )
        )
    return rows


_PASSED = frozenset({"passed", "pass", "ok", "success", "unavailable"})


def build_diagnostics(
    polls: Sequence[Mapping[str, Any]], quality: Sequence[Mapping[str, Any]]
) -> list[Diagnostic]:
    """Meta's own diagnostics: failed ``da_checks`` of the newest poll that read them,
    and the EMQ diagnostics of the newest reading per event."""
    out = []
    checks = next((p["da_checks"] for p in reversed(polls) if p["da_checks"] is not None), None)
    for c in checks or []:
        result = str(c.get("result") or "")
        if result.lower() not in _PASSED:
            title = str(c.get("title") or c.get("key") or "check")
            detail = f"{result}" + (f" · {c['action_uri']}" if c.get("action_uri") else "")
            out.append(Diagnostic("da_checks", title, detail))
    for name, r in sorted(_latest_by_event(quality).items()):
        for d in r.get("diagnostics") or []:
            affected = d.get("affected_event_count")
            detail = f"{fmt_number(affected)} events affected" if isinstance(affected, int) else ""
            out.append(Diagnostic(name, str(d.get("name") or "diagnostic"), detail))
    return out


def build_token(polls: Sequence[Mapping[str, Any]], now: float) -> TokenView | None:
    """What ``debug_token`` said at the newest poll that asked it (never the token)."""
    poll = next((p for p in reversed(polls) if p["token"]), None)
    if poll is None:
        return None
    t = poll["token"]
    expires = _num(t.get("expires_at"))
    days = None if not expires else (expires - now) / 86400
    return TokenView(
        valid=t.get("valid") if isinstance(t.get("valid"), bool) else None,
        expires_at=expires,
        data_access_expires_at=_num(t.get("data_access_expires_at")),
        days_left=days,
        error=str(t["error"]) if t.get("error") else None,
        polled_at=float(poll["polled_at"]),
    )


# --- time buckets and charts -----------------------------------------------------------


def buckets(window: ReportWindow) -> tuple[float, list[float], list[str]]:
    """(bucket size, bucket starts, labels): hours for windows up to 3 days, else days
    (local midnights in the window's zone; DST days are 23 or 25 hours)."""
    z = zone(window.tz)
    if window.length <= 3 * 86400:
        starts = [float(h) for h in range(int(window.start // 3600 * 3600), int(window.end), 3600)]
        starts = [s for s in starts if s >= window.start] or [window.start]
        return 3600.0, starts, [datetime.fromtimestamp(s, z).strftime("%a %H:%M") for s in starts]
    starts, day = [], datetime.fromtimestamp(window.start, z)
    day = day.replace(hour=0, minute=0, second=0, microsecond=0)
    while day.timestamp() < window.end:
        starts.append(max(day.timestamp(), window.start))
        day = datetime.fromtimestamp(day.timestamp() + 26 * 3600, z).replace(hour=0, minute=0)
    fmt = "%a %d" if window.length <= 8 * 86400 else "%m-%d"
    return 86400.0, starts, [datetime.fromtimestamp(s, z).strftime(fmt) for s in starts]


def _bucket(ts: float, starts: Sequence[float]) -> int:
    import bisect

    return max(0, bisect.bisect_right(starts, ts) - 1)


def build_charts(
    inputs: DatasetInputs, window: ReportWindow, weeks: Sequence[ReportWindow]
) -> list[Chart]:
    """The dataset page's charts (few and small: they are mailed too)."""
    _, starts, labels = buckets(window)
    rolls = inputs.rollups[-1] if inputs.rollups else []
    now_totals = totals(rolls)
    meta_totals: Counter[str] = Counter()
    for c in inputs.counts:
        if c["event_name"]:
            meta_totals[c["event_name"]] += int(c["browser"]) + int(c["server"])
    volume = Counter({n: t.events + t.failed for n, t in now_totals.items() if n})
    volume.update(meta_totals)
    key_events = [n for n, _ in volume.most_common(KEY_EVENTS)]
    out = [_volume_chart(inputs, key_events, rolls, starts, labels)]
    out.append(_key_coverage_chart(inputs, key_events, weeks))
    emq = _emq_chart(inputs, weeks, key_events)
    if emq is not None:
        out.append(emq)
    goal = _goal_chart(inputs)
    if goal is not None:
        out.append(goal)
    out.append(_latency_chart(rolls, starts, labels))
    out.append(_error_chart(rolls, starts, labels))
    return out


def _volume_chart(
    inputs: DatasetInputs,
    names: Sequence[str],
    rolls: Sequence[HourRollup],
    starts: Sequence[float],
    labels: Sequence[str],
) -> Chart:
    server: dict[str, list[float | None]] = {n: [0.0] * len(starts) for n in names}
    browser: dict[str, list[float | None]] = {}
    logged = {r.event_name for r in rolls}
    for r in rolls:
        if r.event_name in server:
            i = _bucket(r.hour, starts)
            server[r.event_name][i] = (server[r.event_name][i] or 0) + r.events
    for c in inputs.counts:
        name = c["event_name"]
        if name not in server:
            continue
        i = _bucket(float(c["hour"]), starts)
        series = browser.setdefault(name, [0.0] * len(starts))
        series[i] = (series[i] or 0) + int(c["browser"])
        if name not in logged:  # no delivery logs for it: Meta's server count instead
            server[name][i] = (server[name][i] or 0) + int(c["server"])
    png = charts.volume_chart(labels, server, browser)
    alt = "Server and browser events per " + ("hour" if len(starts) and len(labels) > 8 else "day")
    return Chart("volume", "Server vs browser events (key events)", alt, png)


def _key_coverage_chart(
    inputs: DatasetInputs, names: Sequence[str], weeks: Sequence[ReportWindow]
) -> Chart:
    focus = names[0] if names else ""
    series: dict[str, list[float | None]] = {k: [] for k in SHOWN_KEYS}
    for rolls in inputs.rollups:
        t = totals(rolls).get(focus) or Totals()
        for k in SHOWN_KEYS:
            share = t.key_share(k)
            series[k].append(None if share is None else share * 100)
    png = charts.trend_chart([w.short() for w in weeks], series, ymax=100, percent=True)
    title = f"Match-key coverage over the weeks: {focus}" if focus else "Match-key coverage"
    return Chart(
        "keys", title, f"Share of {focus or 'events'} carrying each match key, per week", png
    )


def _emq_chart(
    inputs: DatasetInputs, weeks: Sequence[ReportWindow], key_events: Sequence[str]
) -> Chart | None:
    per_week = [_latest_by_event(q) for q in inputs.quality]
    names = [n for n in key_events if any(n in w for w in per_week)]
    names += sorted({n for w in per_week for n in w} - set(names))
    names = names[:EMQ_EVENTS]
    if not names:
        return None
    series = {
        n: [_num(w[n]["composite_score"]) if n in w else None for w in per_week] for n in names
    }
    png = charts.trend_chart([w.short() for w in weeks], series, ymax=10)
    return Chart("emq", "Event Match Quality (Meta) over the weeks", "EMQ per event and week", png)


def _goal_chart(inputs: DatasetInputs) -> Chart | None:
    latest = _latest_by_event(inputs.quality[-1] if inputs.quality else [])
    rows = [(n, r) for n, r in sorted(latest.items()) if _num(r["coverage_pct"]) is not None]
    if not rows:
        return None
    png = charts.coverage_goal_chart(
        [n for n, _ in rows],
        [_num(r["coverage_pct"]) for _, r in rows],
        [_num(r["coverage_goal_pct"]) for _, r in rows],
    )
    return Chart("coverage", "Event coverage vs Meta's goal", "Event coverage per event", png)


def _latency_chart(
    rolls: Sequence[HourRollup], starts: Sequence[float], labels: Sequence[str]
) -> Chart:
    hists = [[0] * (len(LATENCY_BOUNDS) + 1) for _ in starts]
    for r in rolls:
        i = _bucket(r.hour, starts)
        hists[i] = [a + b for a, b in zip(hists[i], r.latency_hist, strict=True)]
    png = charts.latency_chart(
        labels, [percentile(h, 0.5) for h in hists], [percentile(h, 0.95) for h in hists]
    )
    return Chart("latency", "Latency (send time − event time)", "Latency p50 and p95", png)


def _error_chart(
    rolls: Sequence[HourRollup], starts: Sequence[float], labels: Sequence[str]
) -> Chart:
    sent = [0] * len(starts)
    by_code: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(starts))
    for r in rolls:
        i = _bucket(r.hour, starts)
        sent[i] += r.events + r.failed
        for code, n in r.error_codes.items():
            by_code[code][i] += n
    ranked = sorted(by_code, key=lambda c: -sum(by_code[c]))
    rates: dict[str, list[float | None]] = {
        c: [v / s if s else None for v, s in zip(by_code[c], sent, strict=True)] for c in ranked[:6]
    }
    png = charts.error_rate_chart(labels, rates)
    return Chart("errors", "Delivery error rate by error code", "Failed share of sent events", png)


# --- one dataset -----------------------------------------------------------------------


def build_dataset(
    inputs: DatasetInputs,
    window: ReportWindow,
    weeks: Sequence[ReportWindow],
    page: str,
    now: float,
    *,
    with_charts: bool = True,
) -> DatasetPage:
    """The page of one dataset from plain inputs (pure, apart from drawing charts)."""
    prev = weeks[-2] if len(weeks) >= 2 else window.previous()
    a = totals(inputs.rollups[-1] if inputs.rollups else [])
    b = totals(inputs.rollups[-2] if len(inputs.rollups) >= 2 else [])
    all_a, all_b = a.get("") or Totals(), b.get("") or Totals()
    findings = build_findings(*inputs.findings)
    prev_findings = build_findings(inputs.findings[1], [])
    opened, resolved, still = build_alerts(inputs.alerts, window)
    stats = alert_stats(inputs.alerts, window, prev)
    checks = build_checks(inputs, weeks)
    severity_counts = Counter(str(f.severity) for f in findings)
    headline = [
        ("Server events", Delta(all_a.events, all_b.events, "count")),
        ("Failed events", Delta(all_a.failed, all_b.failed, "count", "down")),
        ("Error rate", Delta(all_a.error_rate, all_b.error_rate, "ratio", "down")),
        (
            "event_id share",
            Delta(
                all_a.share(all_a.with_event_id), all_b.share(all_b.with_event_id), "ratio", "up"
            ),
        ),
        (
            "Latency p95",
            Delta(percentile(all_a.hist, 0.95), percentile(all_b.hist, 0.95), "seconds", "down"),
        ),
        ("Alerts opened", stats[0][1]),
        (
            "Crit findings",
            Delta(
                severity_counts.get("crit", 0),
                sum(1 for f in prev_findings if f.severity is Severity.CRIT),
                "count",
                "down",
            ),
        ),
    ]
    quality_now = inputs.quality[-1] if inputs.quality else []
    quality_prev = inputs.quality[-2] if len(inputs.quality) >= 2 else []
    has_graph = bool(inputs.counts or quality_now or inputs.polls)
    status = max(
        (c.status for c in checks), key=lambda s: _STATUS_RANK.get(s, 0), default="skipped"
    )
    return DatasetPage(
        dataset_id=inputs.dataset_id,
        name=inputs.name,
        client=inputs.client,
        owner=inputs.owner,
        page=page,
        score=Delta(inputs.scores[0], inputs.scores[1], "score", "up"),
        status=status,
        headline=headline,
        top=findings[:TOP_PROBLEMS],
        checks=checks,
        findings=findings,
        severity_counts={s: severity_counts.get(s, 0) for s in ("crit", "warn", "info")},
        events=build_events(a, b),
        keys=[
            (k, Delta(all_a.key_share(k), all_b.key_share(k), "ratio", "up")) for k in MATCH_KEYS
        ],
        error_codes=sorted(
            (
                (code, Delta(all_a.errors.get(code, 0), all_b.errors.get(code, 0), "count", "down"))
                for code in set(all_a.errors) | set(all_b.errors)
            ),
            key=lambda kv: (-(kv[1].value or 0), kv[0]),
        ),
        alerts_opened=opened,
        alerts_resolved=resolved,
        alerts_open=still,
        alert_stats=stats,
        silences=list(inputs.silences),
        has_graph=has_graph,
        quality=build_quality(quality_now, quality_prev),
        diagnostics=build_diagnostics(inputs.polls, quality_now),
        token=build_token(inputs.polls, now),
        charts=build_charts(inputs, window, weeks) if with_charts else [],
    )


# --- from the store --------------------------------------------------------------------


def _scores(
    runs: Sequence[tuple[float, dict[str, Any]]], window: ReportWindow
) -> dict[str, float | None]:
    """The newest non-null health score of each dataset evaluated in ``window``."""
    out: dict[str, float | None] = {}
    for now, d in runs:
        score = d.get("health_score")
        if window.contains(now) and isinstance(score, int | float):
            out[d["dataset_id"]] = int(score) if float(score).is_integer() else float(score)
    return out


def _names(runs: Sequence[tuple[float, dict[str, Any]]]) -> dict[str, str]:
    return {d["dataset_id"]: d["name"] for _, d in runs if d.get("name")}


def load_inputs(store: Store, settings: Settings, window: ReportWindow) -> list[DatasetInputs]:
    """What the store holds about every dataset to report, window by window."""
    weeks = window.weeks_back(TREND_WEEKS)
    prev = weeks[-2]
    runs = weekly_data.run_datasets(store, prev.start, window.end)
    scores_now, scores_prev = _scores(runs, window), _scores(runs, prev)
    checks_now = weekly_data.latest_checks(store, window.start, window.end)
    checks_prev = weekly_data.latest_checks(store, prev.start, prev.end)
    statuses = [weekly_data.statuses_seen(store, w.start, w.end) for w in weeks]
    found_now = weekly_data.findings(store, window.start, window.end)
    found_prev = weekly_data.findings(store, prev.start, prev.end)
    rolls = [weekly_data.rollups(store, w.start, w.end) for w in weeks]
    counts = weekly_data.graph_counts(store, window.start, window.end)
    quality = [weekly_data.graph_quality(store, w.start, w.end) for w in weeks]
    polls = weekly_data.graph_polls(store, window.start, window.end)
    alerts = weekly_data.alert_rows(store, window.end)
    silences = weekly_data.silences(store, window.start, window.end)
    graph_tables = weekly_data.table(store, "graph_quality") is not None

    seen = {c.dataset_id for c in checks_now} | {r.dataset_id for r in rolls[-1]}
    seen |= {r.dataset_id for r in rolls[-2]} | {str(c["dataset_id"]) for c in counts}
    seen |= {a.dataset_id for a in alerts if a.resolved_at is None or a.resolved_at >= prev.start}
    ids = [d.id for d in settings.datasets] + sorted(seen - {d.id for d in settings.datasets})
    names = _names(runs)

    def mine(rows: Iterable[Any], ds: str, key: str = "dataset_id") -> list[Any]:
        return [r for r in rows if (r[key] if isinstance(r, Mapping) else getattr(r, key)) == ds]

    out = []
    for ds in ids:
        conf = settings.dataset(ds)
        out.append(
            DatasetInputs(
                dataset_id=ds,
                name=(conf.name if conf else None) or names.get(ds),
                client=conf.client if conf else None,
                owner=conf.owner if conf else None,
                scores=(scores_now.get(ds), scores_prev.get(ds)),
                checks=(mine(checks_now, ds), mine(checks_prev, ds)),
                statuses=[mine(s, ds) for s in statuses],
                findings=(mine(found_now, ds), mine(found_prev, ds)),
                rollups=[mine(r, ds) for r in rolls],
                counts=mine(counts, ds),
                quality=[mine(q, ds) for q in quality],
                polls=mine(polls, ds),
                alerts=mine(alerts, ds),
                silences=mine(silences, ds),
                graph_tables=graph_tables,
            )
        )
    return out


def build_weekly_report(
    store: Store,
    settings: Settings,
    window: ReportWindow,
    *,
    now: float | None = None,
) -> WeeklyReport:
    """The report of ``window`` (and the week-over-week comparison with the one before)."""
    generated = time.time() if now is None else now
    weeks = window.weeks_back(TREND_WEEKS)
    taken: set[str] = {"index.html"}
    pages = [
        build_dataset(i, window, weeks, page_name(i.dataset_id, taken), generated)
        for i in load_inputs(store, settings, window)
    ]
    report = WeeklyReport(window, weeks[-2], generated, pages)
    if pages:
        png = charts.health_chart(
            [p.title for p in pages],
            [p.score.value for p in pages],
            [p.score.previous for p in pages],
        )
        report.charts.append(
            Chart("health", "Health score by dataset", "Health score per dataset", png)
        )
    return report


# --- rendering -------------------------------------------------------------------------

ImageMode = Literal["inline", "cid"]


def _image_src(mode: ImageMode) -> Any:
    def src(chart: Chart) -> str:
        return chart.data_uri if mode == "inline" else f"cid:{chart.cid}"

    return src


def render_index(report: WeeklyReport, *, images: ImageMode = "inline", email: bool = False) -> str:
    """``index.html``: every dataset, grouped by client, with the headline numbers."""
    env = environment()
    env.globals["img_src"] = _image_src(images)
    return env.get_template("weekly_index.html.j2").render(
        report=report, title=_title(report), email=email
    )


def render_dataset(report: WeeklyReport, page: DatasetPage, *, images: ImageMode = "inline") -> str:
    """One dataset's page."""
    env = environment()
    env.globals["img_src"] = _image_src(images)
    return env.get_template("weekly_dataset.html.j2").render(
        report=report, ds=page, title=f"{page.title} · {_title(report)}", shown_keys=SHOWN_KEYS
    )


def _title(report: WeeklyReport) -> str:
    return f"Weekly CAPI audit {report.window.label}"


def render_pages(report: WeeklyReport) -> dict[str, str]:
    """File name -> HTML of every page (``index.html`` first), images inline."""
    pages = {"index.html": render_index(report)}
    for p in report.datasets:
        pages[p.page] = render_dataset(report, p)
    return pages


def write_pages(pages: Mapping[str, str], out_dir: str | Path) -> list[Path]:
    """Write ``pages`` into ``out_dir`` (created), each atomically; returns the paths."""
    import os

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in pages.items():
        path = root / name
        tmp = root / f".{name}.tmp"
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written

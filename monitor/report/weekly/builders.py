"""Pure builders: one dataset's inputs of two weeks -> the numbers its page shows."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.model.findings import Example, Severity
from monitor.model.rollup import MATCH_KEYS
from monitor.report.format import fmt_number, fmt_utc
from monitor.report.weekly.figures import build_charts, build_funnel
from monitor.report.weekly.measures import (
    Totals,
    latest_by_event,
    number_or_none,
    percentile,
    totals,
)
from monitor.report.weekly.view import (
    CHECK_ORDER,
    SHOWN_KEYS,
    STATUS_RANK,
    TOP_PROBLEMS,
    CheckView,
    DatasetInputs,
    DatasetPage,
    Delta,
    Diagnostic,
    EpisodeView,
    EventRow,
    FindingView,
    QualityRow,
    TokenView,
)
from monitor.report.window import ReportWindow
from monitor.store import weekly as weekly_data
from monitor.store.weekly import AlertEpisode, FindingAgg, StatusSeen

# --- pure builders ---------------------------------------------------------------------


def _latest_status(seen: Sequence[StatusSeen]) -> str:
    evaluated = [s for s in seen if s.status != weekly_data.SKIPPED] or list(seen)
    return max(evaluated, key=lambda s: s.last_run_id).status if evaluated else "skipped"


def _worst(seen: Sequence[StatusSeen]) -> str:
    return max((s.status for s in seen), key=lambda s: STATUS_RANK.get(s, 0), default="skipped")


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


def _span_note(f: FindingAgg, window: ReportWindow | None) -> str | None:
    """Which data a finding's numbers cover, when that reaches beyond ``window``."""
    if window is None or f.data_from is None or f.data_to is None:
        return None
    if f.data_from >= window.start and f.data_to <= window.end:
        return None
    return (
        f"found in data sent {fmt_utc(f.data_from)} to {fmt_utc(f.data_to)} (one audit of "
        "several weeks): the counts cover all of it, not only this week"
    )


def build_findings(
    this: Sequence[FindingAgg], prev: Sequence[FindingAgg], window: ReportWindow | None = None
) -> list[FindingView]:
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
            span=_span_note(f, window),
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
    rows: Sequence[AlertEpisode], window: ReportWindow
) -> tuple[list[EpisodeView], list[EpisodeView], list[EpisodeView]]:
    """(opened in the window, resolved in it, still open at its end)."""

    def view(a: AlertEpisode) -> EpisodeView:
        resolved = (
            a.resolved_at if a.resolved_at is not None and a.resolved_at < window.end else None
        )
        end = resolved if resolved is not None else window.end
        return EpisodeView(
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
    rows: Sequence[AlertEpisode], window: ReportWindow, prev: ReportWindow
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


def _dedup_pct(row: Mapping[str, Any] | None, side: str) -> float | None:
    for d in (row or {}).get("dedupe") or []:
        if isinstance(d, dict) and d.get("key") == "event_id":
            value = d.get(f"{side}_pct")
            return float(value) if isinstance(value, int | float) else None
    return None


def build_quality(
    this: Sequence[Mapping[str, Any]], prev: Sequence[Mapping[str, Any]]
) -> list[QualityRow]:
    """Meta's Dataset Quality per event: the newest reading of each window."""
    a, b = latest_by_event(this), latest_by_event(prev)
    rows = []
    for name in sorted(a):
        r, p = a[name], b.get(name)
        rows.append(
            QualityRow(
                name=name,
                emq=Delta(
                    number_or_none(r["composite_score"]),
                    number_or_none(p and p["composite_score"]),
                    "emq",
                    "up",
                ),
                coverage=Delta(
                    number_or_none(r["coverage_pct"]),
                    number_or_none(p and p["coverage_pct"]),
                    "pct",
                    "up",
                ),
                goal=number_or_none(r["coverage_goal_pct"]),
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
    for name, r in sorted(latest_by_event(quality).items()):
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
    expires = number_or_none(t.get("expires_at"))
    days = None if not expires else (expires - now) / 86400
    return TokenView(
        valid=t.get("valid") if isinstance(t.get("valid"), bool) else None,
        expires_at=expires,
        data_access_expires_at=number_or_none(t.get("data_access_expires_at")),
        days_left=days,
        error=str(t["error"]) if t.get("error") else None,
        polled_at=float(poll["polled_at"]),
    )


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
    findings = build_findings(*inputs.findings, window)
    prev_findings = build_findings(inputs.findings[1], [])
    # Without a check that evaluated the window's data there is nothing to count: "0 crit
    # findings" would claim a clean week (docs/contracts.md §12).
    evaluated = _evaluated(inputs.checks[0])
    evaluated_before = _evaluated(inputs.checks[1])
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
                severity_counts.get("crit", 0) if evaluated else None,
                sum(1 for f in prev_findings if f.severity is Severity.CRIT)
                if evaluated_before
                else None,
                "count",
                "down",
            ),
        ),
    ]
    quality_now = inputs.quality[-1] if inputs.quality else []
    quality_prev = inputs.quality[-2] if len(inputs.quality) >= 2 else []
    has_graph = bool(inputs.counts or quality_now or inputs.polls)
    status = max((c.status for c in checks), key=lambda s: STATUS_RANK.get(s, 0), default="skipped")
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
        funnel=build_funnel(inputs, window, with_chart=with_charts),
        evaluated=evaluated,
    )


def _evaluated(checks: Sequence[Any]) -> bool:
    """Whether any check result of a window evaluated something (not ``skipped``)."""
    return any(c.status != weekly_data.SKIPPED for c in checks)

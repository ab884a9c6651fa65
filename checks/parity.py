"""The ``parity`` check (Graph API): does Meta get each event from both pixel and server?

Judged from ``ctx.graph`` (docs/meta-capi.md §2, §3, §11); the logs take part only through
their hourly rollups (``SERVER_COUNT_MISMATCH``). Every threshold is in
``[checks.parity]``; the defaults are below.

Hourly ``/stats?aggregation=event_source`` counts (pre-deduplication, per event name) are
summed over the complete hours of ``window`` (24 h) ending ``settle`` (1 h) before
``now``: Meta shows events within about 20 minutes (§5), so the newest hour is not yet
complete. Per event name:

``PARITY_SERVER_MISSING`` (crit)
    at least ``min_browser_events`` (50) browser events and server/browser below
    ``server_missing_ratio`` (0.10): the server sends (almost) none of them.
``PARITY_LOW`` (warn; crit below ``low_crit_ratio`` 0.5)
    at least ``min_browser_events`` browser events and server/browser below ``low_ratio``
    (0.8). Pre-dedup counts: a healthy setup sends every event from both sides, and the
    server side usually sees *more* (ad blockers stop the pixel).
``PARITY_BROWSER_MISSING`` (warn)
    at least ``min_server_events`` (50) server events and browser/server below
    ``browser_missing_ratio`` (0.10): the pixel is broken. Not judged for
    ``server_only_events`` (CRM or offline events no pixel sends).

``EVENT_COVERAGE_LOW`` (warn; crit below ``coverage_crit_fraction`` (0.5) of the goal)
    Dataset Quality ``event_coverage.percentage`` (a 7-day average share of pixel events
    also covered by server events) below its own ``goal_percentage`` (else
    ``coverage_default_goal``, 75, §3); judged for names with at least
    ``coverage_min_events`` (20) events in the ``/stats`` window (unknown volume: judged).

``SERVER_COUNT_MISMATCH`` (warn; crit below ``mismatch_crit_share`` 0.5)
    Cross-check of the two sources: over the judged hours in which the logs show accepted
    server events of a name (``HourRollup.events``), Meta's SERVER count is below
    ``mismatch_warn_share`` (0.8) of them, with at least ``mismatch_min_events`` (100)
    accepted. Meta said "received" but does not count them: test events, a wrong
    dataset id, or events dropped after acceptance. Meta counting *more* is normal (other
    senders of the same dataset). Hours are instants (docs/contracts.md §9): Meta's are
    the ad account's local hours (``+0530`` hours start at xx:30 UTC), ours are UTC
    send-time hours, so Meta's count over one of our hours is the prorated sum of the
    Meta hours overlapping it (``monitor.model.graph.utc_hour_shares``); an hour of ours
    that Meta's hours inside the window do not cover fully (the edges, in a half-hour
    zone) is left out on both sides.

Names in ``ignore_events`` are never judged. If ``/stats`` could only be read dataset-wide
(the event list failed), the mixed totals are not judged for parity (PageView is rarely
sent server-side) but still cross-checked against the logs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import ClassVar

from checks.base import CheckContext, names_text
from checks.graph_common import (
    GraphPart,
    GraphState,
    complete_hours,
    enough,
    error_text,
    event_volumes,
    graph_finding,
    graph_only,
    not_polled,
    skipped_part,
    unreadable,
)
from monitor.model.findings import CheckResult, Finding, Severity
from monitor.model.graph import HOUR, GraphSnapshot, Part, utc_hour_shares
from monitor.model.observations import Delivery
from monitor.model.rollup import OTHER_EVENT, HourRollup

PARITY_SERVER_MISSING = "PARITY_SERVER_MISSING"
PARITY_BROWSER_MISSING = "PARITY_BROWSER_MISSING"
PARITY_LOW = "PARITY_LOW"
EVENT_COVERAGE_LOW = "EVENT_COVERAGE_LOW"
SERVER_COUNT_MISMATCH = "SERVER_COUNT_MISMATCH"
ALL_EVENTS = "(all events)"
PARTS = (Part.STATS_EVENT_SOURCE, Part.DATASET_QUALITY)

_SEND_BOTH = (
    "Send {names} from the server as well as the pixel, with the same event_name and "
    "event_id on both sides so that Meta deduplicates them."
)


class Parity:
    """Judges Meta's browser/server counts and event coverage; nothing observed in logs."""

    id: ClassVar[str] = "parity"
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = True
    title: ClassVar[str] = "Pixel / server parity (Meta)"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.parity
        self._rollups: list[HourRollup] | None = None

    def observe(self, delivery: Delivery) -> None:
        """Nothing to fold: the logs reach this check as hourly rollups (``use_rollups``)."""

    def merge(self, later: Parity) -> None:
        """Nothing observed, nothing to merge (rollups arrive after the parts are merged)."""

    def use_rollups(self, rollups: Sequence[HourRollup]) -> None:
        """The dataset's hourly log rollups of this audit, for ``SERVER_COUNT_MISMATCH``."""
        self._rollups = list(rollups)

    def result(self) -> CheckResult:
        return graph_only(self.id, self.graph_part())

    def graph_part(self) -> GraphPart:
        snap = self.ctx.graph
        if snap is None:
            return skipped_part()
        if (skipped := not_polled(snap, PARTS)) is not None:
            return skipped
        failed = unreadable(snap, PARTS)
        if len(failed) == len(PARTS):
            return GraphPart(GraphState.ERROR, error_text(snap, failed))
        findings: list[Finding] = []
        judged: list[str] = []
        if snap.ok(Part.STATS_EVENT_SOURCE):
            start, end = complete_hours(
                self.ctx.now, self.cfg.settle, self.cfg.window, snap.window_start
            )
            sides = self._sides(snap, start, end)
            findings += self._parity_findings(sides, judged)
            findings += self._mismatch_findings(snap, start, end, judged)
        if snap.ok(Part.DATASET_QUALITY):
            findings += self._coverage_findings(snap, judged)
        return self._outcome(snap, failed, findings, judged)

    def _outcome(
        self, snap: GraphSnapshot, failed: list[Part], findings: list[Finding], judged: list[str]
    ) -> GraphPart:
        names = sorted(set(judged))
        if failed:
            return GraphPart(GraphState.ERROR, error_text(snap, failed), findings)
        if not names:
            cfg = self.cfg
            why = (
                f"too few events to judge parity (needs {cfg.min_browser_events} browser or "
                f"{cfg.min_server_events} server events of a name in the last "
                f"{cfg.window / 3600:g} complete hours)."
            )
            return GraphPart(GraphState.NOT_JUDGED, why)
        if findings:
            bad = f"{len(findings)} parity problem(s) among {names_text(names)}."
            return GraphPart(GraphState.EVALUATED, bad, findings)
        return GraphPart(GraphState.EVALUATED, f"pixel and server in step for {names_text(names)}.")

    # -- browser / server counts

    def _sides(self, snap: GraphSnapshot, start: int, end: int) -> dict[str, tuple[int, int]]:
        """Event name -> (browser, server) summed over Meta's hours inside ``[start, end)``."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for sc in snap.source_counts:
            if start <= sc.hour.timestamp() <= end - HOUR:
                t = totals[sc.event or ALL_EVENTS]
                t[0] += sc.browser
                t[1] += sc.server
        return {name: (b, s) for name, (b, s) in sorted(totals.items())}

    def _parity_findings(
        self, sides: dict[str, tuple[int, int]], judged: list[str]
    ) -> list[Finding]:
        out = []
        for name, (browser, server) in sides.items():
            if name == ALL_EVENTS or name in self.cfg.ignore_events:
                continue
            if browser >= self.cfg.min_browser_events or server >= self.cfg.min_server_events:
                judged.append(name)
            out += [
                f
                for f in (
                    self._server_side(name, browser, server),
                    self._browser_side(name, browser, server),
                )
                if f
            ]
        return out

    def _evidence(self, browser: int, server: int) -> dict[str, object]:
        cfg = self.cfg
        return {
            "browser_events": browser,
            "server_events": server,
            "server_browser_ratio": round(server / browser, 3) if browser else None,
            "window_hours": cfg.window / 3600,
            "settle_hours": cfg.settle / 3600,
            "pre_dedup": True,
        }

    def _server_side(self, name: str, browser: int, server: int) -> Finding | None:
        cfg = self.cfg
        if browser < cfg.min_browser_events:
            return None
        ratio = server / browser
        hours = f"{cfg.window / 3600:g} h"
        evidence = {**self._evidence(browser, server), "low_ratio": cfg.low_ratio}
        if ratio < cfg.server_missing_ratio:
            msg = (
                f"Meta received {browser} {name} events from the pixel but only {server} "
                f"from the server in the last {hours}: server-side {name} is missing."
            )
            rem = (
                _SEND_BOTH.format(names=name)
                + " Check that the server integration is deployed, fires on this action and "
                "sends to this dataset id."
            )
            return graph_finding(
                self.id,
                PARITY_SERVER_MISSING,
                Severity.CRIT,
                browser - server,
                msg,
                rem,
                event_names=[name],
                evidence=evidence,
            )
        if ratio >= cfg.low_ratio:
            return None
        severity = Severity.CRIT if ratio < cfg.low_crit_ratio else Severity.WARN
        msg = (
            f"Meta received {server} server {name} events for {browser} pixel events "
            f"({ratio:.0%}) in the last {hours}: the server misses some of them."
        )
        rem = (
            _SEND_BOTH.format(names=name)
            + " Compare the server's trigger with the pixel's: conditions, page types and "
            "failed or filtered sends."
        )
        return graph_finding(
            self.id,
            PARITY_LOW,
            severity,
            browser - server,
            msg,
            rem,
            event_names=[name],
            evidence=evidence,
        )

    def _browser_side(self, name: str, browser: int, server: int) -> Finding | None:
        cfg = self.cfg
        if name in cfg.server_only_events or server < cfg.min_server_events:
            return None
        if browser >= cfg.browser_missing_ratio * server:
            return None
        msg = (
            f"Meta received {server} {name} events from the server but only {browser} from "
            f"the pixel in the last {cfg.window / 3600:g} h: the pixel looks broken."
        )
        rem = (
            f"Check that the Meta pixel loads and fires {name} (Events Manager > Test "
            "Events, or the Meta Pixel Helper), including behind the consent banner. If "
            f"{name} is server-only by design, list it in [checks.parity] server_only_events."
        )
        return graph_finding(
            self.id,
            PARITY_BROWSER_MISSING,
            Severity.WARN,
            server - browser,
            msg,
            rem,
            event_names=[name],
            evidence=self._evidence(browser, server),
        )

    # -- logs vs Meta

    def _mismatch_findings(
        self, snap: GraphSnapshot, start: int, end: int, judged: list[str]
    ) -> list[Finding]:
        """``SERVER_COUNT_MISMATCH`` per event name split by Meta (or all events together),
        over the same instants on both sides (module docstring)."""
        if not self._rollups:
            return []
        lo, hi, phase = meta_span(snap, start, end)
        meta: dict[tuple[str, int], float] = defaultdict(float)
        for sc in snap.source_counts:
            t = sc.hour.timestamp()
            if start <= t <= end - HOUR:  # Meta's hours inside the window
                for hour, share in utc_hour_shares(t):
                    meta[(sc.event or ALL_EVENTS, hour)] += sc.server * share
        names = {name for name, _ in meta} | {sc.event or ALL_EVENTS for sc in snap.source_counts}
        accepted: dict[tuple[str, int], int] = defaultdict(int)
        for r in self._rollups:
            if lo <= r.hour <= hi - HOUR and r.events > 0 and r.event_name != OTHER_EVENT:
                accepted[(r.event_name, r.hour)] += r.events
                accepted[(ALL_EVENTS, r.hour)] += r.events
        out = []
        for name in sorted(names - set(self.cfg.ignore_events)):
            hours = sorted(h for n, h in accepted if n == name)
            logged = sum(accepted[(name, h)] for h in hours)
            counted = round(sum(meta.get((name, h), 0.0) for h in hours))
            if logged >= self.cfg.mismatch_min_events:
                judged.append(name)
                finding = self._mismatch(name, logged, counted, len(hours), phase)
                if finding:
                    out.append(finding)
        return out

    def _mismatch(
        self, name: str, logged: int, counted: int, hours: int, phase: int
    ) -> Finding | None:
        cfg = self.cfg
        share = counted / logged
        if share >= cfg.mismatch_warn_share:
            return None
        severity = Severity.CRIT if share < cfg.mismatch_crit_share else Severity.WARN
        subject = "server events" if name == ALL_EVENTS else f"server {name} events"
        msg = (
            f"The logs show {logged} {subject} accepted by Meta over {hours} complete hours, "
            f"but Meta counts only {counted} ({share:.0%}) in the same hours."
        )
        rem = (
            "Check that the sender posts to this dataset id (not a test or old pixel), that "
            "production traffic carries no test_event_code, and that Meta's answer "
            "(events_received) is logged as received; then compare in Events Manager."
        )
        evidence = {
            "accepted_in_logs": logged,
            "meta_server_count": counted,
            "share": round(share, 3),
            "hours_compared": hours,
            "meta_hours_start_at_minute": phase // 60,
            "warn_share": cfg.mismatch_warn_share,
            "crit_share": cfg.mismatch_crit_share,
        }
        names = [] if name == ALL_EVENTS else [name]
        return graph_finding(
            self.id,
            SERVER_COUNT_MISMATCH,
            severity,
            logged - counted,
            msg,
            rem,
            event_names=names,
            evidence=evidence,
        )

    # -- Dataset Quality event coverage

    def _coverage_findings(self, snap: GraphSnapshot, judged: list[str]) -> list[Finding]:
        cfg = self.cfg
        volumes = event_volumes(snap)
        out = []
        for q in snap.quality or ():
            name, pct = q.event_name, q.coverage_pct
            if pct is None or name in cfg.ignore_events:
                continue  # no coverage block: unknown, not 0 (§12)
            if not enough(volumes, name, cfg.coverage_min_events):
                continue
            judged.append(name)
            goal = (
                q.coverage_goal_pct
                if q.coverage_goal_pct is not None
                else cfg.coverage_default_goal
            )
            if pct >= goal:
                continue
            severity = Severity.CRIT if pct < goal * cfg.coverage_crit_fraction else Severity.WARN
            volume = (volumes or {}).get(name)
            count = round(volume * (1 - pct / 100)) if volume else 1
            msg = (
                f"Meta's event coverage of {name} is {pct:g}% (7-day average), below its "
                f"goal of {goal:g}%: most pixel {name} events have no server twin."
            )
            rem = _SEND_BOTH.format(names=name) + (
                " Coverage counts pixel events that a server event with the same dedup keys "
                "(event_id, external_id, fbp) also covers."
            )
            evidence = {
                "coverage_pct": pct,
                "goal_pct": goal,
                "goal_from_meta": q.coverage_goal_pct is not None,
                "events_in_window": volume,
            }
            out.append(
                graph_finding(
                    self.id,
                    EVENT_COVERAGE_LOW,
                    severity,
                    count,
                    msg,
                    rem,
                    event_names=[name],
                    field_name="event_coverage",
                    evidence=evidence,
                )
            )
        return out


def meta_span(snap: GraphSnapshot, start: int, end: int) -> tuple[int, int, int]:
    """``(lo, hi, phase)``: the UTC hours ``[lo, hi)`` of the window ``[start, end)`` that
    Meta's hours inside the window cover completely, and the offset of Meta's hours from
    UTC hours (seconds; 1800 in a ``+0530`` account). The most common phase of the buckets
    wins (a DST change in a half-hour zone may shift a few)."""
    phases = Counter(int(sc.hour.timestamp()) % HOUR for sc in snap.source_counts)
    phase = phases.most_common(1)[0][0] if phases else 0
    lo = start + (phase - start) % HOUR  # the first Meta hour starting in the window
    hi = end - (end - phase) % HOUR  # the end of the last Meta hour ending in it
    if phase:  # our hours overlapping the uncovered edges are left out on both sides
        lo, hi = lo - phase + HOUR, hi - phase
    return lo, hi, phase

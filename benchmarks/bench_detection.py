"""Detection benchmark: seeded scenarios through the backtest, scored against ground truth.

For each seed, a traffic model writes weeks of traffic with nine injected incidents (one
of each type) in the last week and calendar effects in the week before: ``--model
simulate`` (``monitor.tools.simulate``, the model the detectors were tuned on: a
promotion and a holiday) or ``--model traffic`` (``monitor.tools.traffic``, the
independent visitor-level model, never tuned on: real public holidays of each dataset's
country, Black Friday across datasets, DST, promotions, newsletters, several action
sources, batched senders). Meta's hourly counts are stored as the daemon's Graph polls
would have; then
``monitor.tools.backtest.run_backtest`` replays the last two weeks through the daemon's checks
and alert lifecycle. Scores, per incident type:

- **recall**: incidents that changed nothing (no event of the affected series in the
  window, or no request showing the defect) are listed as ``void`` and not scored, and so
  are volume and match-key incidents on series too small for any test to tell the loss
  from chance (fewer than ``LOST_FOR_SURE`` events expected over the incident: 10 for a
  stop or a lost email, 40 for a halving; listed as ``too small``); an
  incident is detected when an alert with one of the type's codes
  (``monitor.tools.simulate.DETECTED_BY``) fires on its dataset (and its event name, or a
  dataset-wide alert) between its start and ``GRACE`` after its end, or when such an
  alert, already firing or resolved less than ``flap_window`` before (a false alert
  earlier that day), is notified again as flapping or escalated in that time;
- **time to detect** (median, p90): the time of the first such alert (or notification)
  minus the start;
  for incidents that requests show (token, plain text, test code, ...) also from the
  first request that carried the defect (no monitor can see it earlier);
- **false alerts per dataset-week**: alerts that fired in the incident-free week (with its
  promotion and holiday), per dataset and week; alerts of the incident week that match
  no incident (on another dataset, or more than ``GRACE`` away) are reported as well;
- **notifications per dataset-week** in the incident-free week: the messages the daemon
  would have sent (one per dataset and cycle with a new, escalated, repeated or resolved
  alert; ``monitor.tools.backtest.Notice``).

The row "drops >= 50 %, >= 3 h, >= 20/h" gathers the ``drop_50`` and ``server_stop``
incidents whose affected series expected at least 20 events per hour (the targets of
issue 5). Results: ``benchmarks/results/detection.json`` (``detection-traffic.json``
with ``--model traffic``) and a markdown table.

    python -m benchmarks.bench_detection                # 20 scenarios, 2 processes
    python -m benchmarks.bench_detection --model traffic --scenarios 4
    python -m benchmarks.bench_detection --quick        # 1 small scenario (smoke test)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from monitor.alerts.queries import AlertEpisode
from monitor.config import load_settings, parse_duration
from monitor.store import Store
from monitor.timeutil import parse_iso
from monitor.tools import simulate, traffic
from monitor.tools.backtest import Notice, run_backtest
from monitor.tools.graph_counts import load_graph_counts
from monitor.tools.simulate import DETECTED_BY, INCIDENT_TYPES, Incident

GRACE = 2 * 3600.0  # an alert this long after an incident's end still detects it
WEEK = 7 * 86400.0
DROP_ROW = "drops >= 50 %, >= 3 h, >= 20/h"
RESULTS = Path(__file__).resolve().parent / "results" / "detection.json"
MODELS = ("simulate", "traffic")
DEFAULT_DATASETS = {"simulate": 2, "traffic": 3}


def _tells(inc: Incident, dataset_id: str, code: str, event_name: str | None, at: float) -> bool:
    """Whether an alert of ``code`` on ``dataset_id`` (and ``event_name``, or dataset-wide)
    said at ``at`` tells of ``inc``: one of its type's codes, from its start to ``GRACE``
    after its end."""
    return (
        dataset_id == inc.dataset_id
        and code in DETECTED_BY[inc.type]
        and (inc.event_name is None or event_name in (inc.event_name, None))
        and inc.start <= at <= inc.end + GRACE
    )


def _matches(alert: AlertEpisode, inc: Incident) -> bool:
    return _tells(inc, alert.dataset_id, alert.code, alert.event_name, alert.fired_at)


# Notification reasons that tell the user of an incident: an alert that started firing, or
# one that was firing already (a false alert just before) and reopened (flapping) or
# escalated. A repeat of an alert firing since before the incident tells nothing new.
SAYS_NEW = ("new", "flapping", "escalated")


def _said(notice: Notice, inc: Incident) -> bool:
    """Whether a notification tells of ``inc`` (an alert with one of its codes, reopened,
    escalated or new, between its start and ``GRACE`` after its end)."""
    return any(
        reason in SAYS_NEW and _tells(inc, notice.dataset_id, code, name, notice.at)
        for reason, (code, name) in zip(notice.reasons, notice.about, strict=True)
    )


def _near(alert: AlertEpisode, incidents: Sequence[Incident]) -> bool:
    """Whether an alert can be explained by an incident of its dataset (any code)."""
    return any(
        alert.dataset_id == i.dataset_id and i.start <= alert.fired_at <= i.end + GRACE
        for i in incidents
    )


# Volume incidents shown only by fewer events: the events a series must have expected over
# the incident for any monitor to tell the loss from chance. A stop: P(0 | Poisson(10)) =
# 4.5e-5. A halving: P(X <= 20 | Poisson(40)) ~ 1e-3. Below these, an incident is listed as
# too small to detect and not scored (a 0.4/h series losing half for 5 h loses 1 event).
# A lost match key (email_missing) shows only on the events that would have carried it:
# with fewer than 10 events over the incident, even at a 100 % usual share, all of them
# lacking the key is what a share of 70 % (upper-funnel events carry 25-45 %) does by
# chance 3 % of the time (0.7 ** 10); MATCH_KEY_DROP wants 10 missing events at least.
LOST_FOR_SURE = {"server_stop": 10.0, "pixel_broken": 10.0, "drop_50": 40.0, "email_missing": 10.0}


def _void(inc: Incident) -> bool:
    """An incident that changed nothing (no event of its series in its window, or no
    request that showed it): listed, not scored."""
    shown_by_requests = inc.type not in LOST_FOR_SURE
    return inc.expected_per_hour == 0 or (shown_by_requests and inc.first_affected is None)


def _too_small(inc: Incident) -> bool:
    """A volume or match-key incident whose series expected too few events over it
    (``LOST_FOR_SURE``)."""
    need = LOST_FOR_SURE.get(inc.type)
    hours = (inc.end - inc.start) / 3600
    return need is not None and 0 < inc.expected_per_hour * hours < need


def score_scenario(
    alerts: Sequence[AlertEpisode],
    truth: dict[str, Any],
    notifications: Sequence[Notice] = (),
) -> dict[str, Any]:
    """One scenario's incidents (detected, time to detect), its false alerts and the
    notifications of its incident-free week."""
    incidents = [Incident.from_dict(d) for d in truth["incidents"]]
    rows = []
    for inc in incidents:
        # An alert already firing (or flapping) when the incident began is not an episode
        # of its own; its reopening or escalation is what the user is told.
        first = min(
            [a.fired_at for a in alerts if _matches(a, inc)]
            + [n.at for n in notifications if _said(n, inc)],
            default=None,
        )
        rows.append(
            {
                **inc.to_dict(),
                "detected": first is not None,
                "void": _void(inc),
                "too_small": not _void(inc) and _too_small(inc),
                "ttd_s": None if first is None else first - inc.start,
                "ttd_evidence_s": (
                    None
                    if first is None or inc.first_affected is None
                    else max(0.0, first - inc.first_affected)
                ),
            }
        )
    quiet = truth.get("quiet_week")
    quiet_alerts: list[AlertEpisode] = []
    quiet_notices: list[Notice] = []
    if quiet:
        q0, q1 = parse_iso(quiet[0]), parse_iso(quiet[1])
        quiet_alerts = [a for a in alerts if q0 <= a.fired_at < q1]
        quiet_notices = [n for n in notifications if q0 <= n.at < q1]
    w0, w1 = (parse_iso(t) for t in truth["incident_week"])
    stray = [a for a in alerts if w0 <= a.fired_at < w1 and not _near(a, incidents)]
    return {
        "seed": truth["seed"],
        "datasets": len(truth["datasets"]),
        "incidents": rows,
        "false_alerts": [a.to_dict() for a in quiet_alerts],
        "unexplained_incident_week_alerts": [a.to_dict() for a in stray],
        "quiet_dataset_weeks": len(truth["datasets"]) if quiet else 0,
        "quiet_notifications": len(quiet_notices),
        "quiet_notification_reasons": dict(
            sorted(Counter(r for n in quiet_notices for r in n.reasons).items())
        ),
    }


def _generate(
    model: str, root: Path, seed: int, weeks: int, datasets: int, scale: float
) -> tuple[dict[str, Any], float, float]:
    """Write one scenario of ``model`` to ``root``: (summary, replay start, end)."""
    if model == "traffic":
        world = traffic.plan(seed, weeks=weeks, datasets=datasets, scale=scale)
        missing = set(traffic.INCIDENT_TYPES) - set(DETECTED_BY)
        if missing:
            raise ValueError(f"no detection codes for incident types {sorted(missing)}")
        quiet, end = world.quiet_week, world.end
        return traffic.write(root, world), (quiet or world.incident_week)[0], end
    sc = simulate.plan(seed, weeks=weeks, datasets=datasets, scale=scale)
    return simulate.simulate(root, sc), (sc.quiet_week or sc.incident_week)[0], sc.end


def run_scenario(
    seed: int,
    weeks: int,
    datasets: int,
    step: float,
    scale: float,
    keep: str | None = None,
    model: str = "simulate",
    calendar: str = "listed",
) -> dict[str, Any]:
    """Generate, store Meta's counts, backtest the last two weeks, score. ``calendar``
    (traffic model): ``listed`` writes the public holidays and Black Friday into the
    config's ``[calendar]`` as a user would, ``none`` leaves them out."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"capi-bench-{seed}-") as tmp:
        root = Path(keep) / f"{model}-seed-{seed}" if keep else Path(tmp)
        made = root / "scenario.json"
        wanted = {"model": model, "seed": seed, "weeks": weeks, "datasets": datasets}
        wanted["scale"] = scale
        kept = orjson.loads(made.read_bytes()) if keep and made.exists() else {}
        if kept.get("settings") == wanted:
            # written by an earlier run with --keep: same traffic, Meta's counts stored
            summary, start, end = kept["summary"], kept["start"], kept["end"]
            settings = load_settings(root / "config.toml")
        else:
            summary, start, end = _generate(model, root, seed, weeks, datasets, scale)
            settings = load_settings(root / "config.toml")
            with Store.open(settings.storage.url) as store:
                load_graph_counts(store, root / "graph_counts.jsonl")
            if keep:
                done = {"settings": wanted, "summary": summary, "start": start, "end": end}
                made.write_bytes(orjson.dumps(done))
        if model == "traffic":
            # The config as the code of today writes it (a kept one may predate it), with
            # or without the known calendar days a user would list.
            world = traffic.plan(seed, weeks=weeks, datasets=datasets, scale=scale)
            text = traffic.config_text(root, world, calendar=calendar == "listed")
            (root / "config.toml").write_text(text, encoding="utf-8")
            settings = load_settings(root / "config.toml")
        generated = time.perf_counter() - began
        truth = orjson.loads((root / "ground_truth.json").read_bytes())
        result = run_backtest(
            settings, start=start, end=end, step=step, store_url=settings.storage.url
        )
    scored = score_scenario(result.alerts, truth, result.notifications)
    scored["events"] = sum(summary["events"].values())
    scored["alerts"] = len(result.alerts)
    scored["seconds"] = {
        "generate": round(generated, 1),
        "backtest": round(result.seconds, 1),
        "cycles": result.cycles,
    }
    return scored


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[idx]


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    void = sum(1 for r in rows if r.get("void"))
    small = sum(1 for r in rows if r.get("too_small"))
    rows = [r for r in rows if not r.get("void") and not r.get("too_small")]
    ttd = [r["ttd_s"] / 60 for r in rows if r["detected"]]
    ttd_ev = [r["ttd_evidence_s"] / 60 for r in rows if r["ttd_evidence_s"] is not None]
    n = len(rows)
    found = sum(1 for r in rows if r["detected"])
    return {
        "incidents": n,
        "detected": found,
        "recall": round(found / n, 3) if n else None,
        "void": void,
        "too_small": small,
        "ttd_median_min": None if not ttd else round(statistics.median(ttd), 1),
        "ttd_p90_min": None if not ttd else round(_pct(ttd, 0.9) or 0, 1),
        "ttd_from_evidence_median_min": None if not ttd_ev else round(statistics.median(ttd_ev), 1),
        "ttd_from_evidence_p90_min": None if not ttd_ev else round(_pct(ttd_ev, 0.9) or 0, 1),
    }


def aggregate(scenarios: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for s in scenarios for r in s["incidents"]]
    per_type = {t: _summary([r for r in rows if r["type"] == t]) for t in INCIDENT_TYPES}
    drops = [
        r for r in rows if r["type"] in ("drop_50", "server_stop") and r["expected_per_hour"] >= 20
    ]
    per_type[DROP_ROW] = _summary(drops)
    weeks = sum(s["quiet_dataset_weeks"] for s in scenarios)
    false = sum(len(s["false_alerts"]) for s in scenarios)
    notices = sum(s.get("quiet_notifications", 0) for s in scenarios)
    reasons: Counter[str] = Counter()
    for s in scenarios:
        reasons.update(s.get("quiet_notification_reasons", {}))
    stray = sum(len(s["unexplained_incident_week_alerts"]) for s in scenarios)
    codes: dict[str, int] = {}
    for s in scenarios:
        for a in s["false_alerts"]:
            codes[a["code"]] = codes.get(a["code"], 0) + 1
    return {
        "per_type": per_type,
        "false_alerts": false,
        "quiet_dataset_weeks": weeks,
        "false_alerts_per_dataset_week": round(false / weeks, 3) if weeks else None,
        "quiet_notifications": notices,
        "notifications_per_dataset_week": round(notices / weeks, 3) if weeks else None,
        # alerts mentioned in those notifications, by reason (new, resolved, repeat, ...)
        "quiet_notification_reasons": dict(sorted(reasons.items())),
        "false_alert_codes": dict(sorted(codes.items())),
        "unexplained_incident_week_alerts": stray,
    }


def _cell(value: Any, suffix: str = "") -> str:
    return "–" if value is None else f"{value}{suffix}"


def markdown(report: dict[str, Any]) -> str:
    agg = report["aggregate"]
    lines = [
        "| incident | n | recall | TTD median | TTD p90 "
        "| from first affected request (median / p90) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in agg["per_type"].items():
        evidence = (
            f"{_cell(s['ttd_from_evidence_median_min'], ' min')} / "
            f"{_cell(s['ttd_from_evidence_p90_min'], ' min')}"
            if s["ttd_from_evidence_median_min"] is not None
            else "–"
        )
        recall = "–" if s["recall"] is None else f"{s['recall']:.0%}"
        void = f" (+{s['void']} void)" if s["void"] else ""
        void += f" (+{s['too_small']} too small)" if s.get("too_small") else ""
        lines.append(
            f"| {name} | {s['incidents']}{void} "
            f"| {recall} | {_cell(s['ttd_median_min'], ' min')} "
            f"| {_cell(s['ttd_p90_min'], ' min')} | {evidence} |"
        )
    lines.append("")
    lines.append(
        f"False alerts in incident-free weeks (with their calendar effects): "
        f"{agg['false_alerts']} in {agg['quiet_dataset_weeks']} dataset-weeks = "
        f"**{_cell(agg['false_alerts_per_dataset_week'])} per dataset-week** "
        f"({', '.join(f'{c} {n}' for c, n in agg['false_alert_codes'].items()) or 'none'}); "
        f"notifications in those weeks: {agg['quiet_notifications']} = "
        f"**{_cell(agg['notifications_per_dataset_week'])} per dataset-week**; "
        f"alerts of the incident weeks explained by no incident: "
        f"{agg['unexplained_incident_week_alerts']}."
    )
    return "\n".join(lines)


def _work(args: tuple[int, int, int, float, float, str | None, str, str]) -> dict[str, Any]:
    return run_scenario(*args)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_detection",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--scenarios", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="first seed (then seed+1, ...)")
    ap.add_argument("--weeks", type=int, default=5, help="weeks per scenario (>= 3)")
    ap.add_argument("--model", choices=MODELS, default="simulate", help="the traffic model")
    ap.add_argument(
        "--datasets",
        type=int,
        help="datasets per scenario (simulate: 1-3, default 2; traffic: 1-5, default 3)",
    )
    ap.add_argument(
        "--calendar",
        choices=("listed", "none"),
        default="listed",
        help="traffic model: list the public holidays and Black Friday in the config's "
        "[calendar] (as a user would) or not",
    )
    ap.add_argument("--step", default="15m", help="evaluation step (the logs cycle)")
    ap.add_argument("--scale", type=float, default=1.0, help="traffic multiplier")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="one small scenario: a smoke test")
    ap.add_argument(
        "--out",
        help="JSON results ('' to skip; default results/detection.json, or "
        "detection-traffic.json with --model traffic)",
    )
    ap.add_argument(
        "--keep",
        help="keep each scenario's files under this directory; a later run with the same "
        "--keep, model, seed, weeks, datasets and scale reuses them (backtest only)",
    )
    args = ap.parse_args(argv)
    if args.datasets is None:
        args.datasets = DEFAULT_DATASETS[args.model]
    if args.out is None:
        name = "detection.json" if args.model == "simulate" else f"detection-{args.model}.json"
        args.out = str(RESULTS.with_name(name))
    if args.quick:
        args.scenarios, args.weeks, args.datasets, args.scale = 1, 3, 1, 0.15
        args.step = "1h" if args.step == "15m" else args.step
    step = parse_duration(args.step)
    began = time.perf_counter()
    jobs = [
        (
            args.seed + i,
            args.weeks,
            args.datasets,
            step,
            args.scale,
            args.keep,
            args.model,
            args.calendar,
        )
        for i in range(args.scenarios)
    ]
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            scenarios = pool.map(_work, jobs, chunksize=1)
    else:
        scenarios = [_work(j) for j in jobs]
    report = {
        "command": "python -m benchmarks.bench_detection " + " ".join(argv or sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "settings": {
            "model": args.model,
            "scenarios": args.scenarios,
            "first_seed": args.seed,
            "weeks": args.weeks,
            "datasets": args.datasets,
            "step_s": step,
            "scale": args.scale,
            "grace_s": GRACE,
            "calendar": args.calendar if args.model == "traffic" else "none",
        },
        "seconds": round(time.perf_counter() - began, 1),
        "aggregate": aggregate(scenarios),
        "scenarios": scenarios,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    print(markdown(report))
    print(f"\n{args.scenarios} scenarios in {report['seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

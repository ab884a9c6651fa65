"""Compare two ``bench_detection`` results files of the same scenarios, alert by alert.

    python -m benchmarks.compare_detection BEFORE.json AFTER.json

Prints the false alerts only one of the runs raised, the incidents whose detection or
time to detect changed, and the totals of both. The scenarios are matched by seed, the
alerts by (dataset, code, event name, hour fired), the incidents by (type, dataset,
event name, start): two runs of different seeds, weeks or datasets share nothing.
Exit status 2 when a file cannot be read or the two runs' settings differ.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

_SAME = ("model", "first_seed", "scenarios", "weeks", "datasets", "step_s", "scale", "calendar")


def _load(path: str) -> dict[str, Any]:
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SystemExit(f"compare_detection: {path}: {exc}") from None
    if not isinstance(data, dict) or "scenarios" not in data:
        raise SystemExit(f"compare_detection: {path}: not a bench_detection results file")
    return data


def _alert_key(seed: int, a: dict[str, Any]) -> tuple[Any, ...]:
    return (seed, a["dataset_id"], a["code"], a["event_name"] or "", a["fired_at"][:13])


def _alert_line(key: tuple[Any, ...], a: dict[str, Any]) -> str:
    seed, ds, code, name, _ = key
    until = (a.get("resolved_at") or "open")[:16]
    what = f"{code} {name or '(all)'} {a['severity']}"
    return f"seed {seed} {ds} {what} {a['fired_at'][:16]} → {until}"


def _alerts(data: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {_alert_key(s["seed"], a): a for s in data["scenarios"] for a in s["false_alerts"]}


def _incidents(data: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {
        (s["seed"], i["type"], i["dataset_id"], i["event_name"] or "", i["start"]): i
        for s in data["scenarios"]
        for i in s["incidents"]
        if not i["void"] and not i["too_small"]
    }


def _minutes(i: dict[str, Any]) -> str:
    return "missed" if not i["detected"] else f"{i['ttd_s'] / 60:.0f} min"


def _diff_lines(before: dict[str, Any], after: dict[str, Any]) -> Iterable[str]:
    fa_b, fa_a = _alerts(before), _alerts(after)
    for label, keys, side in (
        ("false alerts gone", fa_b.keys() - fa_a.keys(), fa_b),
        ("false alerts new", fa_a.keys() - fa_b.keys(), fa_a),
    ):
        yield f"{label}: {len(keys)}"
        yield from (f"  {_alert_line(k, side[k])}" for k in sorted(keys))
    inc_b, inc_a = _incidents(before), _incidents(after)
    changed = []
    for key in sorted(inc_b.keys() & inc_a.keys()):
        b, a = inc_b[key], inc_a[key]
        if b["detected"] != a["detected"] or (b["detected"] and abs(b["ttd_s"] - a["ttd_s"]) >= 60):
            seed, kind, ds, name, start = key
            changed.append(
                f"  seed {seed} {kind} {ds} {name or '(all)'} {start[:16]}"
                f" ({b['expected_per_hour']:.0f}/h): {_minutes(b)} → {_minutes(a)}"
            )
    yield f"detections changed: {len(changed)}"
    yield from changed
    only = sorted(inc_b.keys() ^ inc_a.keys())
    if only:
        yield f"incidents scored in one run only (void or too small in the other): {len(only)}"
        for seed, kind, ds, name, start in only:
            run = "before" if (seed, kind, ds, name, start) in inc_b else "after"
            yield f"  seed {seed} {kind} {ds} {name or '(all)'} {start[:16]} (scored {run})"
    for name, data in (("before", before), ("after", after)):
        agg = data["aggregate"]
        drops = agg["per_type"].get("drops >= 50 %, >= 3 h, >= 20/h", {})
        yield (
            f"{name}: false alerts {agg['false_alerts']}/{agg['quiet_dataset_weeks']}"
            f" ({agg['false_alerts_per_dataset_week']}), notifications/dataset-week"
            f" {agg['notifications_per_dataset_week']}, drop row"
            f" {drops.get('detected')}/{drops.get('incidents')}"
            f" median {drops.get('ttd_median_min')} min"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.compare_detection",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("before", help="results file of the reference run")
    ap.add_argument("after", help="results file of the run to compare")
    args = ap.parse_args(argv)
    try:
        before, after = _load(args.before), _load(args.after)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    differ = [k for k in _SAME if before["settings"].get(k) != after["settings"].get(k)]
    if differ:
        print(f"compare_detection: the runs differ in {', '.join(differ)}", file=sys.stderr)
        return 2
    for line in _diff_lines(before, after):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

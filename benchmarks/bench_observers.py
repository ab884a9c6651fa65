"""Instructions per event of each observer of the audit, counted by callgrind.

    python -m benchmarks.bench_observers [--lines 4000] [--only dedup,payload] [--data-dir DIR]

Where ``bench_instructions`` gives the audit's cost per event as a whole, this splits the
observers' share of it: the first ``--lines`` lines of the benchmark's 200k-event file are
read into memory once (not counted: the same in every run), then fed to one observer of a
``DatasetAudit`` (a check's ``observe``, or the rollup's as ``RollupAccumulator``), each
under ``valgrind --tool=callgrind`` in a fresh subprocess; a run feeding no observer is
the baseline subtracted. ``all`` feeds every observer, as the audit does.

The read deliveries are moved out of the collector's sight (``gc.freeze``): the audit
streams them, so its collections never walk them. The first observer that asks for the
events' key layouts (``monitor.model.rollup.key_layouts``) computes them for the others:
``hash_validity``, ``match_quality`` and the rollup each include that cost when alone,
and ``all`` counts it once. Prints a markdown table; needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks.bench_audit import DATA_DIR, audit_now
from benchmarks.bench_instructions import events_in, head, instructions, prepare

# Run in the measured subprocess: argv = [file, now, observer names or "all" or "none"].
FEED = """
import gc, sys
from monitor.config import load_settings
from monitor.engine.audit import DatasetAudit, input_files
from monitor.model.observations import ReadStats
from monitor.sources.logs.paths import DatasetResolver
from monitor.sources.logs.reader import read_deliveries
from monitor.sources.logs.fields import parse_timestamp

settings = load_settings(None)
stats = ReadStats(max_problems=settings.input.max_problems)
deliveries = list(read_deliveries(
    input_files(settings, [sys.argv[1]]), stats,
    resolver=DatasetResolver(settings.datasets),
    max_line_bytes=settings.input.max_line_bytes, graph_hosts=settings.graph_hosts,
))
gc.freeze()
audit = DatasetAudit(deliveries[0].dataset_id, settings, parse_timestamp(sys.argv[2]))
wanted = set(sys.argv[3].split(","))
observers = [
    o for o in audit._observers
    if "all" in wanted or getattr(o.__self__, "id", type(o.__self__).__name__) in wanted
]
for delivery in deliveries:
    for observe in observers:
        observe(delivery)
"""

OBSERVERS = (
    "hash_validity", "dedup", "payload", "RollupAccumulator", "match_quality", "latency",
    "reconcile", "delivery",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=4000, help="lines of the 200k file to feed")
    ap.add_argument("--only", default=",".join(OBSERVERS), help="observers, comma-separated")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    ready = prepare(args.data_dir, "bench-observers-")
    if ready is None:
        return 2
    source, meta, workdir = ready
    try:
        lines = head(source, workdir / "lines.jsonl", args.lines)
        events = events_in(lines)
        now = audit_now(meta)

        def feed(names: str) -> int:
            return instructions([sys.executable, "-c", FEED, str(lines), now, names])

        baseline = feed("none")
        rows = [(name, (feed(name) - baseline) / events) for name in args.only.split(",")]
        rows.append(("all", (feed("all") - baseline) / events))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.lines} lines, {events} events; one observer at a time\n")
    print("| observer | instructions per event |\n|---|---|")
    for name, per_event in rows:
        print(f"| {name} | {per_event:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

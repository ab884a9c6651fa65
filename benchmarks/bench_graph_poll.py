"""Benchmark: one Graph poll of many datasets against the fake Graph API.

    python -m benchmarks.bench_graph_poll [--datasets 500] [--latency 0.2] [--concurrency 64]

Starts the fake server (every answer delayed by ``--latency``), polls every dataset once
with ``poll_many`` and reports total time, calls per dataset, and the most requests the
server saw in flight against the client's bound. Passes when the poll takes at most
``--target`` seconds (30), never exceeds the bound, and every snapshot is complete.

The server runs in a child process by default (``--in-process`` to share this one), so
the client's event loop and the server's threads do not compete for one GIL: in
production they are different machines. Writes ``benchmarks/results/graph_poll.json``
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from monitor.config import settings_from_dict
from monitor.sources.graph.poll import poll_many
from monitor.testing.fakegraph import FakeGraph

RESULTS = Path(__file__).resolve().parent / "results" / "graph_poll.json"
TOKEN_ENV = "BENCH_GRAPH_TOKEN"
TOKEN = "EAAbenchmarktoken0000000000000000"  # a fake token for the fake server


@contextmanager
def fake_server(latency: float, in_process: bool) -> Iterator[tuple[str, Any]]:
    """Yields (base URL, a function returning the server's max in-flight count)."""
    if in_process:
        with FakeGraph(latency=latency, token=TOKEN) as fg:
            yield fg.url, lambda: fg.max_in_flight
        return
    env = dict(os.environ, **{TOKEN_ENV: TOKEN})
    cmd = [
        sys.executable,
        "-m",
        "monitor.testing.fakegraph",
        "--port",
        "0",
        "--latency",
        str(latency),
    ]
    proc = subprocess.Popen(
        [*cmd, "--token-env", TOKEN_ENV], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]

        def max_in_flight() -> int:
            with httpx.Client(timeout=10) as client:
                return int(client.get(f"{url}/__fakegraph/stats").json()["max_in_flight"])

        yield url, max_in_flight
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def run(
    datasets: int, latency: float, concurrency: int, target: float, in_process: bool
) -> dict[str, Any]:
    ids = [str(10_000_000_000 + i) for i in range(datasets)]
    now = float(int(time.time()))
    with fake_server(latency, in_process) as (url, max_in_flight):
        settings = settings_from_dict(
            {
                "meta": {"graph_url": url, "access_token_env": TOKEN_ENV},
                "datasets": [{"id": i} for i in ids],
            }
        )
        t0 = time.perf_counter()
        snaps = asyncio.run(
            poll_many(settings, now=now, concurrency=concurrency, env={TOKEN_ENV: TOKEN})
        )
        elapsed = time.perf_counter() - t0
        observed = max_in_flight()
    calls = sum(s.calls for s in snaps.values())
    failed = sorted({e.part.value for s in snaps.values() for e in s.errors})
    floor = calls * latency / concurrency  # no client can beat this with the bound
    result = {
        "datasets": datasets,
        "polled": len(snaps),
        "latency_s": latency,
        "concurrency_bound": concurrency,
        "total_s": round(elapsed, 2),
        "calls": calls,
        "calls_per_dataset": round(calls / max(len(snaps), 1), 2),
        "theoretical_min_s": round(floor, 2),
        "efficiency": round(floor / elapsed, 3) if elapsed else None,
        "max_in_flight_observed": observed,
        "snapshots_with_errors": sum(1 for s in snaps.values() if s.errors),
        "failed_parts": failed,
        "target_s": target,
        "server": "in-process" if in_process else "subprocess",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    result["pass"] = (
        elapsed <= target
        and observed <= concurrency
        and len(snaps) == datasets
        and result["snapshots_with_errors"] == 0
    )
    return result


def table(r: dict[str, Any]) -> str:
    rows = [
        ("datasets polled", f"{r['polled']} / {r['datasets']}"),
        ("latency per call", f"{r['latency_s'] * 1000:.0f} ms"),
        ("total time", f"{r['total_s']:.2f} s (target ≤ {r['target_s']:.0f} s)"),
        ("HTTP calls", f"{r['calls']} ({r['calls_per_dataset']} per dataset)"),
        ("lower bound (calls × latency / bound)", f"{r['theoretical_min_s']:.2f} s"),
        (
            "max in flight at server",
            f"{r['max_in_flight_observed']} (bound {r['concurrency_bound']})",
        ),
        ("snapshots with errors", str(r["snapshots_with_errors"])),
        ("server", r["server"]),
        ("result", "PASS" if r["pass"] else "FAIL"),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_graph_poll")
    p.add_argument("--datasets", type=int, default=500)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--target", type=float, default=30.0, help="seconds")
    p.add_argument("--in-process", action="store_true", help="run the fake server in this process")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    result = run(args.datasets, args.latency, args.concurrency, args.target, args.in_process)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

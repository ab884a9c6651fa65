"""Benchmark: one Graph poll of many datasets against the fake Graph API.

    python -m benchmarks.bench_graph_poll [--datasets 500] [--latency 0.2]
        [--concurrency N] [--batch-size N]

Starts the fake server (every HTTP answer delayed by ``--latency``, a batch request
once), polls every dataset once with ``poll_many`` at the default config (``[meta]
concurrency`` 20, ``batch_size`` 50, unless given) and reports total time, HTTP calls,
Graph reads (batch items count one by one, as Meta counts them) and the most requests
the server saw in flight against the client's bound. Passes when the poll takes at most
``--target`` seconds (15), never exceeds the bound, and every snapshot is complete.

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
    """Yields (base URL, a function returning the server's max in-flight count, its HTTP
    requests, its batch items and its CPU seconds so far)."""
    if in_process:
        with FakeGraph(latency=latency, token=TOKEN) as fg:
            yield fg.url, lambda: (fg.max_in_flight, fg.total_requests, fg.batch_items, 0.0)
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

        def server_stats() -> tuple[int, int, int, float]:
            with httpx.Client(timeout=10) as client:
                stats = client.get(f"{url}/__fakegraph/stats").json()
            # The stats request itself is not a poll's request.
            requests = stats["requests"] - 1
            return stats["max_in_flight"], requests, stats["batch_items"], stats["cpu_s"]

        yield url, server_stats
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def run(
    datasets: int,
    latency: float,
    concurrency: int | None,
    batch_size: int | None,
    target: float,
    in_process: bool,
) -> dict[str, Any]:
    ids = [str(10_000_000_000 + i) for i in range(datasets)]
    now = float(int(time.time()))
    with fake_server(latency, in_process) as (url, server_stats):
        meta: dict[str, Any] = {"graph_url": url, "access_token_env": TOKEN_ENV}
        if concurrency is not None:
            meta["concurrency"] = concurrency
        if batch_size is not None:
            meta["batch_size"] = batch_size
        settings = settings_from_dict({"meta": meta, "datasets": [{"id": i} for i in ids]})
        assert settings.meta is not None
        bound, batch = settings.meta.concurrency, settings.meta.batch_size
        cpu_before = server_stats()[3]
        t0, c0 = time.perf_counter(), time.process_time()
        snaps = asyncio.run(poll_many(settings, now=now, concurrency=bound, env={TOKEN_ENV: TOKEN}))
        elapsed, client_cpu = time.perf_counter() - t0, time.process_time() - c0
        observed, http_calls, items, cpu_after = server_stats()
        http_calls -= 1  # the first stats request
    reads = sum(s.calls for s in snaps.values())
    failed = sorted({e.part.value for s in snaps.values() for e in s.errors})
    floor = http_calls * latency / bound  # no client can beat this with the bound
    result = {
        "datasets": datasets,
        "polled": len(snaps),
        "latency_s": latency,
        "concurrency_bound": bound,
        "batch_size": batch,
        "total_s": round(elapsed, 2),
        "http_calls": http_calls,
        "batch_items": items,
        "reads": reads,
        "reads_per_dataset": round(reads / max(len(snaps), 1), 2),
        "theoretical_min_s": round(floor, 2),
        "efficiency": round(floor / elapsed, 3) if elapsed else None,
        "max_in_flight_observed": observed,
        "client_cpu_s": round(client_cpu, 2),
        "server_cpu_s": round(cpu_after - cpu_before, 2),
        "snapshots_with_errors": sum(1 for s in snaps.values() if s.errors),
        "failed_parts": failed,
        "target_s": target,
        "server": "in-process" if in_process else "subprocess",
        "load_average_1m": round(os.getloadavg()[0], 1),  # other work on the machine
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    result["pass"] = (
        elapsed <= target
        and observed <= bound
        and len(snaps) == datasets
        and result["snapshots_with_errors"] == 0
    )
    return result


def table(r: dict[str, Any]) -> str:
    rows = [
        ("datasets polled", f"{r['polled']} / {r['datasets']}"),
        ("latency per call", f"{r['latency_s'] * 1000:.0f} ms"),
        ("total time", f"{r['total_s']:.2f} s (target ≤ {r['target_s']:.0f} s)"),
        ("HTTP calls", f"{r['http_calls']} (batches of up to {r['batch_size']} reads)"),
        ("batch items", str(r["batch_items"])),
        ("Graph reads", f"{r['reads']} ({r['reads_per_dataset']} per dataset)"),
        ("lower bound (HTTP calls × latency / bound)", f"{r['theoretical_min_s']:.2f} s"),
        (
            "max in flight at server",
            f"{r['max_in_flight_observed']} (bound {r['concurrency_bound']})",
        ),
        ("snapshots with errors", str(r["snapshots_with_errors"])),
        ("CPU: client / fake server", f"{r['client_cpu_s']:.1f} s / {r['server_cpu_s']:.1f} s"),
        ("server", r["server"]),
        ("load average (1 min) at the end", str(r["load_average_1m"])),
        ("result", "PASS" if r["pass"] else "FAIL"),
    ]
    lines = ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_graph_poll")
    p.add_argument("--datasets", type=int, default=500)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument(
        "--concurrency", type=int, default=None, help="calls in flight (default: [meta]'s 20)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="reads per batch (default: [meta]'s 50)"
    )
    p.add_argument("--target", type=float, default=15.0, help="seconds")
    p.add_argument("--in-process", action="store_true", help="run the fake server in this process")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    result = run(
        args.datasets,
        args.latency,
        args.concurrency,
        args.batch_size,
        args.target,
        args.in_process,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

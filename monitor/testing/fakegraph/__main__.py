"""``python -m monitor.testing.fakegraph``: run the fake Graph API in the foreground.

    python -m monitor.testing.fakegraph --port 8999 \
        --scenario 1234567890=server_missing --latency 0.2

Prints ``fakegraph listening on http://127.0.0.1:PORT`` once ready; SIGINT/SIGTERM stop it
(exit 0). The expected token is read from the environment variable named by
``--token-env`` (never from the command line, where ``ps`` would show it); without it any
non-empty token is accepted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from monitor.testing.fakegraph.scenarios import Scenario, ScenarioKind
from monitor.testing.fakegraph.server import FakeGraph


def _assignment(text: str) -> tuple[str, Scenario]:
    dataset, sep, name = text.partition("=")
    if not sep or not dataset.strip():
        raise argparse.ArgumentTypeError(f"expected DATASET_ID=SCENARIO, got {text!r}")
    try:
        return dataset.strip(), Scenario.named(name)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m monitor.testing.fakegraph",
        description="Run the fake Graph API in the foreground.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8999, help="0 picks a free port")
    p.add_argument(
        "--scenario",
        action="append",
        type=_assignment,
        default=[],
        metavar="ID=NAME",
        help="scenario of one dataset (repeatable); names: "
        + ", ".join(k.value for k in ScenarioKind),
    )
    p.add_argument("--default", default="healthy", help="scenario of all other datasets")
    p.add_argument(
        "--counts",
        metavar="FILE",
        help="serve the hourly counts of a graph_counts.jsonl (capi-monitor simulate) for "
        "its datasets",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--token-env", help="environment variable holding the expected token")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        default = Scenario.named(args.default)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env) if args.token_env else None
    scenarios = dict(Scenario.from_counts(args.counts)) if args.counts else {}
    scenarios.update(dict(args.scenario))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake = FakeGraph(scenarios, default, args.latency, token, host=args.host, port=args.port)
    with fake:
        print(f"fakegraph listening on {fake.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

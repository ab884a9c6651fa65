"""Audit throughput and memory benchmark, on realistic generated delivery logs.

    python -m benchmarks.bench_audit [--events 200000] [--scale 10] [--runs 3] [--quick]

On one generated file of N events (cached in ``benchmarks/.data/`` by N, seed and
generator version; 200k events span 7 days) it measures, each in a fresh subprocess:

(a) the *bare loop*: ``for line in f: orjson.loads(line)`` and counting the events, i.e.
    the fastest any Python reader of these logs can be;
(b) the *audit*: ``python -m monitor audit FILE --json /dev/null --db sqlite:///... --now
    ISO --jobs J`` (docs/contracts.md §4), wall clock from spawn to exit, so start-up and
    the store write are included, as a user would experience them; once with the default
    ``--jobs`` (one worker per CPU) and once with ``--jobs 1``.

Other programs may share the CPUs, so (a) and (b) alternate: each of ``--runs`` rounds
runs the bare loop, then each audit variant, and the ratio audit/bare is taken within a
round (a paired A/B measure); the median over the rounds is reported. Then each variant
audits a file of scale x N events at the same rate, so over a scale x longer span, once:
its peak RSS against the one at N tells whether memory grows with the span of the logs.

Targets: audit rate >= 50% of the bare rate with the default ``--jobs`` (2 CPUs), >= 35%
with ``--jobs 1``; peak RSS at scale x N <= 1.2 x peak RSS at N. Peak RSS comes from
``os.wait4`` (the kernel's ``ru_maxrss`` of that child, KiB on Linux), not from polling,
so short peaks are not missed. For a child that forks workers the kernel reports the
*largest* RSS among the child and its reaped descendants, each counted on its own (a
maximum, not a sum). So the memory of the whole process tree is sampled as well, 20
times a second: the sum of PSS over the child and its descendants, read from
``/proc/<pid>/smaps_rollup`` (informational).

``--audit-cmd`` replaces the audit with any command template ({python} {file} {db}
{now} {jobs}), e.g. to benchmark a branch or to try the harness. Prints a markdown
table, writes ``benchmarks/results/audit.json``; exits 0 when every target is met, 1
when one is missed, 2 when a command failed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from monitor.tools import genlogs

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "benchmarks" / ".data"
RESULTS = REPO / "benchmarks" / "results" / "audit.json"
START = genlogs.parse_iso("2026-10-01T00:00:00Z")
EVENTS_PER_HOUR = 200_000 / (7 * 24)  # N = 200k events span 7 days, 10 x N span 70 days
DEFAULT_AUDIT_CMD = (
    "{python} -m monitor audit {file} --json /dev/null --db {db} --now {now} --jobs {jobs}"
)
# (label, --jobs, target audit/bare rate): 0 is the default, one worker per CPU
VARIANTS: tuple[tuple[str, int, float], ...] = (("auto", 0, 0.5), ("jobs1", 1, 0.35))
TARGET_RSS_GROWTH = 1.2  # peak RSS at scale x N over peak RSS at N
TRACEBACK = "Traceback (most recent call last):"  # what an uncaught exception prints

# The reference reader: a large buffer, one orjson.loads per line, count the events so the
# parse cannot be optimised away. Malformed lines are skipped as an audit would.
BARE_LOOP = """
import sys, orjson
n = 0
with open(sys.argv[1], "rb", buffering=1 << 20) as f:
    for line in f:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if type(obj) is dict:
            req = obj.get("request")
            if type(req) is dict:
                n += len(req.get("data") or ())
print(n)
"""


@dataclass(frozen=True, slots=True)
class Measured:
    """One child process: wall time, peak RSS and how it ended."""

    seconds: float
    rss_kib: int
    tree_pss_kib: int  # sampled peak of the PSS summed over the child and its descendants
    exit_code: int
    stdout: str
    stderr_tail: str
    label: str = ""  # the run's name (``bare-0``, ``jobs1-2``...), for error messages
    crashed: bool = False  # a Python traceback on stderr: exit code 1, but not "findings"


def child_env() -> dict[str, str]:
    """The environment of a measured command: this repo first on the path, and bytecode
    written and read beside the sources (``__pycache__``, ignored by git), as for a user's
    checkout or installed copy. Without it (``PYTHONDONTWRITEBYTECODE`` set by the caller)
    every run would compile every module of the project again: ~0.75 G instructions of
    start-up that no user pays. ``compile_sources`` fills the cache before the first run.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def compile_sources() -> None:
    """Compile the project's packages (untimed), so that no measured run compiles them."""
    argv = [sys.executable, "-m", "compileall", "-q", str(REPO / "monitor"), str(REPO / "checks")]
    subprocess.run(argv, cwd=REPO, env=child_env(), check=True, stdout=subprocess.DEVNULL)


def measure(argv: list[str], workdir: Path, label: str) -> Measured:
    """Run ``argv`` from the repo root; time it and read its peak RSS via ``os.wait4``.

    Output goes to files, not pipes: a pipe nobody reads while we block in ``wait4``
    would deadlock a chatty child.
    """
    out, err = workdir / f"{label}.out", workdir / f"{label}.err"
    env = child_env()
    with open(out, "wb") as so, open(err, "wb") as se:
        began = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=so, stderr=se
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
    stderr = err.read_text(errors="replace")
    tail = stderr.strip().splitlines()[-5:]
    return Measured(
        seconds,
        usage.ru_maxrss,
        sampler.peak_kib,
        proc.returncode,
        out.read_text(errors="replace"),
        "\n".join(tail),
        label,
        TRACEBACK in stderr,
    )


class TreeSampler(threading.Thread):
    """Samples the PSS summed over a process and its descendants until ``stop()``; keeps
    the peak (KiB). Linux only (``/proc``); elsewhere the peak stays 0."""

    def __init__(self, root: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.peak_kib = root, every, 0
        self._done = threading.Event()

    def run(self) -> None:
        while True:
            self.peak_kib = max(self.peak_kib, sum(map(_pss_kib, _tree(self.root))))
            if self._done.wait(self.every):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent pids in ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _generator_version() -> str:
    return hashlib.sha256(Path(genlogs.__file__).read_bytes()).hexdigest()[:12]


def ensure_data(n_events: int, seed: int, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The cached file of ``n_events`` clean events, generated if missing or stale."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"events-{n_events}-seed{seed}.jsonl"
    meta_path = path.with_suffix(".json")
    version = _generator_version()
    if path.exists() and meta_path.exists():
        meta = orjson.loads(meta_path.read_bytes())
        if meta.get("generator") == version and meta.get("bytes") == path.stat().st_size:
            return path, {**meta, "cached": True}
    partial = path.with_suffix(".partial")
    print(f"generating {n_events:,} events -> {path}", file=sys.stderr)
    counts = genlogs.generate(
        partial, n_events, seed=seed, start=START, events_per_hour=EVENTS_PER_HOUR
    )
    partial.replace(path)
    meta = {**counts, "generator": version, "seed": seed}
    meta_path.write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return path, {**meta, "cached": False}


def audit_now(meta: dict[str, Any]) -> str:
    """``--now``: the first full hour at least one hour after the last send."""
    hour = math.ceil((meta["last_sent_ts"] + 3600) / 3600) * 3600
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour))


def audit_argv(template: str, file: Path, db: str, now: str, jobs: int = 0) -> list[str]:
    """Fill the command template (values shell-quoted, so paths may contain spaces)."""
    values = {"python": sys.executable, "file": str(file), "db": db, "now": now, "jobs": str(jobs)}
    return shlex.split(template.format(**{k: shlex.quote(v) for k, v in values.items()}))


def best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda r: r.seconds)


def run_audit(
    template: str, file: Path, now: str, workdir: Path, label: str, jobs: int
) -> Measured:
    """One audit of ``file`` with a fresh database."""
    db = f"sqlite:///{workdir / f'{label}.db'}"
    return measure(audit_argv(template, file, db, now, jobs), workdir, label)


def _failed(m: Measured) -> bool:
    """The command failed: any exit code but 0 and 1 (findings at or above --fail-on, a
    normal outcome), or 1 with a Python traceback (a crash, which also exits 1)."""
    return m.exit_code not in (0, 1) or m.crashed


def _row(metric: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "—" if ok is None else ("PASS" if ok else "FAIL")
    return f"| {metric} | {value} | {target} | {verdict} |"


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f} events/s"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--events", type=int, default=200_000, help="N (default 200000)")
    ap.add_argument("--scale", type=int, default=10, help="RSS is compared at N and scale x N")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="rounds of (a) then (b); median ratio")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20000 events, scale 2")
    ap.add_argument(
        "--keep", action="store_true", help="keep the work directory (databases, audit output)"
    )
    ap.add_argument(
        "--audit-cmd",
        default=DEFAULT_AUDIT_CMD,
        help="command template with {python} {file} {db} {now}",
    )
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help="cache of generated logs")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON result file")
    args = ap.parse_args(argv)
    if args.quick:
        args.events, args.scale = 20_000, 2
    if args.events < 1 or args.scale < 2 or args.runs < 1:
        ap.error("need --events >= 1, --scale >= 2 and --runs >= 1")

    n, big_n = args.events, args.events * args.scale
    small, small_meta = ensure_data(n, args.seed, args.data_dir)
    big, big_meta = ensure_data(big_n, args.seed, args.data_dir)
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        compile_sources()
        result = _bench(args, small, small_meta, big, big_meta, workdir)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nwritten: {args.out}", file=sys.stderr)
    if result.get("error"):
        return 2
    return 0 if all(m["pass"] for m in result["metrics"] if m["pass"] is not None) else 1


def _bench(
    args: argparse.Namespace,
    small: Path,
    small_meta: dict[str, Any],
    big: Path,
    big_meta: dict[str, Any],
    workdir: Path,
) -> dict[str, Any]:
    n, big_n = small_meta["events"], big_meta["events"]
    result: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": n,
        "scale": args.scale,
        "seed": args.seed,
        "runs": args.runs,
        "audit_cmd": args.audit_cmd,
        "host": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "data": {"small": _data_info(small, small_meta), "large": _data_info(big, big_meta)},
    }
    now = audit_now(small_meta)
    bare_runs: list[Measured] = []
    audits: dict[str, list[Measured]] = {label: [] for label, _, _ in VARIANTS}
    for r in range(args.runs):  # alternate A and B: a busy machine slows both alike
        bare_runs.append(
            measure([sys.executable, "-c", BARE_LOOP, str(small)], workdir, f"bare-{r}")
        )
        for label, jobs, _ in VARIANTS:
            audits[label].append(
                run_audit(args.audit_cmd, small, now, workdir, f"{label}-{r}", jobs)
            )
    bare = best(bare_runs)
    counted = int(bare.stdout.strip() or -1) if bare.exit_code == 0 else -1
    result["bare"] = {**_summary(bare_runs, n), "events_counted": counted}
    for label, _, _ in VARIANTS:
        result[_key(label)] = {**_summary(audits[label], n), **_paired(bare_runs, audits[label])}
    everything = [bare, *(m for runs in audits.values() for m in runs)]
    failed = next((m for m in everything if (m.exit_code != 0 and m is bare) or _failed(m)), None)
    if failed is None:
        big_now = audit_now(big_meta)
        for label, jobs, _ in VARIANTS:
            scaled = run_audit(args.audit_cmd, big, big_now, workdir, f"{label}-scaled", jobs)
            result[_key(label) + "_scaled"] = _summary([scaled], big_n)
            if _failed(scaled):
                failed = scaled
                break
    if failed is not None or counted != n:
        if failed is not None:
            what = "crashed" if failed.crashed else f"exited {failed.exit_code}"
            why = f"{failed.label} {what}:\n{failed.stderr_tail}"
        else:
            why = f"bare loop counted {counted} events, not {n}"
        result["error"] = why
        result["metrics"] = []
        print(f"benchmark failed:\n{why}", file=sys.stderr)
        return result
    result["metrics"] = _metrics(result, n, big_n)
    _print_table(result["metrics"])
    return result


def _key(label: str) -> str:
    """The result key of a variant: ``audit`` for the default, ``audit_<label>`` else."""
    return "audit" if label == VARIANTS[0][0] else f"audit_{label}"


def _paired(bare: list[Measured], audits: list[Measured]) -> dict[str, Any]:
    """Audit rate over bare rate within each round, and their median."""
    ratios = [b.seconds / a.seconds for b, a in zip(bare, audits, strict=True)]
    return {"paired_ratios": [round(x, 4) for x in ratios], "ratio": statistics.median(ratios)}


def _data_info(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {
        k: meta[k] for k in ("events", "records", "bytes", "cached") if k in meta
    }
    info["file"] = str(path)
    if not meta.get("cached") and meta.get("seconds"):
        info["generator_events_per_s"] = round(meta["events"] / meta["seconds"])
    return info


_NOT_SUMMED = ("stdout", "stderr_tail", "label", "crashed")


def _summary(runs: list[Measured], events: int) -> dict[str, Any]:
    top = best(runs)
    return {
        "seconds": round(top.seconds, 3),
        "events_per_s": round(events / top.seconds),
        "rss_kib": min(r.rss_kib for r in runs),  # peak RSS is near-deterministic; min = strict
        "tree_pss_kib": min(r.tree_pss_kib for r in runs),
        "exit_code": top.exit_code,
        "all_runs": [{k: v for k, v in asdict(r).items() if k not in _NOT_SUMMED} for r in runs],
    }


def _metrics(result: dict[str, Any], n: int, big_n: int) -> list[dict[str, Any]]:
    bare = result["bare"]

    def metric(
        key: str, label: str, value: float, shown: str, target: str | None, ok: bool | None
    ) -> dict[str, Any]:
        return {
            "metric": key,
            "label": label,
            "value": value,
            "shown": shown,
            "target": target,
            "pass": ok,
        }

    rate = bare["events_per_s"]
    out = [
        metric("bare_rate", f"bare parse rate ({n:,} events)", rate, _fmt_rate(rate), None, None)
    ]
    for label, jobs, target in VARIANTS:
        key = _key(label)
        audit, scaled = result[key], result[key + "_scaled"]
        suffix = "" if key == "audit" else f"_{label}"
        how = "default --jobs" if jobs == 0 else f"--jobs {jobs}"
        ratio = audit["ratio"]
        growth = scaled["rss_kib"] / audit["rss_kib"]
        tree = scaled["tree_pss_kib"] / max(1, audit["tree_pss_kib"])
        rss = audit["rss_kib"] / 1024, scaled["rss_kib"] / 1024
        pss = audit["tree_pss_kib"] / 1024, scaled["tree_pss_kib"] / 1024
        out += [
            metric(f"audit_rate{suffix}", f"audit rate, {how} ({n:,} events)",
                   audit["events_per_s"], _fmt_rate(audit["events_per_s"]), None, None),
            metric(f"audit_vs_bare{suffix}", f"audit / bare rate, {how} (median of rounds)",
                   round(ratio, 4), f"{ratio:.1%}", f">= {target:.0%}", ratio >= target),
            metric(f"audit_rate_scaled{suffix}", f"audit rate, {how} ({big_n:,} events)",
                   scaled["events_per_s"], _fmt_rate(scaled["events_per_s"]), None, None),
            metric(f"rss_growth{suffix}", f"peak RSS {how}, {n:,} -> {big_n:,} events",
                   round(growth, 4), f"{rss[0]:,.1f} -> {rss[1]:,.1f} MiB ({growth:.2f}x)",
                   f"<= {TARGET_RSS_GROWTH}x", growth <= TARGET_RSS_GROWTH),
            metric(f"tree_pss_growth{suffix}", f"process tree PSS {how} (informational)",
                   round(tree, 4), f"{pss[0]:,.1f} -> {pss[1]:,.1f} MiB ({tree:.2f}x)",
                   None, None),
        ]  # fmt: skip
    return out


def _print_table(metrics: list[dict[str, Any]]) -> None:
    print("| metric | value | target | result |")
    print("|---|---|---|---|")
    for m in metrics:
        print(_row(m["label"], m["shown"], m["target"] or "—", m["pass"]))


if __name__ == "__main__":
    sys.exit(main())

"""Instructions per event of the audit and of the bare parse, counted by callgrind.

    python -m benchmarks.bench_instructions [--lines 4000] [--store] [--data-dir DIR]

Wall-clock rates (``benchmarks.bench_audit``) move by tens of percent when other programs
share the CPUs; instruction counts do not. On the first ``--lines`` lines of the
benchmark's 200k-event file (its first ~13 hours) this runs, each under ``valgrind
--tool=callgrind`` in a fresh subprocess: the audit (``--jobs 1``, ``--no-store`` unless
``--store``) and the bare loop of ``bench_audit``, each on those lines and on their first
line alone. The difference over the number of events is the cost of one event, start-up
excluded; the start-up (imports, settings, the report; with ``--store`` the store's
import and creation) is the one-line run. Bytecode is cached as in ``bench_audit``.

Prints a markdown table; needs ``valgrind`` (about a minute per 4,000 lines). The audit's
instruction ratio bounds its rate ratio from above only loosely: C code (orjson) runs more
instructions per cycle than the interpreter.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_audit import (
    BARE_LOOP,
    DATA_DIR,
    REPO,
    TRACEBACK,
    audit_now,
    child_env,
    compile_sources,
    ensure_data,
)

_REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")


def instructions(argv: list[str]) -> int:
    """Instructions that ``argv`` executed (its own process; no workers at --jobs 1)."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv]
    done = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True)
    found = _REFS.findall(done.stderr)
    # 1 is a normal outcome of the audit (findings), unless a traceback says it crashed.
    crashed = TRACEBACK.encode() in done.stderr
    if done.returncode not in (0, 1) or crashed or not found:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}): " + " | ".join(tail))
    return int(found[-1].replace(b",", b""))


def events_in(path: Path) -> int:
    """Events of a v1 file of clean records (the generated data has no defects)."""
    with open(path, "rb") as f:
        return sum(len(orjson.loads(line)["request"]["data"]) for line in f)


def prepare(data_dir: Path, prefix: str) -> tuple[Path, dict[str, Any], Path] | None:
    """The 200k-event file, its meta, and a fresh work directory (the caller removes it),
    sources compiled; ``None`` (said on stderr) without ``valgrind``."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return None
    source, meta = ensure_data(200_000, 1, data_dir)
    compile_sources()
    return source, meta, Path(tempfile.mkdtemp(prefix=prefix))


def head(src: Path, dst: Path, lines: int) -> Path:
    with open(src, "rb") as f, open(dst, "wb") as out:
        for _, line in zip(range(lines), f, strict=False):
            out.write(line)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=4000, help="lines of the 200k file to audit")
    ap.add_argument("--store", action="store_true", help="audit into a fresh SQLite store")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    ready = prepare(args.data_dir, "bench-instructions-")
    if ready is None:
        return 2
    source, meta, workdir = ready
    try:
        many = head(source, workdir / "many.jsonl", args.lines)
        one = head(source, workdir / "one.jsonl", 1)
        events = events_in(many) - events_in(one)
        now = audit_now(meta)

        def audit(path: Path) -> int:
            db = f"sqlite:///{workdir / path.stem}.db"
            store = ["--db", db] if args.store else ["--no-store"]
            cmd = [sys.executable, "-m", "monitor", "audit", str(path), "--json", "/dev/null",
                   "--now", now, "--jobs", "1", "-q", "--fail-on", "never", *store]  # fmt: skip
            return instructions(cmd)

        def bare(path: Path) -> int:
            return instructions([sys.executable, "-c", BARE_LOOP, str(path)])

        audit_one, bare_one = audit(one), bare(one)
        per_audit = (audit(many) - audit_one) / events
        per_bare = (bare(many) - bare_one) / events
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.lines} lines, {events} events (after the first line); audit --jobs 1 "
          f"{'with a store' if args.store else '--no-store'}\n")  # fmt: skip
    print("| measure | instructions |\n|---|---|")
    print(f"| bare parse, per event | {per_bare:,.0f} |")
    print(f"| audit, per event | {per_audit:,.0f} |")
    print(f"| bare / audit per event | {per_bare / per_audit:.1%} |")
    print(f"| audit start-up (one-line run) | {audit_one:,} |")
    print(f"| bare start-up (one-line run) | {bare_one:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parallel audit: planning the parts, reading byte ranges, merging checks across cuts.

The reference is always the sequential run: ``jobs=2`` or ``3`` must give the same
report (minus ``generated_at``) and the same rollups.
"""

from __future__ import annotations

import gzip
import itertools
import math
import multiprocessing
import os
import pickle
import random
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

import monitor.engine.audit
from checks.dedup import EVENT_ID_REUSED, Dedup
from monitor.config import Settings, load_settings, settings_from_dict
from monitor.engine.audit import DatasetAudit, input_files, run_audit
from monitor.engine.parallel import plan_parts, run_parts
from monitor.engine.rollup import exact_value, value_float
from monitor.errors import InputError, StoreError, WorkerError
from monitor.model.observations import ReadStats
from monitor.model.results import AuditReport
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries
from monitor.tools import genlogs
from tests.checks.test_check_dedup import REUSE_CASES
from tests.support.checkutil import context, delivery

REPO = Path(__file__).resolve().parents[2]
SAMPLES_NOW = genlogs.parse_iso("2026-11-20T12:00:00Z")
START = genlogs.parse_iso("2026-11-19T00:00:00Z")


# ----------------------------------------------------------------------------- helpers


def comparable(report: AuditReport) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The report minus ``generated_at``, and every dataset's rollups."""
    data = report.to_dict()
    del data["generated_at"]
    rollups = {ds.dataset_id: [r.to_dict() for r in ds.rollups] for ds in report.datasets}
    return data, rollups


def audit_all_ways(
    settings: Settings, files: Sequence[InputFile], now: float, monkeypatch: pytest.MonkeyPatch
) -> AuditReport:
    """Audit with jobs 1, 2 and 3; assert the parallel runs equal the sequential one."""
    calls: list[int] = []
    real_run_parts = monitor.engine.audit.run_parts

    def counting(parts: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(len(parts))
        real_run_parts(parts, *args, **kwargs)

    monkeypatch.setattr(monitor.engine.audit, "run_parts", counting)
    sequential = run_audit(settings, files, now=now, jobs=1)
    expected = comparable(sequential)
    for jobs in (2, 3):
        parallel = run_audit(settings, files, now=now, jobs=jobs, parallel_min_bytes=0)
        got = comparable(parallel)
        assert got[0] == expected[0], f"jobs={jobs}: report differs"
        assert got[1] == expected[1], f"jobs={jobs}: rollups differ"
    assert calls == [2, 3]  # the parallel path really ran, with as many parts as jobs
    return sequential


def record(eid: str, sent_at: float, value: float = 10.0, name: str = "Purchase") -> bytes:
    event = {
        "event_name": name,
        "event_time": sent_at - 30,
        "event_id": eid,
        "action_source": "system_generated",
        "user_data": {"external_id": ["u-" + eid]},
        "custom_data": {"value": value, "currency": "EUR"},
    }
    rec = {
        "sent_at": sent_at,
        "dataset_id": "42",
        "request": {"data": [event]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    return orjson.dumps(rec) + b"\n"


# ----------------------------------------------------------------------------- identical results


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[InputFile], float]:
    """~30k events with defects, split into a plain file, a gzip file and a plain file
    with blank and malformed lines, reused ids and retries across the files, and a
    dataset that only appears late."""
    root = tmp_path_factory.mktemp("parallel")
    whole = root / "whole.jsonl"
    meta = genlogs.generate(whole, 30_000, seed=7, start=START, defects=0.03)
    lines = whole.read_bytes().splitlines(keepends=True)
    whole.unlink()
    a, b = len(lines) * 4 // 10, len(lines) * 7 // 10
    (root / "a.jsonl").write_bytes(b"".join(lines[:a]))
    with gzip.open(root / "b.jsonl.gz", "wb") as out:
        out.write(b"".join(lines[a:b]))
    tail: list[bytes] = []
    for i, line in enumerate(lines[b:]):
        tail.append(line)
        if i % 97 == 0:
            tail.append(b"\n" if i % 2 else b"   \n")
        if i % 211 == 0:
            tail.append([b"{not json\n", b"[1, 2]\n", b'{"foo": 1}\n'][i % 3])
        if i % 500 == 0:  # ids from the first file: a retry and a reuse of each
            old = orjson.loads(lines[i // 10])
            tail.append(orjson.dumps(old) + b"\n")
            for ev in old["request"]["data"]:
                ev.setdefault("custom_data", {})["value"] = 123456.0
            tail.append(orjson.dumps(old) + b"\n")
        if i % 1000 == 0:
            tail.append(record(f"late-{i}", meta["last_sent_ts"]))
    (root / "c.jsonl").write_bytes(b"".join(tail))
    files = [InputFile(str(root / n)) for n in ("a.jsonl", "b.jsonl.gz", "c.jsonl")]
    return files, meta["last_sent_ts"] + 3600


def test_generated_logs_same_report_in_parallel(
    generated: tuple[list[InputFile], float], monkeypatch: pytest.MonkeyPatch
) -> None:
    files, now = generated
    report = audit_all_ways(settings_from_dict({}), files, now, monkeypatch)
    data = report.to_dict()
    assert data["inputs"]["files"] == 3
    assert data["inputs"]["malformed_lines"] > 0
    codes = {f["code"] for ds in data["datasets"] for f in ds["findings"]}
    assert {EVENT_ID_REUSED, "HASH_PLAINTEXT", "TOKEN_INVALID", "MISSING_EVENT_ID"} <= codes
    assert {ds["dataset_id"] for ds in data["datasets"]} == {"1234567890", "42"}


def test_bundled_samples_same_report_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    settings = load_settings("samples/config.toml")
    files = input_files(settings, [])
    report = audit_all_ways(settings, files, SAMPLES_NOW, monkeypatch)
    assert report.inputs.files == len(files) == 6


def test_small_input_or_stdin_stays_sequential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(record("x", START) * 10)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no worker expected")

    monkeypatch.setattr(monitor.engine.audit, "run_parts", fail)
    settings = settings_from_dict({})
    report = run_audit(settings, [InputFile(str(path))], now=START, jobs=4)  # under 32 MiB
    assert report.inputs.events == 10
    stdin = InputFile("<stdin>", is_stdin=True)
    with path.open("rb") as f:
        report = run_audit(settings, [stdin], now=START, jobs=4, parallel_min_bytes=0, stdin=f)
    assert report.inputs.events == 10


# ----------------------------------------------------------------------------- across a cut


def test_reuse_across_the_cut_is_reported_once_with_the_later_example(tmp_path: Path) -> None:
    t = START
    head = [record("reused", t), record("retried", t + 1), b"\n", b"\n"]
    filler = [record(f"f-{i}", t + 2 + i) for i in range(200)]
    after = [
        b"{broken\n",  # a problem in part 2: its physical line number
        record("retried", t + 600),  # identical content: a duplicate send
        record("reused", t + 601, value=99.0),  # other content: the one reuse
    ]
    path = tmp_path / "cut.jsonl"
    lines = head + filler + after
    path.write_bytes(b"".join(lines))
    files = [InputFile(str(path))]
    parts = plan_parts(files, 2)
    assert len(parts) == 2
    cut = parts[1][0].start
    assert cut > len(b"".join(head)) and cut < len(b"".join(head + filler))
    broken_line = len(head) + len(filler) + 1

    settings = settings_from_dict({})
    reports = [
        run_audit(settings, files, now=t + 3600, jobs=j, parallel_min_bytes=0) for j in (1, 2)
    ]
    assert comparable(reports[0]) == comparable(reports[1])
    report = reports[1]
    (problem,) = report.inputs.problems
    assert (problem.line, problem.reason.startswith("invalid JSON")) == (broken_line, True)
    (ds,) = report.datasets
    (reuse,) = [f for f in ds.findings if f.code == EVENT_ID_REUSED]
    assert reuse.count == 1
    assert [(e.file, e.line) for e in reuse.examples] == [(str(path), broken_line + 2)]
    assert reuse.evidence["duplicate_sends"] == 1


@pytest.mark.parametrize(("intent", "sends", "reused", "dups"), REUSE_CASES)
def test_dedup_merge_at_every_cut_matches_sequential(
    intent: str, sends: list[tuple[dict[str, Any], float | None]], reused: int, dups: int
) -> None:
    deliveries = [delivery(ev, sent_at=s, line=i + 1) for i, (ev, s) in enumerate(sends)]
    sequential = Dedup(context())
    for d in deliveries:
        sequential.observe(d)
    expected = sequential.result().to_dict()
    for cut in range(1, len(deliveries)):
        earlier, later = Dedup(context()), Dedup(context_continuing())
        for d in deliveries[:cut]:
            earlier.observe(d)
        for d in deliveries[cut:]:
            later.observe(d)
        earlier.merge(pickle.loads(pickle.dumps(later)))
        assert earlier.result().to_dict() == expected, f"{intent} (cut before {cut + 1})"
        assert earlier.duplicate_sends == dups, intent


def test_dedup_head_takes_any_placeable_time_and_odd_ids() -> None:
    far = 9e10  # seconds in the year 4822: placeable, and past 32 bits
    sends = [
        (delivery({"event_name": "Lead", "event_time": far, "event_id": 7}), None),
        (delivery({"event_name": "Lead", "event_time": far + 1, "event_id": 7, "value": 1}), None),
        (delivery({"event_name": "Lead", "event_time": 1.0, "event_id": "é" * 300}), None),
    ]
    earlier, later = Dedup(context()), Dedup(context_continuing())
    earlier.observe(sends[0][0])
    for d, _ in sends[1:]:
        later.observe(d)
    earlier.merge(pickle.loads(pickle.dumps(later)))
    assert earlier.duplicate_sends == 1  # user_data/custom_data equal: a retry


def context_continuing() -> Any:
    ctx = context()
    return type(ctx)(ctx.dataset_id, ctx.now, ctx.settings, continuation=True)


def test_dataset_audit_pickles_without_caches_and_keeps_working(
    generated: tuple[list[InputFile], float],
) -> None:
    files, now = generated
    settings = settings_from_dict({})
    stats = ReadStats()
    audit = DatasetAudit("1234567890", settings, now)
    deliveries = list(read_deliveries(files[:1], stats))
    half = len(deliveries) // 2
    for d in deliveries[:half]:
        audit.observe(d)
    copy = pickle.loads(pickle.dumps(audit))
    for d in deliveries[half:]:
        audit.observe(d)
        copy.observe(d)  # rebuilt caches and observers work like the originals
    assert copy.report().to_dict() == audit.report().to_dict()
    hashes = next(c for c in copy.checks if c.id == "hash_validity")
    assert "_verdicts" not in pickle.loads(pickle.dumps(hashes)).__getstate__()


# ----------------------------------------------------------------------------- reading ranges


def test_ranges_read_every_line_once_with_physical_numbers(tmp_path: Path) -> None:
    body = b"".join(
        (b"\n" if i % 7 == 3 else b"{oops\n" if i % 11 == 5 else record(f"id-{i}", START + i))
        for i in range(300)
    )
    path = tmp_path / "r.jsonl"
    path.write_bytes(body + record("last", START + 999).rstrip(b"\n"))  # no final newline

    def read(files: list[InputFile]) -> tuple[list[tuple[int, str]], ReadStats]:
        stats = ReadStats(max_problems=10_000)
        seen = [(d.line, d.events[0]["event_id"]) for d in read_deliveries(files, stats)]
        return seen, stats

    whole, whole_stats = read([InputFile(str(path))])
    for jobs in (2, 3, 7):
        parts = plan_parts([InputFile(str(path))], jobs)
        got, stats = read([f for part in parts for f in part])
        assert got == whole
        assert stats.to_dict() == whole_stats.to_dict()
        assert stats.bytes_read == whole_stats.bytes_read == path.stat().st_size
    # first_line given instead of counted
    cut = plan_parts([InputFile(str(path))], 2)[1][0]
    assert cut.first_line is None
    counted, counted_stats = read([cut])
    first_line = path.read_bytes()[: cut.start].count(b"\n") + 1
    given, given_stats = read([InputFile(str(path), start=cut.start, first_line=first_line)])
    assert first_line > 1 and counted == given
    assert counted_stats.to_dict() == given_stats.to_dict()


def test_a_gzip_file_cannot_be_read_by_range(tmp_path: Path) -> None:
    path = tmp_path / "z.jsonl.gz"
    path.write_bytes(gzip.compress(record("a", START) * 3))
    with pytest.raises(ValueError, match="byte range"):
        list(read_deliveries([InputFile(str(path), start=10)], ReadStats()))


# ----------------------------------------------------------------------------- planning


def _line_starts(data: bytes) -> set[int]:
    return {0} | {i + 1 for i, c in enumerate(data) if c == 0x0A}


def _covered(parts: list[list[InputFile]]) -> dict[str, list[tuple[int, int]]]:
    ranges: dict[str, list[tuple[int, int]]] = {}
    for part in parts:
        for f in part:
            end = f.end if f.end is not None else os.path.getsize(f.path)
            ranges.setdefault(f.path, []).append((f.start, end))
    return ranges


def test_plan_cuts_at_line_starts_covers_each_byte_once_and_balances(tmp_path: Path) -> None:
    a, b, empty = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "e.jsonl"
    a.write_bytes(b"".join(record(f"a{i}", START + i) for i in range(400)))
    b.write_bytes(b"".join(record(f"b{i}", START + i) * (1 + i % 3) for i in range(300)))
    empty.write_bytes(b"")
    files = [InputFile(str(p)) for p in (a, empty, b)]
    total = sum(p.stat().st_size for p in (a, b))
    for jobs in (2, 3, 4, 8):
        parts = plan_parts(files, jobs)
        assert len(parts) == jobs
        flat = [f for part in parts for f in part]
        assert [f.path for f in flat] == sorted(
            [f.path for f in flat], key=[x.path for x in files].index
        )  # input order kept
        assert sum(f.start == 0 for f in flat) == 3  # each file starts (and counts) once
        for path, ranges in _covered(parts).items():
            data = Path(path).read_bytes()
            assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
            assert all(x[1] == y[0] for x, y in itertools.pairwise(ranges))
            assert {start for start, _ in ranges} <= _line_starts(data)
        sizes = [sum((f.end or os.path.getsize(f.path)) - f.start for f in p) for p in parts]
        assert max(sizes) - min(sizes) < 2 * len(record("x", START)) * 3 + total // 50
        assert all(f.first_line == (1 if f.start == 0 else None) for f in flat)


def test_plan_never_splits_gzip_and_keeps_stdin_whole(tmp_path: Path) -> None:
    z = tmp_path / "big.jsonl.gz"
    z.write_bytes(gzip.compress(os.urandom(200_000), compresslevel=0))  # incompressible
    small = tmp_path / "s.jsonl"
    small.write_bytes(record("s", START) * 20)
    files = [InputFile(str(small)), InputFile(str(z))]
    parts = plan_parts(files, 2)
    assert all(f.is_whole for part in parts for f in part if f.path == str(z))
    assert [f for part in parts for f in part if f.path == str(z)] == [InputFile(str(z))]
    stdin = InputFile("<stdin>", is_stdin=True)
    assert plan_parts([*files, stdin], 4) == [[*files, stdin]]
    assert plan_parts(files, 1) == [files]


def test_plan_weighs_gzip_by_its_uncompressed_size(tmp_path: Path) -> None:
    plain, z = tmp_path / "today.jsonl", tmp_path / "yesterday.jsonl.gz"
    plain.write_bytes(b"".join(record(f"p{i}", START + i) for i in range(300)))
    z.write_bytes(gzip.compress(record("z", START) * 3000))  # ~1 MB of lines, compressed
    assert z.stat().st_size < plain.stat().st_size / 10
    parts = plan_parts([InputFile(str(plain)), InputFile(str(z))], 2)
    assert parts == [[InputFile(str(plain))], [InputFile(str(z))]]  # not cut in today.jsonl


def test_plan_one_line_file_gives_one_part(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_bytes(record("only", START))
    assert plan_parts([InputFile(str(path))], 4) == [[InputFile(str(path))]]


# ----------------------------------------------------------------------------- workers


def _parts(n: int) -> list[list[InputFile]]:
    return [[InputFile(f"part-{i}")] for i in range(n)]


def _run(work: Callable[[int, Sequence[InputFile], Callable[[int], None]], Any]) -> list[Any]:
    got: list[Any] = []
    run_parts(_parts(3), work, lambda i, r: got.append((i, r)))
    return got


def test_run_parts_returns_results_in_order_with_progress() -> None:
    progress: list[int] = []

    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> str:
        advance(10 * (index + 1))
        return part[0].path

    got: list[tuple[int, str]] = []
    run_parts(_parts(3), work, lambda i, r: got.append((i, r)), on_bytes=progress.append)
    assert got == [(0, "part-0"), (1, "part-1"), (2, "part-2")]
    assert sum(progress) == 60


def test_worker_input_error_is_reraised_as_is() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> None:
        if index == 1:
            raise InputError("x.jsonl: cannot read: input/output error")

    with pytest.raises(InputError, match=r"x\.jsonl: cannot read"):
        _run(work)


def test_worker_bug_is_reraised_with_its_message_and_trace() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> None:
        raise KeyError("surprise")

    with pytest.raises(KeyError, match="surprise") as info:
        _run(work)
    assert any("parallel audit worker" in note for note in info.value.__notes__)


def test_worker_crash_is_a_clean_error_not_a_hang() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> None:
        if index == 2:
            os._exit(3)  # dies without a word

    with pytest.raises(WorkerError, match="worker 2 exited with status 3"):
        _run(work)


def test_unpicklable_result_is_reported() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> Any:
        return lambda: None  # cannot be pickled

    with pytest.raises(Exception, match="pickle"):
        _run(work)


def test_ctrl_c_terminates_the_workers() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> None:
        time.sleep(60)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)  # a timer: no thread before fork
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(work)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - began < 10
    assert multiprocessing.active_children() == []


def test_cli_jobs_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import cli

    path = tmp_path / "a.jsonl"
    path.write_bytes(record("x", START) * 3)
    runner = CliRunner()
    assert "--jobs" in runner.invoke(cli, ["audit", "--help"]).output
    for jobs in ("0", "1", "3"):
        args = ["audit", str(path), "--no-store", "-q", "--json", "-", "--jobs", jobs]
        result = runner.invoke(cli, [*args, "--now", "2026-11-20T12:00:00Z"])
        assert result.exit_code in (0, 1), result.output
        assert orjson.loads(result.output)["inputs"]["events"] == 3
    assert runner.invoke(cli, ["audit", str(path), "--jobs", "-1"]).exit_code == 2


def test_meanwhile_overlaps_the_workers_and_its_error_stops_them() -> None:
    def work(index: int, part: Sequence[InputFile], advance: Callable[[int], None]) -> int:
        time.sleep(0.2 if index == 0 else 60)
        return index

    order: list[str] = []
    with pytest.raises(StoreError, match="cannot open"):

        def failing() -> None:
            order.append("meanwhile")
            raise StoreError("db: cannot open")

        run_parts(_parts(2), work, lambda i, r: order.append(f"result {i}"), meanwhile=failing)
    assert order == ["meanwhile"]  # called before any result, while the workers run
    assert multiprocessing.active_children() == []


def test_value_sums_are_exact_so_any_cut_gives_the_same_float() -> None:
    rng = random.Random(5)
    values = [round(rng.uniform(0, 500), 2) for _ in range(1000)] + [3, 10**20, 1e-300]
    total = sum(map(exact_value, values))
    for cut in (1, 500, 1002):
        head = sum(map(exact_value, values[:cut]))
        tail = sum(map(exact_value, reversed(values[cut:])))
        assert value_float(head + tail) == value_float(total)
    assert value_float(total) == math.fsum(values)  # correctly rounded, like fsum
    assert value_float(sum(map(exact_value, [0.1] * 10))) == 1.0
    assert exact_value(float("nan")) == exact_value(float("inf")) == 0
    assert value_float(exact_value(1e308) * 10) == math.inf

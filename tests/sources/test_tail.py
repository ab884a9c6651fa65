"""Durable log tailing on real files: every complete line exactly once, across restarts,
rotations, truncations, archives and deletions."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from monitor.config import DatasetSettings
from monitor.model.observations import Delivery
from monitor.sources.logs.tail import LogTailer, TailRead
from monitor.store import Store
from monitor.store.cursors import load_cursors, save_cursors
from monitor.store.tables.core import metadata

NOW = 1_800_000_000.0
_serial = iter(range(1_000_000))


def record(dataset: str | None = None) -> bytes:
    """One delivery-record line with unique content (so no two files share a head)."""
    n = next(_serial)
    obj: dict[str, object] = {
        "sent_at": NOW - 60 + n / 1000,
        "request": {"data": [{"event_name": "Purchase", "event_time": NOW - 90, "event_id": n}]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    if dataset:
        obj["dataset_id"] = dataset
    return orjson.dumps(obj) + b"\n"


def write(path: Path, lines: int, mode: str = "ab") -> list[int]:
    ids = []
    with open(path, mode) as f:
        for _ in range(lines):
            line = record()
            ids.append(orjson.loads(line)["request"]["data"][0]["event_id"])
            f.write(line)
    return ids


def ids(deliveries: list[Delivery]) -> list[int]:
    return [e["event_id"] for d in deliveries for e in d.events]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def tailer(*globs: str, dataset: str = "111") -> LogTailer:
    return LogTailer([DatasetSettings(id=dataset, logs=list(globs))], settle=0.0)


def cycle(store: Store, t: LogTailer, now: float = NOW) -> tuple[list[Delivery], TailRead]:
    with store.engine.begin() as conn:
        read = t.read(load_cursors(conn), now)
        out = list(read)
        save_cursors(conn, read.cursors(), read.retired_before)
    return out, read


def active(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(Path(c.path).name for c in load_cursors(conn) if c.active)


def test_appends_are_read_once_with_file_line_numbers(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    first = write(log, 3)
    t = tailer(str(tmp_path / "*.jsonl"))
    got, read = cycle(store, t)
    assert ids(got) == first
    assert [d.line for d in got] == [1, 2, 3]
    assert {d.dataset_id for d in got} == {"111"}  # the glob's dataset
    assert read.counters.lines == 3 and read.stats.lines == 3
    assert cycle(store, t)[0] == []
    more = write(log, 2)
    got, _ = cycle(store, t)
    assert ids(got) == more
    assert [d.line for d in got] == [4, 5]


def test_restart_continues_from_the_stored_cursor(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    db = f"sqlite:///{tmp_path}/state.db"
    write(log, 4)
    with Store.open(db) as s:
        assert len(cycle(s, tailer(str(log)))[0]) == 4
    later = write(log, 2)
    with Store.open(db) as s:  # a new process: new store, new tailer
        got, _ = cycle(s, tailer(str(log)))
    assert ids(got) == later
    assert [d.line for d in got] == [5, 6]


def test_a_rolled_back_cycle_is_read_again(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    lines = write(log, 3)
    t = tailer(str(log))
    with pytest.raises(RuntimeError, match="crash"), store.engine.begin() as conn:
        read = t.read(load_cursors(conn), NOW)
        assert ids(list(read)) == lines
        save_cursors(conn, read.cursors(), read.retired_before)
        raise RuntimeError("crash before commit")
    assert ids(cycle(store, t)[0]) == lines


def test_a_half_written_line_waits_until_complete(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    whole = record()
    log.write_bytes(record() + whole[:20])
    t = tailer(str(log))
    assert len(cycle(store, t)[0]) == 1
    assert cycle(store, t)[0] == []  # still incomplete
    with open(log, "ab") as f:
        f.write(whole[20:])
    got, _ = cycle(store, t)
    assert ids(got) == [orjson.loads(whole)["request"]["data"][0]["event_id"]]
    assert got[0].line == 2
    assert got[0].file == str(log)


def test_save_refuses_a_partial_read(tmp_path: Path, store: Store) -> None:
    write(tmp_path / "app.jsonl", 2)
    with store.engine.begin() as conn:
        read = tailer(str(tmp_path / "app.jsonl")).read(load_cursors(conn), NOW)
        next(iter(read))
        with pytest.raises(RuntimeError, match="before the deliveries were all read"):
            save_cursors(conn, read.cursors(), read.retired_before)


def test_rename_rotation_finishes_the_old_file_first(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 3)
    t = tailer(str(log))  # the glob does not match the rotated name
    cycle(store, t)
    tail_of_old = write(log, 2)  # written after our last cycle, before the rotation
    os.rename(log, tmp_path / "app.jsonl.1")
    fresh = write(log, 2, "wb")
    got, read = cycle(store, t)
    assert ids(got) == tail_of_old + fresh
    assert [Path(d.file).name for d in got] == ["app.jsonl.1"] * 2 + ["app.jsonl"] * 2
    assert [d.line for d in got] == [4, 5, 1, 2]
    assert read.counters.rotated == 1
    # A writer still holding the old file: its late lines are read too, once.
    late = write(tmp_path / "app.jsonl.1", 1)
    assert ids(cycle(store, t)[0]) == late
    assert cycle(store, t)[0] == []
    assert active(store) == ["app.jsonl", "app.jsonl.1"]


def test_a_deleted_file_retires_its_cursor(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 2)
    t = tailer(str(tmp_path / "*.jsonl"))
    cycle(store, t)
    log.unlink()
    _, read = cycle(store, t)
    assert read.counters.retired == 1
    assert active(store) == []
    with store.engine.connect() as conn:
        (row,) = load_cursors(conn)
    assert row.retired_at == NOW and row.offset > 0
    # Retired rows are pruned after the retention period.
    cycle(store, t, now=NOW + 8 * 86400)
    with store.engine.connect() as conn:
        assert load_cursors(conn) == []


def test_replaced_file_reusing_the_path_starts_over(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 5)
    t = tailer(str(log))
    cycle(store, t)
    log.unlink()
    fresh = write(log, 6, "wb")  # may even reuse the inode: the head tells
    got, _ = cycle(store, t)
    assert ids(got) == fresh


def test_copytruncate(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 3)
    t = tailer(str(tmp_path / "app.jsonl*"))
    cycle(store, t)
    before_copy = write(log, 1)
    shutil.copyfile(log, tmp_path / "app.jsonl.1")  # the copy gets a new inode
    with open(log, "r+b") as f:
        f.truncate(0)
    after = write(log, 2)
    got, read = cycle(store, t)
    assert sorted(ids(got)) == sorted(before_copy + after)  # nothing twice, nothing lost
    assert read.counters.truncated == 1 and read.counters.continued == 1
    assert cycle(store, t)[0] == []


def test_truncated_file_without_copy_starts_over(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 4)
    t = tailer(str(log))
    cycle(store, t)
    with open(log, "r+b") as f:
        f.truncate(0)
    fresh = write(log, 1)
    assert ids(cycle(store, t)[0]) == fresh


def gzip_file(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, gzip.open(dst, "wb") as out:
        shutil.copyfileobj(f, out)


def test_gzip_archive_of_a_file_already_read_is_skipped(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 40)  # more than the 1 KiB head
    t = tailer(str(tmp_path / "app.jsonl*"))
    assert len(cycle(store, t)[0]) == 40
    # logrotate "compress": rename, gzip, remove the plain file; new file started.
    os.rename(log, tmp_path / "app.jsonl.1")
    gzip_file(tmp_path / "app.jsonl.1", tmp_path / "app.jsonl.1.gz")
    (tmp_path / "app.jsonl.1").unlink()
    fresh = write(log, 1, "wb")
    got, read = cycle(store, t)
    assert ids(got) == fresh
    assert read.counters.continued == 1
    assert cycle(store, t)[0] == []  # the archive is known now


def test_gzip_archive_holding_unread_lines_gives_only_those(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 3)
    t = tailer(str(tmp_path / "app.jsonl*"))
    cycle(store, t)
    unread = write(log, 2)
    gzip_file(log, tmp_path / "app.jsonl.1.gz")  # rotation between two cycles
    log.unlink()
    got, _ = cycle(store, t)
    assert ids(got) == unread
    assert [d.line for d in got] == [4, 5]
    assert {Path(d.file).name for d in got} == {"app.jsonl.1.gz"}


def test_a_new_unrelated_gzip_file_is_read(tmp_path: Path, store: Store) -> None:
    write(tmp_path / "app.jsonl", 2)
    t = tailer(str(tmp_path / "*.jsonl*"))
    cycle(store, t)
    other = tmp_path / "other.jsonl"
    lines = write(other, 3)
    gzip_file(other, tmp_path / "other.jsonl.gz")
    other.unlink()
    got, _ = cycle(store, t)
    assert ids(got) == lines
    assert cycle(store, t)[0] == []


def test_a_gzip_file_still_being_written_waits(tmp_path: Path, store: Store) -> None:
    src = tmp_path / "src.txt"
    lines = write(src, 2)
    gzip_file(src, tmp_path / "x.jsonl.gz")
    t = LogTailer(
        [DatasetSettings(id="1", logs=[str(tmp_path / "*.gz")])],
        settle=5.0,
        wall_clock=lambda: os.stat(tmp_path / "x.jsonl.gz").st_mtime + 1,
    )
    got, read = cycle(store, t)
    assert got == [] and read.counters.deferred == 1
    t.wall_clock = lambda: os.stat(tmp_path / "x.jsonl.gz").st_mtime + 6
    assert ids(cycle(store, t)[0]) == lines


def test_damaged_gzip_counts_a_malformed_line_and_is_not_retried(
    tmp_path: Path, store: Store
) -> None:
    src = tmp_path / "src.txt"
    write(src, 200)
    gzip_file(src, tmp_path / "x.jsonl.gz")
    data = (tmp_path / "x.jsonl.gz").read_bytes()
    (tmp_path / "x.jsonl.gz").write_bytes(data[: len(data) // 2])
    t = tailer(str(tmp_path / "*.gz"))
    got, read = cycle(store, t)
    assert 0 < len(got) < 200
    assert read.stats.malformed_lines == 1
    assert cycle(store, t)[0] == []


def test_many_files(tmp_path: Path, store: Store) -> None:
    files = [tmp_path / f"f{i:03}.jsonl" for i in range(60)]
    first = {i for f in files for i in write(f, 5)}
    t = tailer(str(tmp_path / "*.jsonl"))
    got, _ = cycle(store, t)
    assert len(got) == 300 and set(ids(got)) == first
    second = {i for f in files for i in write(f, 1)}
    got, _ = cycle(store, t)
    assert set(ids(got)) == second and len(got) == 60
    assert cycle(store, t)[0] == []


def test_dataset_of_the_glob_follows_a_renamed_file(tmp_path: Path, store: Store) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write(a, 1)
    write(b, 1)
    t = LogTailer([DatasetSettings(id="A", logs=[str(a)]), DatasetSettings(id="B", logs=[str(b)])])
    assert sorted(d.dataset_id for d in cycle(store, t)[0]) == ["A", "B"]
    write(a, 1)
    os.rename(a, tmp_path / "a.old")
    with open(b, "ab") as f:
        f.write(record(dataset="C"))  # a line's own dataset wins
    got, _ = cycle(store, t)
    assert sorted(d.dataset_id for d in got) == ["A", "C"]


def test_cursor_rows_hold_no_content(tmp_path: Path, store: Store) -> None:
    write(tmp_path / "app.jsonl", 2)
    cycle(store, tailer(str(tmp_path / "app.jsonl")))
    with store.engine.connect() as conn:
        (row,) = conn.execute(select(metadata.tables["log_cursors"])).mappings()
    assert len(row["fingerprint"]) == 64 and row["line"] == 2
    assert "Purchase" not in str(dict(row))


def test_a_byte_budget_splits_a_backlog_into_reads(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    lines = write(log, 50)
    size = log.stat().st_size
    t = LogTailer([DatasetSettings(id="1", logs=[str(log)])], max_bytes=size // 4)
    seen: list[int] = []
    reads = 0
    while True:
        got, read = cycle(store, t)
        seen += ids(got)
        reads += 1
        if not read.exhausted:
            break
    assert seen == lines and 4 <= reads <= 6


def test_a_line_longer_than_the_budget_is_still_read(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "app.jsonl"
    lines = write(log, 2)
    t = LogTailer([DatasetSettings(id="1", logs=[str(log)])], max_bytes=10)
    first, read = cycle(store, t)
    assert ids(first) == lines[:1] and read.exhausted
    second, _ = cycle(store, t)
    assert ids(second) == lines[1:]


def test_files_of_a_dataset_removed_from_the_config_are_let_go(
    tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "app.jsonl"
    write(log, 1)
    cycle(store, tailer(str(log), dataset="old"))
    write(log, 1)
    got, read = cycle(store, tailer(str(tmp_path / "other*.jsonl"), dataset="new"))
    assert got == [] and read.counters.retired == 1

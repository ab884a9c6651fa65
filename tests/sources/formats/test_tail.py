"""The daemon's tailer on sender formats: pairing across reads, rotations and sink files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import DatasetSettings
from monitor.model.observations import Delivery
from monitor.sources.logs.tail import LogTailer, TailRead
from monitor.store import Store
from monitor.store.cursors import load_cursors, save_cursors
from tests.sources.formats.test_readers import entry, request, response
from tests.sources.formats.util import DATA, TOKEN, js, run_file

NOW = 1778580000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


def tailer(*globs: str, **ds: Any) -> LogTailer:
    return LogTailer([DatasetSettings(id="1234567890", logs=list(globs), **ds)], settle=0.0)


def cycle(
    store: Store, t: LogTailer, now: float = NOW, *, save: bool = True
) -> tuple[list[Delivery], TailRead]:
    """One daemon pass: read, save the cursors, commit, keep the state (unless not
    ``save``: the transaction then fails and nothing is kept)."""
    with store.engine.begin() as conn:
        read = t.read(load_cursors(conn), now)
        out = list(read)
        if save:
            save_cursors(conn, read.cursors(), read.retired_before)
    if save:
        read.keep()
    return out, read


def append(path: Path, *lines: str) -> None:
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def test_a_request_pairs_with_its_response_read_a_cycle_later(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "sgtm.log"
    append(log, "Listening on port 8080", js(request(TraceId="t1")))
    t = tailer(str(tmp_path / "*.log"))
    got, read = cycle(store, t)
    assert got == []
    assert read.stats.formats == {"gtms": 2}
    append(log, js(response(TraceId="t1")))
    (d,), read = cycle(store, t)
    assert (d.file, d.line, d.response and d.response.status) == (str(log), 2, 200)
    assert read.stats.formats == {"gtms": 1}


def test_pairs_across_a_rotation(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "sgtm.log"
    append(log, js(request()))
    t = tailer(str(tmp_path / "sgtm.log*"))
    assert cycle(store, t)[0] == []
    os.rename(log, tmp_path / "sgtm.log.1")
    append(log, js(response()))
    (d,), read = cycle(store, t)
    assert (d.file, d.line) == (str(log), 1)  # where its Request was read, before the rename
    assert read.stats.unpaired_responses == 0


def test_a_cycle_that_is_not_saved_is_read_again_from_the_same_state(
    tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "sgtm.log"
    append(log, js(request()))
    t = tailer(str(log))
    cycle(store, t)
    append(log, js(response()))
    first, _ = cycle(store, t, save=False)  # e.g. the transaction failed
    again, _ = cycle(store, t)
    assert len(first) == len(again) == 1
    assert again[0].response is not None


def test_waiting_calls_are_given_up_when_their_stream_goes_quiet(
    tmp_path: Path, store: Store
) -> None:
    log = tmp_path / "sgtm.log"
    append(log, js(request()))
    t = tailer(str(log))
    assert cycle(store, t)[0] == []
    assert cycle(store, t, NOW + 60)[0] == []
    (d,), _ = cycle(store, t, NOW + 400)
    assert d.response is None  # unknown outcome


def test_sink_files_are_followed_as_they_appear(tmp_path: Path, store: Store) -> None:
    hour = tmp_path / "run.googleapis.com" / "stdout" / "2026" / "05" / "12"
    hour.mkdir(parents=True)
    t = tailer(str(tmp_path / "**" / "*.json"))
    first = hour / "09:00:00_09:59:59_S0.json"
    append(first, entry(1, "2026-05-12T09:59:59.9Z", request()))
    assert cycle(store, t)[0] == []
    append(hour / "10:00:00_10:59:59_S0.json", entry(2, "2026-05-12T10:00:00.1Z", response()))
    got, read = cycle(store, t, NOW + 60)
    assert [d.response and d.response.status for d in got] == [200]
    assert got[0].duration_ms == pytest.approx(200.0)
    assert read.stats.formats == {"cloud-logging": 1}


def test_logs_format_is_used_without_detection(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "sgtm.log"
    append(log, "Listening on port 8080")  # too little to tell: an auto tailer waits
    assert cycle(store, tailer(str(log)))[1].stats.lines == 0
    append(log, js(request()), js(response()))
    forced = tailer(str(log), logs_format="gtms")
    (d,), _ = cycle(store, forced)
    assert d.response is not None


@pytest.mark.parametrize("name", ["gtms.log", "woocommerce.log", "cloud-logging.sink.json"])
def test_a_sample_tailed_line_by_line_gives_the_audit_deliveries(
    tmp_path: Path, store: Store, name: str
) -> None:
    lines = (DATA / name).read_text().splitlines(keepends=True)
    log = tmp_path / name
    t = tailer(str(log))
    got: list[Delivery] = []
    for i, line in enumerate(lines):
        with open(log, "a") as f:
            f.write(line)
        got += cycle(store, t, NOW + i)[0]
    got += cycle(store, t, NOW + 10_000)[0]  # quiet: the last calls are given up on
    want = run_file(DATA / name)
    assert len(got) == len(want.records)
    assert sorted(d.line for d in got) == sorted(e.line for e in want.records)
    assert TOKEN not in repr(got)


def test_only_new_stream_state_is_copied_per_cycle(tmp_path: Path, store: Store) -> None:
    log = tmp_path / "sgtm.log"
    shutil.copy(DATA / "gtms.log", log)
    t = tailer(str(log))
    cycle(store, t)
    assert set(t.senders.streams) == {("1234567890", "gtms")}

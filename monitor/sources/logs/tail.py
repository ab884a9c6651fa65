"""Durable tailing of the datasets' delivery logs: each complete line is read exactly once.

How far every file has been read is kept in cursors (``monitor.model.cursors.Cursor``,
stored by ``monitor.store.cursors``), one per file incarnation, identified by
``(device, inode)`` and checked by a fingerprint of its first KiB. One cycle
(``LogTailer.read(cursors, now)``):

1. Every active cursor is located: under one of the globbed paths, at its last path, or
   by its inode in its last directory (``app.log`` renamed to ``app.log.1`` by a
   rotation is found there and finished *before* the new ``app.log`` is started).
   A cursor whose file is gone is retired.
2. A file found again is checked: smaller than the cursor, or a different head
   (copytruncate, or a new file that reuses the inode) retires the cursor and the file
   starts over as a new incarnation. Otherwise its new *complete* lines are read: a last
   line without ``"\\n"`` waits until it is complete.
3. Every other globbed file is new, oldest first. If its head matches a cursor already
   read (a copy made by copytruncate, or a ``.gz`` archive of a file already read), it
   continues where that cursor stopped (nothing left: skipped); otherwise it is read
   from the beginning. A gzip file is read whole (all of it is complete), once it has not
   changed for ``settle`` seconds (``gzip`` may still be writing it).

Nothing is written here: the caller saves ``TailRead.cursors()`` in the same transaction
as whatever it does with the deliveries: a crash at any point leaves the
cursors where the last committed cycle put them, so nothing is lost and nothing is
counted twice. Retired rows are kept ``retired_keep`` seconds (default 7 days) to
recognise late archives, then deleted.

Files are read through a descriptor opened once and checked with ``fstat``: a rotation
between finding a file and reading it cannot make us read another file's bytes.

Files in a sender format are read by format readers that outlive a cycle
(``monitor.sources.logs.tailformats``): call ``TailRead.keep`` once the cursors are
committed.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import io
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from monitor.config import DatasetSettings
from monitor.model.cursors import Cursor, Identity
from monitor.model.observations import Delivery, ReadStats
from monitor.sources.logs.formats import V1
from monitor.sources.logs.paths import UNKNOWN_DATASET, InputFile
from monitor.sources.logs.reader import read_deliveries
from monitor.sources.logs.tailformats import SenderState
from monitor.sources.logs.tailio import (
    GZIP_DAMAGE,
    HEAD_BYTES,
    CountingReader,
    first_newline_end,
    gzip_head,
    gzip_prefix,
    last_newline_end,
    pread,
    skip_bytes,
)

# Bytes read per TailRead (then ``exhausted``): bounds how long one transaction holds the
# database's write lock while a first start reads a large history.
MAX_BYTES_PER_READ = 64 * 1024 * 1024
RETIRED_KEEP = 7 * 86400.0
GZIP_SETTLE = 5.0
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BUFFER = 1 << 20

log = logging.getLogger(__name__)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class WatchedFile:
    """A file found by a dataset's ``logs`` glob, with what ``stat`` said about it."""

    path: str
    dataset_id: str
    device: int
    inode: int
    size: int
    mtime: float

    @property
    def identity(self) -> Identity:
        return (self.device, self.inode)


@dataclass(slots=True)
class TailCounters:
    """What one cycle did, for job bookkeeping and logs."""

    files: int = 0  # files that yielded new lines
    lines: int = 0  # physical lines consumed (blank and malformed included)
    bytes: int = 0  # (decompressed) bytes consumed
    started: int = 0  # new cursors
    rotated: int = 0  # cursors found under a new name
    truncated: int = 0  # cursors retired because the file was truncated or replaced
    retired: int = 0  # cursors retired because the file is gone
    continued: int = 0  # new files recognised as a copy/archive of a file already read
    deferred: int = 0  # gzip files still changing, left for the next cycle
    unreadable: int = 0  # files that could not be opened (left for the next cycle)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def discover(datasets: Sequence[DatasetSettings]) -> list[WatchedFile]:
    """Regular files matched by the datasets' ``logs`` globs; a file matched by several
    datasets belongs to the first (as ``DatasetResolver`` decides), one entry per inode."""
    found: dict[Identity, WatchedFile] = {}
    for ds in datasets:
        for pattern in ds.logs:
            for path in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
                seen = _stat_file(path, ds.id)
                if seen is not None and seen.identity not in found:
                    found[seen.identity] = seen
    return list(found.values())


def _stat_file(path: str, dataset_id: str) -> WatchedFile | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # vanished between glob and stat: next cycle will tell
    if not stat.S_ISREG(st.st_mode):
        return None
    return WatchedFile(path, dataset_id, st.st_dev, st.st_ino, st.st_size, st.st_mtime)


class LogTailer:
    """Reads the new complete lines of every dataset's logs, cycle after cycle.

    ``max_line_bytes``/``max_problems`` are those of ``[input]``; ``max_bytes`` bounds one
    read (``None``: no bound; see ``TailRead.exhausted``); ``settle`` is how long a gzip
    file must be unchanged before it is read; ``wall_clock`` (compared with file
    modification times) is injectable for tests.
    """

    def __init__(
        self,
        datasets: Sequence[DatasetSettings],
        *,
        max_line_bytes: int = 16 * 1024 * 1024,
        max_problems: int = 200,
        max_bytes: int | None = MAX_BYTES_PER_READ,
        settle: float = GZIP_SETTLE,
        retired_keep: float = RETIRED_KEEP,
        wall_clock: Callable[[], float] = time.time,
        graph_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.datasets = list(datasets)
        self.max_line_bytes = max_line_bytes
        self.max_problems = max_problems
        self.max_bytes = max_bytes
        self.settle = settle
        self.retired_keep = retired_keep
        self.wall_clock = wall_clock
        self.senders = SenderState(
            self.datasets, graph_hosts=graph_hosts, max_line_bytes=max_line_bytes
        )

    def read(self, cursors: list[Cursor], now: float) -> TailRead:
        """Start one cycle from the stored ``cursors`` (``monitor.store.cursors``): files
        are read while the returned ``TailRead`` is iterated; ``TailRead.cursors()`` then
        holds what to save."""
        return TailRead(self, cursors, discover(self.datasets), now)


class TailRead:
    """One cycle of a ``LogTailer``: iterate it once for the deliveries, then ``save``.

    ``stats`` holds the reader's counts (malformed lines with file and line) and
    ``counters`` what happened to files and cursors; both are complete once the iteration
    is over. ``exhausted``: the byte budget ran out before every file was read to its
    end; after ``save``, another read continues where this one stopped.
    """

    def __init__(
        self, tailer: LogTailer, cursors: list[Cursor], files: list[WatchedFile], now: float
    ) -> None:
        self._tailer = tailer
        self._cursors = cursors
        self._files = files
        self._now = now
        self._started = False
        self._finished = False
        self._left = tailer.max_bytes
        self.exhausted = False
        self.stats = ReadStats(max_problems=tailer.max_problems)
        self.counters = TailCounters()
        self._senders = tailer.senders.cycle(self.stats, now)

    # -- the cycle ------------------------------------------------------------------

    def __iter__(self) -> Iterator[Delivery]:
        if self._started:
            raise RuntimeError("a TailRead is iterated once")
        self._started = True
        by_identity = {f.identity: f for f in self._files}
        configured = {ds.id for ds in self._tailer.datasets}
        handled: set[Identity] = set()
        # Known files first, oldest cursor first: a rotated file is finished before the
        # file that replaced it is started.
        for cursor in [c for c in self._cursors if c.active]:
            found = by_identity.get(cursor.identity)
            if found is None and cursor.dataset_id in configured:
                found = self._find_moved(cursor)  # a dataset no longer configured: let go
            if found is None:
                self._retire(cursor)
                self.counters.retired += 1
                continue
            handled.add(found.identity)
            if found.identity in by_identity and found.dataset_id != cursor.dataset_id:
                cursor.dataset_id = found.dataset_id  # the config now maps it elsewhere
                self._touch(cursor)
            yield from self._follow(cursor, found)
        new = [f for f in self._files if f.identity not in handled]
        for watched in sorted(new, key=lambda f: (f.mtime, f.path)):
            yield from self._start(watched, None)
        yield from self._senders.give_up_idle()
        self._finished = True

    @property
    def retired_before(self) -> float:
        """Retired cursors older than this are not worth keeping (``retired_keep``)."""
        return self._now - self._tailer.retired_keep

    def cursors(self) -> list[Cursor]:
        """Every cursor after this cycle, the changed ones ``dirty``: what the caller
        saves in the transaction that used the deliveries. Only after a complete
        iteration."""
        if not self._finished:
            raise RuntimeError("TailRead.cursors before the deliveries were all read")
        return self._cursors

    def keep(self) -> None:
        """Make this cycle's sender-format state (calls waiting for their answer) the
        tailer's. Call it once the transaction that saved ``cursors()`` is committed: a
        cycle that is not kept is read again, from the same cursors and the same state."""
        if not self._finished:
            raise RuntimeError("TailRead.keep before the deliveries were all read")
        self._senders.keep()

    # -- locating ---------------------------------------------------------------------

    def _find_moved(self, cursor: Cursor) -> WatchedFile | None:
        """The cursor's inode under its last path or another name in the same directory
        (a rename rotation to a name the globs may not match)."""
        dataset = cursor.dataset_id or UNKNOWN_DATASET
        at_path = _stat_file(cursor.path, dataset)
        if at_path is not None and at_path.identity == cursor.identity:
            return at_path
        try:
            entries = list(os.scandir(os.path.dirname(cursor.path) or "."))
        except OSError:
            return None
        for entry in entries:
            try:
                if entry.inode() != cursor.inode or not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            moved = _stat_file(entry.path, dataset)
            if moved is not None and moved.identity == cursor.identity:
                return moved
        return None

    # -- known files ------------------------------------------------------------------

    def _follow(self, cursor: Cursor, watched: WatchedFile) -> Iterator[Delivery]:
        """Go on reading a file that has a cursor, or start it over if it changed."""
        with self._open(watched) as raw:
            if raw is None:
                return
            if cursor.path != watched.path:
                cursor.path = watched.path
                self._touch(cursor)
                self.counters.rotated += 1
            if cursor.compressed:
                if watched.size == cursor.size:
                    return  # an archive does not change: read already
                if self._unsettled(watched):
                    return
            elif self._same_content(cursor, raw, watched.size):
                yield from self._read_plain(cursor, raw, watched.size)
                return
            # Truncated, replaced under the same inode, or a rewritten archive.
            self._retire(cursor)
            self.counters.truncated += 1
            yield from self._start(watched, raw)

    def _same_content(self, cursor: Cursor, raw: BinaryIO, size: int) -> bool:
        """Whether the file still holds what the cursor read: long enough, same head.
        Refreshes the fingerprint while the head is shorter than ``HEAD_BYTES``."""
        if size < cursor.offset or size < cursor.head_bytes:
            return False
        head = pread(raw, 0, HEAD_BYTES)
        if _sha(head[: cursor.head_bytes]) != cursor.fingerprint:
            return False
        if len(head) > cursor.head_bytes:
            cursor.head_bytes, cursor.fingerprint = len(head), _sha(head)
            self._touch(cursor)
        return True

    # -- new files ----------------------------------------------------------------------

    def _start(self, watched: WatchedFile, opened: BinaryIO | None) -> Iterator[Delivery]:
        """Start a file without an active cursor: a continuation of a copy or archive
        already read, or a file read from its beginning."""
        with self._open(watched, opened) as raw:
            if raw is None or self._out_of_budget():
                return  # no cursor yet: the file is still new next time
            compressed = pread(raw, 0, 2) == _GZIP_MAGIC
            if compressed and self._unsettled(watched):
                return
            head = gzip_head(raw) if compressed else pread(raw, 0, HEAD_BYTES)
            origin = self._origin(head, raw, watched, compressed)
            cursor = self._new_cursor(watched, compressed, head, origin)
            self._cursors.append(cursor)
            if origin is not None:
                self.counters.continued += 1
            self.counters.started += 1
            if compressed:
                yield from self._read_gzip(cursor, raw)
            else:
                yield from self._read_plain(cursor, raw, watched.size)

    def _origin(
        self, head: bytes, raw: BinaryIO, watched: WatchedFile, compressed: bool
    ) -> Cursor | None:
        """The cursor this file continues (same head, read furthest), if any."""
        hashes: dict[int, str] = {}
        best: Cursor | None = None
        for c in self._cursors:
            if c.offset == 0 or c.head_bytes == 0 or len(head) < c.head_bytes:
                continue
            if c.identity == watched.identity and c.active:
                continue
            digest = hashes.get(c.head_bytes) or hashes.setdefault(
                c.head_bytes, _sha(head[: c.head_bytes])
            )
            if digest != c.fingerprint or (best is not None and best.offset >= c.offset):
                continue
            # A plain copy must hold the cursor's lines: long enough, a newline before it.
            if compressed or (c.offset <= watched.size and pread(raw, c.offset - 1, 1) == b"\n"):
                best = c
        return best

    def _new_cursor(
        self, watched: WatchedFile, compressed: bool, head: bytes, origin: Cursor | None
    ) -> Cursor:
        return Cursor(
            path=watched.path,
            dataset_id=origin.dataset_id if origin and origin.dataset_id else watched.dataset_id,
            device=watched.device,
            inode=watched.inode,
            compressed=compressed,
            offset=origin.offset if origin else 0,
            line=origin.line if origin else 0,
            size=watched.size,
            head_bytes=len(head),
            fingerprint=_sha(head),
            created_at=self._now,
            updated_at=self._now,
            dirty=True,
        )

    # -- reading ------------------------------------------------------------------------

    def _read_plain(self, cursor: Cursor, raw: BinaryIO, size: int) -> Iterator[Delivery]:
        """The complete lines between the cursor and the last newline before ``size``."""
        if cursor.size != size:
            cursor.size = size
            self._touch(cursor)
        if self._out_of_budget():
            return
        fmt = self._format(cursor, raw, compressed=False)
        if fmt is None:
            return  # too little of the file yet to tell its format
        end = self._read_end(raw, cursor.offset, size)
        if end <= cursor.offset:
            return
        raw.seek(cursor.offset)
        stream = CountingReader(raw, limit=end - cursor.offset)
        yield from self._deliveries(cursor, stream, fmt)
        self._advance(cursor, stream.total, stream.newlines)

    def _read_gzip(self, cursor: Cursor, raw: BinaryIO) -> Iterator[Delivery]:
        """A whole archive, from the cursor's (decompressed) offset to its end."""
        fmt = self._format(cursor, raw, compressed=True) or V1
        raw.seek(0)
        unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
        stream = CountingReader(unzipped)
        try:
            skip_bytes(unzipped, cursor.offset)
            yield from self._deliveries(cursor, stream, fmt)
        except GZIP_DAMAGE:
            # Damage before the first line (the reader reports damage after it).
            self.stats.problem(cursor.path, cursor.line + 1, "gzip: damaged archive")
        finally:
            unzipped.close()
        complete = stream.total if stream.at_eof and not stream.damaged else stream.last_newline
        trailing = int(complete > stream.last_newline)  # a last line without "\n"
        self._advance(cursor, complete, stream.newlines + trailing)

    def _deliveries(self, cursor: Cursor, stream: CountingReader, fmt: str) -> Iterator[Delivery]:
        """Parse ``stream`` with the log reader; line numbers and the dataset are those of
        the file (the reader sees a stream that starts at the cursor)."""
        if fmt != V1:
            yield from self._sender_deliveries(cursor, stream, fmt)
            return
        base, dataset = cursor.line, cursor.dataset_id
        problems_before = len(self.stats.problems)
        source = InputFile(cursor.path, is_stdin=True, fmt=V1)
        # The reader's stdin path parses a stream we opened: no second open by name.
        with io.BufferedReader(stream, _READ_BUFFER) as buffered:
            deliveries = read_deliveries(
                [source], self.stats, max_line_bytes=self._tailer.max_line_bytes,
                stdin=buffered,
            )  # fmt: skip
            for delivery in deliveries:
                delivery.line += base
                if delivery.dataset_id == UNKNOWN_DATASET and dataset:
                    delivery.dataset_id = dataset
                yield delivery
        for problem in self.stats.problems[problems_before:]:
            problem.line += base

    def _sender_deliveries(
        self, cursor: Cursor, stream: CountingReader, fmt: str
    ) -> Iterator[Delivery]:
        yield from self._senders.deliveries(
            cursor.dataset_id, fmt, stream, name=cursor.path, first_line=cursor.line + 1,
            first_offset=cursor.offset,
        )  # fmt: skip

    def _format(self, cursor: Cursor, raw: BinaryIO, *, compressed: bool) -> str | None:
        def head(n: int) -> bytes:
            return gzip_prefix(raw, n) if compressed else pread(raw, 0, n)

        return self._senders.format(
            cursor.dataset_id, cursor.identity, cursor.offset, head, complete=compressed
        )

    def _read_end(self, raw: BinaryIO, start: int, size: int) -> int:
        """Where this read of ``[start, size)`` stops: after the last newline, or within
        the byte budget (at least one whole line, however long)."""
        if self._left is None or start + self._left >= size:
            return last_newline_end(raw, start, size)
        self.exhausted = True
        end = last_newline_end(raw, start, start + self._left)
        if end > start:
            return end
        return first_newline_end(raw, start + self._left, size) or start

    def _out_of_budget(self) -> bool:
        if self._left is not None and self._left <= 0:
            self.exhausted = True
            return True
        return False

    def _advance(self, cursor: Cursor, consumed: int, lines: int) -> None:
        if self._left is not None:
            self._left -= consumed
        if consumed:
            self.counters.files += 1
            cursor.offset += consumed
            cursor.line += lines
            self.counters.bytes += consumed
            self.counters.lines += lines
            self._touch(cursor)

    # -- helpers ------------------------------------------------------------------------

    def _open(self, watched: WatchedFile, opened: BinaryIO | None = None) -> _Opened:
        return _Opened(self, watched, opened)

    def _unsettled(self, watched: WatchedFile) -> bool:
        if self._tailer.wall_clock() - watched.mtime < self._tailer.settle:
            self.counters.deferred += 1
            return True
        return False

    def _retire(self, cursor: Cursor) -> None:
        cursor.retired_at = self._now
        self._touch(cursor)

    def _touch(self, cursor: Cursor) -> None:
        cursor.updated_at = self._now
        cursor.dirty = True


class _Opened:
    """Context manager: the watched file opened for reading and checked with ``fstat``
    (``None`` when it cannot be opened or is no longer the same file: next cycle).
    An already opened file is passed through and left open."""

    def __init__(self, read: TailRead, watched: WatchedFile, opened: BinaryIO | None) -> None:
        self._read = read
        self._watched = watched
        self._file = opened
        self._owned = opened is None

    def __enter__(self) -> BinaryIO | None:
        if self._file is not None:
            return self._file
        try:
            self._file = open(self._watched.path, "rb", buffering=0)
        except FileNotFoundError:
            return None  # rotated away since the glob: found by inode next cycle
        except OSError as err:
            self._read.counters.unreadable += 1
            log.warning(
                "cannot open log file",
                extra={"path": self._watched.path, "error": err.strerror},
            )
            return None
        st = os.fstat(self._file.fileno())
        if (st.st_dev, st.st_ino) != self._watched.identity:
            self._file.close()
            self._file = None
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._owned and self._file is not None:
            self._file.close()

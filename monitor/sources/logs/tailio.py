"""Byte-level reading for the tailer: a counting raw stream, positional reads, newline
search. No state of their own beyond one read; ``monitor.sources.logs.tail`` decides what
to read."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import Any, BinaryIO

from monitor.errors import InputError

HEAD_BYTES = 1024  # the fingerprinted head of a file
_TAIL_CHUNK = 64 * 1024  # backwards search for the last newline
_SKIP_CHUNK = 1 << 20
GZIP_DAMAGE: tuple[type[Exception], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


class CountingReader(io.RawIOBase):
    """A raw stream over ``inner`` (at most ``limit`` bytes) that counts what it hands
    out: bytes, newlines and the end of the last newline; notes gzip damage and EOF."""

    def __init__(self, inner: Any, limit: int | None = None) -> None:
        super().__init__()
        # read1: a gzip stream then hands out what it decompressed before any damage,
        # instead of raising and losing the lines of the whole request.
        self._read = getattr(inner, "read1", inner.read)
        self._left = limit
        self.total = 0
        self.newlines = 0
        self.last_newline = 0  # bytes up to and including the last "\n" handed out
        self.at_eof = False
        self.damaged = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer) if self._left is None else min(len(buffer), self._left)
        if want <= 0:
            self.at_eof = True
            return 0
        try:
            data = self._read(want)
        except GZIP_DAMAGE:
            self.damaged = True
            raise
        if not data:
            self.at_eof = True
            return 0
        n = len(data)
        buffer[:n] = data
        count = data.count(b"\n")
        if count:
            self.newlines += count
            self.last_newline = self.total + data.rindex(b"\n") + 1
        self.total += n
        if self._left is not None:
            self._left -= n
        return n


def pread(raw: BinaryIO, offset: int, size: int) -> bytes:
    if offset < 0 or size <= 0:
        return b""
    try:
        return os.pread(raw.fileno(), size, offset)
    except OSError as err:
        raise InputError(f"{raw.name}: cannot read: {(err.strerror or 'error').lower()}") from None


def gzip_prefix(raw: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` decompressed bytes from the start of a gzip file (less when it is
    damaged: reading it reports that)."""
    raw.seek(0)
    out = b""
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            while len(out) < limit:
                chunk = unzipped.read(min(_SKIP_CHUNK, limit - len(out)))
                if not chunk:
                    break
                out += chunk
    except GZIP_DAMAGE:
        pass
    return out


def gzip_head(raw: BinaryIO) -> bytes:
    """The first ``HEAD_BYTES`` decompressed bytes (fewer if shorter or damaged)."""
    raw.seek(0)
    out = b""
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            while len(out) < HEAD_BYTES:
                chunk = unzipped.read(HEAD_BYTES - len(out))
                if not chunk:
                    break
                out += chunk
    except GZIP_DAMAGE:
        pass  # the read reports the damage with file and line
    return out


def skip_bytes(stream: Any, count: int) -> None:
    """Discard ``count`` decompressed bytes (GzipFile.seek would do the same, slower)."""
    while count > 0:
        chunk = stream.read(min(_SKIP_CHUNK, count))
        if not chunk:
            return
        count -= len(chunk)


def first_newline_end(raw: BinaryIO, start: int, size: int) -> int | None:
    """The offset just after the first ``"\n"`` in ``[start, size)``, if any."""
    while start < size:
        chunk = pread(raw, start, min(_TAIL_CHUNK, size - start))
        if not chunk:
            return None
        found = chunk.find(b"\n")
        if found >= 0:
            return start + found + 1
        start += len(chunk)
    return None


def last_newline_end(raw: BinaryIO, start: int, size: int) -> int:
    """The offset just after the last ``"\\n"`` in ``[start, size)``; ``start`` if none.
    Searches backwards: only the unfinished last line is scanned."""
    end = size
    while end > start:
        begin = max(start, end - _TAIL_CHUNK)
        chunk = pread(raw, begin, end - begin)
        found = chunk.rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return start

"""Reading a file in a sender format: detection, then lines -> v1 records -> ``Delivery``.

``monitor.sources.logs.formats`` turns what senders log (docs/contracts.md §7) into v1
delivery records; this module runs a format reader over one opened file and hands each
record to the v1 parser, so that a delivery is judged the same whatever wrote it. The
file is read line by line as in ``reader``; the format reader holds at most its pending
calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from monitor.errors import InputError
from monitor.model.observations import Delivery
from monitor.sources.logs.fields import Malformed
from monitor.sources.logs.formats import (
    AUTO,
    SNIFF_BYTES,
    SNIFF_LINES,
    V1,
    Emitted,
    FormatReader,
    detect,
    open_reader,
)

if TYPE_CHECKING:
    from monitor.sources.logs.paths import InputFile
    from monitor.sources.logs.reader import _LineSource, _Reader

_NEWLINE = 0x0A
_GZIP_MAGIC = b"\x1f\x8b"


class Replay:
    """A line source that first serves the lines read to detect the format, then the
    rest of the source (and then an error met while detecting, if any)."""

    def __init__(self, lines: list[bytes], source: _LineSource, error: Exception | None) -> None:
        self._lines = lines
        self._next = 0
        self._source = source
        self._error = error

    def readline(self, size: int = -1, /) -> bytes:
        if self._next < len(self._lines):
            self._next += 1
            return self._lines[self._next - 1]
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._source.readline(size)


def sniff(
    source: _LineSource, chunk: int, damage: tuple[type[Exception], ...]
) -> tuple[Replay, str]:
    """Read the first lines of ``source`` (``chunk`` bytes at most per read) and detect
    its format (v1 when they do not tell); returns a source that replays them."""
    lines: list[bytes] = []
    error: Exception | None = None
    seen = size = 0
    try:
        while seen < SNIFF_LINES and size < SNIFF_BYTES:
            line = source.readline(chunk)
            if not line:
                break
            lines.append(line)
            size += len(line)
            seen += bool(line.strip())
            if line[-1] != _NEWLINE:
                break  # a long line: what we have must do
    except damage as err:
        error = err  # raised again, in its place, by the reader
    return Replay(lines, source, error), detect(lines) or V1


def resolve_format(file: InputFile) -> InputFile:
    """``file`` with ``fmt`` decided from its content when it is ``auto`` (a plain file
    only: gzip files and stdin are detected when read). Before a parallel audit cuts
    files into ranges: only v1 files may be cut."""
    if file.fmt != AUTO or file.is_stdin or not file.is_whole:
        return file
    try:
        with open(file.path, "rb") as raw:
            if raw.read(2) == _GZIP_MAGIC:
                return file
            raw.seek(0)
            head = raw.read(SNIFF_BYTES).splitlines(keepends=True)
    except OSError:
        return file  # the reader reports it
    return dataclasses.replace(file, fmt=detect(head[:SNIFF_LINES]) or V1)


def read_formatted(
    reader: _Reader,
    fmt: str,
    name: str,
    source: _LineSource,
    position: Callable[[], int] | None,
    dataset: str,
    graph_hosts: frozenset[str],
    *,
    entries: FormatReader | None = None,
    flush: bool = True,
    first_line: int = 1,
    first_offset: int = 0,
) -> Iterator[Delivery]:
    """The deliveries of one opened file (or of the part of it from ``first_line`` /
    ``first_offset`` on) written in sender format ``fmt``.

    ``entries``: a format reader that goes on from earlier reads (a tailer's: its waiting
    calls pair with this read's answers); by default a fresh one. ``flush``: the input
    ends here (calls still waiting are given up on); a tailer passes False.
    """
    from monitor.sources.logs import reader as v1  # the v1 parser and its line reading

    stats = reader.stats
    if entries is None:
        entries = open_reader(fmt, graph_hosts=graph_hosts, max_entry_bytes=reader.max_line_bytes)
    entries.source = name
    entries.on_problem = lambda line, why: stats.problem(name, line, why)
    before = dataclasses.replace(entries.counts)
    readline = source.readline
    first = min(reader.max_line_bytes + 1, v1._SKIP_CHUNK)
    lineno = first_line - 1
    offset = first_offset
    blanks = events = reported = 0
    mark = offset + v1._PROGRESS_EVERY
    line: bytes | None

    def deliveries(emitted: list[Emitted]) -> Iterator[Delivery]:
        nonlocal events
        for e in emitted:
            try:
                delivery = reader._parse(e.record, e.file or name, e.line, dataset)
            except Malformed as err:
                stats.problem(e.file or name, e.line, err.args[0])
                continue
            if delivery is not None:
                events += len(delivery.events)
                yield delivery

    try:
        while True:
            try:
                chunk = readline(first)
                size = len(chunk)
                line = chunk
                if size == first and chunk[-1] != _NEWLINE:
                    line, size = v1._read_long(readline, chunk, reader.max_line_bytes)
            except v1._GZIP_DAMAGE as err:
                stats.problem(name, lineno + 1, v1._gzip_reason(err))
                break
            except OSError as err:
                raise InputError(f"{name}: cannot read: {v1._os_reason(err)}") from None
            if not size:
                break
            lineno += 1
            if line is None:
                stats.problem(name, lineno, f"line longer than {reader.max_line_bytes} bytes")
            else:
                blanks += not line.strip()
                yield from deliveries(entries.feed(line, lineno, offset))
            offset += size
            if offset >= mark:  # progress about every MiB, as the v1 loop reports it
                mark = offset + v1._PROGRESS_EVERY
                here = position() if position else offset - first_offset
                if here - reported >= v1._PROGRESS_EVERY:
                    reported = reader._advance(here, reported)
        if flush:
            yield from deliveries(entries.flush())
    finally:
        counts = entries.counts
        stats.lines += lineno - (first_line - 1) - blanks
        stats.events += events
        stats.count_format(fmt, counts.entries - before.entries)
        stats.skipped_lines += counts.skipped - before.skipped
        stats.unpaired_responses += counts.unpaired_responses - before.unpaired_responses
        reader._advance(v1._final_position(position, offset - first_offset), reported)

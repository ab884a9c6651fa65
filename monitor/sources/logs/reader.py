"""Delivery-log format v1: paths -> files -> lines -> ``Delivery`` observations.

Contract: CONTRACTS.md §1 and §6 "Reading"; user-facing description: docs/log-format.md;
one line as JSON Schema: schemas/delivery-log-v1.schema.json.

This is the hot path of every audit. The reader streams: it holds one line at a time (at
most ``max_line_bytes``), never the file, and keeps no per-line state besides counters.
Content problems (bad JSON, wrong types, a damaged gzip stream) are counted in
``ReadStats`` with file, line and a reason that never quotes the line; only an input that
cannot be opened or read at all raises ``InputError``.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import io
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, BinaryIO, Protocol, cast

import orjson

from monitor.config import DatasetSettings
from monitor.errors import InputError
from monitor.model.observations import Delivery, ReadStats, ResponseInfo, Shape

STDIN_NAME = "<stdin>"
UNKNOWN_DATASET = "unknown"
LOG_SUFFIXES = (".jsonl", ".ndjson", ".log")  # each optionally followed by ".gz"

# A large buffer keeps syscalls (and, for gzip, Python-level refills) rare; 1 MiB measured
# as fast as anything larger on ~1 KB/event lines.
_READ_BUFFER = 1 << 20
_PROGRESS_EVERY = 1 << 20  # bytes between ``on_bytes`` calls (and stats flushes)
_SKIP_CHUNK = 1 << 20  # an over-long line is discarded in chunks of this size
_COUNT_CHUNK = 4 << 20  # newlines before a range's start are counted in chunks of this size
_GZIP_MAGIC = b"\x1f\x8b"
_NEWLINE = 0x0A
# Unix times above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLIS_ABOVE = 1e11
_GLOB_MAGIC = frozenset("*?[")

# What a damaged gzip stream raises mid-read. BadGzipFile is an OSError, so these must be
# caught before OSError (which means the disk, not the content, failed).
_GZIP_DAMAGE: tuple[type[Exception], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input: ``path`` as the user should see it (``"<stdin>"`` for ``-``).

    ``start``/``end`` select a byte range of a plain (uncompressed) file, for a parallel
    audit: the lines that *start* in ``[start, end)`` are read (``end=None``: to the end of
    the file), so ranges cut at line starts cover every line exactly once. ``first_line``
    is the physical line number of the line at ``start`` (blank lines count); ``None``
    makes the reader count the newlines before ``start``. Only the range that starts at
    byte 0 counts in ``ReadStats.files``. A gzip file or stdin is always read whole:
    a range of one raises ``ValueError``.
    """

    path: str
    is_stdin: bool = False
    start: int = 0
    end: int | None = None
    first_line: int | None = 1

    @property
    def is_whole(self) -> bool:
        return self.start == 0 and self.end is None


# ----------------------------------------------------------------------------- paths


def expand_paths(paths: Sequence[str]) -> list[InputFile]:
    """Expand command-line PATHs into input files.

    Files are taken as given; directories are searched recursively for ``*.jsonl``,
    ``*.ndjson`` and ``*.log`` (each optionally ``.gz``); globs are matched as written
    (``**`` recursive), a directory they match is searched like a given directory; ``-``
    is stdin. Order: as given, directory and glob contents sorted. Duplicates (the same
    real file reached twice) are removed.

    Raises ``InputError("<path>: no such file or directory")`` for a path that does not
    exist or a glob that matches nothing, and ``InputError`` for an unreadable directory.
    """
    out: list[InputFile] = []
    seen: set[str] = set()
    for given in paths:
        for found in _expand_one(given):
            key = STDIN_NAME if found.is_stdin else os.path.realpath(found.path)
            if key not in seen:
                seen.add(key)
                out.append(found)
    return out


def _expand_one(given: str) -> list[InputFile]:
    if given == "-":
        return [InputFile(STDIN_NAME, is_stdin=True)]
    path = os.path.expanduser(given)
    if os.path.isdir(path):
        return _walk(path)
    if os.path.exists(path):
        return [InputFile(path)]
    if _has_magic(path):
        matches = sorted(glob.glob(path, recursive=True))
        if matches:
            return [f for m in matches for f in (_walk(m) if os.path.isdir(m) else [InputFile(m)])]
    raise InputError(f"{given}: no such file or directory")


def _walk(top: str) -> list[InputFile]:
    def fail(err: OSError) -> None:
        raise InputError(f"{err.filename or top}: cannot read directory: {err.strerror}")

    found = [
        os.path.join(folder, name)
        for folder, _dirs, names in os.walk(top, onerror=fail)
        for name in names
        if is_log_name(name)
    ]
    return [InputFile(p) for p in sorted(found)]


def is_log_name(name: str) -> bool:
    """Whether a directory search picks up this file name (``.jsonl``, ``.ndjson``, ``.log``,
    each optionally ``.gz``; case-insensitive)."""
    return name.lower().removesuffix(".gz").endswith(LOG_SUFFIXES)


def _has_magic(text: str) -> bool:
    return not _GLOB_MAGIC.isdisjoint(text)


# ----------------------------------------------------------------------------- datasets


class DatasetResolver:
    """Maps a log file to the first config dataset whose ``logs`` globs match it.

    Globs follow ``glob`` semantics (``*``/``?``/``[...]`` stay within one path component,
    ``**`` spans any number of them); relative globs are relative to the current directory
    at construction. Paths are compared absolute and normalised, and also with symlinks
    resolved on both sides. Answers are cached per path.
    """

    def __init__(self, datasets: Sequence[DatasetSettings]) -> None:
        cwd = glob.escape(os.getcwd())  # the cwd is literal text even if it contains "["
        self._patterns = [
            (ds.id, [parts for p in ds.logs for parts in _pattern_variants(p, cwd)])
            for ds in datasets
        ]
        self._cache: dict[str, str | None] = {}

    def for_file(self, path: str) -> str | None:
        """The id of the dataset whose ``logs`` match ``path``, or None."""
        try:
            return self._cache[path]
        except KeyError:
            pass
        found = self._match(path)
        self._cache[path] = found
        return found

    def _match(self, path: str) -> str | None:
        if path == STDIN_NAME or not self._patterns:
            return None
        absolute = os.path.normpath(os.path.abspath(path))
        candidates = {_split(absolute), _split(os.path.realpath(path))}
        for ds_id, patterns in self._patterns:
            if any(_match_parts(p, c) for p in patterns for c in candidates):
                return ds_id
        return None


def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split(os.sep))


def _pattern_variants(pattern: str, escaped_cwd: str) -> list[tuple[str, ...]]:
    """The pattern made absolute, plus a variant with its literal directory prefix resolved
    through symlinks (``/var/log -> /data/log``) when that differs."""
    absolute = os.path.normpath(os.path.join(escaped_cwd, os.path.expanduser(pattern)))
    parts = _split(absolute)
    first_magic = next((i for i, part in enumerate(parts) if _has_magic(part)), len(parts))
    prefix = os.sep.join(parts[:first_magic]) or os.sep
    real = os.path.realpath(prefix)
    if real == prefix:
        return [parts]
    return [parts, (*_split(glob.escape(real)), *parts[first_magic:])]


def _match_parts(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Glob match component by component; ``**`` matches zero or more components."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match_parts(rest, parts[k:]) for k in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match_parts(rest, parts[1:])


# ----------------------------------------------------------------------------- reading


class _LineSource(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


# (lines, function returning on-disk bytes consumed so far or None to count line bytes,
#  physical line number of the first line)
_Opened = tuple[_LineSource, Callable[[], int] | None, int]


class _Malformed(Exception):
    """A line-level defect; ``args[0]`` is a short reason that never quotes line content."""


def read_deliveries(
    files: Iterable[InputFile],
    stats: ReadStats,
    *,
    resolver: DatasetResolver | None = None,
    max_line_bytes: int = 16 * 1024 * 1024,
    since: float | None = None,
    until: float | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stdin: BinaryIO | None = None,
) -> Iterator[Delivery]:
    """Stream the deliveries of ``files`` in order, counting into ``stats``.

    - Each non-blank line is one ``Delivery`` (shape record, bare request or bare event)
      carrying its well-formed events; malformed lines and events are counted and
      reported through ``stats.problem`` and the reading goes on.
    - Dataset: the line's own ``dataset_id``/``pixel_id``, else ``resolver.for_file``,
      else ``"unknown"``.
    - ``since`` (inclusive) / ``until`` (exclusive), Unix seconds, keep the events whose
      send time (``sent_at``, else ``event_time``) lies inside; a delivery left without
      events is then not yielded. Malformed counts do not depend on the window.
    - Gzip is detected by its magic bytes. ``on_bytes(n)`` receives the on-disk bytes
      (compressed for gzip) consumed since its previous call, about every MiB and at the
      end of each file; ``stats.bytes_read`` adds up the same numbers.
    - ``stdin`` is read for an ``InputFile`` with ``is_stdin`` (default
      ``sys.stdin.buffer``) and is left open.

    ``stats`` is complete once the iterator is exhausted or closed. Raises ``InputError``
    only for an input that cannot be opened or read (missing, permission denied, I/O error).
    """
    reader = _Reader(stats, max_line_bytes, since, until, on_bytes)
    for file in files:
        dataset = UNKNOWN_DATASET
        if resolver is not None and not file.is_stdin:
            dataset = resolver.for_file(file.path) or UNKNOWN_DATASET
        opener = _open_stream(stdin or sys.stdin.buffer) if file.is_stdin else _open_path(file)
        limit = None if file.end is None else max(0, file.end - file.start)
        with opener as (source, position, first_line):
            if file.start == 0:  # a file cut into ranges is still one file
                stats.files += 1
            yield from reader.read_file(file.path, source, position, dataset, first_line, limit)


@contextlib.contextmanager
def _open_path(file: InputFile) -> Iterator[_Opened]:
    try:
        # typeshed types a sized-buffer open() as BinaryIO; it is a BufferedReader (peek).
        raw = cast(io.BufferedReader, open(file.path, "rb", buffering=_READ_BUFFER))  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(f"{file.path}: no such file or directory") from None
    except OSError as err:
        raise InputError(f"{file.path}: cannot open: {_os_reason(err)}") from None
    with raw:
        try:
            magic = raw.peek(2)[:2]
        except OSError as err:
            raise InputError(f"{file.path}: cannot read: {_os_reason(err)}") from None
        if magic == _GZIP_MAGIC:
            if not file.is_whole:
                raise ValueError(f"{file.path}: a gzip file cannot be read by byte range")
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                # raw.tell() is the compressed position: progress then matches file sizes.
                yield unzipped, raw.tell, 1
        elif file.start:
            yield raw, None, _seek_range(raw, file)
        else:
            yield raw, None, 1


def _seek_range(raw: io.BufferedReader, file: InputFile) -> int:
    """Position ``raw`` at ``file.start``; returns the physical line number there, counting
    the newlines before it when ``file.first_line`` is None (big chunks: ~GB/s)."""
    try:
        first_line = file.first_line
        if first_line is None:
            raw.seek(0)
            newlines = 0
            left = file.start
            while left > 0:
                chunk = raw.read(min(_COUNT_CHUNK, left))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
                left -= len(chunk)
            first_line = newlines + 1
        raw.seek(file.start)
    except OSError as err:
        raise InputError(f"{file.path}: cannot read: {_os_reason(err)}") from None
    return first_line


@contextlib.contextmanager
def _open_stream(stream: BinaryIO) -> Iterator[_Opened]:
    # Gzip sniffing needs peek(); a stream without it (BytesIO) is wrapped, and the wrapper
    # detached afterwards so that the caller's stream is never closed by us.
    peekable: Any = stream
    if not hasattr(stream, "peek"):
        peekable = io.BufferedReader(cast(Any, stream), _READ_BUFFER)
    try:
        if peekable.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=peekable, mode="rb") as unzipped:
                yield unzipped, None, 1  # a pipe has no position: count decompressed bytes
        else:
            yield peekable, None, 1
    finally:
        if peekable is not stream:
            peekable.detach()


def _os_reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


def _gzip_reason(err: Exception) -> str:
    # Fixed texts: BadGzipFile's own message quotes bytes of the file.
    if isinstance(err, EOFError):
        return "gzip: compressed stream ends early (truncated file)"
    if isinstance(err, zlib.error):
        return "gzip: corrupt compressed data"
    return "gzip: not a valid gzip stream"


class _Reader:
    """Per-read settings and the parsing of one line; see ``read_deliveries``."""

    __slots__ = (
        "_last_sent_raw",
        "_last_sent_ts",
        "filtering",
        "max_line_bytes",
        "on_bytes",
        "since",
        "stats",
        "until",
    )

    def __init__(
        self,
        stats: ReadStats,
        max_line_bytes: int,
        since: float | None,
        until: float | None,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        self.stats = stats
        self.max_line_bytes = max_line_bytes
        self.since = since
        self.until = until
        self.filtering = since is not None or until is not None
        self.on_bytes = on_bytes
        # Consecutive lines often share their sent_at text (one second, many requests).
        self._last_sent_raw: str | None = None
        self._last_sent_ts = 0.0

    def read_file(
        self,
        name: str,
        source: _LineSource,
        position: Callable[[], int] | None,
        dataset: str,
        first_line: int = 1,
        limit: int | None = None,
    ) -> Iterator[Delivery]:
        """Yield the deliveries of one opened file (or of its lines that start within
        ``limit`` bytes, numbered from ``first_line``). Deliberately one flat loop with local
        variables: it runs once per line, and every attribute lookup or call shows."""
        stats = self.stats
        readline = source.readline
        # Lines up to 1 MiB (all real ones) take one readline; longer ones go by chunks.
        first = min(self.max_line_bytes + 1, _SKIP_CHUNK)
        loads = orjson.loads
        parse = self._parse
        # Counters stay local (attribute updates per line show up in the profile) and are
        # flushed to stats about every MiB and when the file ends or the reader is closed.
        lineno = counted = first_line - 1  # counted: lineno - blanks already in stats.lines
        blanks = events = 0
        consumed = reported = 0  # line bytes read; on-disk bytes reported so far
        stop = sys.maxsize if limit is None else limit  # a range ends at the line after it
        mark = _PROGRESS_EVERY
        line: bytes | None  # None: an over-long line, already discarded
        try:
            while consumed < stop:
                try:
                    chunk = readline(first)
                    size = len(chunk)
                    line = chunk
                    if size == first and chunk[-1] != _NEWLINE:  # rare: a line over 1 MiB
                        line, size = _read_long(readline, chunk, self.max_line_bytes)
                except _GZIP_DAMAGE as err:
                    # The complete lines before the damage were yielded; the rest is lost.
                    stats.problem(name, lineno + 1, _gzip_reason(err))
                    lineno += 1
                    return
                except OSError as err:
                    raise InputError(f"{name}: cannot read: {_os_reason(err)}") from None
                if not size:
                    return
                lineno += 1
                consumed += size
                if consumed >= mark:
                    # For gzip, consumed counts decompressed bytes: report only once the
                    # compressed position has moved a MiB too (tell() is a syscall: not per line).
                    mark = consumed + _PROGRESS_EVERY
                    here = position() if position else consumed
                    if here - reported >= _PROGRESS_EVERY:
                        reported = self._advance(here, reported)
                    stats.lines += lineno - blanks - counted
                    counted = lineno - blanks
                    stats.events += events
                    events = 0
                if line is None:
                    stats.problem(name, lineno, f"line longer than {self.max_line_bytes} bytes")
                    continue
                try:
                    obj = loads(line)
                except orjson.JSONDecodeError as err:
                    if not line.strip():
                        blanks += 1
                        continue
                    obj = self._retry_json(line, lineno, err, name)
                    if obj is None:
                        continue
                try:
                    delivery = parse(obj, name, lineno, dataset)
                except _Malformed as err:
                    stats.problem(name, lineno, err.args[0])
                    continue
                if delivery is not None:
                    events += len(delivery.events)
                    yield delivery
        finally:
            stats.lines += lineno - blanks - counted
            stats.events += events
            self._advance(_final_position(position, consumed), reported)

    def _advance(self, position: int, reported: int) -> int:
        delta = position - reported
        if delta > 0:
            self.stats.bytes_read += delta
            if self.on_bytes is not None:
                self.on_bytes(delta)
        return max(position, reported)

    def _retry_json(
        self, line: bytes, lineno: int, err: orjson.JSONDecodeError, name: str
    ) -> Any | None:
        """The slow path of a line orjson rejected: a UTF-8 BOM on line 1 is tolerated
        (Windows editors write one); anything else is an invalid-JSON problem."""
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            try:
                return orjson.loads(line[3:])
            except orjson.JSONDecodeError as again:
                err = again
        # orjson's messages are fixed texts, never the input; cut anyway to stay one line.
        self.stats.problem(name, lineno, f"invalid JSON: {err.msg[:80]} (column {err.colno})")
        return None

    # -- one line -------------------------------------------------------------------

    def _parse(self, obj: Any, name: str, lineno: int, dataset: str) -> Delivery | None:
        """A decoded line -> Delivery (None when the time window removes every event).
        Raises ``_Malformed``. Line-level fields are validated before the events so that
        a malformed line never counts malformed events."""
        if type(obj) is not dict:
            raise _Malformed("not a JSON object")
        if "request" in obj:
            delivery = self._record(obj, name, lineno, dataset)
        elif "event_name" in obj:
            delivery = self._bare_event(obj, name, lineno, dataset)
        elif "data" in obj:
            delivery = self._bare_request(obj, name, lineno, dataset)
        else:
            raise _Malformed("not a delivery record, request body or event")
        return self._window(delivery) if self.filtering else delivery

    # Delivery and ResponseInfo are built with positional arguments: on CPython 3.11 a
    # keyword call of a dataclass __init__ costs ~1 µs more, a quarter of a line's budget.
    # Field order is that of monitor/observations.py; tests/sources/test_logs.py checks every field.

    def _record(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        request = obj["request"]
        if type(request) is not dict:
            raise _Malformed("request: expected an object")
        own = obj.get("dataset_id")
        if type(own) is not str or not own:
            own = _own_dataset(obj)
        sent_at = self._sent_at(obj)
        response = _response(obj.get("response"))
        duration = obj.get("duration_ms")
        if duration is not None:
            duration = _number(duration)
        data = request.get("data")
        if type(data) is not list:
            data = _data_list(data, "request.data")
        test_code = request.get("test_event_code")
        if test_code is not None:
            test_code = _text(test_code)
        agent = request.get("partner_agent")
        if agent is not None:
            agent = _text(agent)
        events = self._events(data, "request.data", name, lineno)
        return Delivery(
            name,
            lineno,
            own or dataset,
            Shape.RECORD,
            events,
            len(data),
            sent_at,
            test_code,
            agent,
            response,
            duration,
        )

    def _bare_request(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        own = _own_dataset(obj)
        data = _data_list(obj["data"], "data")
        events = self._events(data, "data", name, lineno)
        test_code = _text(obj.get("test_event_code"))
        agent = _text(obj.get("partner_agent"))
        return Delivery(
            name, lineno, own or dataset, Shape.REQUEST, events, len(data), None, test_code, agent
        )

    def _bare_event(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        own = _own_dataset(obj)
        events = self._events([obj], "", name, lineno)
        return Delivery(name, lineno, own or dataset, Shape.EVENT, events, 1)

    def _events(self, data: list[Any], field: str, name: str, lineno: int) -> list[dict[str, Any]]:
        """The well-formed events of ``data``; each other item is one malformed event."""
        events: list[dict[str, Any]] = []
        for index, item in enumerate(data):
            if type(item) is not dict:
                item = _decode_event(item)
                if item is None:
                    self._bad_event(name, lineno, field, index, "not a JSON object")
                    continue
            event_time = item.get("event_time")
            if type(item.get("event_name")) is str and (
                type(event_time) is int or type(event_time) is float
            ):
                events.append(item)
            else:
                self._bad_event(name, lineno, field, index, _event_defect(item))
        return events

    def _bad_event(self, name: str, lineno: int, field: str, index: int, why: str) -> None:
        where = f"{field}[{index}]" if field else "event"
        self.stats.problem(name, lineno, f"{where}: {why}", event=True)

    def _sent_at(self, obj: dict[str, Any]) -> float | None:
        value = obj.get("sent_at")
        if value is None:
            value = obj.get("ts")
        if value is None:
            return None
        kind = type(value)
        if kind is str:
            if value == self._last_sent_raw:
                return self._last_sent_ts
            ts = parse_timestamp(value)
            if ts is None:
                raise _Malformed("sent_at: unparsable timestamp")
            self._last_sent_raw, self._last_sent_ts = value, ts
            return ts
        if kind is int or kind is float:
            return _seconds(value)
        raise _Malformed("sent_at: expected an ISO 8601 string or Unix seconds")

    def _window(self, delivery: Delivery) -> Delivery | None:
        if delivery.sent_at is not None:
            inside = self._inside(delivery.sent_at)
            return delivery if inside and delivery.events else None
        kept = [e for e in delivery.events if self._inside(_seconds(e["event_time"]))]
        if not kept:
            return None
        delivery.events = kept  # sent_count keeps the request's size for EVENTS_DROPPED
        return delivery

    def _inside(self, ts: float) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


def _final_position(position: Callable[[], int] | None, consumed: int) -> int:
    if position is None:
        return consumed
    try:
        return position()
    except (OSError, ValueError):  # the read failed or the file is closed: report what we know
        return consumed


_Long = tuple[bytes | None, int]  # (the line, or None when discarded as over-long; its size)


def _read_long(readline: Callable[[int], bytes], first: bytes, max_bytes: int) -> _Long:
    """Finish a line whose first chunk had no newline: ``(line, size)`` when it fits in
    ``max_bytes`` (newline excluded), else ``(None, size)`` with the line discarded, so
    that at most ``max_bytes`` of it are ever held."""
    parts = [first]
    total = len(first)
    while total <= max_bytes:  # invariant: no newline read yet
        chunk = readline(min(_SKIP_CHUNK, max_bytes + 1 - total))
        if not chunk:  # the file ends without a newline
            return b"".join(parts), total
        parts.append(chunk)
        total += len(chunk)
        if chunk[-1] == _NEWLINE:
            return b"".join(parts), total
    parts.clear()
    return None, total + _skip_rest(readline)


def _skip_rest(readline: Callable[[int], bytes]) -> int:
    """Discard the rest of an over-long line without holding it; returns its byte count."""
    skipped = 0
    while True:
        chunk = readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk[-1] == _NEWLINE:
            return skipped


# ----------------------------------------------------------------------------- fields


def parse_timestamp(text: str) -> float | None:
    """ISO 8601 (any offset: ``Z``, ``+00:00``, ``+0000``; none means UTC) or a string of
    Unix seconds -> Unix seconds; None when unparsable."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _parse_timestamp_slow(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_timestamp_slow(text: str) -> float | None:
    cleaned = text.strip()
    try:
        number = float(cleaned)
    except ValueError:
        pass
    else:
        return _seconds(number) if number == number and abs(number) != float("inf") else None
    upper = cleaned.upper()  # "z" suffix, "t" separator
    if upper.endswith(" UTC"):
        upper = upper[:-4] + "Z"
    try:
        moment = datetime.fromisoformat(upper)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _seconds(value: float) -> float:
    number = float(value)
    return number / 1000.0 if number > _MILLIS_ABOVE else number


def _own_dataset(obj: dict[str, Any]) -> str | None:
    """The line's own dataset (``dataset_id``, alias ``pixel_id``; a string or an integer)."""
    value = obj.get("dataset_id")
    if value is None or value == "":
        value = obj.get("pixel_id")
    if value is None or value == "":
        return None
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    raise _Malformed("dataset_id: expected a string or an integer")


def _data_list(value: Any, field: str) -> list[Any]:
    """``data`` as a list: a list, or one JSON string holding the list (an SDK quirk)."""
    if type(value) is list:
        return value
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _Malformed(f"{field}: string is not a JSON list") from None
        if type(value) is list:
            return value
    if value is None:
        raise _Malformed(f"{field}: missing")
    raise _Malformed(f"{field}: expected a list of events")


def _decode_event(item: Any) -> dict[str, Any] | None:
    """A data item given as a JSON-encoded string (the facebook-business SDK's form)."""
    if type(item) is not str:
        return None
    try:
        decoded = orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
    return decoded if type(decoded) is dict else None


def _event_defect(event: dict[str, Any]) -> str:
    if "event_name" not in event:
        return "event_name: missing"
    if type(event["event_name"]) is not str:
        return "event_name: expected a string"
    if "event_time" not in event:
        return "event_time: missing"
    return "event_time: expected a number"


def _response(raw: Any) -> ResponseInfo | None:
    """``response`` -> ResponseInfo: ``status`` plus a success body or an error envelope
    (meta-capi.md §8). A body that is text but not JSON (a proxy's HTML error page) is
    kept as "status only"; any other non-object body makes the line malformed."""
    if raw is None:
        return None
    if type(raw) is not dict:
        raise _Malformed("response: expected an object")
    status = raw.get("status")
    if status is not None and type(status) is not int:
        raise _Malformed("response.status: expected an integer")
    body = raw.get("body")
    if type(body) is not dict:
        if type(body) is str:
            body = _decode_object(body)
        elif body is not None:
            raise _Malformed("response.body: expected an object or a string")
        if body is None:
            return ResponseInfo(status)
    error = body.get("error")
    if error is not None:
        return _error_response(status, body, error)
    received = body.get("events_received")
    if type(received) is not int:
        received = _int(received)
    return ResponseInfo(
        status, received, None, None, None, None, None, _str(body.get("fbtrace_id"))
    )


def _error_response(status: int | None, body: dict[str, Any], error: Any) -> ResponseInfo:
    received = _int(body.get("events_received"))
    trace = _str(body.get("fbtrace_id"))
    if type(error) is str:
        return ResponseInfo(status, received, error_message=error, fbtrace_id=trace)
    if type(error) is not dict:
        return ResponseInfo(status, received, fbtrace_id=trace)
    return ResponseInfo(
        status=status,
        events_received=received,
        error_code=_int(error.get("code")),
        error_subcode=_int(error.get("error_subcode")),
        error_type=_str(error.get("type")),
        error_title=_str(error.get("error_user_title")),
        error_message=_str(error.get("message")),
        fbtrace_id=_str(error.get("fbtrace_id")) or trace,
    )


def _decode_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


def _int(value: Any) -> int | None:
    """An integer field; numeric strings are tolerated (some proxies stringify codes)."""
    if type(value) is int:
        return value
    if type(value) is str and value.strip().isdigit():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if type(value) is str else None


def _text(value: Any) -> str | None:
    """A request-level label (test_event_code, partner_agent); a number is stringified,
    any other type is ignored rather than making the line malformed."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is float:
        return str(value)
    return None


def _number(value: Any) -> float | None:
    kind = type(value)
    return float(value) if kind is int or kind is float else None

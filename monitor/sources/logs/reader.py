"""Delivery-log format v1: files -> lines -> ``Delivery`` observations.

Contract: docs/contracts.md §1 and §6 "Reading"; user-facing description: docs/log-format.md;
one line as JSON Schema: schemas/delivery-log-v1.schema.json.

This is the hot path of every audit. The reader streams: it holds one line at a time (at
most ``max_line_bytes``), never the file, and keeps no per-line state besides counters.
Content problems (bad JSON, wrong types, a damaged gzip stream) are counted in
``ReadStats`` with file, line and a reason that never quotes the line; only an input that
cannot be opened or read at all raises ``InputError``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, Protocol, cast

import orjson

from monitor.errors import InputError
from monitor.model.observations import Delivery, ReadStats, Shape
from monitor.sources.logs import formatted
from monitor.sources.logs.fields import (
    MILLIS_ABOVE,
    TIME_MAX,
    TIME_MIN,
    Malformed,
    data_list,
    decode_event,
    event_defect,
    event_times,
    in_time_range,
    label_text,
    optional_number,
    own_dataset,
    parse_timestamp,
    response_info,
    unix_seconds,
)
from monitor.sources.logs.formats import AUTO, V1, FormatReader
from monitor.sources.logs.paths import UNKNOWN_DATASET, DatasetResolver, InputFile

# A large buffer keeps syscalls (and, for gzip, Python-level refills) rare; 1 MiB measured
# as fast as anything larger on ~1 KB/event lines.
_READ_BUFFER = 1 << 20
_PROGRESS_EVERY = 1 << 20  # bytes between ``on_bytes`` calls (and stats flushes)
_SKIP_CHUNK = 1 << 20  # an over-long line is discarded in chunks of this size
_COUNT_CHUNK = 4 << 20  # newlines before a range's start are counted in chunks of this size
_GZIP_MAGIC = b"\x1f\x8b"
_NEWLINE = 0x0A
# An event_time below this is seconds that ``unix_seconds`` leaves as they are, in range.
_SECONDS_MAX = min(MILLIS_ABOVE, TIME_MAX)

# What a damaged gzip stream raises mid-read. BadGzipFile is an OSError, so these must be
# caught before OSError (which means the disk, not the content, failed).
_GZIP_DAMAGE: tuple[type[Exception], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


class _LineSource(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


# (lines, function returning on-disk bytes consumed so far or None to count line bytes,
#  physical line number of the first line)
_Opened = tuple[_LineSource, Callable[[], int] | None, int]


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
    graph_hosts: frozenset[str] = frozenset(),
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
    - Each whole file is read in its ``fmt`` (detected from its first lines for
      ``auto``): v1 here, a sender format (docs/contracts.md §7) through
      ``monitor.sources.logs.formatted``, whose request URLs count as Graph URLs on
      ``graph.facebook.com`` and on ``graph_hosts`` (a configured ``graph_url``).

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
            fmt = file.fmt if file.is_whole else V1
            if fmt == AUTO:
                chunk = min(max_line_bytes + 1, _SKIP_CHUNK)
                source, fmt = formatted.sniff(source, chunk, _GZIP_DAMAGE)
            if fmt != V1:
                yield from formatted.read_formatted(
                    reader, fmt, file.path, source, position, dataset, graph_hosts
                )
                continue
            lines_before = stats.lines
            try:
                yield from reader.read_file(file.path, source, position, dataset, first_line, limit)
            finally:
                stats.count_format(V1, stats.lines - lines_before)


def read_sender_stream(
    source: BinaryIO,
    stats: ReadStats,
    entries: FormatReader,
    *,
    name: str,
    first_line: int,
    first_offset: int,
    flush: bool = False,
    max_line_bytes: int = 16 * 1024 * 1024,
    graph_hosts: frozenset[str] = frozenset(),
) -> Iterator[Delivery]:
    """The deliveries of part of a sender-format file, read by ``entries``, a format
    reader that follows the file (and the files it rotates into) across reads: a call
    read now may be answered in a later read. ``source`` starts at line ``first_line``,
    byte ``first_offset`` of ``name``; ``flush`` gives up on the calls still waiting."""
    reader = _Reader(stats, max_line_bytes, None, None, None)
    yield from formatted.read_formatted(
        reader, entries.name, name, source, None, UNKNOWN_DATASET, graph_hosts,
        entries=entries, flush=flush, first_line=first_line, first_offset=first_offset,
    )  # fmt: skip


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
                except Malformed as err:
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
        Raises ``Malformed``. Line-level fields are validated before the events so that
        a malformed line never counts malformed events."""
        if type(obj) is not dict:
            raise Malformed("not a JSON object")
        if "request" in obj:
            delivery = self._record(obj, name, lineno, dataset)
        elif "event_name" in obj:
            delivery = self._bare_event(obj, name, lineno, dataset)
        elif "data" in obj:
            delivery = self._bare_request(obj, name, lineno, dataset)
        else:
            raise Malformed("not a delivery record, request body or event")
        return self._window(delivery) if self.filtering else delivery

    # Delivery and ResponseInfo are built with positional arguments: on CPython 3.11 a
    # keyword call of a dataclass __init__ costs ~1 µs more, a quarter of a line's budget.
    # Field order is that of monitor/observations.py; tests/sources/test_logs.py checks every field.

    def _record(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        request = obj["request"]
        if type(request) is not dict:
            raise Malformed("request: expected an object")
        own = obj.get("dataset_id")
        if type(own) is not str or not own:
            own = own_dataset(obj)
        sent_at = self._sent_at(obj)
        response = response_info(obj.get("response"))
        duration = obj.get("duration_ms")
        if duration is not None:
            duration = optional_number(duration)
        data = request.get("data")
        if type(data) is not list:
            data = data_list(data, "request.data")
        test_code = request.get("test_event_code")
        if test_code is not None:
            test_code = label_text(test_code)
        agent = request.get("partner_agent")
        if agent is not None:
            agent = label_text(agent)
        events, times, millis = self._events(data, "request.data", name, lineno)
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
            times,
            millis,
        )

    def _bare_request(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        own = own_dataset(obj)
        data = data_list(obj["data"], "data")
        events, times, millis = self._events(data, "data", name, lineno)
        test_code = label_text(obj.get("test_event_code"))
        agent = label_text(obj.get("partner_agent"))
        return Delivery(
            name, lineno, own or dataset, Shape.REQUEST, events, len(data), None, test_code, agent,
            None, None, times, millis,
        )  # fmt: skip

    def _bare_event(self, obj: dict[str, Any], name: str, lineno: int, dataset: str) -> Delivery:
        own = own_dataset(obj)
        events, times, millis = self._events([obj], "", name, lineno)
        return Delivery(
            name, lineno, own or dataset, Shape.EVENT, events, 1, None, None, None, None, None,
            times, millis,
        )  # fmt: skip

    def _events(self, data: list[Any], field: str, name: str, lineno: int) -> _Events:
        """The well-formed events of ``data`` with their times in seconds and which were
        in milliseconds (see ``Delivery.times``); each other item is one malformed event.

        Hot path: an ``event_time`` already in seconds and in range (``0 <= t < 1e11``, the
        usual case) is its own time; any other number takes ``unix_seconds`` and, if kept,
        the times and flags of the delivery are those of ``event_times``."""
        events: list[dict[str, Any]] = []
        times: list[float] = []
        converted = False
        for index, item in enumerate(data):
            if type(item) is not dict:
                item = decode_event(item)
                if item is None:
                    self._bad_event(name, lineno, field, index, "not a JSON object")
                    continue
            event_time = item.get("event_time")
            kind = type(event_time)
            if (kind is int or kind is float) and type(item.get("event_name")) is str:
                if TIME_MIN <= event_time < _SECONDS_MAX:  # NaN compares false
                    events.append(item)
                    times.append(float(event_time))
                elif in_time_range(unix_seconds(event_time)):
                    events.append(item)
                    times.append(0.0)
                    converted = True
                else:
                    self._bad_event(name, lineno, field, index, "event_time: out of range")
            else:
                self._bad_event(name, lineno, field, index, event_defect(item))
        if converted:
            return (events, *event_times(events))
        return events, times, None

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
                raise Malformed("sent_at: unparsable timestamp")
            if not in_time_range(ts):
                raise Malformed("sent_at: out of range")
            self._last_sent_raw, self._last_sent_ts = value, ts
            return ts
        if kind is int or kind is float:
            ts = unix_seconds(value)
            if not in_time_range(ts):
                raise Malformed("sent_at: out of range")
            return ts
        raise Malformed("sent_at: expected an ISO 8601 string or Unix seconds")

    def _window(self, delivery: Delivery) -> Delivery | None:
        if delivery.sent_at is not None:
            inside = self._inside(delivery.sent_at)
            return delivery if inside and delivery.events else None
        kept = [i for i, t in enumerate(delivery.times) if self._inside(t)]
        if not kept:
            return None
        if len(kept) == len(delivery.events):
            return delivery
        return delivery.subset(kept)  # sent_count keeps the request's size for EVENTS_DROPPED

    def _inside(self, ts: float) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


def _final_position(position: Callable[[], int] | None, consumed: int) -> int:
    if position is None:
        return consumed
    try:
        return position()
    except (OSError, ValueError):  # the read failed or the file is closed: report what we know
        return consumed


# (well-formed events, their times in seconds, their milliseconds flags or None)
_Events = tuple[list[dict[str, Any]], list[float], list[bool] | None]
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

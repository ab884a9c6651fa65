"""Where delivery logs come from: command-line PATHs -> ``InputFile``s, and the config
dataset a log file belongs to (``DatasetResolver``).

Contract: docs/contracts.md §4 (PATH) and §6 "Reading" (globs as written, a record's own
``dataset_id`` wins over the dataset whose ``logs`` glob matched).
"""

from __future__ import annotations

import glob
import gzip
import itertools
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from monitor.config import DatasetSettings
from monitor.errors import InputError
from monitor.sources.logs.formats import AUTO
from monitor.sources.logs.formats.detect import (
    CLOUD_LOGGING,
    GTMS,
    GTMS_BIGQUERY,
    SNIFF_LINES,
    detect,
)

STDIN_NAME = "<stdin>"
UNKNOWN_DATASET = "unknown"
LOG_SUFFIXES = (".jsonl", ".ndjson", ".log")  # each optionally followed by ".gz"
_GLOB_MAGIC = frozenset("*?[")


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

    ``fmt`` is the log format (``monitor.sources.logs.formats.CHOICES``): ``auto`` detects
    it from the content of a whole file; a range is always v1 (only v1 files are cut).
    """

    path: str
    is_stdin: bool = False
    start: int = 0
    end: int | None = None
    first_line: int | None = 1
    fmt: str = AUTO

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
        if is_log_name(name) or (is_export_name(name) and _is_sender_export(folder, name))
    ]
    return [InputFile(p) for p in sorted(found)]


def is_log_name(name: str) -> bool:
    """Whether a directory search picks up this file name (``.jsonl``, ``.ndjson``, ``.log``,
    each optionally ``.gz``; case-insensitive)."""
    return name.lower().removesuffix(".gz").endswith(LOG_SUFFIXES)


def is_export_name(name: str) -> bool:
    """``.json`` (optionally ``.gz``): what Cloud Logging sinks and ``gcloud logging read``
    write. A directory search takes such a file only when its content is a sender's log."""
    return name.lower().removesuffix(".gz").endswith(".json")


def _is_sender_export(folder: str, name: str) -> bool:
    """Whether the first lines of a ``.json`` file are LogEntries, BigQuery rows or GTMS
    lines (unrelated JSON files in a log directory stay out); unreadable ones are taken,
    so that the reader reports them."""
    path = os.path.join(folder, name)
    opener = gzip.open if name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            found = detect(itertools.islice(f, SNIFF_LINES))
    except (OSError, EOFError, zlib.error):
        return True
    return found in (CLOUD_LOGGING, GTMS_BIGQUERY, GTMS)


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

"""Parallel reading: the inputs cut into contiguous parts, each processed in a forked worker.

``plan_parts`` cuts the concatenation of the inputs into parts of about equal bytes
(plain files at line starts, gzip files and stdin never). ``run_parts`` runs one worker
process per part and hands their results back in part order, so that the caller can fold
consecutive parts (``earlier.merge(later)``) into what one sequential pass would give.

Workers are *forked*, never spawned: they inherit the parent's imports and settings
without pickling, and the interpreter's hash secret, so that ``hash()`` of a string (the
dedup check's id keys and fingerprints) agrees between parts. Where fork is unavailable
the caller stays sequential (``fork_available``).
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import dataclasses
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, NamedTuple, TypeVar

from monitor.errors import CapiMonitorError, WorkerError
from monitor.sources.logs.formats import AUTO, V1
from monitor.sources.logs.paths import InputFile

T = TypeVar("T")

MAX_AUTO_JOBS = 4  # beyond this the parent's merge and the disk stop paying back
_POLL_SECONDS = 0.1  # progress updates and liveness checks, ~10 per second
_SCAN_CHUNK = 64 * 1024  # a cut moves to the next line start, read in chunks of this size
_GZIP_MAGIC = b"\x1f\x8b"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

Work = Callable[[int, Sequence[InputFile], Callable[[int], None]], T]


def fork_available() -> bool:
    """Whether worker processes can be forked here: Linux and the BSDs. Not Windows (no
    fork), nor macOS, where forking a process that loaded system frameworks can crash."""
    return sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()


def default_jobs() -> int:
    """``--jobs 0``: the CPUs this process may run on, at most ``MAX_AUTO_JOBS``."""
    try:
        cpus = len(os.sched_getaffinity(0))  # honours taskset/cgroup cpusets
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_JOBS))


# ----------------------------------------------------------------------------- planning


def plan_parts(files: Sequence[InputFile], jobs: int) -> list[list[InputFile]]:
    """Cut the concatenation of ``files`` (in order) into at most ``jobs`` contiguous
    parts of about equal bytes to parse (on-disk bytes; a gzip file weighs its
    uncompressed size, from its trailer).

    Plain files are cut at line starts, so each line is read by exactly one part; a gzip
    file is never cut (a cut inside one moves to its nearer end); with stdin among the
    inputs, or ``jobs <= 1``, the single part is ``files``. Every byte of every input is
    in exactly one part, parts keep the input order, empty parts are dropped. A range
    that does not start where its input starts gets ``first_line=None``: its reader
    counts the lines before it. A file that cannot be sized or opened is left whole (its
    reader then reports the error as a sequential read would).
    """
    files = list(files)
    if jobs <= 1 or not files or any(f.is_stdin for f in files):
        return [files]
    spans = [_span(f) for f in files]
    offsets = [0]  # each input's start in the concatenation, by weight
    for span in spans:
        offsets.append(offsets[-1] + span.weight)
    total = offsets[-1]
    cuts: set[int] = set()
    for k in range(1, jobs):
        cut = _snap(files, spans, offsets, total * k // jobs)
        if 0 < cut < total:
            cuts.add(cut)
    return _pieces(files, spans, offsets, sorted(cuts))


class _Span(NamedTuple):
    lo: int  # the input's bytes: [lo, hi)
    hi: int
    weight: int  # its share of the work: hi - lo, or a gzip file's uncompressed size
    plain: bool  # may be cut (an uncompressed, readable file)


def _span(f: InputFile) -> _Span:
    try:
        with open(f.path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            hi = size if f.end is None else min(f.end, size)
            if raw.read(2) != _GZIP_MAGIC:
                # A file in a sender format is read whole: its entries pair across lines.
                cuttable = f.fmt in (V1, AUTO)
                return _Span(f.start, hi, max(0, hi - f.start), cuttable)
            # ISIZE, the last 4 bytes: the uncompressed size mod 2**32 (of the last member)
            raw.seek(max(0, size - 4))
            isize = int.from_bytes(raw.read(4), "little")
            return _Span(f.start, hi, max(size, isize), False)
    except OSError:
        return _Span(f.start, f.start, 0, False)  # its reader reports the error


def _snap(files: list[InputFile], spans: list[_Span], offsets: list[int], target: int) -> int:
    """The global position of the cut nearest ``target`` that is allowed: an input's
    boundary, or the start of the first line starting at or after ``target`` in a plain file."""
    i = bisect.bisect_right(offsets, target) - 1
    if i >= len(files):  # target == total
        return target
    begin, end = offsets[i], offsets[i + 1]
    if target == begin:
        return target
    span = spans[i]
    at = _next_line_start(files[i].path, span.lo + target - begin, span.hi) if span.plain else None
    if at is None:  # gzip or unreadable: never split, cut at the nearer end
        return begin if target - begin <= end - target else end
    return begin + at - span.lo


def _next_line_start(path: str, pos: int, hi: int) -> int | None:
    """The first line start at or after ``pos`` (``hi`` when none before it); None for an
    unreadable file."""
    try:
        with open(path, "rb") as f:
            f.seek(pos - 1)  # a line starts at pos when the byte before it is a newline
            at = pos - 1
            while at < hi:
                chunk = f.read(_SCAN_CHUNK)
                if not chunk:
                    return hi
                found = chunk.find(b"\n")
                if found >= 0:
                    return min(at + found + 1, hi)
                at += len(chunk)
            return hi
    except OSError:
        return None


def _pieces(
    files: list[InputFile], spans: list[_Span], offsets: list[int], cuts: list[int]
) -> list[list[InputFile]]:
    parts: list[list[InputFile]] = [[] for _ in range(len(cuts) + 1)]
    for f, span, begin, end in zip(files, spans, offsets, offsets[1:], strict=False):
        inner = [c for c in cuts if begin < c < end]  # only ever inside a plain file
        if not inner:  # whole: an uncut, empty or unreadable input
            parts[bisect.bisect_right(cuts, begin)].append(f)
            continue
        for a, b in itertools.pairwise([begin, *inner, end]):
            piece = dataclasses.replace(
                f,
                start=span.lo + a - begin,
                end=f.end if b == end else span.lo + b - begin,
                first_line=f.first_line if a == begin else None,
            )
            parts[bisect.bisect_right(cuts, a)].append(piece)
    return [p for p in parts if p]


# ----------------------------------------------------------------------------- running


def run_parts(
    parts: Sequence[Sequence[InputFile]],
    work: Work[T],
    consume: Callable[[int, T], None],
    *,
    on_bytes: Callable[[int], None] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Run ``work(index, part, advance)`` for every part, each in a forked process, and
    call ``consume(index, result)`` here in part order, as soon as a result and all the
    ones before it have arrived (so that at most the out-of-order results are held).
    ``meanwhile()`` is called here once every worker has started: set-up work of the
    caller overlaps the workers' (an exception from it stops them like any other).

    ``work`` reports bytes read through ``advance(n)``; ``on_bytes`` receives the sum over
    the workers about 10 times a second. Results travel pickled through a pipe. A worker's
    exception is raised here: the same exception when it pickles (``InputError`` stays a
    one-line user error), else ``RuntimeError`` with its type and message; a bug carries
    the worker's traceback as a note. A worker that dies without a result (killed, out of
    memory) raises ``WorkerError``. Whatever ends the wait (an error, Ctrl-C) terminates
    and reaps the remaining workers: no orphan, no hang.
    """
    ctx = multiprocessing.get_context("fork")
    progress = ctx.Array("q", len(parts), lock=False)  # one slot per worker: no lock needed
    procs: list[BaseProcess] = []
    readers: list[Connection] = []
    try:
        for index, part in enumerate(parts):
            reader, writer = ctx.Pipe(duplex=False)
            readers.append(reader)
            proc = ctx.Process(
                target=_worker,
                args=(work, index, part, progress, writer, os.getpid()),
                name=f"capi-monitor-part-{index}",
                daemon=True,
            )
            proc.start()
            procs.append(proc)
            writer.close()  # the worker holds the only write end: EOF when it dies
        if meanwhile is not None:
            meanwhile()
        _collect(readers, procs, progress, consume, on_bytes)
    finally:
        for started in procs:
            if started.exitcode is None:
                started.terminate()
        for started in procs:
            started.join()
        for reader in readers:
            reader.close()


def _collect(
    readers: list[Connection],
    procs: list[BaseProcess],
    progress: Any,
    consume: Callable[[int, T], None],
    on_bytes: Callable[[int], None] | None,
) -> None:
    waiting: dict[Any, int] = {reader: index for index, reader in enumerate(readers)}
    arrived: dict[int, T] = {}
    next_index = reported = 0
    while waiting:
        for ready in wait(list(waiting), timeout=_POLL_SECONDS):
            index = waiting.pop(ready)
            try:
                status, value = readers[index].recv()
            except EOFError:
                raise WorkerError(_death(procs[index], index)) from None
            if status != "ok":
                _reraise(index, value)
            arrived[index] = value
        if on_bytes is not None:
            done = sum(progress)
            if done > reported:
                on_bytes(done - reported)
                reported = done
        while next_index in arrived:
            consume(next_index, arrived.pop(next_index))
            next_index += 1


def _worker(
    work: Work[Any],
    index: int,
    part: Sequence[InputFile],
    progress: Any,
    writer: Connection,
    parent: int,
) -> None:
    """The body of a worker process: run ``work``, send ``("ok", result)`` or
    ``("error", (pickled exception or None, type name, message, traceback))``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it terminates us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)

    def advance(n: int) -> None:
        progress[index] += n

    try:
        message: tuple[str, Any] = ("ok", work(index, part, advance))
    except BaseException as err:  # everything, even SystemExit, goes back to the parent
        message = ("error", _portable(err))
    try:
        writer.send(message)
    except OSError:
        pass  # the parent is gone: nobody to tell
    except Exception as err:  # the result itself would not pickle: a bug, reported as such
        with contextlib.suppress(OSError):
            writer.send(("error", _portable(err)))
    finally:
        writer.close()


def _die_with_parent(parent: int) -> None:
    """Linux: be sent SIGTERM when the parent dies, so that a killed audit (SIGKILL, a CI
    timeout) leaves no orphan worker running on (best effort elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _portable(err: BaseException) -> tuple[bytes | None, str, str, str]:
    blob: bytes | None = None
    try:
        dumped = pickle.dumps(err)
        pickle.loads(dumped)  # some exceptions pickle but cannot be rebuilt
        blob = dumped
    except Exception:
        pass  # sent as type name and message
    trace = "".join(traceback.format_exception(err))
    return blob, type(err).__name__, str(err), trace


def _reraise(index: int, payload: tuple[bytes | None, str, str, str]) -> None:
    blob, kind, message, trace = payload
    err: object = None
    if blob is not None:
        try:
            err = pickle.loads(blob)
        except Exception:
            err = None
    if not isinstance(err, BaseException):
        err = RuntimeError(f"{kind}: {message}")
    if not isinstance(err, CapiMonitorError):  # a bug: keep where it happened
        err.add_note(f"raised in parallel audit worker {index}:\n{trace}")
    raise err


def _death(proc: BaseProcess, index: int) -> str:
    proc.join(timeout=5)  # its pipe closed: it is exiting
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
        if -code == signal.SIGKILL:
            how += " (out of memory?)"
    else:
        how = f"exited with status {code} without a result"
    return f"audit worker {index} {how}; try again with --jobs 1"

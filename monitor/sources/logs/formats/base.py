"""What every sender-format reader shares: the incremental interface and JSON entries.

A reader is fed the physical lines of one input in order (``feed``), possibly across
several reads of a growing file, and returns the v1 delivery records completed so far;
``flush`` ends the input (the calls still waiting are given up on). Its state between
calls is bounded: the pending calls (``pairing.MAX_PENDING``) and at most one entry being
assembled.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import orjson

from monitor.sources.logs.formats.array import ArraySplitter, Piece
from monitor.sources.logs.formats.pairing import (
    MAX_PENDING,
    MAX_WAIT,
    Answer,
    Call,
    Emitted,
    FormatCounts,
    Pairer,
)

ProblemSink = Callable[[int, str], None]  # (line, reason): a malformed entry
Item = Call | Answer | tuple[Call, Answer] | None  # None: a skipped entry

MAX_ENTRY_BYTES = 16 * 1024 * 1024
# Entries of an unordered stream are sorted by time within a window of this many before
# pairing: a small export comes out fully sorted, a large one at least locally.
REORDER_WINDOW = 1024
_BOM = b"\xef\xbb\xbf"


class EntryError(Exception):
    """An entry of a Graph ``/events`` call that cannot be read. ``args[0]`` is a short
    reason that never quotes the entry; ``keep`` is a stand-in for the broken call (no
    request, its dataset) so that its Response is not taken for an unpaired one."""

    def __init__(self, reason: str, keep: Call | None = None) -> None:
        super().__init__(reason)
        self.keep = keep


class FormatReader(ABC):
    """Incremental reader of one sender format. Not thread-safe; one per input stream."""

    name: ClassVar[str]
    symmetric: ClassVar[bool] = False  # whether entries may come out of time order

    def __init__(
        self,
        on_problem: ProblemSink | None = None,
        *,
        graph_hosts: frozenset[str] = frozenset(),
        max_entry_bytes: int = MAX_ENTRY_BYTES,
        max_pending: int = MAX_PENDING,
        max_wait: float = MAX_WAIT,
        reorder_window: int = REORDER_WINDOW,
    ) -> None:
        self.counts = FormatCounts()
        self.graph_hosts = graph_hosts
        self.max_entry_bytes = max_entry_bytes
        self.max_wait = max_wait
        # Where malformed entries are reported, and the name of the input being fed: a
        # reader that follows one stream across files and reads (a tailer) updates both.
        self.on_problem = on_problem
        self.source = ""
        self._out: list[Emitted] = []
        self._pairer = Pairer(
            self._out,
            self.counts,
            symmetric=self.symmetric,
            max_pending=max_pending,
            max_wait=max_wait,
        )
        self._seq = 0
        self._started = False
        self._window = reorder_window if self.symmetric else 0
        self._heap: list[tuple[float, int, Call | Answer | tuple[Call, Answer]]] = []
        self._clock = float("-inf")  # the latest entry time seen (for entries without one)

    def feed(self, line: bytes, lineno: int, offset: int = -1) -> list[Emitted]:
        """Read one physical line (``lineno`` counts from 1; ``offset`` is its byte offset
        in the file, or -1). Returns the records this line completed."""
        if not self._started:
            if not line.strip():
                return []
            self._started = True
            line = line.removeprefix(_BOM)
        self._line(line, lineno, offset)
        return self._take()

    def flush(self) -> list[Emitted]:
        """End of input: finish the entry being assembled, give up on waiting calls."""
        self._end()
        while self._heap:
            self._route(heapq.heappop(self._heap)[2])
        self._pairer.flush()
        return self._take()

    @property
    def pending(self) -> int:
        """Entries held back: waiting for their counterpart or for the reorder window."""
        return self._pairer.pending + len(self._heap)

    def resume_offset(self) -> int | None:
        """Where a reader started afresh would have to begin to rebuild the waiting state:
        the earliest offset of an open entry or of a call still held back (None: none)."""
        offsets = [o for o in (self._open_offset(), self._pairer.oldest_offset()) if o is not None]
        for _, _, item in self._heap:
            call = item[0] if isinstance(item, tuple) else item
            if isinstance(call, Call) and call.offset >= 0:
                offsets.append(call.offset)
        return min(offsets) if offsets else None

    # -- for subclasses --------------------------------------------------------------

    @abstractmethod
    def _line(self, line: bytes, lineno: int, offset: int) -> None: ...

    def _end(self) -> None:  # noqa: B027 - optional hook: most formats hold no entry
        """Finish an entry still being assembled (end of input)."""

    def _open_offset(self) -> int | None:
        return None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _problem(self, lineno: int, reason: str) -> None:
        self.counts.malformed += 1
        if self.on_problem is not None:
            self.on_problem(lineno, reason)

    def _dispatch(self, item: Item) -> None:
        if item is None:
            self.counts.skipped += 1
            return
        first = item[0] if isinstance(item, tuple) else item
        if isinstance(first, Call) and first.request is None and first.dataset is None:
            self.counts.skipped += 1  # a request to another endpoint
        self._hold(item)

    def _hold(self, item: Call | Answer | tuple[Call, Answer]) -> None:
        """Pass ``item`` on to the pairer, through the reorder window if there is one."""
        first = item[0] if isinstance(item, tuple) else item
        if isinstance(first, Call):
            first.source = self.source
        if not self._window:
            self._route(item)
            return
        if first.time is not None:
            self._clock = max(self._clock, first.time)
        key = first.time if first.time is not None else self._clock
        heapq.heappush(self._heap, (key, first.seq, item))
        if len(self._heap) > self._window:
            self._route(heapq.heappop(self._heap)[2])

    def _route(self, item: Call | Answer | tuple[Call, Answer]) -> None:
        if isinstance(item, Call):
            self._pairer.call(item)
        elif isinstance(item, Answer):
            self._pairer.answer(item)
        else:
            self._pairer.both(*item)

    def _take(self) -> list[Emitted]:
        if not self._out:
            return []
        out = self._out[:]
        self._out.clear()
        return out


def opens_array(line: bytes) -> bool:
    """Whether a file's first non-blank line opens a JSON array (``[`` alone, as gcloud
    prints it, or ``[{`` / ``[]`` of a one-line array); not a ``print_r`` ``[key] =>``."""
    text = line.strip()
    return text == b"[" or (text[:1] == b"[" and text[1:].lstrip()[:1] in (b"{", b"]"))


class JsonEntryReader(FormatReader):
    """A format whose entries are JSON objects: one per line, or the elements of one JSON
    array (``gcloud logging read --format=json``, ``bq query --format=json``)."""

    # Whether a line that is not JSON is another program's output (skipped) rather than
    # a damaged entry (malformed).
    foreign_text_is_skipped: ClassVar[bool] = False

    def __init__(self, on_problem: ProblemSink | None = None, **options: Any) -> None:
        super().__init__(on_problem, **options)
        self._array: ArraySplitter | None = None
        self._first = True

    @abstractmethod
    def _object(self, obj: dict[str, Any], lineno: int, offset: int) -> Item:
        """One decoded entry -> a call, an answer, both, or None (skipped). Raises
        ``EntryError`` for an entry of a Graph call that cannot be read."""

    def _line(self, line: bytes, lineno: int, offset: int) -> None:
        if self._first:  # the first non-blank line says whether this is one array
            self._first = False
            if opens_array(line):
                self._array = ArraySplitter(self.max_entry_bytes)
        if self._array is not None:
            for piece in self._array.feed(line, lineno, offset):
                self._piece(piece)
            return
        if not line.strip():
            return
        self._entry(line, lineno, offset)

    def _end(self) -> None:
        if self._array is not None:
            for piece in self._array.flush():
                self._piece(piece)

    def _open_offset(self) -> int | None:
        return self._array.open_offset if self._array is not None else None

    def _piece(self, piece: Piece) -> None:
        if piece.text is None:
            self.counts.entries += 1
            self._problem(piece.line, piece.reason)
        else:
            self._entry(piece.text, piece.line, piece.offset)

    def _entry(self, text: bytes, lineno: int, offset: int) -> None:
        self.counts.entries += 1
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as err:
            if self.foreign_text_is_skipped and text.lstrip()[:1] != b"{":
                self.counts.skipped += 1
            else:
                self._problem(lineno, f"invalid JSON: {err.msg[:80]} (column {err.colno})")
            return
        if type(obj) is not dict:
            if self.foreign_text_is_skipped:
                self.counts.skipped += 1
            else:
                self._problem(lineno, "not a JSON object")
            return
        try:
            item = self._object(obj, lineno, offset)
        except EntryError as err:
            self._problem(lineno, err.args[0])
            if err.keep is not None:
                self._hold(err.keep)
            return
        self._dispatch(item)

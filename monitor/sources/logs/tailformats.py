"""The tailer's sender-format state: format readers that outlive a cycle.

Files in a sender format (docs/contracts.md §7) are read by one format reader per
(dataset, format), kept by the ``LogTailer`` between cycles: a Request read in one cycle
pairs with its Response read in a later one, or in the file that replaced a rotated one.
A cycle works on copies (``SenderCycle``), made the tailer's by ``keep`` once the cycle's
cursors are committed; a cycle that is not kept is read again from the same state. A
stream that got no lines for its reader's ``max_wait`` gives up on the calls still
waiting (deliveries with unknown outcome). The waiting calls live in memory only: a
restart loses them (their answers then count as unpaired).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

from monitor.config import DatasetSettings
from monitor.model.cursors import Identity
from monitor.model.observations import Delivery, ReadStats
from monitor.sources.logs.formats import (
    AUTO,
    SNIFF_BYTES,
    SNIFF_LINES,
    V1,
    FormatReader,
    detect,
    open_reader,
)
from monitor.sources.logs.reader import read_sender_stream

StreamKey = tuple[str | None, str]  # (dataset id, sender format)
_READ_BUFFER = 1 << 20


class SenderState:
    """What survives from cycle to cycle: the readers, when each stream last got lines,
    and the format of each file once detected."""

    def __init__(
        self,
        datasets: Sequence[DatasetSettings],
        *,
        graph_hosts: frozenset[str] = frozenset(),
        max_line_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.graph_hosts = graph_hosts
        self.max_line_bytes = max_line_bytes
        self.formats = {ds.id: ds.logs_format for ds in datasets}
        self.streams: dict[StreamKey, FormatReader] = {}
        self.fed: dict[StreamKey, float] = {}
        self.detected: dict[Identity, str] = {}

    def cycle(self, stats: ReadStats, now: float) -> SenderCycle:
        return SenderCycle(self, stats, now)


class SenderCycle:
    """One cycle's working copies of the ``SenderState``."""

    def __init__(self, state: SenderState, stats: ReadStats, now: float) -> None:
        self._state = state
        self._stats = stats
        self._now = now
        self._streams: dict[StreamKey, FormatReader] = {}
        self._fed: dict[StreamKey, float] = {}
        self._detected: dict[Identity, str] = {}

    def keep(self) -> None:
        """Make this cycle's state the tailer's (its cursors are committed)."""
        self._state.streams.update(self._streams)
        self._state.fed.update(self._fed)
        self._state.detected.update(self._detected)

    def format(
        self,
        dataset_id: str | None,
        identity: Identity,
        offset: int,
        head: Callable[[int], bytes],
        *,
        complete: bool,
    ) -> str | None:
        """A file's format: its dataset's ``logs_format``, else detected from its first
        lines (``head(n)``: up to ``n`` bytes from its start), once it has been read from.
        None: a growing file still too short to tell (``complete`` False), read later."""
        forced = self._state.formats.get(dataset_id or "", AUTO)
        if forced != AUTO:
            return forced
        known = self._detected.get(identity) or self._state.detected.get(identity)
        if known is not None and offset > 0:
            return known
        text = head(SNIFF_BYTES)
        lines = text.splitlines(keepends=True)
        found = detect(lines[:SNIFF_LINES])
        if found is None:
            whole = sum(1 for line in lines if line.strip() and line.endswith(b"\n"))
            if not complete and len(text) < SNIFF_BYTES and whole < SNIFF_LINES:
                return None
            found = V1
        self._detected[identity] = found
        return found

    def deliveries(
        self, dataset_id: str | None, fmt: str, stream: io.RawIOBase, *, name: str,
        first_line: int, first_offset: int,
    ) -> Iterator[Delivery]:  # fmt: skip
        """Feed the new lines of a sender-format file to its stream's reader."""
        key = (dataset_id, fmt)
        self._fed[key] = self._now
        with io.BufferedReader(stream, _READ_BUFFER) as buffered:
            yield from read_sender_stream(
                buffered, self._stats, self._stream(key), name=name, first_line=first_line,
                first_offset=first_offset, max_line_bytes=self._state.max_line_bytes,
                graph_hosts=self._state.graph_hosts,
            )  # fmt: skip

    def give_up_idle(self) -> Iterator[Delivery]:
        """Streams that got no lines for their ``max_wait``: their waiting calls become
        deliveries with unknown outcome (their files may never grow again)."""
        for key, kept in list(self._state.streams.items()):
            current = self._streams.get(key, kept)
            last = self._fed.get(key, self._state.fed.get(key, self._now))
            if not current.pending or self._now - last < current.max_wait:
                continue
            empty: BinaryIO = io.BytesIO(b"")
            yield from read_sender_stream(
                empty, self._stats, self._stream(key), name=current.source, first_line=1,
                first_offset=0, flush=True, max_line_bytes=self._state.max_line_bytes,
            )  # fmt: skip

    def _stream(self, key: StreamKey) -> FormatReader:
        """This cycle's copy of the reader of ``key`` (a new one the first time)."""
        working = self._streams.get(key)
        if working is None:
            kept = self._state.streams.get(key)
            # No reorder window: entries would wait in it for later traffic; files that
            # are followed are written in time order, give or take what pairing absorbs.
            working = copy.deepcopy(kept) if kept is not None else open_reader(
                key[1], graph_hosts=self._state.graph_hosts,
                max_entry_bytes=self._state.max_line_bytes, reorder_window=0,
            )  # fmt: skip
            self._streams[key] = working
        return working

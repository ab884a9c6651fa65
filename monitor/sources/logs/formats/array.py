"""Cut a JSON array into its elements while it is read line by line.

``gcloud logging read --format=json`` prints one array, pretty-printed over many lines
(``bq query --format=json`` prints one on a single line). Loading it whole would hold the
whole export in memory; the splitter holds one element at a time.

It relies on one property of JSON: a string never contains a raw newline, so a line
can be scanned for brackets with strings skipped, and the bracket depth carried from
line to line. Objects written outside any array (one per line) come out as elements
too, so the same reader takes an array or JSON lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A JSON string (escapes included) or a bracket. Strings are matched so that brackets
# inside them are not counted.
_TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|[\[\]{}]')
_SEPARATORS = b" \t\r\n,"


@dataclass(slots=True)
class Piece:
    """One element: its text, or ``None`` with a ``reason`` when it cannot be one."""

    line: int
    offset: int
    text: bytes | None
    reason: str = ""


class ArraySplitter:
    """Feed lines in order; each call returns the elements completed on that line."""

    __slots__ = (
        "_base",
        "_depth",
        "_in_element",
        "_max_bytes",
        "_offset",
        "_parts",
        "_size",
        "_start",
        "_too_long",
    )

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._depth = 0
        self._base = 0  # depth outside the current element
        self._in_element = False
        self._parts: list[bytes] = []
        self._size = 0
        self._too_long = False
        self._start = 0  # line of the current element's first byte
        self._offset = -1

    @property
    def open_offset(self) -> int | None:
        """Offset of the element being read, if one is open."""
        return self._offset if self._in_element and self._offset >= 0 else None

    def feed(self, line: bytes, lineno: int, offset: int = -1) -> list[Piece]:
        pieces: list[Piece] = []
        stray = False  # text outside any element: reported once per line
        seg = 0  # where the current element's text starts on this line
        gap = 0  # where the text between elements starts on this line
        for match in _TOKEN.finditer(line):
            pos = match.start()
            token = match.group()
            if not self._in_element:
                stray = stray or bool(line[gap:pos].strip(_SEPARATORS))
                gap = match.end()
            if token[0] == 0x22:  # a string
                stray = stray or not self._in_element
                continue
            if token in b"[{":
                if not self._in_element and (self._depth == 1 or token == b"{"):
                    self._open(lineno, offset + pos if offset >= 0 else -1)
                    seg = pos
                self._depth += 1
                continue
            self._depth -= 1
            if self._in_element and self._depth == self._base:
                self._keep(line[seg : match.end()])
                pieces.append(self._close())
                seg = gap = match.end()
            elif self._depth < 0:  # a closing bracket with nothing open
                self._depth = 0
                stray = True
        if self._in_element:
            self._keep(line[seg:])
        else:
            stray = stray or bool(line[gap:].strip(_SEPARATORS))
        if stray:
            pieces.append(Piece(lineno, offset, None, "not a JSON object"))
        return pieces

    def flush(self) -> list[Piece]:
        """End of input: an element still open is cut short."""
        if not self._in_element:
            return []
        self._in_element = False
        self._parts.clear()
        self._depth = 0
        return [Piece(self._start, self._offset, None, "incomplete JSON value at end of input")]

    def _open(self, lineno: int, offset: int) -> None:
        self._in_element = True
        self._base = self._depth
        self._start = lineno
        self._offset = offset
        self._size = 0
        self._too_long = False

    def _keep(self, text: bytes) -> None:
        if self._too_long:
            return
        self._size += len(text)
        if self._size > self._max_bytes:
            self._too_long = True
            self._parts.clear()
        else:
            self._parts.append(text)

    def _close(self) -> Piece:
        self._in_element = False
        if self._too_long:
            return Piece(
                self._start, self._offset, None, f"entry longer than {self._max_bytes} bytes"
            )
        text = b"".join(self._parts)
        self._parts.clear()
        return Piece(self._start, self._offset, text)

"""Requests and responses of Graph ``/events`` calls -> v1 delivery records.

Senders that log a call as two entries (a Request, then a Response) are paired here
(docs/contracts.md §7):

- a Response belongs to the pending Request with the same ``TraceId`` (when both carry
  one) and otherwise to the *closest* compatible pending Request: same tag name, same
  event name and same dataset wherever both sides name one, and a Request never later
  than its Response;
- a Request left without a Response is a delivery with unknown outcome; a Response left
  without a Request is counted as unpaired (or skipped, when nothing says it answers a
  Graph ``/events`` call);
- a Response to a request of another endpoint (a *placeholder* call) is skipped.

Streams whose order is not guaranteed (a newest-first ``gcloud logging read`` array,
BigQuery exports, sink files) pair *symmetrically*: a Response may also wait for its
Request, and times decide which comes first. Streams written in order (console lines,
WooCommerce files) never hold a Response back.

Memory: at most ``max_pending`` entries wait; one older than ``max_wait`` seconds (by
entry time) or ``max_lag`` entries behind the newest is given up on (a call with unknown
outcome, an unpaired response).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_PENDING = 1000
MAX_WAIT = 300.0  # seconds: far beyond any sender's HTTP timeout
MAX_LAG = 10_000  # entries
_UNTIMED = 1e18  # the "time gap" to a counterpart without a time: any timed one is closer


@dataclass(slots=True)
class Emitted:
    """One v1 delivery record (docs/contracts.md §1 shape (a)) built from a call, with the
    line (and byte offset, -1 when unknown) where the call's Request entry starts, and the
    name of the input it was read from (``FormatReader.source`` then; "" if unset)."""

    line: int
    record: dict[str, Any]
    offset: int = -1
    file: str = ""


@dataclass(slots=True)
class FormatCounts:
    """What one reader saw. ``entries`` counts log items (a line, a LogEntry, a row, a
    multi-line WooCommerce entry); the others are subsets of it, except ``deliveries``."""

    entries: int = 0
    skipped: int = 0  # other tags, other endpoints, non-GTMS lines, Message entries
    unpaired_responses: int = 0
    malformed: int = 0
    deliveries: int = 0  # records emitted (paired or with unknown outcome)


@dataclass(slots=True)
class Call:
    """A Request entry. ``request`` is the body with tokens removed. Without one the call
    is a placeholder whose answer is skipped: a request to anything but a Graph
    ``/events`` URL (``dataset`` None), or a malformed request to one."""

    line: int
    seq: int
    time: float | None
    tag: str | None
    trace: str | None
    event: str | None
    dataset: str | None
    request: dict[str, Any] | None
    duration_ms: float | None = None
    offset: int = -1
    source: str = ""  # the input it was read from


@dataclass(slots=True)
class Answer:
    """A Response entry. ``status`` is ``None`` when the call got no HTTP answer
    (``failure`` says why in one fixed word); ``graph`` is True when the entry itself
    shows that it answers a Graph ``/events`` call (a ``Pixel ID:``, Meta's body)."""

    line: int
    seq: int
    time: float | None
    tag: str | None
    trace: str | None
    event: str | None
    dataset: str | None
    status: int | None
    body: dict[str, Any] | None
    failure: str | None = None
    graph: bool = False

    def as_v1(self) -> dict[str, Any]:
        if self.status is None:
            return {"status": None, "transport_error": self.failure or "no answer"}
        if self.body is None:
            return {"status": self.status}
        return {"status": self.status, "body": self.body}


def graph_body(body: dict[str, Any] | None) -> bool:
    """Whether a response body is Meta's answer to ``/events`` (success or error)."""
    if body is None:
        return False
    if "events_received" in body or "fbtrace_id" in body:
        return True
    error = body.get("error")
    return type(error) is dict and "fbtrace_id" in error


@dataclass(slots=True)
class Pairer:
    """Pairs calls and answers fed in stream order; records go to ``out``."""

    out: list[Emitted]
    counts: FormatCounts
    symmetric: bool = False
    max_pending: int = MAX_PENDING
    max_wait: float = MAX_WAIT
    max_lag: int = MAX_LAG
    _pending: list[Call | Answer] = field(default_factory=list)
    _graph_tags: set[str] = field(default_factory=lambda: {"Facebook"})

    def call(self, c: Call) -> None:
        self._prune(c.seq, c.time)
        if c.request is not None and c.tag is not None:
            self._graph_tags.add(c.tag)
        if self.symmetric:
            found = self._take(c)
            if isinstance(found, Answer):
                self._resolve(c, found)
                return
        self._pending.append(c)

    def answer(self, a: Answer) -> None:
        self._prune(a.seq, a.time)
        found = self._take(a)
        if isinstance(found, Call):
            self._resolve(found, a)
        elif self.symmetric:
            self._pending.append(a)
        else:
            self._orphan(a)

    def both(self, c: Call, a: Answer) -> None:
        """A single entry that logs request and response together."""
        self._prune(c.seq, c.time)
        self._resolve(c, a)

    def flush(self) -> None:
        """Give up on everything still waiting (end of input)."""
        pending, self._pending = self._pending, []
        for item in pending:
            self._expire(item)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def oldest_offset(self) -> int | None:
        """The byte offset of the earliest waiting Request of a Graph call (a durable
        cursor must not move past it), or None."""
        offsets = [
            p.offset
            for p in self._pending
            if isinstance(p, Call) and p.request is not None and p.offset >= 0
        ]
        return min(offsets) if offsets else None

    # -- matching --------------------------------------------------------------------

    def _take(self, item: Call | Answer) -> Call | Answer | None:
        """Remove and return the pending counterpart of ``item``: the one with the same
        trace id if any, else the closest compatible one (by time in a symmetric stream,
        else the newest)."""
        pending = self._pending
        best = -1
        best_gap = float("inf")
        for i in range(len(pending) - 1, -1, -1):
            other = pending[i]
            if isinstance(other, Call) and isinstance(item, Answer):
                c, a = other, item
            elif isinstance(other, Answer) and isinstance(item, Call):
                c, a = item, other
            else:
                continue
            if not _compatible(c, a):
                continue
            if item.trace is not None and other.trace == item.trace:
                return pending.pop(i)
            if not self.symmetric:
                if best < 0:
                    best = i
                if item.trace is None:
                    break
                continue
            gap = abs(a.time - c.time) if a.time is not None and c.time is not None else _UNTIMED
            if gap < best_gap:
                best, best_gap = i, gap
        return pending.pop(best) if best >= 0 else None

    def _prune(self, seq: int, time: float | None) -> None:
        pending = self._pending
        while pending:
            first = pending[0]
            stale = (
                len(pending) >= self.max_pending
                or seq - first.seq > self.max_lag
                or (
                    time is not None
                    and first.time is not None
                    and abs(time - first.time) > self.max_wait
                )
            )
            if not stale:
                return
            pending.pop(0)
            self._expire(first)

    # -- outcomes --------------------------------------------------------------------

    def _expire(self, item: Call | Answer) -> None:
        if isinstance(item, Answer):
            self._orphan(item)
        elif item.request is not None:
            self._emit(item, None)

    def _resolve(self, c: Call, a: Answer) -> None:
        if c.request is None:
            self.counts.skipped += 1  # the answer of another endpoint; its request counted
        else:
            self._emit(c, a)

    def _orphan(self, a: Answer) -> None:
        if a.graph or (a.tag is not None and a.tag in self._graph_tags):
            self.counts.unpaired_responses += 1
        else:
            self.counts.skipped += 1

    def _emit(self, c: Call, a: Answer | None) -> None:
        assert c.request is not None
        record: dict[str, Any] = {"dataset_id": c.dataset, "request": c.request}
        if c.time is not None:
            record["sent_at"] = c.time
        duration = c.duration_ms
        if duration is None and a is not None:
            duration = _gap_ms(c.time, a.time)
        if duration is not None:
            record["duration_ms"] = duration
        if a is not None:
            record["response"] = a.as_v1()
        self.counts.deliveries += 1
        self.out.append(Emitted(c.line, record, c.offset, c.source))


def _compatible(c: Call, a: Answer) -> bool:
    if c.time is not None and a.time is not None and a.time < c.time:
        return False  # an answer never precedes its request
    if c.request is None and c.dataset is None and a.graph:
        return False  # Meta's answer to /events is not the answer to another endpoint
    return (
        _same(c.tag, a.tag)
        and _same(c.trace, a.trace)
        and _same(c.event, a.event)
        and _same(c.dataset, a.dataset)
    )


def _same(x: str | None, y: str | None) -> bool:
    return x is None or y is None or x == y


def _gap_ms(sent: float | None, answered: float | None) -> float | None:
    """The round trip from entry times, when both are known and in order."""
    if sent is None or answered is None or answered < sent:
        return None
    return round((answered - sent) * 1000.0, 3)

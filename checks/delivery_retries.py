"""Which failed events were accepted later: the ledger behind ``DELIVERY_RETRIED``.

An attempt that failed and whose events were later accepted (same ``event_name`` +
``event_id``) is not a lost event (docs/contracts.md §9): ``DELIVERY_ERRORS`` counts the
events never accepted, and the recovered ones are reported as ``DELIVERY_RETRIED``.

The ledger keeps one entry per failed event not (yet) accepted, under a hash of the pair:
its error group, its event name and the cause of its first failure. A later failure of
the same event is another attempt, not another lost event; a later acceptance resolves
the entry. Events without an ``event_id`` cannot be followed: each failure of one counts.
An acceptance *before* a failure resolves nothing (a failed resend of an accepted event
is reported as failed: only "later" counts), and memory is bounded: above
``max_tracked`` pending entries new failures are counted without being followed.

A parallel audit merges consecutive parts (``merge``). A later part (``continuation``)
also records the first outcome of each event it saw within ``window`` of its first
timed event (its head): accepted first, failed first, or failed and then accepted in the
part. The earlier part's pending entries are resolved against that head exactly as a
sequential run would resolve them; events first seen after the head are treated as new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ACCEPTED", "FAILED", "RECOVERED", "Pending", "RetryLedger", "event_key"]

# First outcome of an event in a continuation's head.
ACCEPTED = 1  # accepted before any failure in this part
FAILED = 2  # failed, not accepted later in this part
RECOVERED = 3  # failed, then accepted later in this part

_UNSTARTED = -2


def event_key(event: dict[str, Any]) -> int | None:
    """A hash of (event_name, event_id), or ``None`` without a usable ``event_id``."""
    eid = event.get("event_id")
    cls = eid.__class__
    if cls is str:
        if not eid or eid.isspace():
            return None
    elif cls is not int and cls is not float:
        return None
    return hash((event["event_name"], eid))


@dataclass(slots=True)
class Pending:
    """A failed event not accepted so far."""

    group: tuple[str, str]  # (finding code, field) of the error group it was counted in
    name: str  # event_name
    transient: bool  # its first failure was transient (docs/contracts.md §9)
    cause: str  # label of that failure: "2", "190/463", "HTTP 503", "no answer"


class RetryLedger:
    """Failed events awaiting a later acceptance (module docstring)."""

    def __init__(self, *, continuation: bool, window: int, max_tracked: int) -> None:
        self.pending: dict[int, Pending] = {}
        self._window = window
        self._max_tracked = max_tracked
        self.head: dict[int, int] = {}  # continuation only: key -> first outcome
        self._head_until = _UNSTARTED if continuation else -1

    def failed(self, key: int, t: float, entry: Pending) -> bool:
        """A failed attempt of an event; True when it is a new failure (to be counted),
        False when the event already awaits acceptance (another attempt)."""
        self._note(key, t, FAILED)
        if key in self.pending:
            return False
        if len(self.pending) < self._max_tracked:
            self.pending[key] = entry
        return True

    def accepted(self, key: int, t: float) -> Pending | None:
        """An accepted event: its pending failure, if any, is resolved and returned."""
        entry = self.pending.pop(key, None)
        self._note(key, t, RECOVERED if entry is not None else ACCEPTED)
        return entry

    @property
    def following(self) -> bool:
        """Whether accepted events must be looked at (something pending, or a head)."""
        return bool(self.pending) or self._head_until != -1

    def _note(self, key: int, t: float, outcome: int) -> None:
        if self._head_until == -1:
            return
        if self._head_until == _UNSTARTED:
            self._head_until = int(t) + self._window
        first = self.head.get(key)
        if first is None:
            if t <= self._head_until and len(self.head) < self._max_tracked:
                self.head[key] = outcome
        elif first == FAILED and outcome == RECOVERED:
            self.head[key] = RECOVERED  # at any time: the head's failure was recovered

    def merge(
        self, later: RetryLedger, regroup: dict[tuple[str, str], tuple[str, str]]
    ) -> tuple[list[Pending], list[Pending]]:
        """Fold in the ledger of the part right after this one (module docstring).

        ``regroup`` maps ``later``'s group keys to ours (groups may overflow into
        "other" when merged). Returns ``(resolved, duplicates)``: our pending entries that
        ``later`` accepted (to move from their group to the retried ones, unless already
        counted as retried by ``later``: those come back in ``duplicates`` too) and
        ``later``'s entries that repeat one of ours (to uncount from ``later``'s group).
        """
        resolved: list[Pending] = []
        duplicates: list[Pending] = []
        for key in list(self.pending):
            first = later.head.get(key)
            if first is None:
                continue
            mine = self.pending[key]
            if first == ACCEPTED:
                resolved.append(self.pending.pop(key))
            elif first == RECOVERED:
                # later counted it once in its group and once as retried: the group count
                # goes (it was ours), the retried count stays (it happened once).
                del self.pending[key]
                duplicates.append(mine)
            elif first == FAILED and key in later.pending:
                theirs = later.pending.pop(key)
                theirs.group = regroup.get(theirs.group, theirs.group)
                duplicates.append(theirs)
        for key, entry in later.pending.items():
            if key not in self.pending and len(self.pending) < self._max_tracked:
                entry.group = regroup.get(entry.group, entry.group)
                self.pending[key] = entry
        return resolved, duplicates

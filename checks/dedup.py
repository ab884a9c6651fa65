"""The ``dedup`` check, log-based part: event ids that make deduplication possible and correct.

Meta deduplicates a browser and a server event (and repeated server sends) that share
``event_name`` + ``event_id`` within 48 hours (docs/meta-capi.md §5). Two defects follow:

``MISSING_EVENT_ID``
    An event without a non-empty ``event_id`` (a string that is not blank, or a number)
    cannot be deduplicated against its browser twin. ``warn``; ``crit`` once the share of
    such events reaches ``[checks.dedup] warn_to_crit_share`` (default 0.25).
``EVENT_ID_REUSED`` (docs/contracts.md §6)
    The same ``event_name`` + ``event_id`` on events whose *content* differs (``user_data``
    or ``custom_data``: value, currency, order id, contents...) sent within
    ``reuse_window`` (48 h) of each other, by ``sent_at`` else ``event_time``: Meta keeps
    the first and silently drops the others as duplicates. ``count`` = events that reused
    an id already seen. Identical content is a retry or duplicate send, not reuse; those
    are counted in the evidence (``duplicate_sends``) and raise nothing. ``warn``;
    ``crit`` at the same share threshold.

Memory is bounded: for each (event_name, event_id) seen within the window we keep one
packed int (send time in whole seconds and a 32-bit content fingerprint) under a 64-bit
hash of the pair, pruned of entries older than the window behind a watermark (the latest
time seen). Consequences, documented rather than hidden: input that is out of order by
more than the window may miss a reuse; only the latest content of an id is remembered
(A, B, A-again counts the second A as a reuse too); two contents sharing a 32-bit
fingerprint (about 1 in 4·10⁹ per comparison) hide one reuse; the same content in
another key order or list order (``em: [a, b]`` vs ``[b, a]``) counts as different;
above ``MAX_TRACKED_IDS`` ids inside one window the oldest-inserted half is forgotten.

A parallel audit cuts the input into parts and merges the checks of consecutive parts
(``Dedup.merge``); reuse across a cut is the only order-dependent state, handled there.

Graph part (``ctx.graph``, see ``checks.graph_common``), from Dataset Quality
``dedupe_key_feedback`` (docs/meta-capi.md §3, §11):

``DEDUP_KEY_COVERAGE_LOW``
    Meta's share of browser or server events of a name carrying ``event_id`` below
    ``[checks.dedup] graph_min_pct`` (90 %; ``crit`` below ``graph_crit_pct``, 50 %).
    A side is judged only when its ``/stats`` count of that name is unknown or at least
    ``graph_min_events`` (20): a server-only event has no browser side to judge. An
    absent block (dedup never set up) is unknown, not 0 (§3, §12).
"""

from __future__ import annotations

import itertools
import math
from array import array
from typing import Any, ClassVar

import orjson

from checks.base import (
    MAX_EVENT_NAMES,
    MAX_EXAMPLES,
    CheckContext,
    Tally,
    escalate,
    make_finding,
    names_text,
    result_from_findings,
    skipped,
)
from checks.graph_common import (
    GraphPart,
    GraphState,
    combine,
    enough,
    error_text,
    event_volumes,
    graph_finding,
    not_polled,
    skipped_part,
    volume_count,
)
from monitor.mask import mask_value
from monitor.model.findings import CheckResult, Example, Finding, Severity
from monitor.model.graph import EventQuality, GraphSnapshot, Part
from monitor.model.observations import Delivery

MISSING_EVENT_ID = "MISSING_EVENT_ID"
EVENT_ID_REUSED = "EVENT_ID_REUSED"
FIELD = "event_id"

# ~100 bytes per tracked id; the cap keeps the worst case near 100 MB.
MAX_TRACKED_IDS = 1_000_000
_FP_MASK = 0xFFFFFFFF
_MAX_TIME = 1e11  # seconds: the year 5138, beyond any time that can be placed
_HEAD_UNSTARTED = 1 << 62  # head open, its window starts at the first timed id


def content_fingerprint(event: dict[str, Any]) -> int:
    """32-bit fingerprint of what makes two events with one id "the same event":
    ``user_data`` and ``custom_data`` (value, currency, order id, contents...).

    Serialised as sent, keys unsorted: orjson's key sorting would double the cost of the
    hottest line of this check, and a retry resends the same payload. Any value is
    accepted: what orjson cannot encode falls back to its ``repr``.
    """
    content = (event.get("user_data"), event.get("custom_data"))
    try:
        return hash(orjson.dumps(content)) & _FP_MASK
    except TypeError:  # orjson.JSONEncodeError subclasses TypeError
        return hash(repr(content)) & _FP_MASK


def _seconds(t: float) -> int | None:
    """Whole Unix seconds for the reuse window; None for times that cannot be placed
    (negative, NaN, infinite or absurdly far)."""
    if not 0 <= t < _MAX_TIME:
        return None
    return int(t)


class FirstUses:
    """The first use of each id in the head of a later part (see ``Dedup.merge``): key,
    seconds, fingerprint, event name, event id, file and line, enough to judge it against
    the part before and to report it. Rows live in parallel arrays (names and
    files as indexes): ~150 bytes per id, and a pickle that copies arrays as bytes."""

    __slots__ = ("_file_ix", "_index", "_name_ix", "eids", "file_of", "files", "fps", "keys",
                 "lines", "name_of", "names", "times")  # fmt: skip

    def __init__(self) -> None:
        self.keys = array("q")
        self.times = array("q")
        self.fps = array("L")
        self.lines = array("q")
        self.name_of = array("I")
        self.file_of = array("I")
        self.eids: list[object] = []
        self.names: list[str] = []
        self.files: list[str] = []
        self._name_ix: dict[str, int] = {}
        self._file_ix: dict[str, int] = {}
        self._index: set[int] | None = set()  # the keys; rebuilt after unpickling

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: int, t: int, fp: int, name: str, eid: object, file: str, line: int) -> None:
        """A row for ``key`` unless it has one (the first use stays). Runs for every id
        in a head, hence the inlined lookups."""
        index = self._index
        if index is None:
            index = self._index = set(self.keys)
        if key in index:
            return
        index.add(key)
        self.keys.append(key)
        self.times.append(t)
        self.fps.append(fp)
        self.lines.append(line)
        i = self._name_ix.get(name)
        self.name_of.append(_intern(self._name_ix, self.names, name) if i is None else i)
        i = self._file_ix.get(file)
        self.file_of.append(_intern(self._file_ix, self.files, file) if i is None else i)
        self.eids.append(eid)

    def example(self, row: int) -> Example:
        """The masked example of one row, as ``Tally.add`` would make it."""
        return Example(self.files[self.file_of[row]], self.lines[row],
                       mask_value(self.eids[row], FIELD))  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if k != "_index"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._index = None


def _intern(index: dict[str, int], values: list[str], value: str) -> int:
    i = index.get(value)
    if i is None:
        i = index[value] = len(values)
        values.append(value)
    return i


class Dedup:
    """Folds deliveries into missing-id counts and a bounded recent-id table."""

    id: ClassVar[str] = "dedup"
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = True
    title: ClassVar[str] = "Deduplication keys"

    def __init__(self, ctx: CheckContext, *, max_tracked: int = MAX_TRACKED_IDS) -> None:
        self.ctx = ctx
        cfg = ctx.settings.dedup
        self._window = int(cfg.reuse_window)
        self._crit_share = cfg.warn_to_crit_share
        # Prune when the watermark has moved a quarter window: the table then holds at
        # most ~1.25 windows of ids and each entry is scanned about five times in its life.
        self._prune_step = max(1, self._window // 4)
        self._max_tracked = max_tracked
        self._seen: dict[int, int] = {}  # hash(name, id) -> (seconds << 32) | fingerprint
        self._watermark = -1
        self._pruned_at = -1
        self._peak = 0
        self.events = 0
        self.duplicate_sends = 0
        self._missing = Tally(MISSING_EVENT_ID, FIELD)
        self._reused = Tally(EVENT_ID_REUSED, FIELD)
        # Only in a later part of a parallel audit (ctx.continuation): the first use of
        # each id in the part's head, its first window plus a prune step (bounded like
        # _seen), for ``merge``; and, per kept reuse example, len(_head) when it was taken,
        # which orders it among the head's rows.
        self._head = FirstUses()
        self._head_until = _HEAD_UNSTARTED if ctx.continuation else -1
        self._reuse_marks: list[int] = []

    @property
    def tracked_ids(self) -> int:
        """Ids currently remembered (for tests and diagnostics)."""
        return len(self._seen)

    def observe(self, delivery: Delivery) -> None:
        events = delivery.events
        self.events += len(events)
        sent = None if delivery.sent_at is None else _seconds(delivery.sent_at)
        seen = self._seen  # mutated in place only (pruning too), so this alias stays valid
        head_until = self._head_until  # -1 unless a continuation: no head to keep
        dumps = orjson.dumps
        for ev, event_time in zip(events, delivery.times, strict=True):
            eid = ev.get("event_id")
            cls = eid.__class__
            if cls is str:
                if not eid or eid.isspace():
                    self._missing.add(ev["event_name"], delivery.file, delivery.line, eid)
                    continue
            elif cls is not int and cls is not float:  # None, bool, list, dict...
                self._missing.add(ev["event_name"], delivery.file, delivery.line, eid)
                continue
            t = sent if sent is not None else _seconds(event_time)
            if t is None:
                continue
            # Hot path, inlined: most ids are seen once, so a lookup and an insert.
            key = hash((ev["event_name"], eid))
            try:  # content_fingerprint, inlined: one call less per event
                fp = hash(dumps((ev.get("user_data"), ev.get("custom_data")))) & _FP_MASK
            except TypeError:
                fp = content_fingerprint(ev)
            prev = seen.get(key)
            if prev is None:
                seen[key] = (t << 32) | fp
                if t <= head_until:
                    self._remember_first(key, t, fp, ev["event_name"], eid, delivery)
                if t > self._watermark:
                    self._advance(t)
                if len(seen) > self._max_tracked:
                    self._evict_oldest_half()
            else:
                self._seen_again(key, prev, t, fp, ev, eid, delivery)

    def _seen_again(
        self, key: int, prev: int, t: int, fp: int, ev: dict[str, Any], eid: object, d: Delivery
    ) -> None:
        """An id already in the table: a fresh use, a duplicate send or a reuse."""
        prev_t = prev >> 32
        if t - prev_t > self._window:  # the old entry is stale: a fresh use of the id
            self._seen[key] = (t << 32) | fp
        elif prev_t - t > self._window:  # far older than what we remember: not comparable
            return
        elif fp == prev & _FP_MASK:
            self.duplicate_sends += 1
            if t > prev_t:
                self._seen[key] = (t << 32) | fp
        else:
            if len(self._reused.examples) < MAX_EXAMPLES:
                self._reuse_marks.append(len(self._head))
            self._reused.add(ev["event_name"], d.file, d.line, eid)
            self._seen[key] = (max(t, prev_t) << 32) | fp
        if t > self._watermark:
            self._advance(t)

    def _remember_first(
        self, key: int, t: int, fp: int, name: str, eid: object, d: Delivery
    ) -> None:
        """Keep the first use of an id in this part's head (continuations only)."""
        if self._head_until == _HEAD_UNSTARTED:
            self._head_until = t + self._window + self._prune_step
        head = self._head
        if t <= self._head_until and len(head.keys) < self._max_tracked:
            head.add(key, t, fp, name, eid, d.file, d.line)

    def merge(self, later: Dedup) -> None:
        """Fold in the state of the part of the input right after this one (``Check.merge``).

        ``later`` must have been created with ``ctx.continuation``: its head holds the
        first use of each id it saw early. Each such use is judged against our table as
        ``observe`` would have (within ``reuse_window``: a different fingerprint is a
        reuse, reported with ``later``'s example; the same one a duplicate send); then
        ``later``'s table joins ours (the newest entry per id wins) and is pruned at the
        new watermark. Exact for input in time order, with one approximation: when
        ``later`` saw an id several times, only its first use is compared with ours (its
        other uses were compared with that first one, where one sequential table would
        hold our newer time or content only for out-of-order input). Uses after the head
        (more than a window and a prune step after ``later``'s first timed id) are not
        compared: input out of order by more than that across a cut may miss a reuse. A
        sequential run remains the reference. Merge parts left to right: ``later`` must
        not have absorbed a part itself.
        """
        self.events += later.events
        self.duplicate_sends += later.duplicate_sends
        self._missing.merge(later._missing)
        self._merge_reuses(later)
        seen = self._seen
        for key, packed in later._seen.items():
            mine = seen.get(key)
            if mine is None or packed >> 32 >= mine >> 32:
                seen[key] = packed
        self._peak = max(self._peak, later.peak_tracked)
        self._watermark = max(self._watermark, later._watermark)
        self._prune()
        if len(seen) > self._max_tracked:
            self._evict_oldest_half()

    def _merge_reuses(self, later: Dedup) -> None:
        """Judge ``later``'s first uses against our table; merge the reuse tallies with
        the examples in input order (earlier part first, then ``later``'s in its order)."""
        seen, window, head = self._seen, self._window, later._head
        hits: list[int] = []  # rows of later's head
        for row, (key, t, fp) in enumerate(zip(head.keys, head.times, head.fps, strict=True)):
            prev = seen.get(key)
            if prev is None:
                continue
            if abs(t - (prev >> 32)) > window:
                continue  # a fresh use of the id, or not comparable (see _seen_again)
            if fp == prev & _FP_MASK:
                self.duplicate_sends += 1
            else:
                hits.append(row)
        reused, theirs = self._reused, later._reused
        names = reused.event_names
        for row in hits:
            reused.count += 1
            name = head.names[head.name_of[row]]
            if name in names:
                names[name] += 1
            elif len(names) < MAX_EVENT_NAMES:
                names[name] = 1
        # A reuse example of later's own was taken after ``mark`` head rows: it comes
        # after head row mark - 1 and before head row mark in the input.
        ordered = sorted(
            [((row, 1), head.example(row)) for row in hits[:MAX_EXAMPLES]]
            + [((m, 0), ex) for m, ex in zip(later._reuse_marks, theirs.examples, strict=True)],
            key=lambda item: item[0],  # stable: later's own examples keep their order
        )
        taken = [ex for _, ex in ordered[: max(0, MAX_EXAMPLES - len(reused.examples))]]
        reused.examples.extend(taken)
        self._reuse_marks.extend([len(self._head)] * len(taken))  # after all of our head
        theirs.examples = []  # taken above, in order
        reused.merge(theirs)

    @property
    def peak_tracked(self) -> int:
        """The most ids the table held at once (it only grows between prunes)."""
        return max(self._peak, len(self._seen))

    def _advance(self, t: int) -> None:
        """Move the watermark to ``t`` and prune when it moved a prune step."""
        self._watermark = t
        if t - self._pruned_at >= self._prune_step:
            self._prune()

    def _prune(self) -> None:
        """Forget ids last seen more than one window behind the watermark."""
        cutoff = (self._watermark - self._window) << 32
        seen = self._seen
        self._peak = max(self._peak, len(seen))
        for key in [k for k, v in seen.items() if v < cutoff]:
            del seen[key]
        self._pruned_at = self._watermark

    def _evict_oldest_half(self) -> None:
        # Insertion order approximates time order for logs read chronologically.
        seen = self._seen
        self._peak = max(self._peak, len(seen))
        for key in list(itertools.islice(seen, len(seen) // 2)):
            del seen[key]

    def result(self) -> CheckResult:
        """The log part combined with the Graph part (``checks.graph_common.combine``)."""
        return combine(self.log_result(), graph_part(self.ctx))

    def log_result(self) -> CheckResult:
        """Findings for missing and reused ids; ``skipped`` when no event was seen."""
        if not self.events:
            return skipped(self.id, "no events in the logs")
        findings = [f for f in (self._missing_finding(), self._reused_finding()) if f]
        n = self.events
        ok = f"All {n} events carry an event_id; no id reused with different content."
        bad = f"{sum(f.count for f in findings)} of {n} events have event_id problems."
        return result_from_findings(self.id, findings, n, ok, bad)

    def evidence(self) -> dict[str, Any]:
        """Counters shared by both findings (also useful to reports)."""
        return {
            "events": self.events,
            "missing_event_id": self._missing.count,
            "reused_event_id": self._reused.count,
            "duplicate_sends": self.duplicate_sends,
            "reuse_window_hours": self._window / 3600,
        }

    def _severity(self, count: int) -> tuple[Severity, float]:
        share = count / self.events
        return escalate(Severity.WARN, share, self._crit_share), share

    def _missing_finding(self) -> Finding | None:
        tally = self._missing
        if not tally.count:
            return None
        severity, share = self._severity(tally.count)
        names = names_text(sorted(tally.event_names))
        message = (
            f"{tally.count} of {self.events} events ({_pct(share)}) of {names} have no "
            "event_id, so Meta cannot deduplicate them against the browser pixel."
        )
        remediation = (
            "Generate one event_id per user action (e.g. the order id or a UUID created "
            "when the action happens), send it with both the pixel event (eventID) and the "
            "server event, and never leave it empty."
        )
        return make_finding(self.id, tally, severity, message, remediation, self.evidence())

    def _reused_finding(self) -> Finding | None:
        tally = self._reused
        if not tally.count:
            return None
        severity, share = self._severity(tally.count)
        hours = _hours(self._window)
        message = (
            f"{tally.count} of {self.events} events ({_pct(share)}) reused an event_id "
            f"already sent within {hours} h with different content, so Meta keeps only "
            "the first and drops them as duplicates."
        )
        remediation = (
            "Derive event_id from something unique to each conversion (order id, a UUID "
            "per action), not from the session, user or page; reuse an id only for the "
            "browser and server copies (or retries) of the same event."
        )
        return make_finding(self.id, tally, severity, message, remediation, self.evidence())


def _pct(share: float) -> str:
    return f"{share:.1%}"


def _hours(seconds: int) -> str:
    h = seconds / 3600
    return str(int(h)) if math.isclose(h, round(h)) else f"{h:.1f}"


# ------------------------------------------------ Graph part: Meta's dedup key feedback

DEDUP_KEY_COVERAGE_LOW = "DEDUP_KEY_COVERAGE_LOW"
DEDUP_KEY = "event_id"


def graph_part(ctx: CheckContext) -> GraphPart:
    """``DEDUP_KEY_COVERAGE_LOW`` per event name from ``ctx.graph`` (module docstring)."""
    snap = ctx.graph
    if snap is None:
        return skipped_part()
    if (skipped := not_polled(snap, [Part.DATASET_QUALITY])) is not None:
        return skipped
    if not snap.ok(Part.DATASET_QUALITY):
        return GraphPart(GraphState.ERROR, error_text(snap, [Part.DATASET_QUALITY]))
    cfg = ctx.settings.dedup
    volumes = event_volumes(snap)
    sides = _side_volumes(snap)
    findings: list[Finding] = []
    judged: list[str] = []
    for q in sorted(snap.quality or (), key=lambda q: q.event_name):
        if not enough(volumes, q.event_name, cfg.graph_min_events):
            continue
        shares = _judged_shares(ctx, q, sides)
        if not shares:
            continue
        judged.append(q.event_name)
        low = {side: pct for side, pct in shares.items() if pct < cfg.graph_min_pct}
        if low:
            findings.append(_key_coverage_finding(ctx, q.event_name, low, volumes))
    if not judged:
        why = "no event_id feedback for an event name with enough events."
        return GraphPart(GraphState.NOT_JUDGED, why)
    text = f"event_id coverage of {names_text(judged)}: "
    text += f"{len(findings)} low." if findings else "fine."
    return GraphPart(GraphState.EVALUATED, text, findings)


def _side_volumes(snap: GraphSnapshot) -> dict[str, tuple[int, int]] | None:
    """Event name -> (browser, server) over the /stats window; None when unreadable."""
    if not snap.ok(Part.STATS_EVENT_SOURCE):
        return None
    out: dict[str, tuple[int, int]] = {}
    for sc in snap.source_counts:
        if sc.event is not None:
            b, s = out.get(sc.event, (0, 0))
            out[sc.event] = (b + sc.browser, s + sc.server)
    return out


def _judged_shares(
    ctx: CheckContext, q: EventQuality, sides: dict[str, tuple[int, int]] | None
) -> dict[str, float]:
    """The event_id shares of the sides of ``q`` that are judged (see module docstring)."""
    fb = q.dedupe_for(DEDUP_KEY)
    if fb is None:
        return {}
    counts = (sides or {}).get(q.event_name)  # not split by source: unknown, judged
    minimum = ctx.settings.dedup.graph_min_events
    out = {}
    for i, (side, pct) in enumerate((("browser", fb.browser_pct), ("server", fb.server_pct))):
        if pct is not None and (counts is None or counts[i] >= minimum):
            out[side] = pct
    return out


def _key_coverage_finding(
    ctx: CheckContext, name: str, low: dict[str, float], volumes: dict[str, int] | None
) -> Finding:
    cfg = ctx.settings.dedup
    worst = min(low.values())
    severity = Severity.CRIT if worst < cfg.graph_crit_pct else Severity.WARN
    sides = " and ".join(f"{pct:g}% of {side} events" for side, pct in sorted(low.items()))
    msg = (
        f"Meta sees an event_id on only {sides} of {name} (goal {cfg.graph_min_pct:g}%): "
        "those cannot be deduplicated, so conversions may be counted twice or not at all."
    )
    rem = (
        "Give every pixel event an eventID and send the same value as event_id with the "
        "matching server event (an order id or a UUID generated once per action)."
    )
    evidence = {
        "event_id_pct": dict(sorted(low.items())),
        "min_pct": cfg.graph_min_pct,
        "crit_pct": cfg.graph_crit_pct,
    }
    return graph_finding(
        Dedup.id, DEDUP_KEY_COVERAGE_LOW, severity, volume_count(volumes, name), msg, rem,
        event_names=[name], field_name=DEDUP_KEY, evidence=evidence,
    )  # fmt: skip

"""The ``delivery`` check, log-based part: what Meta answered to each request.

Reads ``Delivery.response`` (log shape a). Failed requests are classified from Meta's
whole error envelope (``code``, ``error_subcode``, ``type``, ``is_transient``, the
``(#NNN)`` message prefix) by ``monitor.model.meta_errors.MetaError``, the classifier
the Graph side shares (docs/contracts.md §9), never from the HTTP status alone: mocks and
real proxies pair codes 190 and 17 with HTTP 500 (docs/meta-capi.md §8).

``TOKEN_INVALID`` (``crit``, dataset-wide: no event names)
    Code 190 (any subcode: 463 expired, 460 password changed, 467 invalid, ...) or 102.
``RATE_LIMITED`` (``warn``; ``crit`` at ``warn_to_crit_share``; dataset-wide)
    Throttling codes 4, 17, 32, 341, 613 and 80000–80014.
``DELIVERY_ERRORS`` (``warn``; ``crit`` at ``warn_to_crit_share``)
    Every other error, including HTTP ≥ 400 without an envelope: one finding per
    code/subcode, ``field`` = ``response.error.<code>[/<subcode>]`` (or ``.http_<status>``),
    with Meta's ``error_user_title`` and ``error_user_msg`` (scrubbed) and a remediation
    per known code: 100/33 (object missing or not accessible) names the dataset id and
    the token's access; 368 and the other transient codes say wait and retry. A request
    that got no HTTP answer at all (``response.transport_error``: timed out, network
    failure) is one of these, grouped as ``response.error.no_answer``.
``DELIVERY_RETRIED`` (``info``)
    Events whose request failed and that were accepted later (same ``event_name`` +
    ``event_id``): not lost. The three codes above count only events never accepted
    (``checks.delivery_retries``); each event once, however many attempts failed.
``EVENTS_DROPPED`` (``warn``; ``crit`` at ``warn_to_crit_share``)
    A success whose ``events_received`` is lower than the events sent; ``count`` is the
    sum of the differences.
``META_WARNING`` (``warn``)
    A success whose answer carries ``messages``; ``count`` is the requests concerned, the
    examples show Meta's first message (scrubbed).

Counts are events (``sent_count``, malformed events included; a failed request without
events counts as one). Shares are taken over events sent in requests that have a logged
response; ``[checks.delivery] warn_to_crit_share`` (default 0.05) applies to each
finding's own share. Meta's text is shown only after ``monitor.mask.scrub_text``.
Without any logged response the check is ``skipped``.
"""

from __future__ import annotations

import dataclasses as dc
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from checks.base import (
    MAX_EVENT_NAMES,
    MAX_EXAMPLES,
    CheckContext,
    Tally,
    escalate,
    make_finding,
    result_from_findings,
    skipped,
)
from checks.delivery_remedies import TOKEN_SUBCODES, remediation_for, throttled_remediation
from checks.delivery_retries import Pending, RetryLedger, event_key
from monitor.mask import MAX_SHOWN, scrub_text
from monitor.model.findings import CheckResult, Example, Finding, Severity
from monitor.model.graph import GraphErrorKind
from monitor.model.meta_errors import MetaError
from monitor.model.observations import Delivery
from monitor.model.rollup import error_key

__all__ = [
    "DELIVERY_ERRORS",
    "DELIVERY_RETRIED",
    "EVENTS_DROPPED",
    "META_WARNING",
    "RATE_LIMITED",
    "TOKEN_INVALID",
    "DeliveryCheck",
    "classify",
    "remediation_for",
]

TOKEN_INVALID = "TOKEN_INVALID"
RATE_LIMITED = "RATE_LIMITED"
DELIVERY_ERRORS = "DELIVERY_ERRORS"
DELIVERY_RETRIED = "DELIVERY_RETRIED"
EVENTS_DROPPED = "EVENTS_DROPPED"
META_WARNING = "META_WARNING"

MAX_ERROR_KEYS = 50  # distinct code/subcode findings; further ones share "other"
RETRY_WINDOW = 48 * 3600  # a continuation's head: how far its acceptances are remembered
MAX_PENDING = 1_000_000  # failed events followed at once (memory bound)

GroupKey = tuple[str, str]  # (finding code, field)


def classify(error: MetaError) -> str:
    """Finding code for a failed response: token, throttling, or other delivery error.
    Without a Graph envelope (no code) it is always a delivery error."""
    if error.code is None:
        return DELIVERY_ERRORS
    kind = error.kind
    if kind is GraphErrorKind.TOKEN_INVALID:
        return TOKEN_INVALID
    if kind is GraphErrorKind.RATE_LIMITED:
        return RATE_LIMITED
    return DELIVERY_ERRORS


@dataclass(slots=True)
class ErrorGroup:
    """Failed requests that make one finding (code + field)."""

    tally: Tally  # events never accepted (so far); one example per failed request
    title: str | None  # scrubbed error_user_title (else message) of the first request
    user_msg: str | None = None  # scrubbed error_user_msg of the first request that had one
    requests: int = 0
    transient: int = 0  # failed requests whose error was transient
    causes: Counter[tuple[int | None, int | None]] = dc.field(default_factory=Counter)
    first: MetaError | None = None  # the first failure, for the remediation

    def add_cause(self, r: MetaError) -> None:
        # Without a Graph envelope the HTTP status is the only cause we know.
        cause = (r.code, r.subcode if r.code is not None else r.http_status)
        if cause in self.causes or len(self.causes) < MAX_ERROR_KEYS:
            self.causes[cause] += 1

    def merge(self, later: ErrorGroup) -> None:
        """Fold in the same group of the input right after this one; our title stays."""
        self.tally.merge(later.tally)
        self.requests += later.requests
        self.transient += later.transient
        self.user_msg = self.user_msg or later.user_msg
        self.first = self.first or later.first
        for cause, n in later.causes.items():
            if cause in self.causes or len(self.causes) < MAX_ERROR_KEYS:
                self.causes[cause] += n


class DeliveryCheck:
    """Folds Meta's responses into error groups, retries, drops and warnings."""

    id: ClassVar[str] = "delivery"
    weight: ClassVar[float] = 2.0  # in the health score
    reads_graph: ClassVar[bool] = False
    title: ClassVar[str] = "Delivery to Meta"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._crit_share = ctx.settings.delivery.warn_to_crit_share
        self.requests = 0  # with a response
        self.sent = 0  # events in requests with a response
        self.failed_requests = 0
        self.failed_events = 0  # events in failed requests, every attempt
        self.no_response_requests = 0
        self._groups: dict[GroupKey, ErrorGroup] = {}
        self._dropped = Tally(EVENTS_DROPPED, "events_received")
        self._warned = Tally(META_WARNING, "response.messages")
        self._retried = Tally(DELIVERY_RETRIED, "response.error")
        self._retried_causes: Counter[str] = Counter()
        self._retried_transient = 0
        self._ledger = RetryLedger(
            continuation=ctx.continuation, window=RETRY_WINDOW, max_tracked=MAX_PENDING
        )

    def observe(self, delivery: Delivery) -> None:
        r = delivery.response
        if r is None:
            self.no_response_requests += 1
            return
        n = delivery.sent_count
        if len(delivery.events) > n:  # defensive: sent_count should include every event
            n = len(delivery.events)
        self.requests += 1
        self.sent += n
        error = r.error
        if error is not None:
            self._failed(delivery, error, max(n, 1))
            return
        if self._ledger.following:
            self._accepted(delivery)
        if r.events_received is not None and r.events_received < n:
            received = r.events_received
            _book(self._dropped, delivery, f"received {received} of {n}", n - received, names=True)
        if r.messages:
            shown = scrub_text(r.messages[0])[:MAX_SHOWN]
            _book(self._warned, delivery, shown, 1, names=True)

    def _failed(self, delivery: Delivery, error: MetaError, n: int) -> None:
        self.failed_requests += 1
        self.failed_events += n
        code = classify(error)
        group = self._group(code, delivery, error)
        group.requests += 1
        group.transient += error.transient
        group.add_cause(error)
        new = self._new_failures(delivery, error, (code, group.tally.field or ""))
        malformed = n - len(delivery.events)  # malformed events (or "one") always count
        shown = group.title or error.label
        # Token and throttling problems concern the dataset, not an event name.
        _book(group.tally, delivery, shown, len(new) + malformed, names=False)
        if code == DELIVERY_ERRORS:
            _add_names(group.tally, new_names(delivery, new))

    def _new_failures(self, delivery: Delivery, error: MetaError, key: GroupKey) -> list[int]:
        """Indexes of the events of a failed request that are new failures (not already
        awaiting acceptance); remembers them in the ledger."""
        events, times = delivery.events, delivery.times
        sent_at = delivery.sent_at
        new: list[int] = []
        for i, ev in enumerate(events):
            k = event_key(ev)
            if k is None:
                new.append(i)
                continue
            t = sent_at if sent_at is not None else times[i]
            entry = Pending(key, ev["event_name"], error.transient, error.label)
            if self._ledger.failed(k, t, entry):
                new.append(i)
        return new

    def _accepted(self, delivery: Delivery) -> None:
        """Resolve failed events of earlier requests that this accepted request carries."""
        sent_at, times = delivery.sent_at, delivery.times
        for i, ev in enumerate(delivery.events):
            k = event_key(ev)
            if k is None:
                continue
            t = sent_at if sent_at is not None else times[i]
            entry = self._ledger.accepted(k, t)
            if entry is not None:
                self._recovered(entry)

    def _recovered(self, entry: Pending) -> None:
        # No example: a parallel audit resolves some of them in ``merge``, where the
        # accepting line is not known, and its report must equal a sequential one.
        self._uncount(entry)
        self._retried.count += 1
        _add_names(self._retried, {entry.name: 1})
        self._retried_causes[entry.cause] += 1
        self._retried_transient += entry.transient

    def _uncount(self, entry: Pending) -> None:
        group = self._groups.get(entry.group)
        if group is None:
            return
        tally = group.tally
        tally.count = max(0, tally.count - 1)
        names = tally.event_names
        if entry.name in names:
            names[entry.name] -= 1
            if names[entry.name] <= 0:
                del names[entry.name]

    def merge(self, later: DeliveryCheck) -> None:
        """Fold in the state of the input right after this one (``Check.merge``): counters
        add up; groups merge by (code, field), new ones bounded as in ``_group``; failed
        events of ours that ``later`` accepted are recovered (``RetryLedger.merge``)."""
        self.requests += later.requests
        self.sent += later.sent
        self.failed_requests += later.failed_requests
        self.failed_events += later.failed_events
        self.no_response_requests += later.no_response_requests
        self._dropped.merge(later._dropped)
        self._warned.merge(later._warned)
        groups = self._groups
        regroup: dict[GroupKey, GroupKey] = {}
        for (code, field), group in later._groups.items():
            new = (code, field) not in groups
            mine_field = field
            if new and code == DELIVERY_ERRORS and len(groups) >= MAX_ERROR_KEYS:
                mine_field = "response.error.other"
            regroup[(code, field)] = (code, mine_field)
            mine = groups.get((code, mine_field))
            if mine is None:
                mine = groups[(code, mine_field)] = ErrorGroup(Tally(code, mine_field), group.title)
            mine.merge(group)
        self._retried.merge(later._retried)
        self._retried_causes.update(later._retried_causes)
        self._retried_transient += later._retried_transient
        resolved, duplicates = self._ledger.merge(later._ledger, regroup)
        for entry in resolved:
            self._recovered(entry)
        for entry in duplicates:
            self._uncount(entry)

    def _group(self, code: str, delivery: Delivery, error: MetaError) -> ErrorGroup:
        """The group of a failed request: one per code for token and throttling errors,
        one per code/subcode (``MAX_ERROR_KEYS`` at most, then "other") for the rest."""
        field = "response.error"
        if code == DELIVERY_ERRORS:
            field = f"response.error.{error_key(delivery)}"
            if (code, field) not in self._groups and len(self._groups) >= MAX_ERROR_KEYS:
                field = "response.error.other"
        group = self._groups.get((code, field))
        if group is None:
            r = delivery.response
            no_answer = r.transport_error if r is not None else None
            text = error.user_title or error.message or (no_answer or "").replace("_", " ")
            title = scrub_text(text)[:MAX_SHOWN] if text else None
            group = self._groups[(code, field)] = ErrorGroup(Tally(code, field), title)
            group.first = error
        if group.user_msg is None and error.user_msg:
            group.user_msg = scrub_text(" ".join(error.user_msg.split()))[:300]
        return group

    def result(self) -> CheckResult:
        """Findings per error group, retries, drops and warnings; ``skipped`` without any
        response."""
        if not self.requests:
            return skipped(self.id, "the logs carry no responses")
        findings = [self._error_finding(g) for g in self._groups.values() if g.tally.count]
        if self._retried.count:
            findings.append(self._retried_finding())
        if self._dropped.count:
            findings.append(self._dropped_finding())
        if self._warned.count:
            findings.append(self._warning_finding())
        lost = self.lost_events
        ok = f"All {self.requests} requests with a logged response succeeded in full."
        if self._retried.count and not lost:
            ok = (
                f"Every event was accepted: {self._retried.count} after a failed attempt "
                f"({self.failed_requests} of {self.requests} requests failed)."
            )
        bad = (
            f"{self.failed_requests} of {self.requests} requests failed; "
            f"{lost} events ({_pct(self._share(lost))} of events) never accepted"
            + (f"; {self._dropped.count} events dropped." if self._dropped.count else ".")
        )
        return result_from_findings(self.id, findings, self.sent, ok, bad)

    @property
    def lost_events(self) -> int:
        """Events of failed requests never accepted (each event once)."""
        return sum(g.tally.count for g in self._groups.values())

    def _share(self, count: int) -> float:
        # min(): a failed request without events counts as one event but added none to sent.
        return min(1.0, count / self.sent) if self.sent else 1.0

    def evidence(self) -> dict[str, Any]:
        """Request and event counters with the overall error rate (in every finding)."""
        lost = self.lost_events
        return {
            "requests_with_response": self.requests,
            "requests_without_response": self.no_response_requests,
            "failed_requests": self.failed_requests,
            "events_sent": self.sent,
            "events_in_failed_requests": self.failed_events,
            "events_never_accepted": lost,
            "events_accepted_after_retry": self._retried.count,
            "error_rate": round(self._share(lost), 4),
        }

    def _error_finding(self, group: ErrorGroup) -> Finding:
        tally = group.tally
        share = self._share(tally.count)
        causes = group.causes.most_common()
        evidence: dict[str, Any] = {
            **self.evidence(),
            "requests": group.requests,
            "transient_requests": group.transient,
            "share": round(share, 4),
            "errors": {_cause_text(c): k for c, k in causes},
        }
        if group.title or group.user_msg:
            evidence["meta_explanation"] = {"title": group.title, "message": group.user_msg}
        if tally.code == TOKEN_INVALID:
            return self._token_finding(group, causes, evidence)
        severity = escalate(Severity.WARN, share, self._crit_share)
        label = ", ".join(_cause_text(c) for c, _ in causes[:3])
        title = f" ({group.title})" if group.title else ""
        verb = "throttled" if tally.code == RATE_LIMITED else "rejected"
        message = (
            f"Meta {verb} {group.requests} requests with error {label}{title}: "
            f"{tally.count} events ({_pct(share)} of events sent) were never accepted."
        )
        if group.user_msg:
            message += f" Meta says: {group.user_msg}"
        if tally.field == "response.error.no_answer":
            message = (
                f"{group.requests} requests got no answer from Meta{title}: {tally.count} "
                f"events ({_pct(share)} of events sent) were probably not received."
            )
            remediation = remediation_for(None, None)
            return make_finding(self.id, tally, severity, message, remediation, evidence)
        if tally.code == RATE_LIMITED:
            remediation = throttled_remediation()
        else:
            first = group.first
            remediation = remediation_for(
                *causes[0][0],
                dataset_id=self.ctx.dataset_id,
                object_inaccessible=first is not None and first.object_inaccessible,
            )
        return make_finding(self.id, tally, severity, message, remediation, evidence)

    def _token_finding(
        self,
        group: ErrorGroup,
        causes: list[tuple[tuple[int | None, int | None], int]],
        evidence: dict[str, Any],
    ) -> Finding:
        tally = group.tally
        meanings = ", ".join(
            f"{_cause_text(c)} {TOKEN_SUBCODES.get(c[1] or 0, 'token invalid')}"
            for c, _ in causes[:4]
        )
        message = (
            f"Meta refused the access token in {group.requests} requests ({meanings}): "
            f"{tally.count} events in them were never accepted."
        )
        if group.user_msg:
            message += f" Meta says: {group.user_msg}"
        remediation = (
            "Issue a new long-lived system-user token for the dataset (Business Settings → "
            "System users → Generate token, with ads_management), update the sender's "
            "secret and resend the lost events that are still under 7 days old."
        )
        return make_finding(self.id, tally, Severity.CRIT, message, remediation, evidence)

    def _retried_finding(self) -> Finding:
        tally = self._retried
        ranked = sorted(self._retried_causes.items(), key=lambda item: (-item[1], item[0]))
        causes = ", ".join(c for c, _ in ranked[:3])
        message = (
            f"{tally.count} events failed at first (error {causes}) and were accepted when "
            "sent again with the same event_id: not lost."
        )
        remediation = (
            "Nothing to fix: retries worked. If this grows, look at the errors behind it "
            "(evidence) and Meta's status page."
        )
        evidence = {
            **self.evidence(),
            "errors": dict(ranked),
            "transient": self._retried_transient,
        }
        return make_finding(self.id, tally, Severity.INFO, message, remediation, evidence)

    def _dropped_finding(self) -> Finding:
        tally = self._dropped
        share = self._share(tally.count)
        severity = escalate(Severity.WARN, share, self._crit_share)
        message = (
            f"Meta acknowledged fewer events than were sent: {tally.count} events "
            f"({_pct(share)} of events sent) were dropped from successful requests."
        )
        remediation = (
            "Compare events_received with the batch size on every response; log the "
            "response messages and check the dropped events for invalid or duplicated "
            "payloads (a malformed event can be skipped silently)."
        )
        evidence = {**self.evidence(), "events_dropped": tally.count}
        return make_finding(self.id, tally, severity, message, remediation, evidence)

    def _warning_finding(self) -> Finding:
        tally = self._warned
        shown = tally.examples[0].value if tally.examples else ""
        message = (
            f"Meta accepted {tally.count} requests but answered with messages (first: {shown!r})."
        )
        remediation = (
            "Read the messages of these answers (examples): Meta accepted the events but "
            "warns about their content; fix the parameters it names before it rejects them."
        )
        evidence = {**self.evidence(), "requests_with_messages": tally.count}
        return make_finding(self.id, tally, Severity.WARN, message, remediation, evidence)


def new_names(delivery: Delivery, indexes: list[int]) -> dict[str, int]:
    """Event-name counts of the events at ``indexes`` of ``delivery``."""
    events = delivery.events
    return dict(Counter(events[i]["event_name"] for i in indexes))


def _add_names(tally: Tally, names: dict[str, int]) -> None:
    counts = tally.event_names
    for name, k in names.items():
        if name in counts:
            counts[name] += k
        elif len(counts) < MAX_EVENT_NAMES:
            counts[name] = k


def _book(tally: Tally, delivery: Delivery, shown: str, n: int, *, names: bool) -> None:
    """Count ``n`` events of ``delivery`` in ``tally``, with one example per request.

    The example is built here, not through ``Tally.add``: the value is Meta's text already
    scrubbed with ``scrub_text`` (or our own "received 3 of 5"), and ``mask_value`` would
    turn a title under a ``response.error.<code>`` field into ``"E***"``. Dataset-wide
    codes (``names=False``) record no event names, so alerts carry ``event_name: null``.
    """
    tally.count += n
    if len(tally.examples) < MAX_EXAMPLES:
        tally.examples.append(Example(delivery.file, delivery.line, shown))
    if names:
        _add_names(tally, dict(Counter(ev["event_name"] for ev in delivery.events)))


def _cause_text(cause: tuple[int | None, int | None]) -> str:
    """``190/463``, ``17``, or ``HTTP 502`` for an error without a Graph envelope."""
    code, sub = cause
    if code is None:
        return f"HTTP {sub}" if sub is not None else "no answer"
    return f"{code}/{sub}" if sub else str(code)


def _pct(share: float) -> str:
    return f"{share:.1%}"

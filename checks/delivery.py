"""The ``delivery`` check, log-based part: what Meta answered to each request.

Reads ``Delivery.response`` (log shape a). Failed requests are classified from Meta's
error envelope, never from the HTTP status alone: test mocks and real proxies pair codes
190 and 17 with HTTP 500 (docs/meta-capi.md §8).

``TOKEN_INVALID`` (``crit``, dataset-wide: no event names)
    Code 190 (any subcode: 463 expired, 460 password changed, 467 invalid, ...) or 102.
``RATE_LIMITED`` (``warn``; ``crit`` at ``warn_to_crit_share``; dataset-wide)
    Throttling codes 4, 17, 32, 613 and 80000–80014.
``DELIVERY_ERRORS`` (``warn``; ``crit`` at ``warn_to_crit_share``)
    Every other error, including HTTP ≥ 400 without an envelope: one finding per
    code/subcode, ``field`` = ``response.error.<code>[/<subcode>]`` (or ``.http_<status>``),
    with Meta's ``error_user_title`` and a remediation per known subcode.
    A request that got no HTTP answer at all (``response.transport_error``: timed out,
    network failure) is one of these, grouped as ``response.error.no_answer``.
``EVENTS_DROPPED`` (``warn``; ``crit`` at ``warn_to_crit_share``)
    A success whose ``events_received`` is lower than the events sent; ``count`` is the
    sum of the differences.

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
from monitor.mask import MAX_SHOWN, scrub_text
from monitor.model.findings import CheckResult, Example, Finding, Severity
from monitor.model.observations import Delivery, ResponseInfo
from monitor.model.rollup import error_key

TOKEN_INVALID = "TOKEN_INVALID"
RATE_LIMITED = "RATE_LIMITED"
DELIVERY_ERRORS = "DELIVERY_ERRORS"
EVENTS_DROPPED = "EVENTS_DROPPED"

TOKEN_CODES = frozenset({190, 102})
THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
MAX_ERROR_KEYS = 50  # distinct code/subcode findings; further ones share "other"

TOKEN_SUBCODES: dict[int, str] = {
    458: "app not authorised by the user",
    459: "user checkpointed",
    460: "password changed",
    463: "token expired",
    464: "user not confirmed",
    467: "token invalid",
    492: "invalid session",
}

_LOOKUP = (
    "Read error_user_title and error_user_msg in the logged response, look the code up in "
    "Meta's Graph API error reference, fix the payload or setup and resend."
)
_PERMISSION = (
    "The token lacks permission on this dataset: use a system-user token of a business "
    "that owns or was granted the dataset, with ads_management (or business_management)."
)
_TRANSIENT = "Temporary Meta error: retry the request with exponential back-off."
# (code, subcode) -> remediation; (code, None) matches any subcode of that code.
REMEDIATIONS: dict[tuple[int, int | None], str] = {
    (100, 2804003): (
        "event_time is more than 7 days old, so Meta rejects the whole batch: send events "
        "within minutes of the action (fix the batching or retry delay) and drop events "
        "older than 7 days before sending."
    ),
    (100, 2804001): (
        "The click id (fbc) is malformed: send the _fbc cookie unchanged, or build it as "
        "fb.1.<creation time in ms>.<fbclid> with capi-param-builder; never lowercase it."
    ),
    (100, 2804019): (
        "An identifier or time field is out of range or badly formatted (fbc, ctwa_clid "
        "or event_time): check error_user_msg for the field and fix its format."
    ),
    (100, 2804050): (
        "Too few customer identifiers: send at least one strong key per event (hashed em "
        "or ph, external_id, or client_ip_address with client_user_agent, fbp, fbc)."
    ),
    (2804030, None): "Set data_processing_options (Limited Data Use) on every event.",
    (100, None): (
        "Invalid parameter: read error_user_msg in the logged response, it names the "
        "offending field; fix that field in the payload."
    ),
    (1, None): _TRANSIENT,
    (2, None): _TRANSIENT,
    (3, None): _PERMISSION,
    (10, None): _PERMISSION,
    (200, None): _PERMISSION,
    (368, None): "Meta blocked the request for a policy reason: check Business Support Home.",
}
_NO_ANSWER_REMEDIATION = (
    "The sender got no answer from Meta (timed out or failed on the network): check its "
    "timeout and its connectivity to graph.facebook.com, and resend the events that are "
    "still under 7 days old with the same event_id (Meta deduplicates them)."
)
_HTTP_REMEDIATION = (
    "HTTP error without a Graph error body: check proxies, gateways and the Graph URL "
    "between the sender and graph.facebook.com, and log Meta's response body."
)


def remediation_for(code: int | None, subcode: int | None) -> str:
    """The most specific known remediation for a Graph error (explicit table above)."""
    if code is None:
        return _HTTP_REMEDIATION
    if 200 <= code <= 299:  # the whole permission range
        code = 200
    return REMEDIATIONS.get((code, subcode)) or REMEDIATIONS.get((code, None)) or _LOOKUP


def classify(response: ResponseInfo) -> str:
    """Finding code for a failed response: token, throttling, or other delivery error."""
    code = response.error_code
    if code in TOKEN_CODES:
        return TOKEN_INVALID
    if code in THROTTLING_CODES:
        return RATE_LIMITED
    return DELIVERY_ERRORS


@dataclass(slots=True)
class ErrorGroup:
    """Failed requests that make one finding (code + field)."""

    tally: Tally
    title: str | None  # scrubbed error_user_title (else message) of the first request
    requests: int = 0
    causes: Counter[tuple[int | None, int | None]] = dc.field(default_factory=Counter)

    def add_cause(self, r: ResponseInfo) -> None:
        # Without a Graph envelope the HTTP status is the only cause we know; without an
        # answer, none: (None, None) reads "no answer".
        cause = (r.error_code, r.error_subcode if r.error_code is not None else r.status)
        if cause in self.causes or len(self.causes) < MAX_ERROR_KEYS:
            self.causes[cause] += 1

    def merge(self, later: ErrorGroup) -> None:
        """Fold in the same group of the input right after this one; our title stays."""
        self.tally.merge(later.tally)
        self.requests += later.requests
        for cause, n in later.causes.items():
            if cause in self.causes or len(self.causes) < MAX_ERROR_KEYS:
                self.causes[cause] += n


class DeliveryCheck:
    """Folds Meta's responses into error groups and drop counts."""

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
        self.failed_events = 0
        self.no_response_requests = 0
        self._groups: dict[tuple[str, str], ErrorGroup] = {}
        self._dropped = Tally(EVENTS_DROPPED, "events_received")

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
        if r.is_error:
            self._failed(delivery, r, max(n, 1))
        elif r.events_received is not None and r.events_received < n:
            received = r.events_received
            _book(self._dropped, delivery, f"received {received} of {n}", n - received, names=True)

    def _failed(self, delivery: Delivery, r: ResponseInfo, n: int) -> None:
        self.failed_requests += 1
        self.failed_events += n
        code = classify(r)
        group = self._group(code, delivery, r)
        group.requests += 1
        group.add_cause(r)
        shown = group.title or (f"HTTP {r.status}" if r.status is not None else "no answer")
        # Token and throttling problems concern the dataset, not an event name.
        _book(group.tally, delivery, shown, n, names=code == DELIVERY_ERRORS)

    def merge(self, later: DeliveryCheck) -> None:
        """Fold in the state of the input right after this one (``Check.merge``): counters
        add up; groups merge by (code, field), new ones bounded as in ``_group``."""
        self.requests += later.requests
        self.sent += later.sent
        self.failed_requests += later.failed_requests
        self.failed_events += later.failed_events
        self.no_response_requests += later.no_response_requests
        self._dropped.merge(later._dropped)
        groups = self._groups
        for (code, field), group in later._groups.items():
            new = (code, field) not in groups
            if new and code == DELIVERY_ERRORS and len(groups) >= MAX_ERROR_KEYS:
                field = "response.error.other"
            mine = groups.get((code, field))
            if mine is None:
                mine = groups[(code, field)] = ErrorGroup(Tally(code, field), group.title)
            mine.merge(group)

    def _group(self, code: str, delivery: Delivery, r: ResponseInfo) -> ErrorGroup:
        """The group of a failed request: one per code for token and throttling errors,
        one per code/subcode (``MAX_ERROR_KEYS`` at most, then "other") for the rest."""
        field = "response.error"
        if code == DELIVERY_ERRORS:
            field = f"response.error.{error_key(delivery)}"
            if (code, field) not in self._groups and len(self._groups) >= MAX_ERROR_KEYS:
                field = "response.error.other"
        group = self._groups.get((code, field))
        if group is None:
            no_answer = r.transport_error.replace("_", " ") if r.transport_error else None
            text = r.error_title or r.error_message or no_answer
            title = scrub_text(text)[:MAX_SHOWN] if isinstance(text, str) and text else None
            group = self._groups[(code, field)] = ErrorGroup(Tally(code, field), title)
        return group

    def result(self) -> CheckResult:
        """Findings per error group and for drops; ``skipped`` without any response."""
        if not self.requests:
            return skipped(self.id, "the logs carry no responses")
        findings = [self._error_finding(g) for g in self._groups.values()]
        if self._dropped.count:
            findings.append(self._dropped_finding())
        ok = f"All {self.requests} requests with a logged response succeeded in full."
        bad = (
            f"{self.failed_requests} of {self.requests} requests failed "
            f"({_pct(self._share(self.failed_events))} of events)"
            + (f"; {self._dropped.count} events dropped." if self._dropped.count else ".")
        )
        return result_from_findings(self.id, findings, self.sent, ok, bad)

    def _share(self, count: int) -> float:
        # min(): a failed request without events counts as one event but added none to sent.
        return min(1.0, count / self.sent) if self.sent else 1.0

    def evidence(self) -> dict[str, Any]:
        """Request and event counters with the overall error rate (in every finding)."""
        return {
            "requests_with_response": self.requests,
            "requests_without_response": self.no_response_requests,
            "failed_requests": self.failed_requests,
            "events_sent": self.sent,
            "events_in_failed_requests": self.failed_events,
            "error_rate": round(self._share(self.failed_events), 4),
        }

    def _error_finding(self, group: ErrorGroup) -> Finding:
        tally = group.tally
        share = self._share(tally.count)
        causes = group.causes.most_common()
        evidence = {
            **self.evidence(),
            "requests": group.requests,
            "share": round(share, 4),
            "errors": {_cause_text(c): k for c, k in causes},
        }
        if tally.code == TOKEN_INVALID:
            return self._token_finding(group, causes, evidence)
        severity = escalate(Severity.WARN, share, self._crit_share)
        label = ", ".join(_cause_text(c) for c, _ in causes[:3])
        title = f" ({group.title})" if group.title else ""
        verb = "throttled" if tally.code == RATE_LIMITED else "rejected"
        message = (
            f"Meta {verb} {group.requests} requests with error {label}{title}: "
            f"{tally.count} events ({_pct(share)} of events sent) were not accepted."
        )
        if tally.field == "response.error.no_answer":
            message = (
                f"{group.requests} requests got no answer from Meta{title}: {tally.count} "
                f"events ({_pct(share)} of events sent) were probably not received."
            )
            return make_finding(self.id, tally, severity, message, _NO_ANSWER_REMEDIATION, evidence)
        if tally.code == RATE_LIMITED:
            remediation = (
                "Retry throttled requests with exponential back-off, send fewer and larger "
                "batches (up to 1,000 events per request), and watch the app's rate-limit "
                "headers (X-App-Usage, X-Business-Use-Case-Usage)."
            )
        else:
            remediation = remediation_for(*causes[0][0])
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
            f"all {tally.count} events in them were lost."
        )
        remediation = (
            "Issue a new long-lived system-user token for the dataset (Business Settings → "
            "System users → Generate token, with ads_management), update the sender's "
            "secret and resend the lost events that are still under 7 days old."
        )
        return make_finding(self.id, tally, Severity.CRIT, message, remediation, evidence)

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
    if not names:
        return
    counts = tally.event_names
    for name, k in Counter(ev["event_name"] for ev in delivery.events).items():
        if name in counts:
            counts[name] += k
        elif len(counts) < MAX_EVENT_NAMES:
            counts[name] = k


def _cause_text(cause: tuple[int | None, int | None]) -> str:
    """``190/463``, ``17``, or ``HTTP 502`` for an error without a Graph envelope."""
    code, sub = cause
    if code is None:
        return f"HTTP {sub}" if sub is not None else "no answer"
    return f"{code}/{sub}" if sub else str(code)


def _pct(share: float) -> str:
    return f"{share:.1%}"

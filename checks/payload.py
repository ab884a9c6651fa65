"""payload: is each event shaped the way ``POST /{dataset}/events`` requires?

Rules (docs/contracts.md §2, docs/meta-capi.md §5 and §7): ``event_time`` in Unix seconds, not in
the future and not older than 7 days at send time (62 days for ``physical_store``);
``action_source`` always; ``event_source_url`` and ``client_user_agent`` on ``website``
events; at least one customer-information parameter; well-formed ``fbc``/``fbp``;
numeric ``custom_data.value``; ISO 4217 ``custom_data.currency``; no ``test_event_code``
in production; standard event names spelled with Meta's exact case.

Time is judged against the delivery's ``sent_at`` (what Meta saw), else the run's clock.
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from enum import StrEnum
from math import isfinite
from typing import Any, ClassVar, Final

import pycountry

from checks.base import (
    CheckContext,
    FindingBook,
    Tally,
    escalate,
    make_finding,
    names_text,
    result_from_findings,
    skipped,
)
from monitor.model.findings import CheckResult, Finding, Severity
from monitor.model.observations import Delivery


class PayloadCode(StrEnum):
    EVENT_TIME_MILLISECONDS = "EVENT_TIME_MILLISECONDS"
    EVENT_TIME_FUTURE = "EVENT_TIME_FUTURE"
    EVENT_TIME_TOO_OLD = "EVENT_TIME_TOO_OLD"
    MISSING_ACTION_SOURCE = "MISSING_ACTION_SOURCE"
    MISSING_EVENT_SOURCE_URL = "MISSING_EVENT_SOURCE_URL"
    MISSING_CLIENT_USER_AGENT = "MISSING_CLIENT_USER_AGENT"
    MISSING_USER_DATA = "MISSING_USER_DATA"
    FBC_MALFORMED = "FBC_MALFORMED"
    FBP_MALFORMED = "FBP_MALFORMED"
    VALUE_INVALID = "VALUE_INVALID"
    CURRENCY_INVALID = "CURRENCY_INVALID"
    TEST_EVENT_CODE_PRESENT = "TEST_EVENT_CODE_PRESENT"
    NONSTANDARD_EVENT_NAME = "NONSTANDARD_EVENT_NAME"


STANDARD_EVENTS: Final = frozenset(
    {
        "AddPaymentInfo", "AddToCart", "AddToWishlist", "CompleteRegistration", "Contact",
        "CustomizeProduct", "Donate", "FindLocation", "InitiateCheckout", "Lead", "PageView",
        "Purchase", "Schedule", "Search", "StartTrial", "SubmitApplication", "Subscribe",
        "ViewContent",
    }
)  # fmt: skip
_STANDARD_BY_FOLDED: Final = {name.lower(): name for name in STANDARD_EVENTS}

# Customer-information parameters (docs/meta-capi.md §6, both classes, plus the SDK's extras).
CUSTOMER_INFO_KEYS: Final = frozenset(
    {
        "em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id",
        "client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
        "fb_login_id", "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id",
        "ctwa_clid", "ig_account_id", "ig_sid", "f5first", "f5last", "fi", "dobd", "dobm",
        "doby",
    }
)  # fmt: skip

# docs/meta-capi.md §7. The subdomain index is one digit (not only 0-2): the parameter builder
# derives it from the host's label count, so deep hosts legitimately yield 3 or more.
FBC_PATTERN: Final = re.compile(
    r"fb\.[0-9]\.[0-9]{13}\.[A-Za-z0-9_\-]+(?:\.(?:[A-Za-z0-9_\-]{2}|[A-Za-z0-9_\-]{8}))?"
)
FBP_PATTERN: Final = re.compile(
    r"fb\.[0-9]\.[0-9]{13}\.[0-9]{1,10}(?:\.(?:[A-Za-z0-9_\-]{2}|[A-Za-z0-9_\-]{8}))?"
)

# ISO 4217, loaded once; Meta accepts any case. Exact upper/lower forms avoid a .upper().
CURRENCIES: Final = frozenset(c.alpha_3 for c in pycountry.currencies)
_CURRENCY_FAST: Final = CURRENCIES | {c.lower() for c in CURRENCIES}

_CACHE_MAX = 1 << 15  # entries per memo (valid fbc, valid fbp, custom event names): a busy
# sender's active visitors (a cookie repeats over their session), ~3 MB at most
_MAX_EVIDENCE_NAMES = 50  # event names kept for the test_event_code evidence
_CACHE_VALUE_MAX = 512  # longer strings are validated every time rather than kept
_DAY = 86400.0
_event_name = operator.itemgetter("event_name")


def is_number(value: Any) -> bool:
    """A finite int or float; bools and numeric strings are not numbers."""
    cls = value.__class__
    return cls is int or (cls is float and math.isfinite(value))


def is_currency(value: Any) -> bool:
    """An ISO 4217 alphabetic code in any case (``EUR``, ``eur``, ``Eur``)."""
    if value.__class__ is not str:
        return False
    return value in _CURRENCY_FAST or value.upper() in CURRENCIES


def standard_spelling(name: str) -> str | None:
    """The standard event ``name`` is a misspelling of (other case or padding), else None."""
    if name in STANDARD_EVENTS:
        return None
    return _STANDARD_BY_FOLDED.get(name.strip().lower())


def is_valid_cookie(value: Any, pattern: re.Pattern[str]) -> bool:
    """``fbc``/``fbp`` value: a matching string or a list of matching strings."""
    if value.__class__ is str:
        return pattern.fullmatch(value) is not None
    if value.__class__ is list:
        return all(item.__class__ is str and pattern.fullmatch(item) for item in value)
    return False


def has_customer_info(user_data: Any) -> bool:
    """At least one customer-information parameter with a non-empty value."""
    if user_data.__class__ is not dict:
        return False
    for key, value in user_data.items():
        if key in CUSTOMER_INFO_KEYS and value and (value.__class__ is not list or any(value)):
            return True
    return False


def _present(value: Any) -> bool:
    return value.__class__ is str and value != ""


_FIELD: Final[dict[PayloadCode, str]] = {
    PayloadCode.EVENT_TIME_MILLISECONDS: "event_time",
    PayloadCode.EVENT_TIME_FUTURE: "event_time",
    PayloadCode.EVENT_TIME_TOO_OLD: "event_time",
    PayloadCode.MISSING_ACTION_SOURCE: "action_source",
    PayloadCode.MISSING_EVENT_SOURCE_URL: "event_source_url",
    PayloadCode.MISSING_CLIENT_USER_AGENT: "user_data.client_user_agent",
    PayloadCode.MISSING_USER_DATA: "user_data",
    PayloadCode.FBC_MALFORMED: "user_data.fbc",
    PayloadCode.FBP_MALFORMED: "user_data.fbp",
    PayloadCode.VALUE_INVALID: "custom_data.value",
    PayloadCode.CURRENCY_INVALID: "custom_data.currency",
    PayloadCode.TEST_EVENT_CODE_PRESENT: "test_event_code",
    PayloadCode.NONSTANDARD_EVENT_NAME: "event_name",
}

_WHAT: Final[dict[PayloadCode, str]] = {
    PayloadCode.EVENT_TIME_MILLISECONDS: "an event_time in milliseconds instead of seconds",
    PayloadCode.EVENT_TIME_FUTURE: "an event_time more than {tol} after the send time",
    PayloadCode.EVENT_TIME_TOO_OLD: "an event_time older than Meta accepts ({age})",
    PayloadCode.MISSING_ACTION_SOURCE: "no action_source",
    PayloadCode.MISSING_EVENT_SOURCE_URL: "action_source 'website' but no event_source_url",
    PayloadCode.MISSING_CLIENT_USER_AGENT: (
        "action_source 'website' but no user_data.client_user_agent"
    ),
    PayloadCode.MISSING_USER_DATA: "no customer-information parameter in user_data",
    PayloadCode.FBC_MALFORMED: "a user_data.fbc not shaped fb.<index>.<13-digit ms>.<fbclid>",
    PayloadCode.FBP_MALFORMED: "a user_data.fbp not shaped fb.<index>.<13-digit ms>.<digits>",
    PayloadCode.VALUE_INVALID: "a custom_data.value that is not a finite number",
    PayloadCode.CURRENCY_INVALID: "a custom_data.currency that is not an ISO 4217 code",
    PayloadCode.TEST_EVENT_CODE_PRESENT: "a test_event_code on the request",
    PayloadCode.NONSTANDARD_EVENT_NAME: "an event_name that is a standard event in the wrong case",
}

_REMEDIATION: Final[dict[PayloadCode, str]] = {
    PayloadCode.EVENT_TIME_MILLISECONDS: (
        "Send event_time in Unix seconds: divide JavaScript Date.now()-style millisecond "
        "timestamps by 1000 and round down."
    ),
    PayloadCode.EVENT_TIME_FUTURE: (
        "Set event_time from the moment the action happened, in UTC Unix seconds, and keep "
        "the sending server's clock synchronised (NTP)."
    ),
    PayloadCode.EVENT_TIME_TOO_OLD: (
        "Send events within minutes of the action and drop (do not retry) events older than "
        "7 days (62 days for physical_store): one such event makes Meta reject the whole "
        "request."
    ),
    PayloadCode.MISSING_ACTION_SOURCE: (
        "Set action_source on every event (website, app, email, phone_call, chat, "
        "physical_store, system_generated, business_messaging or other)."
    ),
    PayloadCode.MISSING_EVENT_SOURCE_URL: (
        "Set event_source_url to the browser URL where the event happened on every website event."
    ),
    PayloadCode.MISSING_CLIENT_USER_AGENT: (
        "Copy the browser's User-Agent header, unhashed, into user_data.client_user_agent "
        "on every website event."
    ),
    PayloadCode.MISSING_USER_DATA: (
        "Send at least one customer-information parameter in user_data (hashed em or ph, "
        "external_id, client_ip_address with client_user_agent, fbp/fbc)."
    ),
    PayloadCode.FBC_MALFORMED: (
        "Send user_data.fbc as the unmodified _fbc cookie, or build it as "
        "fb.1.<click time in ms>.<fbclid> (the parameter builder does this); never "
        "lowercase or hash it."
    ),
    PayloadCode.FBP_MALFORMED: (
        "Send user_data.fbp as the unmodified _fbp cookie "
        "(fb.<index>.<creation time in ms>.<random number>); never hash or rebuild it."
    ),
    PayloadCode.VALUE_INVALID: (
        'Send custom_data.value as a JSON number (12.5, not "12.5" or null) or leave it out.'
    ),
    PayloadCode.CURRENCY_INVALID: (
        "Send custom_data.currency as a 3-letter ISO 4217 code such as USD or EUR."
    ),
    PayloadCode.TEST_EVENT_CODE_PRESENT: (
        "Remove test_event_code from production requests: test events are still processed "
        "and can break deduplication and reporting."
    ),
    PayloadCode.NONSTANDARD_EVENT_NAME: (
        "Spell standard events exactly as Meta does ({names}); any other spelling is "
        "treated as a custom event and is not optimised as the standard one."
    ),
}


def _duration(seconds: float) -> str:
    if seconds >= 2 * _DAY:
        return f"{seconds / _DAY:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


class Payload:
    """Counts events that break the payload rules of the Conversions API."""

    id: ClassVar[str] = "payload"
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = False
    title: ClassVar[str] = "Payload"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        settings = ctx.settings.payload
        self._tolerance = settings.future_tolerance
        self._max_age = settings.max_age
        self._store_max_age = settings.physical_store_max_age
        self.book = FindingBook()
        self.total = 0
        self.max_ahead = 0.0  # seconds, over EVENT_TIME_FUTURE events
        self.max_age = 0.0  # seconds, over EVENT_TIME_TOO_OLD events
        self.test_code_names: Counter[str] = Counter()
        self._fresh_memos()

    def _fresh_memos(self) -> None:
        # Bounded memos of values already judged fine: cookies repeat per browser, custom
        # event names per dataset; both spare a regex or a case fold per event.
        self._valid_fbc: set[str] = set()
        self._valid_fbp: set[str] = set()
        self._names_ok: set[str] = set(STANDARD_EVENTS)  # and custom names judged fine

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (parallel audit) without the memos: caches, not results.
        memos = ("_valid_fbc", "_valid_fbp", "_names_ok")
        return {k: v for k, v in self.__dict__.items() if k not in memos}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fresh_memos()

    def merge(self, later: Payload) -> None:
        """Fold in the state of the input right after this one (``Check.merge``): counts,
        maxima, and the test-code names under their bound (earlier names first)."""
        self.total += later.total
        self.book.merge(later.book)
        self.max_ahead = max(self.max_ahead, later.max_ahead)
        self.max_age = max(self.max_age, later.max_age)
        names = self.test_code_names
        for name, n in later.test_code_names.items():
            if name in names or len(names) < _MAX_EVIDENCE_NAMES:
                names[name] += n

    def observe(self, delivery: Delivery) -> None:
        """Fold one delivery: every event is judged against its send time.

        The common, healthy case is tested with as little work per event as possible
        (hot path): the times and names of a whole delivery at once, then one loop over
        its events; anything unusual is handed to a helper that works out exactly what is
        wrong. Each code's hits come in event order, as one loop per event would give them.
        """
        events = delivery.events
        if not events:
            return
        self.total += len(events)
        ref = delivery.sent_at if delivery.sent_at is not None else self.ctx.now
        if delivery.millis is not None:
            self._millis(delivery)
        times = delivery.times
        if max(times) > ref + self._tolerance or min(times) < ref - self._max_age:
            self._event_times(delivery, ref)
        names_ok = self._names_ok
        if not names_ok.issuperset(map(_event_name, events)):
            for event in events:
                if event["event_name"] not in names_ok:
                    self._event_name(event["event_name"], delivery)
        valid_fbc, valid_fbp = self._valid_fbc, self._valid_fbp
        for event in events:
            source = event.get("action_source")
            user_data = event.get("user_data")
            if source == "website":
                if not (
                    (url := event.get("event_source_url")).__class__ is str
                    and url
                    and user_data.__class__ is dict
                    and (agent := user_data.get("client_user_agent")).__class__ is str
                    and agent
                ):
                    self._website(event, user_data, event["event_name"], delivery)
            elif source.__class__ is not str or not source:
                self._hit(PayloadCode.MISSING_ACTION_SOURCE, event["event_name"], delivery)
            if user_data.__class__ is not dict:
                self._hit(PayloadCode.MISSING_USER_DATA, event["event_name"], delivery)
            else:
                fbc = user_data.get("fbc")
                if fbc is not None and (fbc.__class__ is not str or fbc not in valid_fbc):
                    self._cookie(PayloadCode.FBC_MALFORMED, fbc, event["event_name"], delivery)
                fbp = user_data.get("fbp")
                if fbp is not None and (fbp.__class__ is not str or fbp not in valid_fbp):
                    self._cookie(PayloadCode.FBP_MALFORMED, fbp, event["event_name"], delivery)
                for key, value in user_data.items():
                    # Non-empty customer information; value[0] spares any() the usual case.
                    if (
                        value
                        and key in CUSTOMER_INFO_KEYS
                        and (value.__class__ is not list or value[0] or any(value))
                    ):
                        break
                else:
                    self._hit(PayloadCode.MISSING_USER_DATA, event["event_name"], delivery)
            custom_data = event.get("custom_data")
            if custom_data.__class__ is dict and custom_data:
                # Absent keys default to valid stand-ins so one test covers the usual case.
                value = custom_data.get("value", 0)
                currency = custom_data.get("currency", "USD")
                number = value.__class__ is int or (value.__class__ is float and isfinite(value))
                if not number or currency.__class__ is not str or currency not in _CURRENCY_FAST:
                    self._custom_data(custom_data, event["event_name"], delivery)
        test_code = delivery.test_event_code
        if test_code.__class__ is str and test_code.strip():
            self._test_event_code(delivery)

    def _event_times(self, delivery: Delivery, ref: float) -> None:
        """The events of a delivery whose time may be out of bounds, one by one."""
        latest, oldest = ref + self._tolerance, ref - self._max_age
        store_oldest = ref - self._store_max_age
        for event, t in zip(delivery.events, delivery.times, strict=True):
            if t > latest or (
                t < oldest and (t < store_oldest or event.get("action_source") != "physical_store")
            ):
                self._event_time(event, t, event.get("action_source"), ref, delivery)

    def _hit(self, code: PayloadCode, name: str, delivery: Delivery, *value: Any) -> None:
        self.book.hit(code, _FIELD[code], name, delivery, *value)

    def _millis(self, delivery: Delivery) -> None:
        """Events whose event_time the reader found in milliseconds (``Delivery.millis``);
        the finding shows the value as sent."""
        flags = delivery.millis or ()
        for event, millis in zip(delivery.events, flags, strict=True):
            if millis:
                code = PayloadCode.EVENT_TIME_MILLISECONDS
                self._hit(code, event["event_name"], delivery, event["event_time"])

    def _event_time(
        self, event: dict[str, Any], t: float, source: Any, ref: float, delivery: Delivery
    ) -> None:
        name = event["event_name"]
        if delivery.millis is not None and delivery.millis[delivery.events.index(event)]:
            return  # reported as EVENT_TIME_MILLISECONDS: the root cause, not also its age
        if t > ref + self._tolerance:
            self.max_ahead = max(self.max_ahead, t - ref)
            self._hit(PayloadCode.EVENT_TIME_FUTURE, name, delivery, event["event_time"])
        else:
            age = ref - t
            limit = self._store_max_age if source == "physical_store" else self._max_age
            if age > limit:
                self.max_age = max(self.max_age, age)
                self._hit(PayloadCode.EVENT_TIME_TOO_OLD, name, delivery, event["event_time"])

    def _event_name(self, name: str, delivery: Delivery) -> None:
        if standard_spelling(name) is not None:
            self._hit(PayloadCode.NONSTANDARD_EVENT_NAME, name, delivery, name)
            return
        if len(self._names_ok) >= _CACHE_MAX:
            self._names_ok.clear()
            self._names_ok.update(STANDARD_EVENTS)
        self._names_ok.add(name)  # a custom event: fine, remember it

    def _website(self, event: dict[str, Any], user_data: Any, name: str, d: Delivery) -> None:
        if not _present(event.get("event_source_url")):
            self._hit(PayloadCode.MISSING_EVENT_SOURCE_URL, name, d)
        agent = user_data.get("client_user_agent") if user_data.__class__ is dict else None
        if not _present(agent):
            self._hit(PayloadCode.MISSING_CLIENT_USER_AGENT, name, d)

    def _cookie(self, code: PayloadCode, value: Any, name: str, delivery: Delivery) -> None:
        """Validate an fbc/fbp not seen before; valid strings are remembered (bounded)."""
        fbc = code is PayloadCode.FBC_MALFORMED
        pattern = FBC_PATTERN if fbc else FBP_PATTERN
        if not is_valid_cookie(value, pattern):
            self._hit(code, name, delivery, value)
        elif value.__class__ is str and len(value) <= _CACHE_VALUE_MAX:
            valid = self._valid_fbc if fbc else self._valid_fbp
            if len(valid) >= _CACHE_MAX:
                valid.clear()
            valid.add(value)

    def _custom_data(self, custom_data: dict[str, Any], name: str, delivery: Delivery) -> None:
        if "value" in custom_data and not is_number(value := custom_data["value"]):
            self._hit(PayloadCode.VALUE_INVALID, name, delivery, value)
        if "currency" in custom_data and not is_currency(currency := custom_data["currency"]):
            self._hit(PayloadCode.CURRENCY_INVALID, name, delivery, currency)

    def _test_event_code(self, delivery: Delivery) -> None:
        # Request-level and dataset-wide (docs/contracts.md §6: alerts carry no event name), so
        # the names go to evidence and the finding lists none.
        names = self.test_code_names
        for event in delivery.events:
            name = event["event_name"]
            if name in names or len(names) < _MAX_EVIDENCE_NAMES:
                names[name] += 1
        code = PayloadCode.TEST_EVENT_CODE_PRESENT
        self.book.hit(
            code, _FIELD[code], "", delivery, delivery.test_event_code, n=len(delivery.events)
        )

    def result(self) -> CheckResult:
        """One finding per code; EVENT_TIME_TOO_OLD is crit, the rest escalate by share."""
        if self.total == 0:
            return skipped(self.id, "no events to check")
        findings = sorted(
            (self._finding(t) for t in self.book),
            key=lambda f: (-f.severity.rank, -f.count, f.code),
        )
        shown = ", ".join(f"{f.code} ({f.count})" for f in findings[:4])
        more = f" and {len(findings) - 4} more" if len(findings) > 4 else ""
        return result_from_findings(
            self.id,
            findings,
            self.total,
            f"{self.total} events: payloads well-formed",
            f"{self.total} events: {shown}{more}",
        )

    def _finding(self, tally: Tally) -> Finding:
        code = PayloadCode(tally.code)
        share = tally.count / self.total
        evidence: dict[str, Any] = {"share": round(share, 4), "total_events": self.total}
        severity = escalate(Severity.WARN, share, self.ctx.settings.payload.warn_to_crit_share)
        if code is PayloadCode.EVENT_TIME_TOO_OLD:
            severity = Severity.CRIT  # Meta rejects the whole request (docs/meta-capi.md §5)
            evidence["max_age_seconds"] = round(self.max_age)
        elif code is PayloadCode.EVENT_TIME_FUTURE:
            evidence["max_ahead_seconds"] = round(self.max_ahead)
        elif code is PayloadCode.TEST_EVENT_CODE_PRESENT:
            evidence["event_names"] = dict(self.test_code_names.most_common())
        finding = make_finding(
            self.id,
            tally,
            severity,
            self._message(code, tally, share),
            self._remediation(code, tally),
            evidence,
        )
        if code is PayloadCode.TEST_EVENT_CODE_PRESENT:
            finding.event_names = []
        return finding

    def _message(self, code: PayloadCode, tally: Tally, share: float) -> str:
        what = _WHAT[code].format(
            tol=_duration(self._tolerance),
            age=f"oldest {_duration(self.max_age)}",
        )
        if code is PayloadCode.EVENT_TIME_FUTURE:
            what += f", up to {_duration(self.max_ahead)} ahead"
        head = f"{tally.count} of {self.total} events ({share:.1%}) have {what}"
        if code is PayloadCode.TEST_EVENT_CODE_PRESENT:
            names = [n for n, _ in self.test_code_names.most_common()]
        else:
            names = sorted(tally.event_names, key=lambda n: (-tally.event_names[n], n))
        return f"{head} ({names_text(names)})."

    @staticmethod
    def _remediation(code: PayloadCode, tally: Tally) -> str:
        text = _REMEDIATION[code]
        if code is PayloadCode.NONSTANDARD_EVENT_NAME:
            fixes = sorted({f"{n!r} -> {standard_spelling(n)}" for n in tally.event_names})
            text = text.format(names=", ".join(fixes[:5]))
        return text

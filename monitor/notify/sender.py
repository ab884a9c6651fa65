"""The outbox sender: delivers ``outbox`` rows through the notifiers, never losing one
and never posting one twice where the service can tell.

Rows, not memory, hold the state (docs/architecture.md rule 3), so a crash or an outage loses
nothing. ``drain()`` does two things:

1. **Plan.** Each outbox row without deliveries gets one ``notify_deliveries`` row per
   configured notifier: ``pending`` if routing sends it there, ``skipped`` (with the
   reason) if not.
2. **Send**, per notifier, in outbox order. A delivery is marked ``sending`` (committed)
   before the service is called and ``sent`` (with the service's message id) after. A
   delivery found in ``sending`` was interrupted (the process died, or the answer was
   lost): the sender first asks the notifier's ``find_sent(key)`` and sends again only if
   the message is not there (Slack can tell; email and webhooks cannot, so they are
   at-least-once). A transient failure (network, 5xx, rate limit) is retried with
   exponential backoff, capped at ``[notify] retry_max_delay`` (default 20 s) so held
   notifications go out within ~30 s of the service answering again; a ``Retry-After``
   is honoured. A permanent failure (bad token, unknown channel, 5xx SMTP reply) marks
   the delivery ``failed``; ``notifier_health`` reports it.

Per notifier the queue is strictly ordered: while its oldest open delivery waits for a
retry, later ones wait too, so a resolution never overtakes the alert it resolves.
A claim (``sending``) is a compare-and-set on (state, attempts) with a lease of
``2 × timeout + 5 s``: two processes draining one database never send the same delivery,
and a claim left by a dead process is picked up when its lease runs out.

Nothing here logs or stores a secret: errors come from ``NotifierError`` (scrubbed by
the notifier) and are scrubbed again before they are written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine

from monitor.alerts.model import Notification, Reason
from monitor.config import NotifySettings, Settings
from monitor.mask import scrub_text
from monitor.model.findings import Severity
from monitor.notify.base import FirstReport, Notifier, NotifierError, at_least
from monitor.notify.routing import clients_of, notify_settings, route
from monitor.report.format import fmt_duration
from monitor.store import deliveries as q
from monitor.store.db import store_errors, write_connection
from monitor.store.tables.notify import DeliveryState

log = logging.getLogger(__name__)

PLAN_BATCH = 200  # outbox rows planned per transaction
FIRST_REPORT_LOOKBACK = 200  # sent deliveries searched for the post that first reported
LEASE_MARGIN = 5.0
MAX_ERROR_CHARS = 300

Verdict = Literal["arrived", "send", "wait"]
Row = q.Row


@dataclass(slots=True)
class DrainStats:
    """What one ``drain()`` did."""

    planned: int = 0  # delivery rows created (pending, skipped, or failed if unreadable)
    skipped: int = 0  # of those, not routed to their notifier
    sent: int = 0
    recovered: int = 0  # found already delivered (find_sent) after an interrupted send
    retried: int = 0  # transient failures; tried again later
    failed: int = 0  # permanent failures, unreadable payloads, given up (give_up_after)
    pending: int = 0  # deliveries still open after this drain

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class NotifierHealth:
    """One notifier as ``capi-monitor status`` shows it."""

    notifier: str
    last_success_at: float | None
    last_error: str | None  # scrubbed
    last_error_at: float | None
    pending: int  # deliveries waiting (pending or interrupted)
    failed: int  # deliveries that failed for good
    oldest_pending_at: float | None  # when the oldest waiting delivery was queued
    oldest_pending_age: float | None  # seconds it has waited, as of ``now``

    @property
    def status(self) -> str:
        """``error`` when the latest thing that happened was an error, else ``ok``."""
        if self.last_error_at is None:
            return "ok"
        if self.last_success_at is None or self.last_error_at > self.last_success_at:
            return "error"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def delivery_key(outbox_key: str, notifier: str) -> str:
    """The idempotency key one notifier sees for one outbox row."""
    return f"{outbox_key}/{notifier}"


def _clean(text: str) -> str:
    return scrub_text(" ".join(text.split()))[:MAX_ERROR_CHARS]


class OutboxSender:
    """Drains the outbox through ``notifiers`` (id -> notifier, see ``build_notifiers``).

    ``settings``: the full ``Settings`` (routing can then match a dataset's ``client``
    from ``[[datasets]]``) or just its ``notify`` section. ``clock``: Unix seconds.
    One sender drains at a time (a lock); several senders on one database are safe too.
    """

    def __init__(
        self,
        engine: Engine,
        notifiers: Mapping[str, Notifier],
        settings: Settings | NotifySettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._notifiers = dict(notifiers)
        self._settings = notify_settings(settings)
        self._clients = clients_of(settings)
        self._clock = clock
        self._lock = threading.Lock()
        self._observe: Callable[[str, str], None] | None = None

    def observe_outcomes(self, observe: Callable[[str, str], None]) -> None:
        """Have ``observe(notifier, outcome)`` called for every delivery attempt's
        outcome: ``sent``, ``recovered`` (found delivered), ``retried``, ``failed``."""
        self._observe = observe

    def _count(self, notifier: str, outcome: str) -> None:
        if self._observe is not None:
            self._observe(notifier, outcome)

    @property
    def lease(self) -> float:
        """How long a claim protects a delivery: a find_sent and a send, plus a margin."""
        return 2 * self._settings.timeout + LEASE_MARGIN

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempts + 1``: doubling from ``retry_base_delay``,
        capped at ``retry_max_delay``, never sooner than the service's ``Retry-After``."""
        s = self._settings
        delay = min(s.retry_max_delay, s.retry_base_delay * 2 ** max(0, attempts - 1))
        return max(delay, retry_after or 0.0)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with store_errors("read", self._engine.url), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with (
            store_errors("write to", self._engine.url),
            write_connection(self._engine) as conn,
            conn.begin(),
        ):
            yield conn

    def drain(self, now: float | None = None) -> DrainStats:
        """Plan new outbox rows, then send every due delivery. Raises ``StoreError``."""
        with self._lock:
            now = self._clock() if now is None else now
            stats = DrainStats()
            self._plan(now, stats)
            for notifier in self._queued_notifiers():
                self._drain_notifier(notifier, now, stats)
            stats.pending = self._count_open()
            return stats

    # --- planning ----------------------------------------------------------------------

    def _plan(self, now: float, stats: DrainStats) -> None:
        if not self._notifiers:
            return  # nothing to plan for; rows wait until a notifier is configured
        while True:
            with self._writing() as conn:
                rows = q.unplanned_outbox(conn, PLAN_BATCH)
                values = [v for row in rows for v in self._plan_row(row, now)]
                q.insert_deliveries(conn, values)
            stats.planned += len(values)
            stats.skipped += sum(1 for v in values if v["state"] == DeliveryState.SKIPPED)
            stats.failed += sum(1 for v in values if v["state"] == DeliveryState.FAILED)
            if len(rows) < PLAN_BATCH:
                return

    def _plan_row(self, row: Row, now: float) -> list[dict[str, Any]]:
        base = {"outbox_id": row["id"], "attempts": 0, "created_at": now, "next_attempt_at": now}
        try:
            n = Notification.from_dict(row["payload"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            why = f"unreadable outbox payload ({type(err).__name__})"
            return [
                {**base, "notifier": nid, "state": DeliveryState.FAILED.value,
                 "min_severity": Severity.WARN.value, "last_error": why, "last_error_at": now}
                for nid in self._notifiers
            ]  # fmt: skip
        stale = float(row["created_at"]) + self._settings.give_up_after <= now
        out = []
        client = self._clients.get(n.dataset_id or "")
        for d in route(n, self._settings, self._notifiers, client=client):
            reason = None if d.send else d.reason
            if d.send and stale:
                reason = f"older than give_up_after ({fmt_duration(self._settings.give_up_after)})"
            state = DeliveryState.PENDING if reason is None else DeliveryState.SKIPPED
            out.append(
                {**base, "notifier": d.notifier, "target": d.target, "state": state.value,
                 "min_severity": d.min_severity.value, "last_error": reason}
            )  # fmt: skip
        return out

    # --- sending -----------------------------------------------------------------------

    def _queued_notifiers(self) -> list[str]:
        with self._reading() as conn:
            return q.queued_notifiers(conn)

    def _open_rows(self, notifier: str) -> list[Row]:
        with self._reading() as conn:
            return q.open_deliveries(conn, notifier)

    def _drain_notifier(self, nid: str, now: float, stats: DrainStats) -> None:
        notifier = self._notifiers.get(nid)
        for row in self._open_rows(nid):
            if notifier is None:
                self._fail(row, f"notifier {nid!r} is not configured any more", now)
                stats.failed += 1
                self._count(row["notifier"], "failed")
            elif float(row["queued_at"]) + self._settings.give_up_after <= now:
                self._give_up(row, now)
                stats.failed += 1
                self._count(row["notifier"], "failed")
            elif row["next_attempt_at"] > now or not self._attempt(notifier, row, now, stats):
                # Not due yet, or failed for now: later rows wait, to keep the order.
                return

    def _attempt(self, notifier: Notifier, row: Row, now: float, stats: DrainStats) -> bool:
        """Deliver one row; ``True`` when the queue may go on to the next row."""
        key = delivery_key(row["key"], row["notifier"])
        n = at_least(Notification.from_dict(row["payload"]), row["min_severity"])
        if row["state"] == DeliveryState.SENDING:
            verdict = self._check_sent(notifier, row, key, now, stats)
            if verdict != "send":
                return verdict == "arrived"
        first_reports = self._first_reports(row, n)
        if not self._claim(row, now):
            return False  # another sender took it
        attempts = int(row["attempts"]) + 1
        try:
            ref = notifier.send(n, key, target=row["target"], first_reports=first_reports)
        except NotifierError as err:
            return self._failed_attempt(row, err, attempts, now, stats)
        except Exception as err:  # a bug in a notifier must not stop the other deliveries
            # Notifiers wrap every library call (those errors are NotifierErrors): this is
            # our own code failing (e.g. rendering), whose traceback holds no secret.
            log.error("%s: bug while sending outbox #%d", row["notifier"], row["outbox_id"],
                      exc_info=True)  # fmt: skip
            why = NotifierError(f"unexpected {type(err).__name__}", False, uncertain=True)
            return self._failed_attempt(row, why, attempts, now, stats)
        self._mark_sent(row, ref, now)
        stats.sent += 1
        self._count(row["notifier"], "sent")
        log.info("%s: delivered outbox #%d (%s)", row["notifier"], row["outbox_id"], row["key"])
        return True

    def _check_sent(
        self, notifier: Notifier, row: Row, key: str, now: float, stats: DrainStats
    ) -> Verdict:
        """For an interrupted send: did it arrive? ``arrived`` (now marked sent), ``send``
        (not there, or the service cannot tell: at least once) or ``wait`` (the service
        cannot be asked right now; the row stays ``sending`` and is retried later)."""
        try:
            ref = notifier.find_sent(key, target=row["target"])
        except NotifierError as err:
            if not err.permanent:
                # Never re-send blind while the service may still be asked later.
                self._failed_attempt(row, err, int(row["attempts"]), now, stats, True)
                return "wait"
            log.warning(
                "%s: cannot check whether outbox #%d arrived (%s); sending it again",
                row["notifier"], row["outbox_id"], err,
            )  # fmt: skip
            return "send"
        if ref is None:
            return "send"
        self._mark_sent(row, ref, now)
        stats.recovered += 1
        self._count(row["notifier"], "recovered")
        log.info("%s: outbox #%d had arrived before (%s)", row["notifier"], row["outbox_id"], ref)
        return "arrived"

    def _failed_attempt(
        self,
        row: Row,
        err: NotifierError,
        attempts: int,
        now: float,
        stats: DrainStats,
        keep_sending: bool = False,
    ) -> bool:
        if err.permanent:
            self._fail(row, str(err), now)
            stats.failed += 1
            self._count(row["notifier"], "failed")
            return True  # this row is final; the next may still go out
        delay = self.backoff(max(1, attempts), err.retry_after)
        state = DeliveryState.SENDING if (keep_sending or err.uncertain) else DeliveryState.PENDING
        self._update(
            row,
            state=state.value,
            next_attempt_at=now + delay,
            last_error=_clean(str(err)),
            last_error_at=now,
        )
        stats.retried += 1
        self._count(row["notifier"], "retried")
        log.warning(
            "%s: outbox #%d not delivered (attempt %d), next try in %s: %s",
            row["notifier"], row["outbox_id"], attempts, fmt_duration(delay), err,
        )  # fmt: skip
        return False

    def _claim(self, row: Row, now: float) -> bool:
        """Compare-and-set the row to ``sending``; ``False`` if it changed meanwhile."""
        with self._writing() as conn:
            return q.claim_delivery(conn, row, now, self.lease)

    def _mark_sent(self, row: Row, ref: str | None, now: float) -> None:
        self._update(
            row,
            state=DeliveryState.SENT.value,
            sent_at=now,
            external_ref=ref,
            next_attempt_at=now,
        )

    def _fail(self, row: Row, why: str, now: float) -> None:
        self._update(
            row, state=DeliveryState.FAILED.value, last_error=_clean(why), last_error_at=now
        )
        log.error(
            "%s: outbox #%d failed for good: %s", row["notifier"], row["outbox_id"], _clean(why)
        )

    def _give_up(self, row: Row, now: float) -> None:
        last = row["last_error"] or "never attempted"
        self._fail(row, f"gave up after {fmt_duration(self._settings.give_up_after)}: {last}", now)

    def _update(self, row: Row, **values: Any) -> None:
        with self._writing() as conn:
            q.update_delivery(conn, row["id"], values)

    # --- what a resolution refers to ---------------------------------------------------

    def _first_reports(self, row: Row, n: Notification) -> dict[str, FirstReport]:
        """For alerts reported before (resolved, repeated, escalated): the first message
        of their current episode this notifier sent to this target."""
        wanted = {a.fingerprint for a in n.alerts if a.reason != Reason.NEW}
        if not wanted:
            return {}
        with self._reading() as conn:
            earlier = q.sent_before(conn, row, FIRST_REPORT_LOOKBACK)
        return _walk_back(earlier, wanted)

    def _count_open(self) -> int:
        with self._reading() as conn:
            return q.count_open(conn)


def _walk_back(earlier: Iterable[Row], wanted: set[str]) -> dict[str, FirstReport]:
    """Newest first through sent messages: the oldest one showing each wanted alert
    firing, stopping (per alert) at the resolution that ended its previous episode."""
    found: dict[str, FirstReport] = {}
    searching = set(wanted)
    for msg in earlier:
        if not searching:
            break
        floor = Severity(msg["min_severity"]).rank
        payload = msg["payload"] if isinstance(msg["payload"], dict) else {}
        for alert in payload.get("alerts") or []:
            fp = alert.get("fingerprint")
            if fp not in searching:
                continue
            if alert.get("state") == "RESOLVED":
                searching.discard(fp)
            elif Severity(alert.get("severity", "info")).rank >= floor:
                found[fp] = FirstReport(str(msg["external_ref"]), float(msg["sent_at"]))
    return found


# --- status ----------------------------------------------------------------------------


def notifier_health(
    engine: Engine, now: float, notifiers: Iterable[str] = ()
) -> list[NotifierHealth]:
    """Per notifier (those with deliveries, plus ``notifiers``): last success, last error,
    waiting and failed counts, and how long the oldest waiting delivery has waited at
    ``now``."""
    with store_errors("read", engine.url), engine.connect() as conn:
        rows = q.notifier_totals(conn)
        errors = q.latest_errors(conn, rows)
    out = []
    for nid in sorted(set(rows) | set(notifiers)):
        r = rows.get(nid)
        text, at = errors.get(nid, (None, None))
        oldest = r[3] if r else None
        out.append(
            NotifierHealth(
                notifier=nid,
                last_success_at=r[0] if r else None,
                last_error=text,
                last_error_at=at,
                pending=int(r[1] or 0) if r else 0,
                failed=int(r[2] or 0) if r else 0,
                oldest_pending_at=oldest,
                oldest_pending_age=max(0.0, now - oldest) if oldest is not None else None,
            )
        )
    return out

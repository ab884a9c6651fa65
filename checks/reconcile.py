"""The ``reconcile`` check: paid orders against the Purchases Meta received (docs/contracts.md §8).

The payment processor or shop is the truth. The check folds the dataset's Purchase events
(from the delivery logs) into compact ``Purchase`` records and, in ``result``, compares
them with one ``OrderSnapshot`` of the dataset's orders source. ``reconcile`` is the pure
function behind it: (orders, Purchases, rules, now, window start) -> result + metrics.

Definitions (defaults in brackets):

- *Delivered* Purchase: Meta accepted it (a 2xx answer without an error body), or its
  outcome is unknown (no logged response: it counts as sent, reported as
  ``sent_unconfirmed``). Purchases of failed requests are not delivered (``delivery``
  reports them); only delivered ones are judged below.
- *Paid* order: as the source defines it (``Order.paid``). Several paid payments with one
  order id make one paid order, amounts added (``None`` if their currencies differ).
- *Match*: the Purchase's ``match_field`` [``custom_data.order_id``] compared as a
  trimmed string without a leading ``#`` with any of the order's keys, its
  ``event_time`` within ``match_window`` [48 h] of the order's creation.
- *Judged orders*: paid orders created from ``window_start`` (``--since``, else the
  earliest send time in the logs) to ``now − grace`` [2 h]. Younger ones are neither
  "not sent" nor counted. An order with a delivered Purchase at any send time is sent.
- *Judged Purchases* (for ``PURCHASE_WITHOUT_ORDER``): those whose ``event_time`` lies
  where the snapshot can answer — at least ``match_window`` after the start of the
  orders read and not after its end (``snapshot.until``: the time of an API read, the
  newest order of an export). Others are counted as ``purchases_not_judged``.

Codes (each ``warn``; ``crit`` at the share given):

``ORDER_NOT_SENT`` (crit ≥ 10 % of judged orders)
    Per judged paid order without a delivered Purchase: a conversion Meta never sees.
``PURCHASE_WITHOUT_ORDER`` (crit ≥ 5 % of delivered Purchases)
    Per judged Purchase whose id matches no paid order: thank-you-page reloads of unpaid
    checkouts, bots, failed payments (``matched_unpaid`` counts those whose id is a known
    but unpaid order).
``PURCHASE_DUPLICATE_ORDER`` (crit ≥ 2 % of delivered Purchases)
    One order id on delivered Purchases with different ``event_id``s (a Purchase without
    ``event_id`` is its own identity): the extra Purchases beyond the first are counted.
``PURCHASE_VALUE_MISMATCH``
    Per matched order with an amount: a delivered Purchase whose ``custom_data.value``
    differs from the amount by more than ``value_tolerance`` [0.01] of it (bound
    inclusive), whose currency differs, or that has no value.
``PURCHASE_ORDER_ID_MISSING``
    Per delivered Purchase without ``match_field`` (missing, null or empty); not also
    ``PURCHASE_WITHOUT_ORDER``.
``SOURCE_UNAVAILABLE``
    The orders source could not be read in full: the check is ``error``, nothing else is
    judged (never partial counts).

Metrics (``Reconciliation.metrics``, also in every finding's evidence): ``orders_paid``,
``orders_sent``, ``accuracy`` (sent ÷ paid, ``None`` without paid orders) and the counters
behind them. Order ids and Shopify order names may be shown; nothing else of an order.

``build_funnel`` gives the per-day funnel: paid orders → Purchases sent → accepted by
Meta → Meta's server and browser counts (when the Graph API was read).
"""

from __future__ import annotations

import dataclasses as dc
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any, ClassVar, Protocol, runtime_checkable

from checks.base import MAX_EXAMPLES, CheckContext, escalate, score_findings, skipped
from checks.funnel import BUCKET, MetaCounts, build_funnel
from checks.purchases import (
    PURCHASE,
    Outcome,
    PaidOrder,
    Purchase,
    outcome_of,
    paid_orders,
    purchases_of,
)
from monitor.mask import MAX_SHOWN, scrub_text
from monitor.model.findings import CheckResult, Example, Finding, Severity, Status, worst_severity
from monitor.model.observations import Delivery
from monitor.model.orders import OrderSnapshot

CHECK_ID = "reconcile"
ORDER_NOT_SENT = "ORDER_NOT_SENT"
_event_name = itemgetter("event_name")  # every event of a Delivery has one (the reader's)
PURCHASE_WITHOUT_ORDER = "PURCHASE_WITHOUT_ORDER"
PURCHASE_DUPLICATE_ORDER = "PURCHASE_DUPLICATE_ORDER"
PURCHASE_VALUE_MISMATCH = "PURCHASE_VALUE_MISMATCH"
PURCHASE_ORDER_ID_MISSING = "PURCHASE_ORDER_ID_MISSING"
SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
MAX_IDS = 20  # order ids listed in a finding's evidence


@dataclass(frozen=True, slots=True)
class ReconcileRules:
    """The settings of one dataset's reconciliation (its ``[[orders]]`` entry)."""

    match_field: str = "custom_data.order_id"
    grace: float = 2 * 3600.0
    value_tolerance: float = 0.01
    match_window: float = 48 * 3600.0
    not_sent_crit_share: float = 0.10
    without_order_crit_share: float = 0.05
    duplicate_crit_share: float = 0.02


# ----------------------------------------------------------------------------- result


@dataclass(slots=True)
class Reconciliation:
    """The outcome of ``reconcile``: the check's result and its metrics."""

    result: CheckResult
    metrics: dict[str, Any]


@dataclass(slots=True)
class _Hits:
    """Occurrences of one code: exact count, bounded examples and order ids."""

    count: int = 0
    examples: list[Example] = dc.field(default_factory=list)
    ids: list[str] = dc.field(default_factory=list)

    def add(self, file: str, line: int, shown: str, order_id: str | None, n: int = 1) -> None:
        self.count += n
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(Example(file, line, _shown(shown)))
        if order_id is not None and len(self.ids) < MAX_IDS and order_id not in self.ids:
            self.ids.append(_shown(order_id))


def _shown(text: str) -> str:
    """Order ids are shown (§8), but a sender may put anything in them: mask emails and
    phones, cap the length."""
    return scrub_text(text)[:MAX_SHOWN]


def reconcile(
    snapshot: OrderSnapshot | None,
    purchases: Sequence[Purchase],
    rules: ReconcileRules,
    now: float,
    window_start: float | None,
    judged: tuple[float, float] | None = None,
) -> Reconciliation:
    """The ``reconcile`` result for one dataset (module docstring); pure.

    ``judged``: only the Purchases whose ``event_time`` lies in this span (bounds
    included) are judged and counted; the others still make an order "sent" and give an
    order id its first ``event_id``, so a repeat inside the span is a duplicate (the
    daemon keeps Purchases longer than it judges them). Default: every Purchase."""
    if snapshot is None:
        return Reconciliation(skipped(CHECK_ID, "no orders source for this dataset"), {})
    if snapshot.error is not None:
        return Reconciliation(_unavailable(snapshot), {})
    if window_start is None:
        return Reconciliation(skipped(CHECK_ID, "no delivery logs to reconcile"), {})
    return _Judge(snapshot, purchases, rules, now, window_start, judged).run()


def _unavailable(snapshot: OrderSnapshot) -> CheckResult:
    message = (
        f"The orders source {snapshot.source!r} ({snapshot.kind}) could not be read in full: "
        f"{snapshot.error}. Purchases were not reconciled."
    )
    finding = Finding(
        code=SOURCE_UNAVAILABLE,
        severity=Severity.WARN,
        check=CHECK_ID,
        count=1,
        message=message,
        remediation=(
            "Check the source's credentials (the environment variable named in the "
            "[[orders]] entry, a read-only key or token with access to payments/orders), "
            "its URL and that it answers; for files, the paths and columns."
        ),
        evidence={"source": snapshot.source, "kind": str(snapshot.kind)},
    )
    summary = f"Orders source {snapshot.source!r} unavailable: not evaluated."
    return CheckResult(CHECK_ID, Status.ERROR, summary, None, [finding])


class _Judge:
    """One reconciliation run; fields are the intermediate tallies."""

    def __init__(
        self,
        snapshot: OrderSnapshot,
        purchases: Sequence[Purchase],
        rules: ReconcileRules,
        now: float,
        window_start: float,
        judged: tuple[float, float] | None = None,
    ) -> None:
        self.snap, self.rules, self.now, self.start = snapshot, rules, now, window_start
        self.purchases = purchases
        self.span = judged
        self.orders = paid_orders(snapshot.orders)
        self.by_key: dict[str, list[PaidOrder]] = defaultdict(list)
        for order in self.orders:
            for key in order.keys:
                self.by_key[key].append(order)
        self.unpaid_keys = {k for o in snapshot.orders if not o.paid for k in o.keys}
        self.hits: dict[str, _Hits] = defaultdict(_Hits)
        self.counts: dict[str, int] = defaultdict(int)

    def judges(self, p: Purchase) -> bool:
        return self.span is None or self.span[0] <= p.event_time <= self.span[1]

    def run(self) -> Reconciliation:
        delivered = [p for p in self.purchases if p.delivered]
        for p in delivered:
            self._match(p)
        self._duplicates(delivered)
        self._values()
        delivered = [p for p in delivered if self.judges(p)]
        judged = [
            o for o in self.orders if self.start <= o.created_at <= self.now - self.rules.grace
        ]
        for order in judged:
            if not order.purchases:
                self._hit(ORDER_NOT_SENT, self.snap.source, 0, order.order_id, order.order_id)
        metrics = self._metrics(judged, delivered)
        findings = self._findings(metrics, len(delivered))
        return Reconciliation(self._result(findings, metrics, len(delivered)), metrics)

    def _hit(self, code: str, file: str, line: int, shown: str, order_id: str | None) -> None:
        self.hits[code].add(file, line, shown, order_id)

    def _match(self, p: Purchase) -> None:
        judged = self.judges(p)
        if p.key is None:
            if judged:
                self._hit(PURCHASE_ORDER_ID_MISSING, p.file, p.line, "no order id", None)
            return
        window = self.rules.match_window
        for order in self.by_key.get(p.key, ()):
            if abs(p.event_time - order.created_at) <= window:
                order.purchases.append(p)
                return
        if not judged:
            return
        if not self.snap.since + window <= p.event_time <= self.snap.until:
            self.counts["purchases_not_judged"] += 1
            return
        unpaid = p.key in self.unpaid_keys
        self.counts["matched_unpaid"] += unpaid
        shown = p.key + (" (order not paid)" if unpaid else " (no such order)")
        self._hit(PURCHASE_WITHOUT_ORDER, p.file, p.line, shown, p.key)

    def _duplicates(self, delivered: Sequence[Purchase]) -> None:
        identities: dict[str, set[object]] = defaultdict(set)
        for p in delivered:
            if p.key is None:
                continue
            ids = identities[p.key]
            identity: object = p.event_id if p.event_id is not None else object()
            if ids and identity not in ids and self.judges(p):
                self.hits[PURCHASE_DUPLICATE_ORDER].add(
                    p.file, p.line, f"{p.key}: another event_id", p.key
                )
            ids.add(identity)

    def _values(self) -> None:
        tolerance = Decimal(str(self.rules.value_tolerance))
        for order in self.orders:
            if order.amount is None:
                continue
            for p in order.purchases:
                if not self.judges(p):
                    continue
                why = value_problem(order.amount, order.currency, p.value, p.currency, tolerance)
                if why is not None:
                    self._hit(
                        PURCHASE_VALUE_MISMATCH,
                        p.file,
                        p.line,
                        f"{order.order_id}: {why}",
                        order.order_id,
                    )
                    break

    def _metrics(self, judged: list[PaidOrder], delivered: list[Purchase]) -> dict[str, Any]:
        sent = sum(1 for o in judged if o.purchases)
        return {
            "orders_paid": len(judged),
            "orders_sent": sent,
            "accuracy": round(sent / len(judged), 4) if judged else None,
            "orders_read": len(self.snap.orders),
            "orders_too_recent": sum(
                1 for o in self.orders if o.created_at > self.now - self.rules.grace
            ),
            "payments_without_order_id": self.snap.without_order_id,
            "purchases_delivered": len(delivered),
            "purchases_accepted": sum(1 for p in delivered if p.outcome is Outcome.ACCEPTED),
            "sent_unconfirmed": sum(1 for p in delivered if p.outcome is Outcome.UNCONFIRMED),
            "purchases_failed": sum(
                1 for p in self.purchases if not p.delivered and self.judges(p)
            ),
            "purchases_not_judged": self.counts["purchases_not_judged"],
            "matched_unpaid": self.counts["matched_unpaid"],
            "source": self.snap.source,
            "source_kind": str(self.snap.kind),
        }

    def _findings(self, metrics: dict[str, Any], delivered: int) -> list[Finding]:
        paid = metrics["orders_paid"]
        shares = {
            ORDER_NOT_SENT: (paid, self.rules.not_sent_crit_share),
            PURCHASE_WITHOUT_ORDER: (delivered, self.rules.without_order_crit_share),
            PURCHASE_DUPLICATE_ORDER: (delivered, self.rules.duplicate_crit_share),
            PURCHASE_VALUE_MISMATCH: (len([o for o in self.orders if o.purchases]), 0.0),
            PURCHASE_ORDER_ID_MISSING: (delivered, 0.0),
        }
        findings = []
        for code in _ORDER:
            hits = self.hits.get(code)
            if hits is None or not hits.count:
                continue
            total, crit_share = shares[code]
            share = min(1.0, hits.count / total) if total else 1.0
            severity = escalate(Severity.WARN, share, crit_share)
            message, remediation = _TEXTS[code](hits.count, total, metrics)
            evidence = {**metrics, "share": round(share, 4), "order_ids": list(hits.ids)}
            findings.append(
                Finding(
                    code=code,
                    severity=severity,
                    check=CHECK_ID,
                    count=hits.count,
                    message=message,
                    remediation=remediation,
                    event_names=[PURCHASE],
                    field=self.rules.match_field if code != ORDER_NOT_SENT else None,
                    examples=list(hits.examples),
                    evidence=evidence,
                )
            )
        return findings

    def _result(
        self, findings: list[Finding], metrics: dict[str, Any], delivered: int
    ) -> CheckResult:
        status = Status.from_severity(worst_severity(findings))
        paid, sent = metrics["orders_paid"], metrics["orders_sent"]
        head = (
            f"{sent} of {paid} paid orders reached Meta ({metrics['accuracy']:.1%})"
            if paid
            else "No paid orders to judge yet"
        )
        if status is Status.OK:
            summary = f"{head}; all {delivered} delivered Purchases match a paid order."
        else:
            problems = ", ".join(f"{f.count} {f.code}" for f in findings)
            summary = f"{head}; {problems}."
        score = score_findings(findings, max(paid, delivered))
        return CheckResult(CHECK_ID, status, summary, score, findings)


def value_problem(
    amount: Decimal,
    currency: str | None,
    value: Decimal | None,
    value_currency: str | None,
    tolerance: Decimal,
) -> str | None:
    """Why a Purchase's value/currency does not fit the order's amount, or ``None``."""
    paid = f"{amount} {currency or ''}".strip()
    if value is None:
        return f"no value (order {paid})"
    if currency is not None and value_currency != currency:
        return f"currency {value_currency or 'missing'} (order {paid})"
    off = value != 0 if amount == 0 else abs(value - amount) / abs(amount) > tolerance
    if not off:
        return None
    hint = ""
    if amount and value in (amount * 100, amount * 1000):
        hint = ", looks like minor units"
    return f"value {value} (order {paid}{hint})"


def _pct(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "all"


def _not_sent(n: int, total: int, m: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{n} of {total} paid orders ({_pct(n, total)}) have no Purchase that Meta accepted: "
        "conversions Meta never sees, so campaigns optimise on fewer purchases than happened.",
        "Send the Purchase from the server when the payment succeeds (the payment "
        "provider's webhook, e.g. Stripe payment_intent.succeeded or Shopify orders/paid), "
        "not from the thank-you page that some buyers never reach; retry failed sends.",
    )


def _without_order(n: int, total: int, m: dict[str, Any]) -> tuple[str, str]:
    unpaid = m["matched_unpaid"]
    tail = f" ({unpaid} of them name an order that was not paid)" if unpaid else ""
    return (
        f"{n} of {total} delivered Purchases ({_pct(n, total)}) match no paid order within "
        f"48 hours{tail}: thank-you-page reloads, bots or payments that failed after the "
        "redirect inflate what Meta optimises on.",
        "Fire Purchase from the payment webhook, not the thank-you page; if it must stay "
        "in the browser, send it once per order (remember sent order ids) and only after "
        "the payment is confirmed.",
    )


def _duplicate(n: int, total: int, m: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{n} Purchases repeat an order id already sent with another event_id "
        f"({_pct(n, total)} of delivered Purchases): Meta counts those orders twice.",
        "Use one event_id per order (e.g. the order id itself) on every Purchase sent for "
        "it, browser and server alike, so Meta deduplicates reloads and retries.",
    )


def _value(n: int, total: int, m: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{n} of {total} matched orders were sent with a Purchase value or currency that "
        "differs from what was paid: Meta's reported revenue and value optimisation are off.",
        "Send custom_data.value as the amount paid in major units (19.99, not 1999; 500 "
        "for 500 JPY) with the order's ISO currency; take both from the payment, not the cart.",
    )


def _missing(n: int, total: int, m: dict[str, Any]) -> tuple[str, str]:
    return (
        f"{n} of {total} delivered Purchases ({_pct(n, total)}) carry no order id: they "
        "cannot be reconciled with payments.",
        "Send the order id in custom_data.order_id (or the configured match_field) on every "
        "Purchase.",
    )


_ORDER = (
    ORDER_NOT_SENT,
    PURCHASE_WITHOUT_ORDER,
    PURCHASE_DUPLICATE_ORDER,
    PURCHASE_VALUE_MISMATCH,
    PURCHASE_ORDER_ID_MISSING,
)
_TEXTS = {
    ORDER_NOT_SENT: _not_sent,
    PURCHASE_WITHOUT_ORDER: _without_order,
    PURCHASE_DUPLICATE_ORDER: _duplicate,
    PURCHASE_VALUE_MISMATCH: _value,
    PURCHASE_ORDER_ID_MISSING: _missing,
}


# ----------------------------------------------------------------------------- check


@runtime_checkable
class UsesOrders(Protocol):
    """A check that needs the dataset's orders, known only once the logs are read (the
    window to read starts at the earliest send time): ``run_audit(orders=...)``."""

    def use_orders(
        self, snapshot: OrderSnapshot | None, rules: ReconcileRules, since: float | None
    ) -> None: ...


class ReconcileCheck:
    """Folds a dataset's deliveries into Purchases (and the earliest send time); the
    result compares them with the orders snapshot handed over by ``use_orders`` (or at
    construction). Without a snapshot the check is ``skipped``."""

    id: ClassVar[str] = CHECK_ID
    weight: ClassVar[float] = 1.5  # in the health score
    reads_graph: ClassVar[bool] = False
    title: ClassVar[str] = "Reconciliation with payments"

    def __init__(
        self,
        ctx: CheckContext,
        orders: OrderSnapshot | None = None,
        rules: ReconcileRules | None = None,
        since: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.orders = orders
        self.rules = rules or ReconcileRules()
        self.since = since
        # Purchase records are kept only when the dataset is reconciled (the engine says
        # so with ``keep_purchases``); the funnel needs only counts per quarter hour.
        self.keep_purchases = orders is not None
        self.purchases: list[Purchase] = []
        self.buckets: Counter[tuple[Outcome, int]] = Counter()
        self.first_sent: float | None = None
        self._last: Reconciliation | None = None
        # Why no orders will come, when another job judges them (the daemon's log cycles).
        self.judged_elsewhere: str | None = None

    def use_orders(
        self, snapshot: OrderSnapshot | None, rules: ReconcileRules, since: float | None
    ) -> None:
        """The orders to compare with, the dataset's rules and ``--since`` (if given).
        ``rules.match_field`` must be the one the Purchases were folded with (the default
        unless the rules were given at construction): the engine reads it from config
        before observing."""
        self.orders, self.since, self._last = snapshot, since, None
        self.rules = dc.replace(rules, match_field=self.rules.match_field)

    def observe(self, delivery: Delivery) -> None:
        t = delivery.sent_at
        if t is None and delivery.events:
            t = min(delivery.times)
        if t is not None and (self.first_sent is None or t < self.first_sent):
            self.first_sent = t
        if not self.keep_purchases:  # the funnel counts only: no Purchase record to build
            self._count(delivery)
            return
        for p in purchases_of(delivery, self.rules.match_field):
            self.buckets[(p.outcome, int(p.event_time // BUCKET))] += 1
            self.purchases.append(p)

    def _count(self, delivery: Delivery) -> None:
        """The funnel's counts of ``observe`` without building ``Purchase`` records (the
        same events: exact name ``Purchase``; the same outcome and quarter hour)."""
        if PURCHASE not in map(_event_name, delivery.events):  # most requests: one C loop
            return
        outcome: Outcome | None = None
        buckets = self.buckets
        for ev, event_time in zip(delivery.events, delivery.times, strict=True):
            if ev.get("event_name") == PURCHASE:
                outcome = outcome or outcome_of(delivery)
                buckets[(outcome, int(event_time // BUCKET))] += 1

    def merge(self, later: ReconcileCheck) -> None:
        self.purchases.extend(later.purchases)
        self.buckets.update(later.buckets)
        if later.first_sent is not None and (
            self.first_sent is None or later.first_sent < self.first_sent
        ):
            self.first_sent = later.first_sent
        self._last = None

    @property
    def window_start(self) -> float | None:
        return self.since if self.since is not None else self.first_sent

    def reconciliation(self) -> Reconciliation:
        if self._last is None and self.orders is None and self.judged_elsewhere:
            self._last = Reconciliation(skipped(CHECK_ID, self.judged_elsewhere), {})
        if self._last is None:
            self._last = reconcile(
                self.orders, self.purchases, self.rules, self.ctx.now, self.window_start
            )
        return self._last

    def result(self) -> CheckResult:
        result = self.reconciliation().result
        metrics = self.metrics()
        if metrics:
            result = dc.replace(result, metrics=metrics)
        return result

    def metrics(self) -> dict[str, Any]:
        """``orders_paid``, ``orders_sent``, ``accuracy`` (empty when not evaluated)."""
        m = self.reconciliation().metrics
        return {k: m[k] for k in ("orders_paid", "orders_sent", "accuracy") if k in m}

    def funnel(self, timezone: str, meta: MetaCounts | None = None) -> list[dict[str, Any]]:
        """The per-day funnel from the window start to ``now`` (``build_funnel``); empty
        before any delivery was seen."""
        start = self.window_start
        if start is None:
            return []
        return build_funnel(
            self.orders, self.buckets, start=start, end=self.ctx.now, timezone=timezone,
            meta=meta,
        )  # fmt: skip

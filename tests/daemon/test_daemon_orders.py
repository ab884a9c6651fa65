"""The daemon's ``orders`` job end to end: real log files, the loopback Stripe fake and a
real store (SQLite and PostgreSQL, ``tests.support.pg``). Planted reconciliation problems
fire through the alert lifecycle with exact counts, a Stripe outage is
``SOURCE_UNAVAILABLE`` (the job and the daemon go on, nothing else resolves or is muted,
the cursor stays), the next runs catch up and resolve, and no key or customer field
reaches the store or the log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from monitor.alerts.queries import open_alerts
from monitor.config import Settings, settings_from_dict
from monitor.daemon.jobs import JOBS, JobResult, not_scheduled
from monitor.daemon.orders_jobs import funnel_hours, read_since
from monitor.daemon.scheduler import Daemon
from monitor.jsonlog import JsonFormatter, ScrubFilter, secret_values
from monitor.model.orders import OrderSnapshot, Outcome, Purchase, SourceKind
from monitor.store import Store
from monitor.store.orders import load_funnel_hours, load_order_cursor, load_purchases
from monitor.store.tables.core import metadata
from monitor.testing.fakestripe import CUSTOMER_VALUES, FakePayment, FakeStripe
from tests.daemon.test_daemon import NOW, FakeSender, append

HOUR = 3600.0
KEY = "rk_test_51DaemonOrdersKey00000000000000000SECRET"
ENV = {"CAPI_TEST_STRIPE_KEY": KEY}
SHOP = "111"
JUDGED = (NOW - 3 * HOUR, NOW - 2 * HOUR)  # what a run at NOW judges (window 1h, grace 2h)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe(KEY) as fake:
        yield fake


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path / "logs" / "capi.jsonl"


def make_settings(tmp_path: Path, stripe_url: str) -> Settings:
    return settings_from_dict(
        {
            "datasets": [
                {
                    "id": SHOP,
                    "name": "Shop",
                    "logs": [str(tmp_path / "logs" / "*.jsonl")],
                    "orders": "pay",
                }
            ],
            "orders": [
                {
                    "name": "pay",
                    "kind": "stripe",
                    "api_key_env": "CAPI_TEST_STRIPE_KEY",
                    "api_url": stripe_url,
                    "grace": "2h",
                    "max_retries": 0,
                }
            ],
            "alerts": {"window": "1h", "resolve_after_cycles": 2, "for_cycles": 1},
        }
    )


def make_daemon(settings: Settings, store: Store) -> Daemon:
    return Daemon(
        settings, store, FakeSender(), clock=lambda: NOW, env=ENV,
        secrets=secret_values(settings, ENV),
    )  # fmt: skip


# --- traffic -----------------------------------------------------------------------------

_n = iter(range(10**9))


def purchase_line(
    t: float,
    order_id: str | None,
    value: float = 25.0,
    *,
    event_id: str | None = None,
    status: int = 200,
    email: str | None = None,
) -> bytes:
    """One delivery of one Purchase sent 5 s after ``t`` (its ``event_time``)."""
    custom: dict[str, Any] = {"value": value, "currency": "EUR"}
    if order_id is not None:
        custom["order_id"] = order_id
    ev = {
        "event_name": "Purchase",
        "event_time": int(t),
        "event_id": event_id or f"ev-{next(_n)}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thank-you",
        "user_data": {
            "em": [email or "a" * 64],
            "client_user_agent": "Mozilla/5.0",
            "fbp": "fb.1.1795175000000.1",
        },
        "custom_data": custom,
    }
    body: dict[str, Any] = {"events_received": 1}
    if status >= 400:
        body = {"error": {"message": "Invalid parameter", "code": 100}}
    record = {
        "sent_at": t + 5,
        "request": {"data": [ev]},
        "response": {"status": status, "body": body},
    }
    return orjson.dumps(record) + b"\n"


def paid(
    order_id: str, created: float, cents: int = 2500, status: str = "succeeded"
) -> FakePayment:
    return FakePayment(f"pi_{order_id}", int(created), cents, "eur", status, order_id)


def clean_traffic(
    prefix: str, start: float, end: float, every: float = 600.0
) -> tuple[list[bytes], list[FakePayment]]:
    """An order every ``every`` seconds in ``[start, end)``: paid, then sent once."""
    lines, payments = [], []
    t, i = start, 0
    while t < end:
        oid = f"{prefix}-{i}"
        payments.append(paid(oid, t - 20))
        lines.append(purchase_line(t, oid))
        t, i = t + every, i + 1
    return lines, payments


def planted(stripe: FakeStripe, log_file: Path) -> None:
    """Six hours of clean traffic up to NOW, and in the span a run at NOW judges:

    - ``A-unsent``: paid, never sent (the buyer left before the thank-you page);
    - ``A-21``: the thank-you page reloaded 2 min later (a second ``event_id``);
    - ``A-failed``: a Purchase from the thank-you page of a payment that then failed;
    - ``A-dropped``: paid, its Purchase rejected by Meta (not sent, as far as Meta knows).
    """
    lines, payments = clean_traffic("A", NOW - 6 * HOUR, NOW)
    start = JUDGED[0]
    payments += [
        paid("A-unsent", start + 1000),
        paid("A-failed", start + 1200, status="requires_payment_method"),
        paid("A-dropped", start + 1500),
    ]
    reload_at = start + 1800 + 120  # A-21 is the order sent at start + 1800
    lines += [
        purchase_line(start + 1210, "A-failed", email="alice.fake@example.com"),
        purchase_line(reload_at, "A-21"),
        purchase_line(start + 1510, "A-dropped", status=400),
    ]
    stripe.payments.extend(payments)
    append(log_file, *sorted(lines, key=lambda b: orjson.loads(b)["sent_at"]))


def run(d: Daemon, job: str, now: float) -> JobResult:
    spec = next(s for s in JOBS if s.name == job)
    result = d.run_job(spec, now)
    assert result.ok, result.error
    return result


def firing(store: Store, check: str | None = "reconcile") -> dict[str, tuple[int, str | None]]:
    """Firing alert code -> (count, muted by), of ``check`` (None: every check)."""
    alerts = open_alerts(store.engine, dataset_id=SHOP, firing_only=True)
    return {
        a.key.code: (a.content.count, a.muted_by)
        for a in alerts
        if check is None or a.key.check == check
    }


def reconcile_result(store: Store) -> dict[str, Any]:
    """The newest stored ``reconcile`` result that was evaluated (the orders job's run)."""
    checks, runs = metadata.tables["check_results"], metadata.tables["audit_runs"]
    query = (
        select(checks.c.status, checks.c.summary, checks.c.run_id)
        .where(checks.c.check_id == "reconcile", checks.c.status != "skipped")
        .order_by(checks.c.id.desc())
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
        assert row is not None
        findings = metadata.tables["findings"]
        found = conn.execute(
            select(findings.c.code, findings.c.count, findings.c.evidence).where(
                findings.c.run_id == row["run_id"], findings.c.check_id == "reconcile"
            )
        ).mappings()
        del runs
        return {
            "status": row["status"],
            "summary": row["summary"],
            "findings": {f["code"]: (f["count"], f["evidence"]) for f in found},
        }


def dump(store: Store) -> str:
    """Every row of every table, as text (the no-secrets check)."""
    out = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            out += [repr(tuple(r)) for r in conn.execute(select(table))]
    return "\n".join(out)


# --- tests -------------------------------------------------------------------------------


def test_planted_problems_fire_with_exact_counts(
    store: Store, stripe: FakeStripe, log_file: Path, tmp_path: Path
) -> None:
    planted(stripe, log_file)
    d = make_daemon(make_settings(tmp_path, stripe.url), store)
    assert [s.name for s in d.jobs()] == ["logs", "orders", "notify"]
    logs = run(d, "logs", NOW)
    assert logs.counters["purchases_kept"] == 36 + 3  # 6 h of orders every 10 min + 3
    result = run(d, "orders", NOW)
    assert result.counters["sources_read"] == 1 and not result.counters["sources_failed"]
    assert result.counters["datasets_judged"] == 1
    assert {c: n for c, (n, _) in firing(store).items()} == {
        "ORDER_NOT_SENT": 2,  # A-unsent, A-dropped
        "PURCHASE_WITHOUT_ORDER": 1,  # A-failed
        "PURCHASE_DUPLICATE_ORDER": 1,  # A-21's reload
    }
    stored = reconcile_result(store)
    assert stored["status"] == "crit"  # 2 of 8 orders not sent: over 10 %
    # The judged hour holds six clean orders plus A-unsent and A-dropped.
    count, evidence = stored["findings"]["ORDER_NOT_SENT"]
    assert (count, evidence["orders_paid"], evidence["orders_sent"]) == (2, 8, 6)
    assert evidence["accuracy"] == 0.75 and evidence["matched_unpaid"] == 1
    assert sorted(evidence["order_ids"]) == ["A-dropped", "A-unsent"]
    # The one request: payments created from what the store keeps, up to now.
    (req,) = stripe.requests
    assert float(req.params["created[lt]"][0]) == NOW
    # The logs job leaves reconcile to this job.
    checks = metadata.tables["check_results"]
    with store.engine.connect() as conn:
        summaries = (
            conn.execute(
                select(checks.c.summary).where(
                    checks.c.check_id == "reconcile", checks.c.status == "skipped"
                )
            )
            .scalars()
            .all()
        )
    assert summaries == ["reconciled by the daemon's orders job, not per log cycle"]


def test_a_source_outage_is_source_unavailable_and_the_next_runs_catch_up(
    store: Store, stripe: FakeStripe, log_file: Path, tmp_path: Path
) -> None:
    planted(stripe, log_file)
    # A rejected delivery a little before NOW: DELIVERY_ERRORS, a log alert that depends
    # on Meta's side (the kind an inhibitor mutes), and must stay unmuted.
    append(log_file, purchase_line(NOW - 300, "A-x", status=400))
    stripe.payments.append(paid("A-x", NOW - 320))
    d = make_daemon(make_settings(tmp_path, stripe.url), store)
    run(d, "logs", NOW)
    run(d, "orders", NOW)
    assert firing(store, "delivery") == {"DELIVERY_ERRORS": (1, None)}
    with store.engine.connect() as conn:
        cursor = load_order_cursor(conn, "pay")
    assert cursor is not None and cursor.covered_until == NOW

    stripe.forbid()  # the restricted key lost its permission
    later = NOW + 900
    result = run(d, "orders", later)  # the job itself succeeds
    assert result.counters["sources_failed"] == 1
    now_firing = firing(store)
    assert now_firing["SOURCE_UNAVAILABLE"] == (1, None)
    # Nothing else was judged, resolved or muted; the log alert stays unmuted.
    assert {"ORDER_NOT_SENT", "PURCHASE_WITHOUT_ORDER", "PURCHASE_DUPLICATE_ORDER"} <= set(
        now_firing
    )
    assert firing(store, "delivery") == {"DELIVERY_ERRORS": (1, None)}
    assert reconcile_result(store)["status"] == "error"
    with store.engine.connect() as conn:
        after = load_order_cursor(conn, "pay")
    # Not advanced (the next run reads the same range again); only aged at its start.
    assert after is not None and (after.covered_until, after.read_at) == (NOW, NOW)
    assert after.covered_from == cursor.covered_from + 900
    run(d, "logs", later)  # the daemon goes on

    # Stripe answers again four hours later; clean traffic meanwhile.
    stripe.forbid(0)
    stripe._faults.clear()
    lines, payments = clean_traffic("B", NOW, NOW + 4 * HOUR)
    stripe.payments.extend(payments)
    append(log_file, *lines)
    t3 = NOW + 4 * HOUR
    run(d, "logs", t3)
    before = len(stripe.requests)
    run(d, "orders", t3)
    # The read starts grace before the end of the last complete one.
    (req,) = stripe.requests[before:]
    assert float(req.params["created[gte]"][0]) == NOW - 2 * HOUR
    run(d, "orders", t3 + 900)
    assert firing(store) == {}
    stored = reconcile_result(store)
    assert stored["status"] == "ok" and not stored["findings"]
    assert "6 of 6 paid orders reached Meta" in stored["summary"]


def test_no_key_or_customer_field_in_the_store_or_the_log(
    store: Store, stripe: FakeStripe, log_file: Path, tmp_path: Path
) -> None:
    planted(stripe, log_file)
    settings = make_settings(tmp_path, stripe.url)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ScrubFilter(secret_values(settings, ENV)))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        d = make_daemon(settings, store)
        run(d, "logs", NOW)
        run(d, "orders", NOW)
        stripe.forbid()
        run(d, "orders", NOW + 900)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert '"job":"orders"' in buffer.getvalue()
    text_ = dump(store) + buffer.getvalue()
    for secret in (KEY, KEY[-12:], *CUSTOMER_VALUES, "alice.fake@example.com"):
        assert secret not in text_, secret


def test_funnel_hours_are_stored_and_kept(
    store: Store, stripe: FakeStripe, log_file: Path, tmp_path: Path
) -> None:
    planted(stripe, log_file)
    d = make_daemon(make_settings(tmp_path, stripe.url), store)
    run(d, "logs", NOW)
    run(d, "orders", NOW)
    with store.engine.connect() as conn:
        rows = {h.hour: h for h in load_funnel_hours(conn, NOW - 6 * HOUR, NOW)}
    hour = rows[int(JUDGED[0])]
    # Six clean orders, A-unsent, A-dropped: 8 paid; 6 + reload + failed + dropped sent.
    assert (hour.orders_paid, hour.purchases_sent, hour.purchases_accepted) == (8, 9, 8)
    assert rows[int(NOW - 4 * HOUR)].orders_paid == 6
    # An outage later: the stored paid counts stay, the Purchase counts are recounted.
    stripe.forbid()
    run(d, "orders", NOW + 900)
    with store.engine.connect() as conn:
        again = {h.hour: h for h in load_funnel_hours(conn, NOW - 6 * HOUR, NOW)}
    assert again[int(JUDGED[0])] == hour


def test_not_scheduled_without_a_dataset_that_names_a_source(tmp_path: Path) -> None:
    settings = settings_from_dict({"datasets": [{"id": SHOP, "logs": []}]})
    assert not_scheduled(settings)["orders"] == "no dataset names an [[orders]] source"
    with_source = make_settings(tmp_path, "http://127.0.0.1:9")
    assert "orders" not in not_scheduled(with_source)


def test_purchases_are_kept_only_for_reconciled_datasets(
    store: Store, log_file: Path, tmp_path: Path
) -> None:
    settings = settings_from_dict(
        {"datasets": [{"id": SHOP, "logs": [str(tmp_path / "logs" / "*.jsonl")]}]}
    )
    append(log_file, purchase_line(NOW - 600, "A-1"))
    d = Daemon(settings, store, FakeSender(), clock=lambda: NOW, env={})
    assert run(d, "logs", NOW).counters["purchases_kept"] == 0
    with store.engine.connect() as conn:
        assert load_purchases(conn, SHOP, 0) == []


def test_read_since_and_funnel_hours_units() -> None:
    settings = make_settings(Path("/nonexistent"), "http://127.0.0.1:9")
    entry = settings.orders[0]
    assert read_since(entry, None, NOW - 60 * HOUR) == NOW - 60 * HOUR
    snap = OrderSnapshot("pay", SourceKind.STRIPE, NOW - 60 * HOUR, NOW)
    purchases = [
        Purchase("f", 1, "1", "e1", NOW - 3599, Decimal("1"), "EUR", Outcome.ACCEPTED),
        Purchase("f", 2, "2", "e2", NOW - 10, None, None, Outcome.UNCONFIRMED),
        Purchase("f", 3, "3", "e3", NOW - 5, None, None, Outcome.FAILED),
    ]
    rows = funnel_hours(SHOP, purchases, snap, NOW - 2 * HOUR - 1, NOW)
    assert [r.hour for r in rows] == [int(NOW - 2 * HOUR), int(NOW - HOUR), int(NOW)]
    last = rows[1]
    assert (last.orders_paid, last.purchases_sent, last.purchases_accepted) == (0, 3, 1)
    assert last.purchases_unconfirmed == 1
    failed = OrderSnapshot.failed("pay", SourceKind.STRIPE, 0, NOW, "down")
    assert all(
        r.orders_paid is None for r in funnel_hours(SHOP, purchases, failed, NOW - HOUR, NOW)
    )


def test_the_weekly_report_draws_what_the_job_counted(
    store: Store, stripe: FakeStripe, log_file: Path, tmp_path: Path
) -> None:
    from monitor.report.weekly.load import build_weekly_report
    from monitor.report.window import ReportWindow

    planted(stripe, log_file)
    settings = make_settings(tmp_path, stripe.url)
    d = make_daemon(settings, store)
    run(d, "logs", NOW)
    run(d, "orders", NOW)
    window = ReportWindow(NOW - 6 * HOUR, NOW, "UTC")
    report = build_weekly_report(store, settings, window, now=NOW)
    (page,) = report.datasets
    assert page.funnel is not None
    rows = {name: values for name, values, _ in page.funnel.rows}
    judged_hour = 3  # buckets are hours for a 6-hour window: NOW - 3 h is the fourth
    assert rows["Paid orders"][judged_hour] == 8
    assert rows["Purchases sent"][judged_hour] == 9
    assert rows["Accepted by Meta"][judged_hour] == 8
    assert rows["Meta's server count"] == [None] * 6  # no Graph API here

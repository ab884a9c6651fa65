"""The bundled samples' reconciliation (samples/README.md, "Reconciliation with payments"):
the shop's logs audited against ``samples/orders/shop-orders.csv`` give exactly the planted
counts, the funnel per day, and a page with the reconciliation section; the export's
customer column appears nowhere."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from checks.reconcile import (
    ORDER_NOT_SENT,
    PURCHASE_DUPLICATE_ORDER,
    PURCHASE_WITHOUT_ORDER,
)
from monitor.config import load_settings
from monitor.engine.audit import input_files, run_audit
from monitor.engine.orders_inputs import orders_loader
from monitor.model.results import AuditReport
from monitor.report.html import render_audit_html
from monitor.timeutil import parse_iso

REPO = Path(__file__).resolve().parents[2]
NOW = parse_iso("2026-11-20T12:00:00Z")
SHOP, LEADGEN = "1234567890", "9876543210"
EXPORT = REPO / "samples" / "orders" / "shop-orders.csv"
# What samples/generate.py planted (it prints these; samples/README.md lists them).
UNSENT = {"SO-9900000001", "SO-9900000002"}  # paid, the buyer never saw the thank-you page
NOT_SENT = 7  # those two and five orders whose Purchases Meta rejected (flush, token)
JUDGED = 127  # paid orders created from the first send to now - grace


@pytest.fixture(scope="module")
def report() -> AuditReport:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)  # the config's paths are relative to the repository root
        settings = load_settings("samples/config.toml")
        return run_audit(
            settings,
            input_files(settings, []),
            now=NOW,
            orders=orders_loader(settings, now=NOW),
        )


def reconcile_of(report: AuditReport, dataset_id: str) -> dict[str, object]:
    ds = next(d for d in report.datasets if d.dataset_id == dataset_id)
    return next(c for c in ds.to_dict()["checks"] if c["id"] == "reconcile")


def test_the_planted_counts_exactly(report: AuditReport) -> None:
    shop = next(d for d in report.datasets if d.dataset_id == SHOP)
    found = {f.code: f for f in shop.findings if f.check == "reconcile"}
    assert {c: f.count for c, f in found.items()} == {
        ORDER_NOT_SENT: NOT_SENT,
        PURCHASE_WITHOUT_ORDER: 1,  # the thank-you page of a payment that then failed
        PURCHASE_DUPLICATE_ORDER: 1,  # the thank-you page reloaded 95 s later
    }
    assert set(found[ORDER_NOT_SENT].evidence["order_ids"]) >= UNSENT
    assert found[PURCHASE_WITHOUT_ORDER].evidence["matched_unpaid"] == 1
    assert reconcile_of(report, SHOP)["metrics"] == {
        "orders_paid": JUDGED,
        "orders_sent": JUDGED - NOT_SENT,
        "accuracy": round((JUDGED - NOT_SENT) / JUDGED, 4),
    }
    assert reconcile_of(report, LEADGEN)["status"] == "skipped"


def test_the_export_agrees_with_the_plants() -> None:
    with EXPORT.open(newline="") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["order_id"]: r for r in rows}
    assert len(by_id) == len(rows)  # one row per order
    assert [r["status"] for r in rows].count("failed") == 1
    assert set(by_id) >= UNSENT and all(by_id[o]["status"] == "paid" for o in UNSENT)
    dup = found_duplicate_id()
    assert by_id[dup]["status"] == "paid"


def found_duplicate_id() -> str:
    """The order id carried by two Purchases of the shop's logs (the reload)."""
    seen: dict[str, int] = {}
    for path in (REPO / "samples" / "logs" / "shop").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            for ev in json.loads(line)["request"]["data"]:
                if ev["event_name"] == "Purchase":
                    oid = ev["custom_data"]["order_id"]
                    seen[oid] = seen.get(oid, 0) + 1
    (dup,) = [oid for oid, n in seen.items() if n > 1]
    return dup


def test_the_funnel_per_day(report: AuditReport) -> None:
    shop = next(d for d in report.datasets if d.dataset_id == SHOP)
    assert shop.funnel is not None
    days = {row["day"]: row for row in shop.funnel}
    assert list(days) == ["2026-11-18", "2026-11-19", "2026-11-20"]  # Europe/Berlin
    paid = [days[d]["orders_paid"] for d in days]
    accepted = [days[d]["purchases_accepted"] for d in days]
    sent = [days[d]["purchases_sent"] for d in days]
    assert all(a <= s for a, s in zip(accepted, sent, strict=True))
    assert sum(sent) - sum(accepted) == 5  # the rejected flush and the expired token
    assert all(p is not None for p in paid)


def test_the_page_has_the_reconciliation_section_and_no_customer_field(
    report: AuditReport,
) -> None:
    html = render_audit_html(report)
    section = html[html.index("Reconciliation with payments") :]
    assert 'data-chart="funnel"' in section and 'data-table="funnel"' in section
    assert html.count("Reconciliation with payments") == 1  # the lead-gen site has none
    data = json.dumps(report.to_dict())
    for text in (html, data):
        assert "@example.com" not in text and "buyer0" not in text

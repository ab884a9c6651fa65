"""Reconciliation wired into audits: [[orders]] config, Stripe/Shopify/file sources through
``run_audit``, the JSON output (metrics, funnel, schema), ``audit --orders`` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor.config import settings_from_dict
from monitor.engine.audit import run_audit
from monitor.engine.orders_inputs import orders_loader
from monitor.errors import ConfigError
from monitor.sources.logs.reader import InputFile
from monitor.testing.fakeshopify import CUSTOMER_VALUES, FakeOrder, FakeShopify
from monitor.testing.fakestripe import FakePayment, FakeStripe

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "schemas" / "audit-output-v1.schema.json").read_text())
NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
T = int(NOW - 86400)
KEY = "rk_test_51OrdersAuditKey000000000000000000SECRET"
TOKEN = "shpat_00000000000000000000000000000abc"


def record(t: float, oid: Any, value: Any, currency: str = "EUR", eid: str | None = None) -> str:
    custom: dict[str, Any] = {"value": value, "currency": currency}
    if oid is not None:
        custom["order_id"] = oid
    ev = {
        "event_name": "Purchase",
        "event_time": t,
        "event_id": eid or f"ev-{oid}-{t}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {"em": ["a" * 64], "client_user_agent": "UA", "client_ip_address": "1.2.3.4"},
        "custom_data": custom,
    }
    rec = {
        "sent_at": t + 5,
        "dataset_id": "111",
        "request": {"data": [ev]},
        "response": {"status": 200, "body": {"events_received": 1, "messages": []}},
    }
    return json.dumps(rec)


def write_logs(tmp_path: Path, ids: list[tuple[float, Any, Any, str]]) -> Path:
    view = {"event_name": "PageView", "event_time": T - 3600, "action_source": "website"}
    start = {"sent_at": T - 3600, "dataset_id": "111", "request": {"data": [view]}}
    lines = [json.dumps(start)] + [record(*x) for x in ids]
    path = tmp_path / "capi.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def audit(settings: Any, log: Path, **kw: Any) -> dict[str, Any]:
    loader = orders_loader(settings, now=NOW, **kw)
    report = run_audit(settings, [InputFile(str(log))], now=NOW, orders=loader).to_dict()
    jsonschema.validate(report, SCHEMA)
    return report


def reconcile_of(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    (ds,) = report["datasets"]
    check = next(c for c in ds["checks"] if c["id"] == "reconcile")
    counts = {f["code"]: f["count"] for f in ds["findings"] if f["check"] == "reconcile"}
    return check, counts


# ----------------------------------------------------------------------------- config


def test_orders_config_is_validated() -> None:
    ok = settings_from_dict(
        {
            "orders": [{"name": "pay", "kind": "stripe", "api_key_env": "K"}],
            "datasets": [{"id": "1", "orders": "pay"}],
        }
    )
    assert ok.orders_source("pay") is not None and ok.schedule.orders_every == 900.0
    assert ok.orders[0].grace == 7200.0 and ok.orders[0].value_tolerance == 0.01
    bad: list[tuple[dict[str, Any], str]] = [
        ({"orders": [{"name": "a", "kind": "stripe"}]}, "orders[0]: kind = 'stripe' needs"),
        ({"orders": [{"name": "a", "kind": "shopify", "token_env": "T"}]}, "needs shop"),
        ({"orders": [{"name": "a", "kind": "file"}]}, "needs paths"),
        ({"orders": [{"name": "a", "kind": "paypal"}]}, "orders[0].kind"),
        (
            {"orders": [{"name": "a", "kind": "file", "paths": ["x"], "columns": {"mail": "m"}}]},
            "unknown column 'mail'",
        ),
        ({"datasets": [{"id": "1", "orders": "nope"}]}, "datasets[0].orders: no [[orders]]"),
        (
            {"orders": [{"name": "a", "kind": "file", "paths": ["x"]}] * 2},
            "orders[1].name: duplicate",
        ),
        (
            {
                "orders": [
                    {
                        "name": "a",
                        "kind": "stripe",
                        "api_key_env": "K",
                        "order_id_from": "receipt_email",
                    }
                ]
            },
            "order_id_from",
        ),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            settings_from_dict(data)


# ----------------------------------------------------------------------------- sources


def planted_logs(tmp_path: Path) -> Path:
    ids: list[tuple[float, Any, Any, str]] = [(T + i * 60, f"A-{i}", 25.0, "EUR") for i in range(8)]
    ids += [
        (T + 900, "A-JP", 500, "JPY"),
        (T + 1000, "A-R", 30.0, "EUR"),
        (T + 1060, "A-R", 30.0, "EUR"),  # the thank-you page reloaded
        (T + 1200, "NOPE", 10.0, "EUR"),  # no such order
    ]
    return write_logs(tmp_path, ids)


def test_stripe_source_through_run_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_TEST_KEY", KEY)
    pays = [
        FakePayment(f"pi_{i}", T + i * 60 - 3, 2500, "eur", order_id=f"A-{i}") for i in range(8)
    ]
    pays += [
        FakePayment("pi_jp", T + 897, 500, "jpy", order_id="A-JP"),
        FakePayment("pi_r", T + 997, 3000, "eur", order_id="A-R"),
        FakePayment("pi_unsent", T + 2000, 4500, "eur", order_id="A-UNSENT"),
        FakePayment("pi_pending", T + 2100, 4500, "eur", "processing", order_id="A-P"),
    ]
    with FakeStripe(KEY, pays) as fake:
        settings = settings_from_dict({
            "orders": [{"name": "pay", "kind": "stripe", "api_key_env": "STRIPE_TEST_KEY",
                        "api_url": fake.url}],
            "datasets": [{"id": "111", "orders": "pay"}],
        })  # fmt: skip
        report = audit(settings, planted_logs(tmp_path))
    check, counts = reconcile_of(report)
    assert counts == {
        "ORDER_NOT_SENT": 1,
        "PURCHASE_DUPLICATE_ORDER": 1,
        "PURCHASE_WITHOUT_ORDER": 1,
    }
    assert check["metrics"] == {"orders_paid": 11, "orders_sent": 10, "accuracy": 0.9091}
    (ds,) = report["datasets"]
    assert [row["orders_paid"] for row in ds["funnel"]] == [11, 0]
    assert [row["purchases_sent"] for row in ds["funnel"]] == [12, 0]
    text = json.dumps(report)
    assert KEY not in text and "rk_test" not in text
    for value in CUSTOMER_VALUES:
        assert value not in text


def test_shopify_source_through_run_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_TEST_TOKEN", TOKEN)
    rows = [FakeOrder(9000 + i, f"#A-{i}", T + i * 60 - 3, "25.00") for i in range(8)]
    rows += [
        FakeOrder(9100, "#A-JP", T + 897, "500", "JPY"),
        FakeOrder(9101, "#A-R", T + 997, "30.00"),
        FakeOrder(9102, "#A-UNSENT", T + 2000, "45.00"),
        FakeOrder(9103, "#A-REFUNDED", T + 2100, "0.00", status="REFUNDED"),
        FakeOrder(9104, "#A-PENDING", T + 2200, "45.00", status="PENDING"),
    ]
    with FakeShopify(TOKEN, rows) as fake:
        settings = settings_from_dict({
            "orders": [{"name": "shop", "kind": "shopify", "shop": "x.myshopify.com",
                        "token_env": "SHOPIFY_TEST_TOKEN", "api_url": fake.url}],
            "datasets": [{"id": "111", "orders": "shop"}],
        })  # fmt: skip
        log = write_logs(tmp_path, [
            *((T + i * 60, f"#A-{i}", 25, "EUR") for i in range(8)),
            (T + 900, "A-JP", 500, "JPY"),
            (T + 1000, "9101", 30, "EUR"),  # by legacyResourceId
            (T + 2105, "A-REFUNDED", 45, "EUR"),  # refunded since: still a purchase
        ])  # fmt: skip
        report = audit(settings, log)
    assert not fake.customer_fields_requested
    check, counts = reconcile_of(report)
    assert counts == {"ORDER_NOT_SENT": 1}
    assert check["metrics"] == {"orders_paid": 12, "orders_sent": 11, "accuracy": 0.9167}
    text = json.dumps(report)
    assert TOKEN not in text
    for value in CUSTOMER_VALUES:
        assert value not in text


def test_a_missing_secret_or_a_dead_source_is_source_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_UNSET_KEY", raising=False)
    settings = settings_from_dict({
        "orders": [{"name": "pay", "kind": "stripe", "api_key_env": "STRIPE_UNSET_KEY"}],
        "datasets": [{"id": "111", "orders": "pay"}],
    })  # fmt: skip
    report = audit(settings, planted_logs(tmp_path))
    check, counts = reconcile_of(report)
    assert check["status"] == "error" and "metrics" not in check
    assert counts == {"SOURCE_UNAVAILABLE": 1}
    (ds,) = report["datasets"]
    (unavailable,) = [f for f in ds["findings"] if f["check"] == "reconcile"]
    assert "STRIPE_UNSET_KEY is not set" in unavailable["message"]
    assert all(row["orders_paid"] is None for row in ds["funnel"])


def test_without_a_source_reconcile_is_skipped(tmp_path: Path) -> None:
    settings = settings_from_dict({"datasets": [{"id": "111"}]})
    assert orders_loader(settings, now=NOW) is None
    report = audit(settings, planted_logs(tmp_path))
    check, counts = reconcile_of(report)
    assert check["status"] == "skipped" and counts == {}
    (ds,) = report["datasets"]
    assert ds["funnel"][0]["purchases_sent"] == 12 and ds["funnel"][0]["orders_paid"] is None


# ----------------------------------------------------------------------------- CLI


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPI")}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_audit_orders_file_as_a_user_runs_it(tmp_path: Path) -> None:
    log = planted_logs(tmp_path)
    rows = ["order_id,created_at,amount,currency,status,email,name"]
    rows += [
        f"A-{i},{T + i * 60 - 3},25.00,EUR,paid,alice.fake@example.com,Alice" for i in range(8)
    ]
    rows += [
        f"A-JP,{T + 897},500,JPY,paid,alice.fake@example.com,Alice",
        f"A-R,{T + 997},30.00,EUR,paid,alice.fake@example.com,Alice",
        f"A-UNSENT,{T + 2000},45.00,EUR,paid,alice.fake@example.com,Alice",
        f"A-P,{T + 2100},45.00,EUR,pending,alice.fake@example.com,Alice",
    ]
    export = tmp_path / "orders.csv"
    export.write_text("\n".join(rows) + "\n")
    os.utime(export, (NOW - 60, NOW - 60))
    now = "2026-11-20T12:00:00Z"
    proc = run_cli(
        "audit", str(log), "--orders", "orders.csv", "--now", now, "--no-store", "--json", "-",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    check, counts = reconcile_of(report)
    assert counts == {
        "ORDER_NOT_SENT": 1,
        "PURCHASE_DUPLICATE_ORDER": 1,
        "PURCHASE_WITHOUT_ORDER": 1,
    }
    assert check["metrics"]["accuracy"] == 0.9091
    assert "alice" not in proc.stdout.lower() and "alice" not in proc.stderr.lower()
    missing = run_cli("audit", str(log), "--orders", "nope.csv", "--no-store", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("capi-monitor: --orders:")

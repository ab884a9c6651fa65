"""File orders reader (CSV / JSON lines) and a reconciliation against an export end to end."""

from __future__ import annotations

import gzip
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from checks.reconcile import (
    ORDER_NOT_SENT,
    PURCHASE_DUPLICATE_ORDER,
    PURCHASE_ORDER_ID_MISSING,
    PURCHASE_VALUE_MISMATCH,
    PURCHASE_WITHOUT_ORDER,
    ReconcileCheck,
    ReconcileRules,
)
from monitor.model.findings import Status
from monitor.model.observations import ResponseInfo
from monitor.sources.orders import OrdersError
from monitor.sources.orders.file import FileOrders
from tests.support.checkutil import DAY, NOW, context, delivery, event

EMAIL, NAME = "alice.fake@example.com", "Alice Fakename"
T = NOW - DAY  # 2026-11-19T12:00:00Z
ISO = "2026-11-19T12:00:00Z"


def load(tmp_path: Path, name: str, text: str | bytes, **kw: Any) -> Any:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    os.utime(path, (T + 7200, T + 7200))  # exported two hours after T
    return FileOrders(name="export", paths=[str(path)], **kw).read_sync(0, NOW + DAY)


CSV = f"""order_id,created_at,amount,currency,status,email,customer_name
1001,{ISO},19.99,EUR,paid,{EMAIL},{NAME}
1002,2026-11-19T13:00:00+01:00,500,JPY,Succeeded,{EMAIL},{NAME}
1003,2026-11-19 12:30:00,1.250,KWD,COMPLETED,{EMAIL},{NAME}
1004,{int(T) + 60},30.00,EUR,refunded,{EMAIL},{NAME}
1005,{ISO},42.00,EUR,pending,{EMAIL},{NAME}
,{ISO},9.00,EUR,paid,{EMAIL},{NAME}

"""


def test_csv_with_extra_columns_offsets_and_statuses(tmp_path: Path) -> None:
    snap = load(tmp_path, "orders.csv", CSV)
    by = {o.order_id: o for o in snap.orders}
    assert sorted(by) == ["1001", "1002", "1003", "1004", "1005"]
    assert by["1002"].amount == Decimal("500") and by["1002"].currency == "JPY"
    assert by["1002"].created_at == T  # 13:00+01:00 is 12:00Z
    assert by["1003"].created_at == T + 1800  # no offset: UTC
    assert str(by["1003"].amount) == "1.250"
    assert by["1004"].created_at == T + 60  # Unix seconds
    assert {k for k, o in by.items() if o.paid} == {"1001", "1002", "1003", "1004"}
    assert by["1005"].status == "pending"
    assert snap.without_order_id == 1
    assert snap.until == T + 7200  # when the export was made (its modification time)
    text = repr(snap)
    assert EMAIL not in text and NAME not in text and "Alice" not in text


def test_json_lines_gzip_bom_and_mapped_columns(tmp_path: Path) -> None:
    rows = [
        {
            "number": "#A-1",
            "paid_at": ISO,
            "total": 19.99,
            "cur": "eur",
            "state": "paid",
            "billing": {"email": EMAIL, "name": NAME},
        },
        {"number": "A-2", "paid_at": ISO, "total": "5", "cur": "EUR", "state": "processing"},
    ]
    text = "\ufeff" + "\n".join(json.dumps(r) for r in rows) + "\n"
    cols = {
        "order_id": "number",
        "created_at": "paid_at",
        "amount": "total",
        "currency": "cur",
        "status": "state",
    }
    snap = load(
        tmp_path,
        "orders.jsonl.gz",
        gzip.compress(text.encode()),
        columns=cols,
        paid_statuses=["paid", "processing"],
    )
    assert [(o.order_id, o.amount, o.currency, o.paid) for o in snap.orders] == [
        ("A-1", Decimal("19.99"), "EUR", True),
        ("A-2", Decimal("5"), "EUR", True),
    ]
    assert EMAIL not in repr(snap)


def test_semicolon_csv_detected_by_content_whatever_the_name(tmp_path: Path) -> None:
    text = f"order_id;created_at;amount;currency;status\n7;{ISO};12.5;EUR;paid\n"
    snap = load(tmp_path, "export.json", text)
    assert [(o.order_id, o.amount) for o in snap.orders] == [("7", Decimal("12.5"))]


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ("1,yesterday,12.50,EUR,paid", "created_at"),
        (f"1,{ISO},1.234.5,EUR,paid", "amount"),
        (f"1,{ISO},,EUR,paid", "amount"),
        (f"1,{ISO},12.50,EURO,paid", "currency"),
        (f"1,{ISO},12.50,EUR,", "status"),
    ],
)
def test_a_bad_row_fails_the_read_naming_line_and_column(
    tmp_path: Path, line: str, column: str
) -> None:
    text = f"order_id,created_at,amount,currency,status\n2,{ISO},1.00,EUR,paid\n{line}\n"
    with pytest.raises(OrdersError) as err:
        load(tmp_path, "o.csv", text)
    assert str(err.value).startswith(f"o.csv:3: column '{column}'")


def test_missing_columns_and_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(OrdersError, match="no column 'status'"):
        load(tmp_path, "a.csv", f"order_id,created_at,amount\n1,{ISO},2\n")
    with pytest.raises(OrdersError, match="no orders file matches"):
        FileOrders(name="x", paths=[str(tmp_path / "none-*.csv")]).read_sync(0, NOW)
    with pytest.raises(OrdersError, match="not a JSON object"):
        load(tmp_path, "b.jsonl", '{"order_id": 1, "status": "x", "created_at": 1}\n[1, 2]\n')
    with pytest.raises(ValueError):
        FileOrders(name="x", paths=["a"], columns={"email": "mail"})


def test_overlapping_exports_count_each_order_once(tmp_path: Path) -> None:
    head = "order_id,created_at,amount,currency,status\n"
    (tmp_path / "a.csv").write_text(head + f"1,{ISO},10,EUR,paid\n2,{ISO},11,EUR,paid\n")
    (tmp_path / "b.csv").write_text(head + f"2,{ISO},11,EUR,paid\n3,{ISO},12,EUR,paid\n")
    snap = FileOrders(name="x", paths=["*.csv"], root=tmp_path).read_sync(0, NOW)
    assert sorted(o.order_id for o in snap.orders) == ["1", "2", "3"]
    assert snap.requests == 2


# ----------------------------------------------------------------------------- end to end

OK = ResponseInfo(status=200, events_received=1)


def _purchase(oid: Any, t: float, value: Any, currency: str = "EUR", eid: str = "", line: int = 1):
    custom: dict[str, Any] = {"value": value, "currency": currency}
    if oid is not None:
        custom["order_id"] = oid
    ev = event(
        "Purchase", t, custom_data=custom, event_id=eid or f"e{line}", user_data={"em": ["a" * 64]}
    )
    return delivery(ev, sent_at=t + 20, response=OK, line=line, file="capi.jsonl")


def test_reconcile_against_an_export_exact_counts(tmp_path: Path) -> None:
    lines = ["order_id,created_at,amount,currency,status,email"]
    for i in range(20):
        lines.append(f"{100 + i},{int(T) + i * 60},25.00,EUR,paid,{EMAIL}")
    lines += [
        f"200,{int(T) + 2000},500,JPY,paid,{EMAIL}",  # correct JPY order
        f"201,{int(T) + 2100},40.00,EUR,pending,{EMAIL}",  # pending, not sent: fine
        f"202,{int(T) + 2200},15.00,EUR,refunded,{EMAIL}",  # refunded, sent: fine
        f"300,{int(T) + 3000},30.00,EUR,paid,{EMAIL}",  # unsent
        f"301,{int(T) + 3100},30.00,EUR,paid,{EMAIL}",  # sent with 3000: minor units
        f"302,{int(T) + 3200},30.00,EUR,paid,{EMAIL}",  # thank-you page reloaded
        f"303,{int(T) + 3300},30.00,EUR,failed,{EMAIL}",  # failed payment, Purchase fired
    ]
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    os.utime(tmp_path / "orders.csv", (NOW - 60, NOW - 60))
    snap = FileOrders(name="export", paths=["orders.csv"], root=tmp_path).read_sync(
        T - 3 * DAY, NOW
    )
    d = [_purchase(str(100 + i), T + i * 60 + 5, 25.0, line=i + 1) for i in range(20)]
    d += [
        _purchase("200", T + 2005, 500, "JPY", line=30),
        _purchase("202", T + 2205, 15, line=31),
        _purchase("301", T + 3105, 3000, line=32),
        _purchase("302", T + 3205, 30, line=33),
        _purchase("302", T + 3265, 30, line=34),  # reload: a new event_id
        _purchase("303", T + 3305, 30, line=35),
        _purchase(None, T + 3400, 30, line=36),
    ]
    check = ReconcileCheck(context(), snap, ReconcileRules())
    check.observe(delivery(event("PageView", T - 3600), sent_at=T - 3600, response=OK))
    for x in d:
        check.observe(x)
    result = check.result()
    assert {f.code: f.count for f in result.findings} == {
        ORDER_NOT_SENT: 1,
        PURCHASE_WITHOUT_ORDER: 1,
        PURCHASE_DUPLICATE_ORDER: 1,
        PURCHASE_VALUE_MISMATCH: 1,
        PURCHASE_ORDER_ID_MISSING: 1,
    }
    # judged paid orders: 20 + 200 + 202 + 300 + 301 + 302 = 25, 24 sent
    assert check.metrics() == {"orders_paid": 25, "orders_sent": 24, "accuracy": 0.96}
    # 1 duplicate of 27 delivered Purchases is 3.7 % >= 2 %: crit; the others stay warn
    assert {f.code: str(f.severity) for f in result.findings if f.severity == "crit"} == {
        PURCHASE_DUPLICATE_ORDER: "crit"
    }
    assert result.status is Status.CRIT
    dumped = json.dumps([f.to_dict() for f in result.findings])
    assert EMAIL not in dumped

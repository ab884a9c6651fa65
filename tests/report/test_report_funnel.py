"""The reconciliation funnel on the weekly dataset page: paid orders -> Purchases sent ->
accepted by Meta -> Meta's server and browser counts per day, from what the daemon's
orders job and the Graph polls stored; shown only for a dataset that names an orders
source; unknown stages say "n/a", never 0."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import Settings, settings_from_dict
from monitor.model.graph import GraphSnapshot, SourceCounts
from monitor.model.orders import FunnelHour
from monitor.report.weekly.load import build_weekly_report
from monitor.report.weekly.render import render_pages
from monitor.report.weekly.view import FUNNEL_STAGES, WeeklyReport
from monitor.report.window import iso_week
from monitor.store import Store
from monitor.store.db import write_connection
from monitor.store.graph import record_graph
from monitor.store.orders import save_funnel_hours

HOUR = 3600
DAY = 86400
W47 = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp())  # Monday 00:00 UTC
NOW = W47 + 7 * DAY + 8 * HOUR


def settings() -> Settings:
    return settings_from_dict(
        {
            "datasets": [
                {"id": "111", "name": "Shop", "orders": "pay"},
                {"id": "222", "name": "Leads"},
            ],
            "orders": [{"name": "pay", "kind": "file", "paths": ["orders.csv"]}],
            "schedule": {"timezone": "UTC"},
        }
    )


def funnel_rows() -> list[FunnelHour]:
    """Monday to Saturday: every hour 4 paid orders, 5 Purchases sent, 4 accepted. Sunday
    the orders source was down: Purchases are counted, paid orders are not known. Also
    hours of dataset 222, which names no source (its rows must not show)."""
    rows = []
    for h in range(7 * 24):
        hour = W47 + h * HOUR
        paid = None if h >= 6 * 24 else 4
        rows.append(FunnelHour("111", hour, paid, 5, 4, 0))
        rows.append(FunnelHour("222", hour, 9, 9, 9, 0))
    return rows


def graph() -> GraphSnapshot:
    counts = [
        SourceCounts(datetime.fromtimestamp(W47 + h * HOUR, UTC), "Purchase", 2, 3)
        for h in range(0, 7 * 24)
    ]
    counts.append(SourceCounts(datetime.fromtimestamp(W47, UTC), "Lead", 50, 50))
    return GraphSnapshot(
        dataset_id="111",
        polled_at=W47 + 7 * DAY - 1,
        window_start=W47,
        window_end=W47 + 7 * DAY,
        source_counts=counts,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("funnel") / "store.db"
    with Store.open(f"sqlite:///{path}") as s:
        with write_connection(s.engine) as conn, conn.begin():
            save_funnel_hours(conn, funnel_rows(), NOW)
        record_graph(s, [graph()])
        yield s


@pytest.fixture(scope="module")
def report(store: Store) -> WeeklyReport:
    return build_weekly_report(store, settings(), iso_week("2026-W47", "UTC"), now=NOW)


def test_the_funnel_per_day_from_the_store(report: WeeklyReport) -> None:
    shop = next(p for p in report.datasets if p.dataset_id == "111")
    assert shop.funnel is not None
    assert shop.funnel.labels == [
        "Mon 16",
        "Tue 17",
        "Wed 18",
        "Thu 19",
        "Fri 20",
        "Sat 21",
        "Sun 22",
    ]
    rows = {name: (values, total) for name, values, total in shop.funnel.rows}
    assert list(rows) == list(FUNNEL_STAGES)
    assert rows["Paid orders"] == ([96] * 6 + [None], 576)
    assert rows["Purchases sent"] == ([120] * 7, 840)
    assert rows["Accepted by Meta"] == ([96] * 7, 672)
    assert rows["Meta's server count"] == ([72] * 7, 504)
    assert rows["Meta's browser count"] == ([48] * 7, 336)
    assert shop.funnel.accuracy == pytest.approx(672 / 576)
    assert shop.funnel.chart is not None and shop.funnel.chart.png.startswith(b"\x89PNG")


def test_only_a_dataset_with_an_orders_source_has_one(report: WeeklyReport) -> None:
    leads = next(p for p in report.datasets if p.dataset_id == "222")
    assert leads.funnel is None


def test_the_page_shows_the_section_and_n_a_for_unknown(report: WeeklyReport) -> None:
    pages = render_pages(report)
    shop = next(p for p in report.datasets if p.dataset_id == "111")
    html = pages[shop.page]
    assert 'id="funnel"' in html and 'href="#funnel"' in html
    assert 'data-chart="funnel"' in html
    paid_row = re.search(r'<tr data-stage="Paid orders">(.*?)</tr>', html, re.S)
    assert paid_row is not None
    cells = re.findall(r'<td class="num">(?:<strong>)?([^<]*)', paid_row.group(1))
    assert cells == ["96"] * 6 + ["n/a", "576"]
    leads = next(p for p in report.datasets if p.dataset_id == "222")
    assert 'id="funnel"' not in pages[leads.page]


def test_without_graph_data_meta_stages_are_unknown(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as s:
        with write_connection(s.engine) as conn, conn.begin():
            save_funnel_hours(conn, funnel_rows()[:48], NOW)
        report = build_weekly_report(s, settings(), iso_week("2026-W47", "UTC"), now=NOW)
    shop = next(p for p in report.datasets if p.dataset_id == "111")
    assert shop.funnel is not None
    rows = {name: (values, total) for name, values, total in shop.funnel.rows}
    assert rows["Meta's server count"] == ([None] * 7, None)
    # Days the orders job never counted are unknown, not zero.
    assert rows["Purchases sent"] == ([120] + [None] * 6, 120)

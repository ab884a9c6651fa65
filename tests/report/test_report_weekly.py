"""The weekly report: windows, charts, builders on a populated store, rendering (escaping,
self-containment) and the ``report`` command."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from monitor.model.rollup import LATENCY_BOUNDS
from monitor.report import charts
from monitor.report.weekly.builders import percentile
from monitor.report.weekly.load import build_weekly_report
from monitor.report.weekly.render import render_pages
from monitor.report.weekly.view import WeeklyReport, page_name
from monitor.report.window import (
    WindowError,
    choose_window,
    iso_week,
    last_complete_week,
    latest_due_week,
    scheduled_time,
)
from monitor.store import Store
from tests.support import weeklyutil as wu

PNG = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("weekly") / "store.db"
    with Store.open(f"sqlite:///{path}") as store:
        wu.populate(store)
        yield store


@pytest.fixture(scope="module")
def report(populated: Store) -> WeeklyReport:
    return build_weekly_report(populated, wu.settings(), iso_week("2026-W47", "UTC"), now=wu.NOW)


@pytest.fixture(scope="module")
def pages(report: WeeklyReport) -> dict[str, str]:
    return render_pages(report)


# --- windows ---------------------------------------------------------------------------


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_iso_week_in_the_schedule_time_zone() -> None:
    w = iso_week("2026-W47", "Europe/Berlin")
    assert (w.start, w.end) == (ts("2026-11-16T00:00+01:00"), ts("2026-11-23T00:00+01:00"))
    assert w.previous().week == "2026-W46" and w.label.startswith("2026-W47 (2026-11-16")
    assert iso_week("2027-w1", "UTC").week == "2027-W01"
    # A week with the end of summer time is 169 hours long.
    assert iso_week("2026-W43", "Europe/Berlin").length == 169 * 3600


def test_default_and_explicit_windows() -> None:
    assert last_complete_week(ts("2026-11-23T00:00Z"), "UTC").week == "2026-W47"
    assert last_complete_week(ts("2026-11-22T23:59Z"), "UTC").week == "2026-W46"
    w = choose_window("UTC", 0, None, 100.0, 200.0)
    assert (w.start, w.end, w.week) == (100.0, 200.0, None)
    assert w.previous().start == 0.0
    bad = [("2026-W47", 1.0, None), (None, 1.0, None), (None, 2.0, 1.0), ("2026-W54", None, None)]
    for args in bad:
        with pytest.raises(WindowError):
            choose_window("UTC", 0, *args)


def test_the_report_time_decides_which_week_is_due() -> None:
    mon_8 = (0, 8, 0)
    w47 = iso_week("2026-W47", "UTC")
    assert scheduled_time(w47, mon_8) == ts("2026-11-23T08:00Z")
    assert latest_due_week(ts("2026-11-23T07:59Z"), "UTC", mon_8).week == "2026-W46"
    assert latest_due_week(ts("2026-11-23T08:00Z"), "UTC", mon_8).week == "2026-W47"
    assert latest_due_week(ts("2026-11-29T20:00Z"), "UTC", (6, 20, 0)).week == "2026-W47"


# --- pure pieces -----------------------------------------------------------------------


def test_latency_percentiles_interpolate_within_buckets() -> None:
    hist = [0] * (len(LATENCY_BOUNDS) + 1)
    assert percentile(hist, 0.5) is None
    hist[0] = 100  # all under a minute
    assert percentile(hist, 0.5) == pytest.approx(30)
    hist[-1] = 100  # half older than a week: the open bucket reports its lower bound
    assert percentile(hist, 0.95) == LATENCY_BOUNDS[-1]


def test_page_names_are_the_dataset_id_or_a_safe_stand_in() -> None:
    taken: set[str] = {"index.html"}
    assert page_name("1234567890", taken) == "1234567890.html"
    assert page_name("index", taken).startswith("dataset-")
    evil = page_name("../../etc/passwd", taken)
    assert re.fullmatch(r"dataset-[0-9a-f]{12}\.html", evil)
    assert page_name("1234567890", taken) == "1234567890-2.html"


@pytest.mark.parametrize(
    "png",
    [
        lambda: charts.volume_chart(
            ["Mon", "Tue"], {"<b>$x$</b> 💥": [1, None]}, {"<b>$x$</b> 💥": [2, 3]}
        ),
        lambda: charts.volume_chart([], {}, {}),
        lambda: charts.trend_chart(["W1", "W2"], {"em": [None, None]}, ymax=100, percent=True),
        lambda: charts.coverage_goal_chart(["Purchase"], [40.0], [75.0]),
        lambda: charts.coverage_goal_chart([], [], []),
        lambda: charts.latency_chart(["a", "b"], [0.0, None], [90000.0, None]),
        lambda: charts.latency_chart(["a"], [None], [None]),
        lambda: charts.error_rate_chart(["a"], {"190/463": [0.5]}),
        lambda: charts.error_rate_chart(["a"], {}),
        lambda: charts.health_chart(["Shop"], [None], [80.0]),
        lambda: charts.funnel_chart(["a", "b"], {"Paid orders": [3, None], "Sent": [4, 5]}),
        lambda: charts.funnel_chart(["a"], {"Paid orders": [None]}),
        lambda: charts.funnel_chart([], {}),
    ],
)
def test_charts_render_png_without_warnings(png) -> None:
    # pytest turns warnings into errors: missing glyphs, mathtext and empty legends would fail.
    data = png()
    assert data.startswith(PNG) and len(data) < 200_000


def test_chart_labels_are_plain_text() -> None:
    assert charts.label("a\x00b\u200b$c$") == "ab$c$"
    assert charts.label("x" * 50).endswith("…") and len(charts.label("x" * 50)) == charts.MAX_LABEL


# --- builders on a populated store -----------------------------------------------------


def test_datasets_are_grouped_by_client_and_compared_with_last_week(report: WeeklyReport) -> None:
    assert [d.dataset_id for d in report.datasets] == ["111", "222", "333"]
    assert [(c, [d.dataset_id for d in ds]) for c, ds in report.groups] == [
        ("Acme", ["111", "222"]),
        (None, ["333"]),
    ]
    shop = report.datasets[0]
    assert (shop.score.value, shop.score.previous, shop.grade) == (64, 92, "D")
    assert shop.score.tone == "bad" and shop.score.change_text == "−28"
    head = dict(shop.headline)
    # W47: 56 sampled hours × (120 Purchase + 2 evil) events; W46: 56 × (100 + 2).
    assert (head["Server events"].value, head["Server events"].previous) == (56 * 122, 56 * 102)
    assert head["Latency p95"].value is not None and head["Latency p95"].value > 3600
    assert head["Latency p95"].tone == "bad"


def test_top_problems_come_with_evidence_and_fix(report: WeeklyReport) -> None:
    shop = report.datasets[0]
    top = shop.top[0]
    assert (top.code, str(top.severity), top.count, top.runs) == ("HASH_PLAINTEXT", "crit", 24, 2)
    assert top.delta.previous == 0 and top.remediation.startswith("Hash em")
    assert ("share", "0.25") in top.evidence
    assert wu.EVIL_EVENT in top.event_names
    assert [f.code for f in shop.top] == ["HASH_PLAINTEXT", "MISSING_EVENT_ID"]
    assert shop.top[1].delta.change_text == "−10 (−25%)"


def test_checks_have_status_worst_and_trend(report: WeeklyReport) -> None:
    checks = {c.id: c for c in report.datasets[0].checks}
    assert checks["hash_validity"].status == "crit"
    assert (checks["hash_validity"].score.value, checks["hash_validity"].score.previous) == (40, 40)
    assert [s for _, s in checks["dedup"].trend][-2:] == ["warn", "warn"]
    assert checks["parity"].status == "skipped"


def test_alerts_and_silences_of_the_week(report: WeeklyReport) -> None:
    shop = report.datasets[0]
    assert [a.code for a in shop.alerts_opened] == ["HASH_PLAINTEXT", "HASH_PLAINTEXT"]
    assert [a.duration for a in shop.alerts_resolved] == [2 * 3600]
    assert {a.code for a in shop.alerts_open} == {"HASH_PLAINTEXT", "MISSING_EVENT_ID"}
    assert any(a.muted for a in shop.alerts_open)
    stats = dict(shop.alert_stats)
    assert stats["Median time to resolve"].text == "2h"
    assert [s.reason for s in shop.silences] == ["migration <b>window</b>"]


def test_graph_sections(report: WeeklyReport) -> None:
    shop, leads = report.datasets[0], report.datasets[1]
    q = shop.quality[0]
    assert (q.emq.value, q.emq.previous, q.coverage.value, q.goal) == (6.1, 7.5, 60.0, 75.0)
    assert shop.token is not None and shop.token.days_left == pytest.approx(3.0)
    assert {d.source for d in shop.diagnostics} == {"da_checks", "Purchase"}
    assert {c.id for c in shop.charts} == {"volume", "keys", "emq", "coverage", "latency", "errors"}
    assert not leads.has_graph and leads.quality == [] and leads.token is None


def test_an_empty_store_gives_an_empty_report(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path}/empty.db") as store:
        report = build_weekly_report(store, wu.settings(), iso_week("2026-W47", "UTC"))
    assert [d.dataset_id for d in report.datasets] == ["111", "222"]
    assert all(not d.has_graph and d.score.value is None for d in report.datasets)
    assert "No Graph data" in render_pages(report)["111.html"]


# --- rendering -------------------------------------------------------------------------


def test_log_and_meta_text_is_escaped(pages: dict[str, str]) -> None:
    html = pages["111.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # event name
    assert "&lt;img src=x onerror=" in html  # finding message
    assert "&lt;script&gt;alert(3)&lt;/script&gt; pixel declined" in html  # Meta's texts
    assert "migration &lt;b&gt;window&lt;/b&gt;" in html  # a silence reason
    for page in pages.values():
        assert "<script" not in page.lower()
        assert "<img src=x" not in page and "<b>window" not in page


def test_pages_are_self_contained(pages: dict[str, str]) -> None:
    assert list(pages)[:1] == ["index.html"] and {"111.html", "222.html", "333.html"} <= set(pages)
    for name, page in pages.items():
        refs = re.findall(r'\s(?:src|href)="([^"]*)"', page)
        assert refs, name
        for ref in refs:
            assert not re.match(r"(?i)\s*(https?:)?//", ref), (name, ref)
        images = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
        assert images and all(src.startswith("data:image/png;base64,") for src in images)
        assert "<link" not in page and "@import" not in page and "url(" not in page


def test_index_links_every_dataset_page(pages: dict[str, str]) -> None:
    index = pages["index.html"]
    for name in ("111.html", "222.html", "333.html"):
        assert f'href="{name}"' in index
    assert "Acme" in index and "No client" in index and "HASH_PLAINTEXT" in index


# --- the command -----------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, cwd=REPO,
        timeout=120,
    )  # fmt: skip


def test_report_command_writes_index_and_pages(populated: Store, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[[datasets]]\nid = "111"\nname = "Shop"\nclient = "Acme"\n')
    db = populated.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "out"
    done = run_cli(
        "report", "--config", str(config), "--db", db, "--week", "2026-W47", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "111.html",
        "222.html",
        "333.html",
        "index.html",
    ]
    assert str(out / "index.html") in done.stdout
    ranged = run_cli(
        "report", "--config", str(config), "--db", db, "--out", str(tmp_path / "r"),
        "--from", "2026-11-18T00:00:00Z", "--to", "2026-11-19T00:00:00Z",
    )  # fmt: skip
    assert ranged.returncode == 0, ranged.stderr
    assert "2026-11-18 – 2026-11-18" in (tmp_path / "r" / "index.html").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--week", "2026-W60"], "2026 has no week 60"),
        (["--week", "last"], "not an ISO week"),
        (["--week", "2026-W47", "--from", "2026-11-01"], "either --week or --from/--to"),
        (["--from", "2026-11-01"], "--from and --to go together"),
        (["--from", "2026-11-02", "--to", "2026-11-01"], "--from must be before --to"),
        (["--from", "yesterday", "--to", "2026-11-01"], "not an ISO 8601 time"),
    ],
)
def test_bad_windows_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "empty.toml"
    config.write_text("")
    out = str(tmp_path / "o")
    done = run_cli(
        "report", "--config", str(config), "--db", f"{tmp_path}/x.db", "--out", out, *args
    )
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()

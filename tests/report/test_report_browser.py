"""The weekly report in a real browser: Debian's headless Chromium (installed by
``.ci/run``) loads the pages written from a populated store. No console error, no
request to anything but the file itself (and its ``data:`` images), every chart loaded
and shown, the key numbers visible, escaped text shown as text. Screenshots (desktop and
phone width) and a printed PDF are kept under ``test-artifacts/weekly-report/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.report.weekly.load import build_weekly_report
from monitor.report.weekly.render import render_pages, write_pages
from monitor.report.window import iso_week
from monitor.store import Store
from tests.support import weeklyutil as wu
from tests.support.browser import DevTools, LoadedPage, chromium, find_chromium, open_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "weekly-report"
CHROMIUM = find_chromium()

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it as root)"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    with Store.open(f"sqlite:///{root}/store.db") as store:
        wu.populate(store)
        report = build_weekly_report(store, wu.settings(), iso_week("2026-W47", "UTC"), now=wu.NOW)
    write_pages(render_pages(report), root / "out")
    return root / "out"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    assert CHROMIUM is not None
    with chromium(CHROMIUM, tmp_path_factory.mktemp("profile")) as tools:
        yield tools


def keep(name: str, page: LoadedPage) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.png").write_bytes(page.screenshot)
    (ARTIFACTS / f"{name}.pdf").write_bytes(page.pdf)


def assert_clean(page: LoadedPage, path: Path) -> None:
    assert page.log.errors == []
    own = path.resolve().as_uri()
    strangers = [u for u in page.log.requests if u != own and not u.startswith("data:")]
    assert strangers == []
    assert page.log.failed == []
    assert page.facts["scripts"] == 0
    for img in page.facts["images"]:
        assert img["complete"] and img["width"] == 700 and img["shown"] > 50, img
    assert page.screenshot.startswith(b"\x89PNG") and page.pdf.startswith(b"%PDF")


@pytest.mark.slow
def test_dataset_page_in_chromium(site: Path, browser: DevTools) -> None:
    path = site / "111.html"
    page = open_page(browser, path)
    keep("dataset-desktop", page)
    assert_clean(page, path)
    assert len(page.facts["images"]) == 6
    text = page.facts["text"]
    for shown in ("Shop", "64", "HASH_PLAINTEXT", "6,832", "▼ −28", "Fix these first", "3.0 days"):
        assert shown in text, shown
    # Hostile names and Meta's messages are shown as text, not run as markup.
    assert wu.EVIL_EVENT in text and wu.EVIL_META in text
    phone = open_page(browser, path, width=390, height=844, mobile=True)
    keep("dataset-phone", phone)
    assert_clean(phone, path)
    assert phone.facts["width"] <= 390  # nothing wider than the phone: tables scroll inside


@pytest.mark.slow
def test_index_page_in_chromium(site: Path, browser: DevTools) -> None:
    path = site / "index.html"
    page = open_page(browser, path)
    keep("index-desktop", page)
    assert_clean(page, path)
    text = page.facts["text"]
    for shown in ("Acme", "No client", "Shop", "Leads", "333", "7,672"):
        assert shown in text, shown
    assert len(page.facts["images"]) == 1

"""Rendering and writing the pages (``templates/weekly_*.html.j2``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from monitor.report.charts import Chart
from monitor.report.html import environment
from monitor.report.weekly.view import SHOWN_KEYS, DatasetPage, WeeklyReport

# --- rendering -------------------------------------------------------------------------

ImageMode = Literal["inline", "cid"]


def _image_src(mode: ImageMode) -> Any:
    def src(chart: Chart) -> str:
        return chart.data_uri if mode == "inline" else f"cid:{chart.cid}"

    return src


def render_index(report: WeeklyReport, *, images: ImageMode = "inline", email: bool = False) -> str:
    """``index.html``: every dataset, grouped by client, with the headline numbers."""
    env = environment()
    env.globals["img_src"] = _image_src(images)
    return env.get_template("weekly_index.html.j2").render(
        report=report, title=_title(report), email=email
    )


def render_dataset(report: WeeklyReport, page: DatasetPage, *, images: ImageMode = "inline") -> str:
    """One dataset's page."""
    env = environment()
    env.globals["img_src"] = _image_src(images)
    return env.get_template("weekly_dataset.html.j2").render(
        report=report, ds=page, title=f"{page.title} · {_title(report)}", shown_keys=SHOWN_KEYS
    )


def _title(report: WeeklyReport) -> str:
    return f"Weekly CAPI audit {report.window.label}"


def render_pages(report: WeeklyReport) -> dict[str, str]:
    """File name -> HTML of every page (``index.html`` first), images inline."""
    pages = {"index.html": render_index(report)}
    for p in report.datasets:
        pages[p.page] = render_dataset(report, p)
    return pages


def write_pages(pages: Mapping[str, str], out_dir: str | Path) -> list[Path]:
    """Write ``pages`` into ``out_dir`` (created), each atomically; returns the paths."""
    import os

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in pages.items():
        path = root / name
        tmp = root / f".{name}.tmp"
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written

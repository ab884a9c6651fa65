"""The weekly report's charts: matplotlib (Agg) figures rendered to small PNG images.

One function per chart, each taking plain series (lists of numbers, ``None`` for
unknown) and returning PNG bytes, so charts are testable without a store. The same bytes
go into the HTML page (``data:`` URI) and into the email (a ``cid:`` inline part):
mail clients do not show SVG or ``data:`` images, PNG they all show.

Figures are made with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through ``pyplot``: no global figure registry, no GUI backend, safe in the daemon's
worker thread. Text from logs or Meta (event names, error codes) is drawn as plain text:
``text.parse_math`` is off (a ``$`` in an event name must not start TeX), and characters
the bundled font lacks are replaced (matplotlib would warn and draw boxes).
"""

from __future__ import annotations

import base64
import io
import math
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

WIDTH_IN, HEIGHT_IN, DPI = 7.0, 2.6, 100  # 700 x 260 px: readable on a phone, small to mail
MAX_LABEL = 28
MAX_XTICKS = 10
PALETTE = ("#2f6fed", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0ba5ec", "#ee46bc", "#667085")
_STYLE: Any = {  # rcParams for every chart
    "text.parse_math": False,
    "font.family": "DejaVu Sans",  # bundled with matplotlib: the same glyphs everywhere
    "font.size": 8.5,
    "axes.edgecolor": "#d0d5dd",
    "axes.labelcolor": "#475467",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#eaecf0",
    "grid.linewidth": 0.8,
    "xtick.color": "#475467",
    "ytick.color": "#475467",
    "legend.frameon": False,
    "legend.fontsize": 7.5,
    "svg.hashsalt": "capi-monitor",
}

Series = Sequence[float | None]


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart: ``id`` is unique within a page (used for the email's CID)."""

    id: str
    title: str
    alt: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    @property
    def cid(self) -> str:
        """The Content-ID (without angle brackets) of the chart as an email part."""
        return f"{self.id}@capi-monitor"


# --- text ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _charmap() -> frozenset[int]:
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return frozenset(font_manager.get_font(path).get_charmap())


def label(text: str, limit: int = MAX_LABEL) -> str:
    """``text`` fit for a chart: one line, at most ``limit`` characters, only glyphs the
    font has (others become ``?``, control characters are dropped)."""
    glyphs = _charmap()
    out = []
    for ch in " ".join(str(text).split()):
        if unicodedata.category(ch).startswith("C"):
            continue
        out.append(ch if ord(ch) in glyphs else "?")
    clean = "".join(out)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


# --- figure plumbing -------------------------------------------------------------------


@contextmanager
def _figure(height: float = HEIGHT_IN) -> Iterator[tuple[Figure, Any]]:
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        yield fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No "Software"/date metadata: the same data renders to the same bytes.
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _values(series: Series) -> list[float]:
    return [math.nan if v is None else float(v) for v in series]


def _xticks(ax: Any, labels: Sequence[str]) -> None:
    step = max(1, math.ceil(len(labels) / MAX_XTICKS))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [label(labels[i], 12) for i in ticks])
    if labels:
        ax.set_xlim(-0.5, len(labels) - 0.5)


def _legend(ax: Any, ncol: int = 4) -> None:
    # Only with labelled artists: matplotlib warns about an empty legend.
    handles, names = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, names, loc="upper left", ncol=min(ncol, len(handles)),
                  bbox_to_anchor=(0, 1.2), borderaxespad=0)  # fmt: skip


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center",
            color="#98a2b3", fontsize=10)  # fmt: skip
    ax.set_yticks([])


def _has_data(*series: Series) -> bool:
    return any(v is not None and not math.isnan(v) for s in series for v in s)


def _margins(fig: Figure, left: float = 0.08, top: float = 0.82) -> None:
    fig.subplots_adjust(left=left, right=0.985, bottom=0.14, top=top)


# --- the charts ------------------------------------------------------------------------


def volume_chart(
    labels: Sequence[str], server: Mapping[str, Series], browser: Mapping[str, Series]
) -> bytes:
    """Server (solid) vs browser (dashed) event counts per key event over time buckets.

    ``browser`` may lack an event (no Graph data): only its server line is drawn."""
    with _figure() as (fig, ax):
        x = list(range(len(labels)))
        for i, name in enumerate(server):
            color = PALETTE[i % len(PALETTE)]
            ax.plot(x, _values(server[name]), color=color, lw=1.6, label=f"{label(name)} server")
            if name in browser:
                ax.plot(x, _values(browser[name]), color=color, lw=1.4, ls="--",
                        label=f"{label(name)} browser")  # fmt: skip
        if not _has_data(*server.values(), *browser.values()):
            _no_data(ax)
        else:
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(FuncFormatter(_count))
        _xticks(ax, labels)
        _legend(ax)
        _margins(fig)
        return _png(fig)


def trend_chart(
    labels: Sequence[str],
    series: Mapping[str, Series],
    *,
    ymax: float,
    percent: bool = False,
) -> bytes:
    """Lines with markers over ``labels`` (weeks): EMQ (0–10) or coverage (0–100 %)."""
    with _figure() as (fig, ax):
        x = list(range(len(labels)))
        for i, (name, values) in enumerate(series.items()):
            ax.plot(x, _values(values), color=PALETTE[i % len(PALETTE)], lw=1.6, marker="o",
                    ms=3.5, label=label(name))  # fmt: skip
        if not _has_data(*series.values()):
            _no_data(ax)
        else:
            ax.set_ylim(0, ymax * 1.04)
            if percent:
                ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
        _xticks(ax, labels)
        _legend(ax)
        _margins(fig)
        return _png(fig)


def coverage_goal_chart(events: Sequence[str], coverage: Series, goals: Series) -> bytes:
    """Meta's event coverage per event (bars) against its goal (a black tick per bar)."""
    height = max(1.6, 0.9 + 0.32 * len(events))
    with _figure(height) as (fig, ax):
        y = list(range(len(events)))
        values = _values(coverage)
        colors = [
            PALETTE[1] if g is None or (v is not None and v >= g) else PALETTE[3]
            for v, g in zip(coverage, goals, strict=True)
        ]
        ax.barh(y, [0 if math.isnan(v) else v for v in values], color=colors, height=0.55)
        for yi, g in zip(y, goals, strict=True):
            if g is not None:
                ax.plot([g, g], [yi - 0.38, yi + 0.38], color="#101828", lw=2)
        ax.set_yticks(y, [label(e, 22) for e in events])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=0))
        ax.grid(axis="y", visible=False)
        if not events:
            _no_data(ax)
        fig.subplots_adjust(left=0.24, right=0.96, bottom=0.4 / height, top=0.96)
        return _png(fig)


def latency_chart(labels: Sequence[str], p50: Series, p95: Series) -> bytes:
    """Send time − event time, p50 and p95 per bucket, on a log scale of durations."""
    with _figure() as (fig, ax):
        x = list(range(len(labels)))
        # A log axis needs positive values: sub-second latencies are drawn at 1 s.
        lo = [None if v is None else max(1.0, v) for v in p50]
        hi = [None if v is None else max(1.0, v) for v in p95]
        ax.plot(x, _values(lo), color=PALETTE[0], lw=1.6, marker="o", ms=3, label="p50")
        ax.plot(x, _values(hi), color=PALETTE[3], lw=1.6, marker="o", ms=3, label="p95")
        if _has_data(lo, hi):
            ax.set_yscale("log")
            top = max(v for v in _values(hi) + _values(lo) if not math.isnan(v))
            ax.set_ylim(1, max(top * 3, 120))
            ticks = [t for t in (1, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400) if t <= top * 3]
            ax.set_yticks(ticks, [_duration(t) for t in ticks])
            ax.minorticks_off()
        else:
            _no_data(ax)
        _xticks(ax, labels)
        _legend(ax)
        _margins(fig)
        return _png(fig)


def error_rate_chart(labels: Sequence[str], rates: Mapping[str, Series]) -> bytes:
    """Share of sent events in failed requests per bucket, stacked by error code (%)."""
    with _figure() as (fig, ax):
        x = list(range(len(labels)))
        bottom = [0.0] * len(labels)
        for i, (code, values) in enumerate(rates.items()):
            heights = [0.0 if v is None else v * 100 for v in values]
            ax.bar(x, heights, bottom=bottom, color=PALETTE[(i + 3) % len(PALETTE)], width=0.7,
                   label=label(code, 18))  # fmt: skip
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        if not rates:
            _no_data(ax)
        else:
            ax.set_ylim(0, max(1.0, max(bottom) * 1.15))
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=100, decimals=1))
        _xticks(ax, labels)
        _legend(ax, ncol=5)
        _margins(fig)
        return _png(fig)


def health_chart(names: Sequence[str], this_week: Series, last_week: Series) -> bytes:
    """Health score per dataset: this week (bars) and last week (a grey tick)."""
    height = max(1.6, 0.9 + 0.32 * len(names))
    with _figure(height) as (fig, ax):
        y = list(range(len(names)))
        values = [0.0 if v is None else float(v) for v in this_week]
        ax.barh(y, values, color=[_band_color(v) for v in this_week], height=0.55)
        for yi, prev in zip(y, last_week, strict=True):
            if prev is not None:
                ax.plot([prev, prev], [yi - 0.38, yi + 0.38], color="#667085", lw=2)
        ax.set_yticks(y, [label(n, 22) for n in names])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.grid(axis="y", visible=False)
        if not names:
            _no_data(ax)
        fig.subplots_adjust(left=0.24, right=0.96, bottom=0.4 / height, top=0.96)
        return _png(fig)


FUNNEL_COLORS = ("#667085", "#2f6fed", "#12b76a", "#7a5af8", "#0ba5ec")


def funnel_chart(labels: Sequence[str], stages: Mapping[str, Series]) -> bytes:
    """The reconciliation funnel per time bucket: one bar per stage (paid orders,
    Purchases sent, accepted by Meta, Meta's server and browser counts), side by side.
    A stage unknown in a bucket (``None``) has no bar there; a stage unknown everywhere
    (Meta's counts without the Graph API) is left out, keeping each stage's colour."""
    drawn = [(i, n, v) for i, (n, v) in enumerate(stages.items()) if _has_data(v)]
    with _figure() as (fig, ax):
        x = list(range(len(labels)))
        width = 0.8 / max(1, len(drawn))
        for slot, (i, name, values) in enumerate(drawn):
            offset = (slot - (len(drawn) - 1) / 2) * width
            ax.bar([xi + offset for xi in x], _values(values), width=width * 0.92,
                   label=label(name), color=FUNNEL_COLORS[i % len(FUNNEL_COLORS)])  # fmt: skip
        if not drawn:
            _no_data(ax)
        else:
            ax.set_ylim(bottom=0)
            ax.yaxis.set_major_formatter(FuncFormatter(_count))
        ax.grid(axis="x", visible=False)
        _xticks(ax, labels)
        _legend(ax, ncol=5)
        _margins(fig)
        return _png(fig)


# --- formatting ------------------------------------------------------------------------


def _band_color(score: float | None) -> str:
    if score is None:
        return "#98a2b3"
    for floor, color in ((90, "#12b76a"), (80, "#66c61c"), (70, "#fdb022"), (60, "#f97316")):
        if score >= floor:
            return color
    return "#f04438"


def _count(value: float, _pos: int) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"

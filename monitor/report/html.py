"""Render an ``AuditReport`` as one self-contained HTML page (Jinja2).

The page must open offline, print to PDF and be mailable as an attachment, so the
templates carry their CSS inline and reference nothing outside the document. Every string
that comes from logs (event names, messages, examples, file and dataset names) reaches the
page only through Jinja's autoescape; nothing here marks such data as safe.

Formatting helpers are plain functions registered as filters so that the weekly report
(which extends ``base.html.j2``) and tests can use them directly.
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from monitor import __version__
from monitor.model.findings import Finding, Severity
from monitor.model.results import AuditReport, DatasetReport, iso

TEMPLATES_ENV = "CAPI_MONITOR_TEMPLATES"
TOP_PROBLEMS = 3
# Problems listed outside the <details> fold: a printed page shows these (a closed
# <details> prints closed in most browsers), the rest stay one click away on screen.
PROBLEMS_SHOWN = 10
# Checks whose numbers are computed from the delivery logs rather than read from Meta;
# the page says so, because users compare them with Events Manager's own EMQ.
LOCAL_ESTIMATE_CHECKS = frozenset({"match_quality"})
# Codes of those checks that *do* carry Meta's own score and are not local estimates.
META_SCORE_CODES = frozenset({"EMQ_LOW", "EMQ_DROP"})

_GRADES: tuple[tuple[int, str], ...] = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))


def template_dir() -> Path:
    """The directory holding the Jinja templates: ``$CAPI_MONITOR_TEMPLATES`` or the repo's."""
    override = os.environ.get(TEMPLATES_ENV)
    if override:
        return Path(override)
    in_checkout = Path(__file__).resolve().parents[2] / "templates"
    if in_checkout.is_dir():
        return in_checkout
    return Path(sys.prefix) / "share" / "capi-monitor" / "templates"  # an installed wheel


# --- filters ---------------------------------------------------------------------------


def fmt_iso(ts: float | None) -> str:
    """Unix seconds as ISO 8601 UTC (``2026-11-20T12:00:00Z``); ``None`` as ``n/a``."""
    return "n/a" if ts is None else iso(ts)


def fmt_utc(ts: float | None) -> str:
    """Unix seconds for humans: ``2026-11-20 12:00 UTC`` (seconds only when not zero)."""
    if ts is None:
        return "n/a"
    dt = datetime.fromtimestamp(ts, UTC)
    pattern = "%Y-%m-%d %H:%M UTC" if dt.second == 0 else "%Y-%m-%d %H:%M:%S UTC"
    return dt.strftime(pattern)


def fmt_duration(seconds: float | None) -> str:
    """A duration with its two most significant units: ``1h 5m``, ``2d 3h``, ``45s``."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    sign = "-" if seconds < 0 else ""
    rest = round(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n or (parts and len(parts) < 2):
            parts.append(f"{n}{unit}")
        if len(parts) == 2:
            break
    # "1h 0m" reads as noise: drop a trailing zero unit.
    if len(parts) == 2 and parts[1][0] == "0":
        parts.pop()
    return sign + (" ".join(parts) or "0s")


def fmt_percent(ratio: float | None, digits: int = 1) -> str:
    """A ratio (0.125) as a percentage (``12.5%``); whole numbers lose their ``.0``."""
    if ratio is None or math.isnan(ratio):
        return "n/a"
    text = f"{ratio * 100:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def fmt_number(value: float | None, digits: int | None = None) -> str:
    """Thousands separators: ``12,345``; floats keep ``digits`` decimals (1 if fractional)."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "n/a"
    if digits is None:
        digits = 0 if value.is_integer() else 1
    return f"{value:,.{digits}f}"


def grade(score: float | None) -> str:
    """Letter grade of a 0–100 health score: ≥90 A, ≥80 B, ≥70 C, ≥60 D, else F."""
    if score is None:
        return "n/a"
    for floor, letter in _GRADES:
        if score >= floor:
            return letter
    return "F"


def band(score: float | None) -> str:
    """CSS colour band of a score: the lower-case grade, or ``none`` without a score."""
    g = grade(score)
    return "none" if g == "n/a" else g.lower()


# --- view model ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetView:
    """A dataset plus what the template would otherwise compute in Jinja."""

    ds: DatasetReport
    anchor: str  # "ds-3": never derived from the (log-controlled) dataset id
    findings: list[Finding]
    severity_counts: dict[str, int]  # number of findings per severity value
    top: list[Finding]

    @property
    def title(self) -> str:
        return self.ds.name or self.ds.dataset_id


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then most affected, then by code for a stable order."""
    return sorted(findings, key=lambda f: (-f.severity.rank, -f.count, f.code))


def dataset_view(ds: DatasetReport, index: int) -> DatasetView:
    findings = sort_findings(ds.findings)
    counts = Counter(str(f.severity) for f in findings)
    return DatasetView(
        ds=ds,
        anchor=f"ds-{index}",
        findings=findings,
        severity_counts={str(s): counts.get(str(s), 0) for s in Severity},
        top=findings[:TOP_PROBLEMS],
    )


def is_local_estimate(check_id: str, code: str | None = None) -> bool:
    """Whether a check (or one finding of it) reports our own estimate, not Meta's number."""
    return check_id in LOCAL_ESTIMATE_CHECKS and code not in META_SCORE_CODES


# --- rendering -------------------------------------------------------------------------


def environment() -> jinja2.Environment:
    """A Jinja environment over :func:`template_dir` with the report filters registered."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        # ".html.j2" ends in "j2": both spellings autoescape, and so do ad-hoc strings.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        iso=fmt_iso,
        utc=fmt_utc,
        duration=fmt_duration,
        percent=fmt_percent,
        number=fmt_number,
        grade=grade,
        band=band,
    )
    env.globals.update(
        version=__version__,
        is_local_estimate=is_local_estimate,
        local_estimate_checks=sorted(LOCAL_ESTIMATE_CHECKS),
    )
    return env


def render_audit_html(report: AuditReport, *, title: str = "CAPI audit") -> str:
    """The audit as a complete, self-contained HTML document."""
    template = environment().get_template("audit.html.j2")
    views = [dataset_view(ds, i) for i, ds in enumerate(report.datasets, start=1)]
    return template.render(
        report=report,
        title=title,
        datasets=views,
        problems_shown=PROBLEMS_SHOWN,
    )

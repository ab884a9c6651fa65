"""What every page and message of capi-monitor shares: the Jinja environment over the
package's templates, and the formatting filters (numbers, percentages, durations, times,
grades). Both ``report`` and ``notify`` render through it.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2

from monitor import __version__
from monitor.timeutil import iso_utc

TEMPLATES_ENV = "CAPI_MONITOR_TEMPLATES"
# Checks whose numbers are computed from the delivery logs rather than read from Meta;
# the page says so, because users compare them with Events Manager's own EMQ.
LOCAL_ESTIMATE_CHECKS = frozenset({"match_quality"})
# Codes of those checks that *do* carry Meta's own score and are not local estimates.
META_SCORE_CODES = frozenset({"EMQ_LOW", "EMQ_DROP"})

_GRADES: tuple[tuple[int, str], ...] = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))


def template_dir() -> Path:
    """The directory holding the Jinja templates: ``$CAPI_MONITOR_TEMPLATES``, else the
    package's own (``monitor/templates``, loaded through ``importlib.resources``)."""
    override = os.environ.get(TEMPLATES_ENV)
    if override:
        return Path(override)
    return Path(str(resources.files("monitor") / "templates"))


# --- filters ---------------------------------------------------------------------------


def fmt_iso(ts: float | None) -> str:
    """Unix seconds as ISO 8601 UTC (``2026-11-20T12:00:00Z``); ``None`` as ``n/a``."""
    return "n/a" if ts is None else iso_utc(ts)


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


def is_local_estimate(check_id: str, code: str | None = None) -> bool:
    """Whether a check (or one finding of it) reports our own estimate, not Meta's number."""
    return check_id in LOCAL_ESTIMATE_CHECKS and code not in META_SCORE_CODES


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

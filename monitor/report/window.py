"""The time window of a weekly report: an ISO week in a time zone, or an explicit range.

A window is ``[start, end)`` in Unix seconds, compared with *send* times (rollup hours
are send-time hours, docs/contracts.md §6). Its *previous* window is the one of the same
length just before it: "last week" for every week-over-week delta.

ISO weeks run Monday 00:00 to the next Monday 00:00 in the configured
``[schedule] timezone``; a week that contains a DST change is 167 or 169 hours long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import ConfigError

WEEK = 7 * 86400
_WEEK_ID = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


class WindowError(ValueError):
    """A week or range the user typed cannot be a report window (message fit for a user)."""


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """``[start, end)`` in Unix seconds; ``week`` is ``2026-W47`` for an ISO week."""

    start: float
    end: float
    tz: str
    week: str | None = None

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        """``2026-W47 (2026-11-16 – 2026-11-22)``, or the range's local dates."""
        days = f"{self._day(self.start)} – {self._day(self.end - 1)}"
        return f"{self.week} ({days})" if self.week else days

    @property
    def slug(self) -> str:
        """A file-name-safe id: the week, else ``20261116-20261123``."""
        if self.week:
            return self.week
        fmt = "%Y%m%dT%H%M"
        return f"{self._local(self.start).strftime(fmt)}-{self._local(self.end).strftime(fmt)}"

    def previous(self) -> ReportWindow:
        """The window just before this one: the previous ISO week, or the same length."""
        if self.week:
            year, week = (int(x) for x in self.week.split("-W"))
            monday = date.fromisocalendar(year, week, 1) - timedelta(days=7)
            return iso_week(f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}", self.tz)
        return ReportWindow(self.start - self.length, self.start, self.tz)

    def weeks_back(self, n: int) -> list[ReportWindow]:
        """``n`` windows ending with this one, oldest first (the trend charts' x axis)."""
        out = [self]
        for _ in range(n - 1):
            out.append(out[-1].previous())
        return out[::-1]

    def contains(self, ts: float) -> bool:
        return self.start <= ts < self.end

    def _local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, zone(self.tz))

    def _day(self, ts: float) -> str:
        return self._local(ts).strftime("%Y-%m-%d")

    def short(self) -> str:
        """A short x-axis label: ``W47`` or the start date ``11-16``."""
        return self.week.split("-")[1] if self.week else self._local(self.start).strftime("%m-%d")


def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` of ``name``; ``ConfigError`` naming ``schedule.timezone`` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone: unknown time zone {name!r}") from None


def _local_midnight(day: date, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def iso_week(text: str, tz: str) -> ReportWindow:
    """The window of ISO week ``YYYY-Www`` in ``tz``; ``WindowError`` if there is none."""
    m = _WEEK_ID.match(text)
    if m is None:
        raise WindowError(f"not an ISO week: {text!r} (e.g. 2026-W47)")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise WindowError(f"{year} has no week {week}") from None
    z = zone(tz)
    start = _local_midnight(monday, z)
    end = _local_midnight(monday + timedelta(days=7), z)
    return ReportWindow(start, end, tz, f"{year}-W{week:02d}")


def week_of(ts: float, tz: str) -> ReportWindow:
    """The ISO week (in ``tz``) that contains ``ts``."""
    year, week, _ = datetime.fromtimestamp(ts, zone(tz)).isocalendar()
    return iso_week(f"{year}-W{week:02d}", tz)


def last_complete_week(now: float, tz: str) -> ReportWindow:
    """The newest ISO week (in ``tz``) that ended at or before ``now``."""
    return week_of(now, tz).previous()


def explicit_range(start: float, end: float, tz: str) -> ReportWindow:
    """A ``--from``/``--to`` window; ``WindowError`` unless ``start < end``."""
    if not start < end:
        raise WindowError("--from must be before --to")
    return ReportWindow(start, end, tz)


def scheduled_time(week: ReportWindow, when: tuple[int, int, int]) -> float:
    """When the report of ``week`` is due: the first ``(weekday, hour, minute)`` in the
    week's zone at or after the week's end (``mon 08:00`` -> 8 hours after it ended)."""
    z = zone(week.tz)
    weekday, hour, minute = when
    end = datetime.fromtimestamp(week.end, z)
    day = end.date() + timedelta(days=(weekday - end.weekday()) % 7)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=z).timestamp()


def latest_due_week(now: float, tz: str, when: tuple[int, int, int]) -> ReportWindow:
    """The newest week whose report is due at ``now`` (see ``scheduled_time``)."""
    week = last_complete_week(now, tz)
    while scheduled_time(week, when) > now:
        week = week.previous()
    return week


def choose_window(
    tz: str, now: float, week: str | None, start: float | None, end: float | None
) -> ReportWindow:
    """The window ``capi-monitor report`` was asked for (docs/contracts.md §4): ``--week``,
    or ``--from`` and ``--to`` together, or else the last complete week at ``now``."""
    if week is not None and (start is not None or end is not None):
        raise WindowError("use either --week or --from/--to, not both")
    if week is not None:
        return iso_week(week, tz)
    if (start is None) != (end is None):
        raise WindowError("--from and --to go together")
    if start is not None and end is not None:
        return explicit_range(start, end, tz)
    return last_complete_week(now, tz)

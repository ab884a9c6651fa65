"""The local clock of a traffic model: public holidays, seasons, the shape of a day.

Everything a visitor's day depends on is local time: the daily curve, weekdays, public
holidays (local midnight to local midnight) and DST changes. Holidays follow each
country's rules (Easter-based feasts, n-th weekdays, England's substitute days), so any
year works.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
SLOT = 300  # seconds: sessions are drawn per 5-minute slot

Vertical = Literal["retail", "leads"]

# --- calendars ---------------------------------------------------------------------------


def easter(year: int) -> date:
    """Easter Sunday (Gregorian; the anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def _nth(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th ``weekday`` (0 = Monday) of a month; n = -1: the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def public_holidays(country: str, year: int) -> dict[date, tuple[str, bool]]:
    """National public holidays: date -> (name, major). Minor ones (US federal days most
    people work) barely move traffic. England's substitute days included."""
    e = easter(year)
    days: dict[date, tuple[str, bool]] = {date(year, 1, 1): ("New Year's Day", True)}
    if country in ("DE", "FR"):
        days[e + timedelta(days=1)] = ("Easter Monday", True)
        days[e + timedelta(days=39)] = ("Ascension Day", True)
        days[e + timedelta(days=50)] = ("Whit Monday", True)
        days[date(year, 5, 1)] = ("Labour Day", True)
        days[date(year, 12, 25)] = ("Christmas Day", True)
    if country == "DE":
        days[e - timedelta(days=2)] = ("Good Friday", True)
        days[date(year, 10, 3)] = ("German Unity Day", True)
        days[date(year, 12, 26)] = ("Boxing Day", True)
    if country == "FR":
        for m, d, name in ((5, 8, "Victory in Europe Day"), (7, 14, "Bastille Day"),
                           (8, 15, "Assumption"), (11, 1, "All Saints' Day"),
                           (11, 11, "Armistice Day")):  # fmt: skip
            days[date(year, m, d)] = (name, True)
    if country == "GB":
        days[e - timedelta(days=2)] = ("Good Friday", True)
        days[e + timedelta(days=1)] = ("Easter Monday", True)
        days[_nth(year, 5, 0, 1)] = ("Early May bank holiday", True)
        days[_nth(year, 5, 0, -1)] = ("Spring bank holiday", True)
        days[_nth(year, 8, 0, -1)] = ("Summer bank holiday", True)
        _substitute(days, [date(year, 1, 1)])
        days[date(year, 12, 25)] = ("Christmas Day", True)
        days[date(year, 12, 26)] = ("Boxing Day", True)
        _substitute(days, [date(year, 12, 25), date(year, 12, 26)])
    if country == "US":
        days[_nth(year, 1, 0, 3)] = ("Martin Luther King Jr. Day", False)
        days[_nth(year, 2, 0, 3)] = ("Presidents' Day", False)
        days[_nth(year, 5, 0, -1)] = ("Memorial Day", True)
        days[date(year, 6, 19)] = ("Juneteenth", False)
        days[date(year, 7, 4)] = ("Independence Day", True)
        days[_nth(year, 9, 0, 1)] = ("Labor Day", True)
        days[_nth(year, 10, 0, 2)] = ("Columbus Day", False)
        days[date(year, 11, 11)] = ("Veterans Day", False)
        days[_nth(year, 11, 3, 4)] = ("Thanksgiving Day", True)
        days[date(year, 12, 25)] = ("Christmas Day", True)
    return days


def _substitute(days: dict[date, tuple[str, bool]], fixed: list[date]) -> None:
    """England: a fixed holiday on a weekend gives the next free weekday off."""
    for d in fixed:
        if d.weekday() >= 5:
            sub = d + timedelta(days=1)
            while sub.weekday() >= 5 or sub in days:
                sub += timedelta(days=1)
            days[sub] = (f"{days[d][0]} (substitute day)", True)


def black_friday(year: int) -> date:
    """The day after the fourth Thursday of November."""
    return _nth(year, 11, 3, 4) + timedelta(days=1)


# A scenario's incident-free ("quiet") week starts on one of these Mondays (UTC).
ANCHORS: dict[str, date] = {
    "black-friday": date(2026, 11, 23),  # Thanksgiving, Black Friday to Cyber Monday
    "easter": date(2027, 3, 22),  # Good Friday (DE, GB), EU DST on Sunday
    "autumn-dst": date(2026, 10, 19),  # EU DST on Sunday, US DST a week later
    "may": date(2027, 5, 3),  # GB bank holiday Monday, Ascension Thursday (DE, FR)
}

# --- the daily rhythm --------------------------------------------------------------------

# (centre hour, width in hours, height): the shape of a day, normalised to a mean of 1.
_CURVES: dict[tuple[Vertical, bool], tuple[tuple[float, float, float], ...]] = {
    ("retail", False): ((8.5, 1.2, 0.35), (12.5, 1.4, 0.5), (20.5, 2.2, 1.0)),
    ("retail", True): ((11.5, 2.0, 0.6), (16.0, 2.5, 0.5), (20.5, 2.0, 0.8)),
    ("leads", False): ((10.5, 1.8, 1.0), (14.5, 2.0, 0.9), (20.0, 1.8, 0.35)),
    ("leads", True): ((11.0, 2.5, 0.5), (19.5, 2.5, 0.35)),
}
_FLOOR = 0.06
# Monday .. Sunday
_WEEKDAY: dict[Vertical, tuple[float, ...]] = {
    "retail": (1.02, 1.0, 0.98, 0.96, 0.9, 0.88, 1.12),
    "leads": (1.2, 1.16, 1.12, 1.06, 0.92, 0.5, 0.55),
}


def curve_table(vertical: Vertical, weekend: bool) -> list[float]:
    """The day's shape per 5-minute slot of local time (288 values, mean 1)."""
    bumps = _CURVES[(vertical, weekend)]
    raw = []
    for i in range(DAY // SLOT):
        h = (i + 0.5) * SLOT / HOUR
        v = _FLOOR
        for centre, width, height in bumps:
            dist = min(abs(h - centre), 24 - abs(h - centre))
            v += height * math.exp(-0.5 * (dist / width) ** 2)
        raw.append(v)
    mean = sum(raw) / len(raw)
    return [v / mean for v in raw]


def weekday_table(vertical: Vertical) -> tuple[float, ...]:
    w = _WEEKDAY[vertical]
    mean = sum(w) / 7
    return tuple(x / mean for x in w)


class Clock:
    """Local-time facts of one zone per UTC hour (cached): offset, date, weekday."""

    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)
        self._cache: dict[int, tuple[int, date, int, float]] = {}

    def at(self, t: float) -> tuple[int, date, int, float]:
        """(UTC offset s, local date, weekday, local seconds since midnight) at ``t``."""
        hour = int(t // HOUR) * HOUR
        got = self._cache.get(hour)
        if got is None:
            local = datetime.fromtimestamp(hour, self.zone)
            offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
            secs = local.hour * HOUR + local.minute * 60
            got = self._cache[hour] = (offset, local.date(), local.weekday(), float(secs))
        return got[0], got[1], got[2], got[3] + (t - hour)

    def bucket(self, t: float) -> int:
        """The start (UTC seconds) of the local hour holding ``t``."""
        offset = self.at(t)[0]
        return int((t + offset) // HOUR * HOUR - offset)

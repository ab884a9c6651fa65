"""Config loading: defaults, durations, and errors that name the file and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import load_settings, parse_duration, settings_from_dict
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),  # seconds
        ("5m", 300.0),  # minutes
        ("1h", 3600.0),  # hours
        ("2d", 172800.0),  # days
        ("1w", 604800.0),  # weeks
        ("1.5h", 5400.0),  # fractions
        (90, 90.0),  # bare numbers are seconds
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 parsecs", "h", "", True, None])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_defaults_match_contract() -> None:
    s = settings_from_dict({})
    assert s.storage.url == "sqlite:///capi-monitor.db"
    assert s.schedule.logs_every == 300.0
    assert s.alerts.resolve_after_cycles == 2
    assert s.alerts.keep_firing_for == 3600.0  # CONTRACTS §12
    assert s.checks.latency.warn_p95 == 3600.0
    assert s.checks.latency.crit_p95 == 86400.0
    assert s.meta is None  # no [meta]: no Graph calls


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"datasets": [{"id": "1", "logs": "x.jsonl"}]}, r"datasets\[0\]\.logs"),
        ({"schedule": {"logs_every": "soon"}}, r"schedule\.logs_every: expected a duration"),
        ({"storage": {"ur": "x"}}, r"storage\.ur: unknown key"),
        ({"datasets": [{"id": "1"}, {"id": "1"}]}, r"datasets\[1\]\.id: duplicate"),
        ({"notify": {"email": {"host": "h", "to": ["a@b.c"]}}}, r"notify\.email\.from"),
        ({"checks": {"match_quality": {"warn_score": 11}}}, r"checks\.match_quality\.warn_score"),
        ({"calendar": {"days": ["2026-02-30"]}}, r"calendar\.days\[0\]: expected a day"),
        ({"calendar": {"days": "2026-12-25"}}, r"calendar\.days: "),
        ({"calendar": {"days": ["25.12.2026"]}}, r"calendar\.days\[0\]: expected a day"),
        ({"calendar": {"countries": {"DEU": []}}}, r"calendar\.countries\.DEU: expected a two"),
        ({"calendar": {"countries": {"US": [20261126]}}}, r"calendar\.countries\.US\[0\]"),
        ({"calendar": {"holidays": []}}, r"calendar\.holidays: unknown key"),
        ({"datasets": [{"id": "1", "country": "Germany"}]}, r"datasets\[0\]\.country: expected"),
        ({"datasets": [{"id": "1", "calendar_days": ["x"]}]}, r"datasets\[0\]\.calendar_days\[0\]"),
    ],
)
def test_errors_name_the_key_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^cfg\.toml: " + message):
        settings_from_dict(data, source="cfg.toml")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[storage\nurl = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_settings(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", ["config.example.toml", "samples/config.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    path = REPO / name
    if not path.exists():
        pytest.fail(f"{name} is missing")
    settings = load_settings(path)
    assert settings.datasets, "the shipped configs describe at least one dataset"


def test_calendar_days_of_a_dataset(tmp_path: Path) -> None:
    from datetime import date

    from monitor.engine.series import dataset_calendar

    p = tmp_path / "c.toml"
    p.write_text(
        '[calendar]\ndays = ["2026-12-25", 2026-12-31]\n'
        '[calendar.countries]\nde = ["2026-10-03"]\nUS = ["2026-11-26"]\n'
        '[[datasets]]\nid = "1"\ncountry = "DE"\ncalendar_days = ["2026-11-27"]\n'
        '[[datasets]]\nid = "2"\n'
    )
    s = load_settings(p)
    days = {date(2026, 12, 25), date(2026, 12, 31)}
    assert dataset_calendar(s, "1") == {*days, date(2026, 10, 3), date(2026, 11, 27)}
    assert dataset_calendar(s, "2") == days  # no country: the common days only

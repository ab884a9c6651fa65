"""TOML configuration -> validated, typed settings (docs/contracts.md §5).

Errors name the file and the key path (``config.toml: datasets[0].logs: ...``). Secrets are
never read from the file: it names environment variables (``*_env`` keys) instead.
"""

from __future__ import annotations

import re
import socket
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1w"`` (or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m', '1h' or '2d'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError(f"expected a duration such as '30s', '5m', '1h' or '2d', got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


def _country(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ValueError(
            f"expected a two-letter country code (ISO 3166-1) such as 'DE', got {value!r}"
        )
    return value.upper()


def _day(value: Any) -> date:
    if isinstance(value, date):  # a bare TOML date: days = [2026-12-25]
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a day as 'YYYY-MM-DD', got {value!r}")


Country = Annotated[str, BeforeValidator(_country)]
Day = Annotated[date, BeforeValidator(_day)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StorageSettings(_Section):
    url: str = "sqlite:///capi-monitor.db"


class MetaSettings(_Section):
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"
    access_token_env: str = "META_ACCESS_TOKEN"
    # Graph API source (monitor.sources.graph): HTTP calls in flight across all datasets,
    # per-call timeout, retries of transient/throttled calls, hours of /stats read, reads
    # per batch request (Meta allows 50; 0 or 1 sends one HTTP call per read).
    concurrency: int = Field(20, ge=1, le=1000)
    timeout: Duration = 30.0
    max_retries: int = Field(4, ge=0, le=10)
    stats_hours: int = Field(48, ge=2, le=28 * 24)
    batch_size: int = Field(50, ge=0, le=50)


# The delivery-log formats (docs/log-format.md): "auto" detects each file's from its
# content; the names are those of monitor.sources.logs.formats.CHOICES.
LogFormat = Literal["auto", "v1", "gtms", "cloud-logging", "gtms-bigquery", "woocommerce"]


class DatasetSettings(_Section):
    id: str
    name: str | None = None
    logs: list[str] = Field(default_factory=list)
    logs_format: LogFormat = "auto"
    access_token_env: str | None = None
    timezone: str | None = None
    owner: str | None = None
    client: str | None = None
    orders: str | None = None  # the name of an [[orders]] entry to reconcile Purchases with
    country: Country | None = None  # its [calendar.countries] list applies
    calendar_days: list[Day] = Field(default_factory=list)  # its own known days (a sale)

    @property
    def label(self) -> str:
        return self.name or self.id


_ORDER_COLUMNS = ("order_id", "created_at", "amount", "currency", "status")


class OrdersSettings(_Section):
    """One ``[[orders]]`` entry: a payment or shop source (docs/contracts.md §8).

    Keys by kind: stripe ``api_key_env`` (required), ``api_url``, ``order_id_from``
    (``metadata.<key>`` or ``id``); shopify ``shop`` and ``token_env`` (required),
    ``api_url`` (default ``https://{shop}``), ``api_version``; file ``paths`` (required),
    ``columns``, ``paid_statuses``. Secrets are named by environment variable only."""

    name: str
    kind: Literal["stripe", "shopify", "file"]
    api_key_env: str | None = None
    api_url: str | None = None
    order_id_from: str = "metadata.order_id"
    shop: str | None = None
    token_env: str | None = None
    api_version: str = "2025-10"
    paths: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)
    paid_statuses: list[str] = Field(
        default_factory=lambda: ["paid", "succeeded", "completed", "refunded"]
    )
    match_field: str = "custom_data.order_id"
    grace: Duration = 7200.0
    value_tolerance: float = Field(0.01, ge=0)
    timeout: Duration = 30.0
    max_retries: int = Field(4, ge=0, le=10)

    @model_validator(mode="after")
    def _kind_keys(self) -> OrdersSettings:
        required = {
            "stripe": ("api_key_env",),
            "shopify": ("shop", "token_env"),
            "file": ("paths",),
        }[self.kind]
        for key in required:
            if not getattr(self, key):
                raise ValueError(f"kind = {self.kind!r} needs {key}")
        unknown = set(self.columns) - set(_ORDER_COLUMNS)
        if unknown:
            allowed = ", ".join(_ORDER_COLUMNS)
            raise ValueError(f"columns: unknown column {sorted(unknown)[0]!r} (one of {allowed})")
        if self.kind == "stripe" and not (
            self.order_id_from == "id" or self.order_id_from.startswith("metadata.")
        ):
            raise ValueError("order_id_from must be 'id' or 'metadata.<key>'")
        return self


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKLY = re.compile(r"^\s*([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})\s*$")


def parse_weekly(value: str) -> tuple[int, int, int] | None:
    """``"mon 08:00"`` -> (weekday 0-6, hour, minute); ``"off"`` -> ``None``.

    Day names may be written out (``monday``) in any case. Raises ``ValueError``."""
    text = value.strip().lower()
    if text == "off":
        return None
    m = _WEEKLY.match(text)
    day = m.group(1) if m else ""
    if m is None or day not in _WEEKDAYS or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ValueError(
            f"expected a weekday and a time such as 'mon 08:00', or 'off'; got {value!r}"
        )
    return _WEEKDAYS.index(day), int(m.group(2)), int(m.group(3))


def _weekly(value: Any) -> Any:
    if isinstance(value, str):
        parse_weekly(value)
    return value


class ScheduleSettings(_Section):
    logs_every: Duration = 300.0
    graph_every: Duration = 3600.0
    quality_every: Duration = 21600.0
    weekly_report: Annotated[str, BeforeValidator(_weekly)] = "mon 08:00"  # or "off"
    timezone: str = "UTC"
    notify_every: Duration = 5.0  # how often the daemon drains the notification outbox
    orders_every: Duration = 900.0  # how often the daemon reads the [[orders]] sources


class AlertSettings(_Section):
    for_cycles: int = Field(1, ge=1)
    repeat_interval: Duration = 14400.0
    send_resolved: bool = True
    resolve_after_cycles: int = Field(2, ge=1)
    window: Duration = 3600.0
    # A firing alert stays firing, silently, until its finding has been absent this long.
    keep_firing_for: Duration = Field(3600.0, ge=0)
    # An alert back within this long of resolving is flapping: reopened, said once as
    # flapping, then kept firing until its finding has been absent this long.
    flap_window: Duration = Field(86400.0, ge=0)
    # Fleet mode: an instance that has not reported (finished a logs cycle) for this long
    # raises INSTANCE_SILENT and no longer keeps an alert open. At least 3 x logs_every;
    # unset: 15 minutes, or 3 x logs_every if that is longer (Settings fills it in).
    instance_stale: Duration = 0.0


_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _instance_name(value: Any) -> Any:
    if isinstance(value, str) and not _INSTANCE_NAME.match(value):
        raise ValueError(
            "expected 1-100 letters, digits, '.', '_' or '-' (starting with a letter or digit)"
        )
    return value


def _host_name() -> str:
    """The default instance name: this host's name, cut to what an instance name allows."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100].lstrip("._-")
    return name or "capi-monitor"


class InstanceSettings(_Section):
    """``[instance]``: who this process is in a fleet (docs/contracts.md §11)."""

    name: Annotated[str, BeforeValidator(_instance_name)] = Field(default_factory=_host_name)


def _listen(value: Any) -> Any:
    if value == "off" or not isinstance(value, str):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"expected HOST:PORT (e.g. '127.0.0.1:9977') or 'off', got {value!r}")
    return value


class ServerSettings(_Section):
    """``[server]``: the daemon's HTTP server (docs/contracts.md §10)."""

    # "off" serves nothing; port 0 takes any free port (the daemon logs which).
    listen: Annotated[str, BeforeValidator(_listen)] = "127.0.0.1:9977"

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) to bind, ``None`` when switched off."""
        if self.listen == "off":
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class SlackSettings(_Section):
    token_env: str | None = "SLACK_BOT_TOKEN"
    channel: str | None = None
    api_url: str = "https://slack.com/api/"
    webhook_url_env: str | None = None
    min_severity: Literal["info", "warn", "crit"] = "warn"


class EmailSettings(_Section):
    host: str
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    from_: str = Field(alias="from")
    to: list[str]
    min_severity: Literal["info", "warn", "crit"] = "warn"
    ca_file: str | None = None  # PEM bundle that verifies the server (private CAs); else system


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class RouteSettings(_Section):
    """One ``[[notify.routes]]`` entry (see ``monitor.notify.routing``).

    Routes are tried in order; the first whose matchers all match a notification decides
    which notifiers get it. An empty matcher matches everything.
    """

    match_client: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    match_dataset: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    notifiers: list[str]  # [] drops matching notifications
    min_severity: Literal["info", "warn", "crit"] | None = None  # else each notifier's own
    channel: str | None = None  # Slack channel for these notifications (bot token only)
    email_to: list[str] | None = None  # recipients instead of [notify.email] to


class NotifySettings(_Section):
    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    routes: list[RouteSettings] = Field(default_factory=list)
    retry_base_delay: Duration = 1.0  # first retry after a transient failure; doubles each time
    # Cap of the backoff: held notifications go out within this (plus the drain interval)
    # of the service answering again (docs/contracts.md §6: within 30 s).
    retry_max_delay: Duration = 20.0
    give_up_after: Duration = 86400.0  # an undelivered notification this old is marked failed
    timeout: Duration = 10.0  # per request to Slack or the SMTP server


class ReportSettings(_Section):
    """``[report]``: the weekly report (``capi-monitor report`` and the daemon's job)."""

    dir: str | None = None  # the daemon writes each week to DIR/<YYYY-Www>/; unset: not kept
    email: bool = True  # the daemon emails it through [notify.email] (when configured)
    slack: bool = True  # and posts a summary through [notify.slack] (when configured)
    email_to: list[str] | None = None  # recipients instead of [notify.email] to
    slack_channel: str | None = None  # channel instead of [notify.slack] channel (bot token)


class InputSettings(_Section):
    max_line_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_problems: int = Field(200, ge=0)


class HashValiditySettings(_Section):
    crit_share: Share = 0.0  # clear text is crit at any share; others escalate at this share
    warn_to_crit_share: Share = 0.10


class PayloadSettings(_Section):
    future_tolerance: Duration = 300.0
    max_age: Duration = 7 * 86400.0
    physical_store_max_age: Duration = 62 * 86400.0
    warn_to_crit_share: Share = 0.10


class DedupSettings(_Section):
    reuse_window: Duration = 48 * 3600.0
    warn_to_crit_share: Share = 0.25
    # DEDUP_KEY_COVERAGE_LOW (Graph): Meta's event_id share on either side below this %.
    graph_min_pct: float = Field(90.0, ge=0, le=100)
    graph_crit_pct: float = Field(50.0, ge=0, le=100)
    graph_min_events: int = Field(20, ge=0)  # events of a name/side (Meta's /stats) to judge it


class LatencySettings(_Section):
    warn_p95: Duration = 3600.0
    crit_p95: Duration = 86400.0
    min_events: int = Field(1, ge=1)
    # FRESHNESS_SLOW (Graph): Dataset Quality upload_frequency at or slower than these.
    freshness_warn: Literal["hourly", "daily", "weekly"] = "daily"
    freshness_crit: Literal["hourly", "daily", "weekly"] = "weekly"
    freshness_min_events: int = Field(20, ge=0)


class DeliverySettings(_Section):
    warn_to_crit_share: Share = 0.05  # share of sent events in failed requests


class MatchQualitySettings(_Section):
    min_events: int = Field(20, ge=1)  # events of an event name and action_source to judge
    warn_score: float = Field(6.0, ge=0, le=10)  # conversion events only (CONTRACTS §12)
    crit_score: float = Field(4.0, ge=0, le=10)
    window: Duration = Field(86400.0, ge=3600)  # daemon and backtest: the span judged
    # MATCH_KEY_COVERAGE_LOW only when estimate + score_z × its standard error is below
    # the floor (an estimate near the floor from few events is not a finding; 3: the
    # sliding day is judged every cycle, many looks at one bucket a week).
    score_z: float = Field(3.0, ge=0)
    # MATCH_KEY_DROP from the logs (checks.match_drop): a key's share over the last
    # 1..drop_hours hours against the median of drop_days daily shares.
    drop_hours: int = Field(12, ge=1, le=48)
    drop_days: int = Field(7, ge=1, le=28)
    drop_min_days: int = Field(3, ge=1, le=28)  # days with drop_min_day_events to judge
    drop_min_day_events: int = Field(20, ge=1)
    drop_ratio: Share = 0.5  # the share must be at most this fraction of its baseline ...
    drop_points: float = Field(10.0, gt=0, le=100)  # ... and this many points lower
    drop_min_missing: float = Field(10.0, ge=0)  # events that lack the key beyond usual
    drop_z: float = Field(4.0, gt=0)  # z (dispersion-aware) the fall must reach
    drop_min_effective: float = Field(25.0, ge=0)  # window events ÷ dispersion factor
    drop_one_hour_z: float = Field(8.0, gt=0)  # z a drop shown by one hour alone must reach
    drop_joint_z: float = Field(6.0, gt=0)  # z a drop must reach when other keys fell with it
    drop_crit_share: Share = 0.05  # crit: the key on at most this share of events ...
    drop_crit_baseline: Share = 0.5  # ... when it usually was on at least this share
    # Graph: EMQ_LOW (Meta's composite_score), EMQ_DROP and MATCH_KEY_DROP (vs the median
    # of the stored readings of the last history_window).
    emq_warn_score: float = Field(6.0, ge=0, le=10)
    emq_crit_score: float = Field(4.0, ge=0, le=10)
    emq_min_events: int = Field(20, ge=0)
    emq_drop_points: float = Field(1.0, gt=0, le=10)
    emq_drop_crit_points: float = Field(3.0, gt=0, le=10)
    key_drop_points: float = Field(20.0, gt=0, le=100)
    history_window: Duration = 7 * 86400.0
    history_min_polls: int = Field(1, ge=1)


class ParitySettings(_Section):
    window: Duration = 86400.0  # complete hours judged, ending `settle` before now
    settle: Duration = 3600.0  # Meta shows events within ~20 min (docs/meta-capi.md §5)
    min_browser_events: int = Field(50, ge=1)
    min_server_events: int = Field(50, ge=1)
    server_missing_ratio: Share = 0.10  # server/browser below this: PARITY_SERVER_MISSING
    low_ratio: float = Field(0.80, ge=0)  # server/browser below this: PARITY_LOW (warn)
    low_crit_ratio: float = Field(0.50, ge=0)
    browser_missing_ratio: Share = 0.10  # browser/server below this: PARITY_BROWSER_MISSING
    server_only_events: list[str] = Field(default_factory=list)  # no pixel expected
    ignore_events: list[str] = Field(default_factory=list)
    coverage_default_goal: float = Field(75.0, ge=0, le=100)
    coverage_crit_fraction: Share = 0.5  # crit below this fraction of the goal
    coverage_min_events: int = Field(20, ge=0)
    mismatch_min_events: int = Field(100, ge=1)  # accepted events in the logs to compare
    mismatch_warn_share: Share = 0.80  # Meta's server count below this share of accepted
    mismatch_crit_share: Share = 0.50


class DiagnosticsSettings(_Section):
    token_expiry_warn: Duration = 7 * 86400.0  # 0 = never warn
    token_expiry_crit: Duration = 86400.0
    ignore_da_checks: list[str] = Field(default_factory=list)  # da_checks keys to ignore
    min_affected_events: int = Field(10, ge=0)  # EMQ diagnostics affecting fewer: ignored


class VolumeSettings(_Section):
    """``[checks.volume]``: hourly volumes and ratio drift (``checks.volume``)."""

    weeks: int = Field(6, ge=1, le=26)  # same hour-of-week samples looked back
    min_weeks: int = Field(3, ge=1, le=26)  # fewer samples: the cold-start rule
    cold_start_days: int = Field(7, ge=1, le=28)  # same hour-of-day samples (cold start)
    cold_start_min_days: int = Field(3, ge=1, le=28)  # fewer: the series is not judged
    min_expected: float = Field(20.0, ge=0)  # expected events per hour to judge a drop/spike
    max_window_hours: int = Field(6, ge=1, le=48)  # longest trailing window judged
    z: float = Field(3.5, gt=0)  # robust z a drop must reach
    single_hour_z: float = Field(6.0, gt=0)  # ... one-hour window, unconfirmed drop, stop
    drop_warn: Share = 0.4  # relative drop (observed <= 60 % of expected)
    drop_crit: Share = 0.75
    cold_start_drop: Share = 0.5  # relative drop required under the cold-start rule
    ordinary_dip: Share = 0.25  # a drop must be significantly deeper than this (holidays)
    ordinary_surge: float = Field(1.0, ge=0)  # a spike: significantly above 1 + this
    dip_z: float = Field(2.0, gt=0)
    level_hours: int = Field(6, ge=0, le=24)  # hours before a window that set the day's level
    persist_crit_hours: int = Field(3, ge=1)  # a drop lasting this long is crit
    stopped_min_expected: float = Field(20.0, gt=0)  # events expected in the zero hours
    silent_minutes: float = Field(10.0, ge=0)  # no event this long since the last: stopped
    spike_ratio: float = Field(2.5, gt=1)
    spike_z: float = Field(6.0, gt=0)
    spike_hours: int = Field(2, ge=1, le=24)  # complete hours a spike must last
    overdispersion: float = Field(0.05, ge=0)  # floor of the hour-to-hour relative noise
    dispersion_cap: float = Field(0.2, ge=0)  # most relative noise an hour's bursts may add
    stale_after: Duration = 2 * 86400.0  # logs older than this: volume not judged
    graph_settle: Duration = 3600.0  # Meta's hourly counts are complete this long after
    ratio_hours: int = Field(3, ge=1, le=24)  # recent hours of a ratio (in-progress included)
    ratio_days: int = Field(7, ge=1, le=28)  # daily ratios forming the baseline
    ratio_min_days: int = Field(2, ge=1, le=28)
    ratio_min_events: int = Field(20, ge=1)  # events in a window or a day to use its ratio
    ratio_z: float = Field(5.0, gt=0)  # |z| a ratio must reach (many keys: many tests)
    share_drop: Share = 0.2  # absolute fall of a share (event_id; Meta's server share) to warn
    share_drop_crit: Share = 0.5
    key_min_share: Share = 0.2  # event_id with a lower usual share is not judged
    value_change: float = Field(0.5, gt=0)  # relative change of the mean Purchase value
    value_one_hour_z: float = Field(10.0, gt=0)  # ... |z| when one hour alone moved it
    listed_value_factor: float = Field(3.0, ge=1)  # ... on a [calendar] day: beyond ×/÷ this
    # Traffic, not tracking (TRAFFIC_SHIFT): the hours since local midnight before a window
    # moved the same way by at least this much; with too few events in them to tell, the
    # window must start within traffic_midnight_hours of local midnight.
    traffic_move: Share = 0.1
    traffic_midnight_hours: int = Field(2, ge=0, le=23)
    calendar_night_hours: int = Field(6, ge=0, le=23)  # a [calendar] day's night, next morning


class CalendarSettings(_Section):
    """``[calendar]``: known calendar days (public holidays, sales days) on which a
    dataset-wide move of every event together is traffic (``TRAFFIC_SHIFT``, info), not
    a tracking alert (``checks.volume``). ``days`` apply to every dataset, ``countries``
    (``DE = ["2026-10-03"]``) to the datasets with that ``country``, a dataset's own
    ``calendar_days`` to it alone; each day is the dataset's local day, midnight to
    midnight."""

    days: list[Day] = Field(default_factory=list)
    countries: dict[Country, list[Day]] = Field(default_factory=dict)

    def days_of(self, country: str | None) -> frozenset[date]:
        """The listed days of a dataset of ``country`` (``None``: the common ones)."""
        own = self.countries.get(country, []) if country else []
        return frozenset([*self.days, *own])


class ChecksSettings(_Section):
    disabled: list[str] = Field(default_factory=list)
    hash_validity: HashValiditySettings = Field(default_factory=HashValiditySettings)
    payload: PayloadSettings = Field(default_factory=PayloadSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    latency: LatencySettings = Field(default_factory=LatencySettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    match_quality: MatchQualitySettings = Field(default_factory=MatchQualitySettings)
    parity: ParitySettings = Field(default_factory=ParitySettings)
    diagnostics: DiagnosticsSettings = Field(default_factory=DiagnosticsSettings)
    volume: VolumeSettings = Field(default_factory=VolumeSettings)


class Settings(_Section):
    storage: StorageSettings = Field(default_factory=StorageSettings)
    meta: MetaSettings | None = None
    datasets: list[DatasetSettings] = Field(default_factory=list)
    orders: list[OrdersSettings] = Field(default_factory=list)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    input: InputSettings = Field(default_factory=InputSettings)
    checks: ChecksSettings = Field(default_factory=ChecksSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    instance: InstanceSettings = Field(default_factory=InstanceSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    source_path: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _instance_stale(self) -> Settings:
        least = 3 * self.schedule.logs_every
        if not self.alerts.instance_stale:
            self.alerts.instance_stale = max(900.0, least)
        elif self.alerts.instance_stale < least:
            raise ValueError(
                f"alerts.instance_stale must be at least 3 x schedule.logs_every ({least:g}s)"
            )
        return self

    def dataset(self, dataset_id: str) -> DatasetSettings | None:
        return next((d for d in self.datasets if d.id == dataset_id), None)

    def orders_source(self, name: str | None) -> OrdersSettings | None:
        return next((o for o in self.orders if o.name == name), None) if name else None

    @property
    def graph_hosts(self) -> frozenset[str]:
        """Hosts besides graph.facebook.com whose ``/{id}/events`` URLs in sender logs are
        Graph calls: the host of a configured ``[meta] graph_url`` (a proxy)."""
        if self.meta is None:
            return frozenset()
        host = urlsplit(self.meta.graph_url).hostname
        return frozenset({host.lower()}) if host else frozenset()


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # a mapping's key itself (loc names it already)
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def settings_from_dict(data: dict[str, Any], *, source: str = "config") -> Settings:
    """Validate a parsed TOML document; the error names ``source`` and the first bad key."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{source}: {_key_path(first['loc'])}: {msg}") from None
    seen: set[str] = set()
    for i, ds in enumerate(settings.datasets):
        if ds.id in seen:
            raise ConfigError(f"{source}: datasets[{i}].id: duplicate dataset id {ds.id!r}")
        seen.add(ds.id)
    names: set[str] = set()
    for i, entry in enumerate(settings.orders):
        if entry.name in names:
            raise ConfigError(f"{source}: orders[{i}].name: duplicate orders name {entry.name!r}")
        names.add(entry.name)
    for i, ds in enumerate(settings.datasets):
        if ds.orders is not None and ds.orders not in names:
            raise ConfigError(
                f"{source}: datasets[{i}].orders: no [[orders]] entry named {ds.orders!r}"
            )
    settings.source_path = source
    return settings


def load_settings(path: str | Path | None) -> Settings:
    """Read and validate a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return Settings()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ConfigError(f"{p}: cannot read config file: {err.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{p}: invalid TOML: {err}") from None
    return settings_from_dict(data, source=str(p))

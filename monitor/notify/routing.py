"""Which notifiers get a notification, where, and from which severity on (pure).

Config (``[notify]``)::

    [notify.slack]
    min_severity = "warn"                 # per notifier, default "warn"

    [[notify.routes]]                     # tried in order; the first that matches decides
    match_client = "acme"                 # a dataset's `client` (string or list)
    match_dataset = ["123", "456"]        # dataset ids (string or list)
    notifiers = ["slack"]                 # who gets these notifications ([] = nobody)
    channel = "#client-acme"              # Slack channel instead of [notify.slack] channel
    email_to = ["acme-ops@example.com"]   # recipients instead of [notify.email] to
    min_severity = "crit"                 # instead of each notifier's own

A route matches when every matcher it sets matches (an unset matcher matches anything).
No matching route: every configured notifier gets the notification at its default
destination. A notifier gets only the alerts at or above its threshold (a resolution
counts at the severity the alert had); with none left, it gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.alerts.model import Notification
from monitor.config import NotifySettings, RouteSettings, Settings
from monitor.errors import ConfigError
from monitor.model.findings import Severity


@dataclass(frozen=True, slots=True)
class Routing:
    """What one notifier does with one notification."""

    notifier: str
    send: bool
    target: str | None  # a route's destination; None = the notifier's default
    min_severity: Severity
    reason: str  # the route that matched, or why nothing is sent


def notify_settings(settings: Settings | NotifySettings) -> NotifySettings:
    """The ``[notify]`` section of ``settings`` (or ``settings`` itself)."""
    return settings.notify if isinstance(settings, Settings) else settings


def clients_of(settings: Settings | NotifySettings) -> dict[str, str]:
    """Dataset id -> ``client`` from ``[[datasets]]`` (empty without the full settings)."""
    if not isinstance(settings, Settings):
        return {}
    return {d.id: d.client for d in settings.datasets if d.client}


def default_min_severity(settings: NotifySettings, notifier: str) -> Severity:
    """The notifier's own ``min_severity`` (``warn`` when not configured)."""
    section = {"slack": settings.slack, "email": settings.email}.get(notifier)
    return Severity(section.min_severity) if section is not None else Severity.WARN


def route_target(route: RouteSettings, notifier: str) -> str | None:
    """The destination ``route`` sets for ``notifier`` (a channel, joined addresses)."""
    if notifier == "slack":
        return route.channel
    if notifier == "email" and route.email_to:
        return ",".join(route.email_to)
    return None


def matches(route: RouteSettings, dataset_id: str | None, client: str | None) -> bool:
    if route.match_dataset and dataset_id not in route.match_dataset:
        return False
    return not route.match_client or (client is not None and client in route.match_client)


def first_route(
    settings: NotifySettings, dataset_id: str | None, client: str | None
) -> tuple[int, RouteSettings] | None:
    """The first route matching the dataset and client, with its index."""
    for i, route in enumerate(settings.routes):
        if matches(route, dataset_id, client):
            return i, route
    return None


def route(
    n: Notification,
    settings: NotifySettings,
    notifiers: Iterable[str],
    *,
    client: str | None = None,
) -> list[Routing]:
    """One decision per notifier in ``notifiers`` for ``n``.

    ``client`` stands in for ``n.client`` when the notification does not carry one.
    """
    found = first_route(settings, n.dataset_id, n.client or client)
    out: list[Routing] = []
    for nid in notifiers:
        floor = default_min_severity(settings, nid)
        target, why = None, "default route"
        if found is not None:
            i, route = found
            if nid not in route.notifiers:
                out.append(Routing(nid, False, None, floor, f"routes[{i}] excludes {nid}"))
                continue
            floor = Severity(route.min_severity) if route.min_severity else floor
            target, why = route_target(route, nid), f"routes[{i}]"
        if not any(a.severity.rank >= floor.rank for a in n.alerts):
            out.append(Routing(nid, False, target, floor, f"no alert at or above {floor}"))
            continue
        out.append(Routing(nid, True, target, floor, why))
    return out


def validate_routes(
    settings: NotifySettings, configured: Iterable[str], *, webhook: bool = False, source: str = ""
) -> None:
    """Fail at start-up, not at 3 a.m.: every route names configured notifiers, and a
    channel only where Slack can honour it (a webhook posts to one fixed channel)."""
    known = set(configured)
    prefix = f"{source}: " if source else ""
    for i, route in enumerate(settings.routes):
        for nid in route.notifiers:
            if nid not in known:
                raise ConfigError(
                    f"{prefix}notify.routes[{i}].notifiers: {nid!r} is not configured "
                    f"(configured: {', '.join(sorted(known)) or 'none'})"
                )
        if route.channel and webhook:
            raise ConfigError(
                f"{prefix}notify.routes[{i}].channel: a Slack incoming webhook posts to one "
                "fixed channel; use a bot token (token_env) to route by channel"
            )

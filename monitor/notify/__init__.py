"""Notifiers (Slack, email) and the outbox sender that drives them.

``NOTIFIERS`` is the one registry of notifier kinds: its key is the notifier id used in
``[notify.<id>]`` sections, ``[[notify.routes]] notifiers`` and ``notify_deliveries``.
``build_notifiers(settings)`` builds the configured ones, reading their secrets from the
environment; a missing secret is a ``ConfigError`` naming the variable, at start-up.

    notifiers = build_notifiers(settings)
    sender = OutboxSender(store.engine, notifiers, settings)
    sender.drain()                       # from a daemon job, every few seconds
    notifier_health(store.engine, now)   # for `capi-monitor status`
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType

from monitor.config import NotifySettings, Settings
from monitor.errors import ConfigError
from monitor.notify.base import FirstReport, Notifier, NotifierError
from monitor.notify.email import EmailNotifier
from monitor.notify.routing import notify_settings, validate_routes
from monitor.notify.sender import DrainStats, NotifierHealth, OutboxSender, notifier_health
from monitor.notify.slack import SlackNotifier, SlackWebhookNotifier

NotifierFactory = Callable[[NotifySettings, Mapping[str, str], str], "Notifier | None"]


def _secret(env: Mapping[str, str], var: str, key: str, what: str, source: str) -> str:
    value = (env.get(var) or "").strip()
    if not value:
        raise ConfigError(f"{source}{key}: environment variable {var} is not set (it holds {what})")
    return value


def build_slack_notifier(
    settings: NotifySettings, env: Mapping[str, str], source: str
) -> Notifier | None:
    """``[notify.slack]``: an incoming webhook if ``webhook_url_env`` is set, else a bot."""
    s = settings.slack
    if s is None:
        return None
    if s.webhook_url_env:
        url = _secret(
            env, s.webhook_url_env, "notify.slack.webhook_url_env", "the webhook URL", source
        )
        return SlackWebhookNotifier(url, timeout=settings.timeout)
    if not s.token_env:
        raise ConfigError(f"{source}notify.slack: set token_env (a bot token) or webhook_url_env")
    if not s.channel:
        raise ConfigError(f"{source}notify.slack.channel: required with a bot token")
    token = _secret(env, s.token_env, "notify.slack.token_env", "the Slack bot token", source)
    return SlackNotifier(token, s.channel, api_url=s.api_url, timeout=settings.timeout)


def build_email_notifier(
    settings: NotifySettings, env: Mapping[str, str], source: str
) -> Notifier | None:
    """``[notify.email]``: the password is read only when ``username`` is set."""
    s = settings.email
    if s is None:
        return None
    password = None
    if s.username:
        if not s.password_env:
            raise ConfigError(f"{source}notify.email.password_env: required when username is set")
        password = _secret(
            env, s.password_env, "notify.email.password_env", "the SMTP password", source
        )
    if not s.to:
        raise ConfigError(f"{source}notify.email.to: at least one recipient is required")
    return EmailNotifier(s, password, timeout=settings.timeout)


NOTIFIERS: Mapping[str, NotifierFactory] = MappingProxyType(
    {"slack": build_slack_notifier, "email": build_email_notifier}
)


def build_notifiers(
    settings: Settings | NotifySettings, env: Mapping[str, str] = os.environ
) -> dict[str, Notifier]:
    """The configured notifiers by id, in registry order. Raises ``ConfigError``."""
    source = (
        f"{settings.source_path}: "
        if isinstance(settings, Settings) and settings.source_path
        else ""
    )
    notify = notify_settings(settings)
    out: dict[str, Notifier] = {}
    for nid, factory in NOTIFIERS.items():
        notifier = factory(notify, env, source)
        if notifier is not None:
            out[nid] = notifier
    webhook = isinstance(out.get("slack"), SlackWebhookNotifier)
    validate_routes(notify, out, webhook=webhook, source=source.removesuffix(": "))
    return out


__all__ = [
    "NOTIFIERS",
    "DrainStats",
    "EmailNotifier",
    "FirstReport",
    "Notifier",
    "NotifierError",
    "NotifierHealth",
    "OutboxSender",
    "SlackNotifier",
    "SlackWebhookNotifier",
    "build_notifiers",
    "notifier_health",
    "notify_settings",
]

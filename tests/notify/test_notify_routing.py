"""Routing decisions (pure) and the notifier registry: who gets what, and start-up errors."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.config import NotifySettings, settings_from_dict
from monitor.errors import ConfigError
from monitor.model.findings import Severity
from monitor.notify import (
    NOTIFIERS,
    EmailNotifier,
    SlackNotifier,
    SlackWebhookNotifier,
    build_notifiers,
)
from monitor.notify.base import at_least
from monitor.notify.routing import route
from tests.support.notifyutil import alert, notification

SLACK = {"channel": "#capi-alerts"}
EMAIL = {"host": "smtp.example.com", "from": "c@example.com", "to": ["o@example.com"]}


def settings(**notify: Any) -> NotifySettings:
    return NotifySettings.model_validate(notify)


def routed(
    n: Any, s: NotifySettings, client: str | None = None
) -> dict[str, tuple[bool, str | None, str]]:
    return {
        d.notifier: (d.send, d.target, str(d.min_severity))
        for d in route(n, s, ["slack", "email"], client=client)
    }


CRIT = notification(alert(severity=Severity.CRIT), client="acme")
WARN = notification(alert(severity=Severity.WARN), client="acme")
INFO = notification(alert(severity=Severity.INFO), client=None)


@pytest.mark.parametrize(
    ("n", "notify", "expected"),
    [
        # No routes: everyone at their default destination and threshold (warn).
        (
            WARN,
            {"slack": SLACK, "email": EMAIL},
            {"slack": (True, None, "warn"), "email": (True, None, "warn")},
        ),
        # Below every threshold: nobody.
        (
            INFO,
            {"slack": SLACK, "email": EMAIL},
            {"slack": (False, None, "warn"), "email": (False, None, "warn")},
        ),
        # A notifier's own min_severity.
        (
            WARN,
            {"slack": SLACK, "email": EMAIL | {"min_severity": "crit"}},
            {"slack": (True, None, "warn"), "email": (False, None, "crit")},
        ),
        # A client's route picks Slack only, on its own channel.
        (
            CRIT,
            {
                "slack": SLACK,
                "email": EMAIL,
                "routes": [{"match_client": "acme", "notifiers": ["slack"], "channel": "#acme"}],
            },
            {"slack": (True, "#acme", "warn"), "email": (False, None, "warn")},
        ),
        # A route may lower the threshold for its datasets (info for a VIP dataset).
        (
            notification(alert(severity=Severity.INFO), dataset_id="9"),
            {
                "slack": SLACK,
                "routes": [
                    {
                        "match_dataset": "9",
                        "notifiers": ["slack", "email"],
                        "min_severity": "info",
                        "email_to": ["vip@example.com"],
                    }
                ],
                "email": EMAIL,
            },
            {"slack": (True, None, "info"), "email": (True, "vip@example.com", "info")},
        ),
        # The first matching route wins; an empty notifier list drops the notification.
        (
            CRIT,
            {
                "slack": SLACK,
                "routes": [
                    {"match_client": ["acme", "b"], "notifiers": []},
                    {"notifiers": ["slack"]},
                ],
            },
            {"slack": (False, None, "warn"), "email": (False, None, "warn")},
        ),
        # Both matchers must match.
        (
            CRIT,
            {
                "slack": SLACK,
                "routes": [{"match_client": "acme", "match_dataset": "other", "notifiers": []}],
            },
            {"slack": (True, None, "warn"), "email": (True, None, "warn")},
        ),
    ],
)
def test_decide(n: Any, notify: dict[str, Any], expected: dict[str, Any]) -> None:
    assert routed(n, settings(**notify)) == expected


def test_client_from_config_when_the_notification_has_none() -> None:
    s = settings(slack=SLACK, routes=[{"match_client": "acme", "notifiers": []}])
    assert routed(INFO, s, client="acme")["slack"][0] is False


def test_skip_reasons_are_readable() -> None:
    s = settings(
        slack=SLACK, routes=[{"match_client": "acme", "notifiers": ["email"]}], email=EMAIL
    )
    reasons = {d.notifier: d.reason for d in route(CRIT, s, ["slack", "email"])}
    assert reasons == {"slack": "routes[0] excludes slack", "email": "routes[0]"}


def test_at_least_keeps_resolutions_at_their_severity() -> None:
    n = notification(alert("A", severity=Severity.WARN, state="RESOLVED"), alert("B"))
    assert [a.code for a in at_least(n, "crit").alerts] == ["B"]
    assert [a.code for a in at_least(n, "warn").alerts] == ["A", "B"]


# --- registry ----------------------------------------------------------------------------


def test_registry_ids_match_the_notifiers() -> None:
    assert list(NOTIFIERS) == ["slack", "email"]
    built = build_notifiers(
        settings(slack=SLACK, email=EMAIL | {"username": "u", "password_env": "PW"}),
        {"SLACK_BOT_TOKEN": "xoxb-1", "PW": "pw"},
    )
    assert {k: v.id for k, v in built.items()} == {"slack": "slack", "email": "email"}
    assert isinstance(built["slack"], SlackNotifier) and isinstance(built["email"], EmailNotifier)
    assert build_notifiers(settings(), {}) == {}


def test_webhook_mode() -> None:
    s = settings(slack={"webhook_url_env": "HOOK"})
    assert isinstance(
        build_notifiers(s, {"HOOK": "https://hooks.slack.invalid/x"})["slack"], SlackWebhookNotifier
    )


@pytest.mark.parametrize(
    ("notify", "env", "message"),
    [
        (
            {"slack": SLACK},
            {},
            "notify.slack.token_env: environment variable SLACK_BOT_TOKEN is not set",
        ),
        (
            {"slack": {"webhook_url_env": "HOOK"}},
            {},
            "notify.slack.webhook_url_env: environment variable HOOK is not set",
        ),
        (
            {"slack": {}},
            {"SLACK_BOT_TOKEN": "x"},
            "notify.slack.channel: required with a bot token",
        ),
        (
            {"slack": SLACK | {"token_env": None}},
            {},
            "set token_env (a bot token) or webhook_url_env",
        ),
        (
            {"email": EMAIL | {"username": "u"}},
            {},
            "notify.email.password_env: required when username is set",
        ),
        (
            {"email": EMAIL | {"username": "u", "password_env": "PW"}},
            {},
            "environment variable PW is not set",
        ),
        (
            {"slack": SLACK, "routes": [{"notifiers": ["email"]}]},
            {"SLACK_BOT_TOKEN": "x"},
            "notify.routes[0].notifiers: 'email' is not configured",
        ),
        (
            {
                "slack": {"webhook_url_env": "H"},
                "routes": [{"notifiers": ["slack"], "channel": "#x"}],
            },
            {"H": "u"},
            "notify.routes[0].channel: a Slack incoming webhook posts to one fixed channel",
        ),
    ],
)
def test_configuration_errors_name_the_key_and_variable(
    notify: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        build_notifiers(settings(**notify), env)


def test_password_is_not_needed_without_username() -> None:
    built = build_notifiers(settings(email=EMAIL | {"password_env": "PW"}), {})
    assert isinstance(built["email"], EmailNotifier)


def test_error_names_the_config_file() -> None:
    s = settings_from_dict({"notify": {"slack": SLACK}}, source="capi.toml")
    with pytest.raises(ConfigError, match=r"^capi\.toml: notify\.slack\.token_env: "):
        build_notifiers(s, {})


def test_route_config_accepts_a_string_or_a_list_and_rejects_unknown_keys() -> None:
    s = settings_from_dict(
        {
            "notify": {
                "routes": [{"match_client": "a", "match_dataset": ["1", "2"], "notifiers": []}]
            }
        }
    )
    assert s.notify.routes[0].match_client == ["a"] and s.notify.routes[0].match_dataset == [
        "1",
        "2",
    ]
    with pytest.raises(ConfigError, match=r"notify\.routes\[0\]\.chanel: unknown key"):
        settings_from_dict({"notify": {"routes": [{"notifiers": [], "chanel": "#x"}]}})

"""The shared no-secrets test (docs/architecture.md rule 6): make every notifier fail in
every way it can, with distinctive secrets in the environment, and look for them everywhere: the
exceptions (with their causes), the rows of the SQLite file, the log records of every
logger (slack_sdk's included) at DEBUG, and stdout/stderr."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import NotifySettings
from monitor.notify import OutboxSender, build_notifiers, notifier_health
from monitor.notify.base import Notifier, NotifierError
from monitor.store import Store
from monitor.testing.fakeslack import FakeSlack
from tests.support.notifyutil import T0, add_outbox, free_port, notification, smtp_server

# Each secret has a distinctive core that no masking or truncation would produce.
TOKEN = "xoxb-1111-2222-SECRETtok7f3a9c1e5b"
HOOK_ID = "T0SECRET/B0SECRET/SECREThook9e8d7c6b5a"
PASSWORD = "pw-SECRETpass4d2c8b1a"
CORES = ("SECRETtok7f3a9c1e5b", "SECREThook9e8d7c6b5a", "SECRETpass4d2c8b1a", "B0SECRET")


def leaks(text: str) -> list[str]:
    return [core for core in CORES if core in text]


def exception_text(err: BaseException) -> str:
    """Everything an exception shows: its chain formatted, plus reprs of each link."""
    parts = ["".join(traceback.format_exception(err))]
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts += [str(link), repr(link), repr(link.args)]
        link = link.__cause__ or link.__context__
    return "\n".join(parts)


def database_text(path: Path) -> str:
    """Every row of every table, read back from the file (WAL included)."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


Scenario = Callable[[FakeSlack, int, int], tuple[NotifySettings, dict[str, str]]]


def slack_bad_token(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    s = {"slack": {"channel": "#capi-alerts", "api_url": slack.url}}
    return NotifySettings.model_validate(s | {"timeout": "2s"}), {"SLACK_BOT_TOKEN": TOKEN}


def slack_refused(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    s = {"slack": {"channel": "#capi-alerts", "api_url": f"http://127.0.0.1:{dead}/api/"}}
    return NotifySettings.model_validate(s | {"timeout": "2s"}), {"SLACK_BOT_TOKEN": TOKEN}


def webhook_bad_url(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    url = slack.url.replace("/api/", f"/webhook/{HOOK_ID}")
    s = {"slack": {"webhook_url_env": "HOOK"}, "timeout": "2s"}
    return NotifySettings.model_validate(s), {"HOOK": url}


def webhook_refused(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    s = {"slack": {"webhook_url_env": "HOOK"}, "timeout": "2s"}
    return NotifySettings.model_validate(s), {"HOOK": f"http://127.0.0.1:{dead}/webhook/{HOOK_ID}"}


def _email(port: int) -> dict[str, Any]:
    return {
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "username": "capi",
            "password_env": "SMTP_PASSWORD",
            "from": "capi@example.com",
            "to": ["ops@example.com"],
        },
        "timeout": "2s",
    }


def smtp_auth_failure(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    return NotifySettings.model_validate(_email(smtp_port)), {"SMTP_PASSWORD": PASSWORD}


def smtp_refused(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    return NotifySettings.model_validate(_email(dead)), {"SMTP_PASSWORD": PASSWORD}


def slack_server_errors(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    slack.token = TOKEN  # the right token, but Slack is in trouble
    slack.http_error(500)
    s = {"slack": {"channel": "#capi-alerts", "api_url": slack.url}, "timeout": "2s"}
    return NotifySettings.model_validate(s), {"SLACK_BOT_TOKEN": TOKEN}


def webhook_rate_limited(
    slack: FakeSlack, smtp_port: int, dead: int
) -> tuple[NotifySettings, dict[str, str]]:
    slack.rate_limit(retry_after=1)
    return webhook_bad_url(slack, smtp_port, dead)


SCENARIOS = [
    slack_bad_token,
    slack_refused,
    webhook_bad_url,
    webhook_refused,
    smtp_auth_failure,
    smtp_refused,
    slack_server_errors,
    webhook_rate_limited,
]


@pytest.fixture
def servers() -> Iterator[tuple[FakeSlack, int]]:
    # The SMTP server knows a different password: every login fails.
    with (
        FakeSlack("xoxb-the-right-token-000000") as slack,
        smtp_server(auth=("capi", "other")) as (smtp, _),
    ):
        yield slack, smtp.port


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_no_secret_leaks_from_any_failure(
    scenario: Scenario,
    servers: tuple[FakeSlack, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # root, so slack_sdk's and smtplib's records too
    slack, smtp_port = servers
    settings, env = scenario(slack, smtp_port, free_port())
    notifiers = build_notifiers(settings, env)
    texts: list[str] = [repr(n) for n in notifiers.values()]

    # 1. The notifiers called directly: every exception, with its whole chain.
    for notifier in notifiers.values():
        texts += _direct_failures(notifier)

    # 2. Through the sender and the store, several attempts.
    db = tmp_path / "capi.db"
    with Store.open(str(db)) as store:
        add_outbox(store.engine, notification(key="n1"))
        sender = OutboxSender(store.engine, notifiers, settings, clock=lambda: T0)
        for k in range(3):
            sender.drain(T0 + 100 * k)
        health = notifier_health(store.engine, T0 + 1000)
    texts += [repr(h) for h in health]
    assert any(h.last_error for h in health)  # the failure is visible...
    texts.append(database_text(db))
    for suffix in ("", "-wal"):  # ...and the raw file holds no secret either
        path = Path(f"{db}{suffix}")
        if path.exists():
            texts.append(path.read_bytes().decode("latin-1"))

    # 3. Logs (at DEBUG) and the terminal.
    for record in caplog.records:  # every logger, the test servers' included
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append(exception_text(record.exc_info[1]))
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]

    found = {core for text in texts for core in leaks(text)}
    assert not found, f"secret material leaked: {sorted(found)}"


def _direct_failures(notifier: Notifier) -> list[str]:
    out = []
    n = notification(key="direct")
    for call in (lambda: notifier.send(n, "direct/x"), lambda: notifier.find_sent("direct/x")):
        try:
            call()
        except NotifierError as err:
            out.append(exception_text(err))
    return out

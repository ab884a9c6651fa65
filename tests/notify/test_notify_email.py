"""The email notifier against a real SMTP server (aiosmtpd on 127.0.0.1): plain, AUTH,
STARTTLS and implicit TLS; multipart content; error classification."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.alerts.model import Notification
from monitor.config import EmailSettings
from monitor.model.findings import Severity
from monitor.notify.base import FirstReport, NotifierError
from monitor.notify.email import EmailNotifier, build_alert_email, message_id, subject
from tests.support.notifyutil import (
    T0,
    Handler,
    alert,
    body,
    free_port,
    notification,
    self_signed,
    smtp_server,
)


def settings(port: int, **overrides: object) -> EmailSettings:
    data: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "capi-monitor@example.com",
        "to": ["ops@example.com", "oncall@example.com"],
    }
    data.update(overrides)
    return EmailSettings.model_validate(data)


def mixed() -> Notification:
    resolved = alert(
        "EVENT_ID_REUSED", state="RESOLVED", severity=Severity.WARN, resolved_at=T0 + 500
    )
    return notification(alert("HASH_PLAINTEXT"), resolved)


def test_plain_smtp_sends_multipart_text_and_html_naming_codes_and_states() -> None:
    n = mixed()
    with smtp_server() as (server, handler):
        ref = EmailNotifier(settings(server.port)).send(n, "n1/email")
    [got] = handler.received
    msg = got.message
    assert got.login is None  # no username: no AUTH
    assert got.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert ref == msg["Message-ID"] == message_id("n1/email", "capi-monitor@example.com")
    assert msg["Subject"] == subject(n)
    for word in (
        "CRIT",
        "Example shop",
        "1234567890",
        "HASH_PLAINTEXT FIRING",
        "EVENT_ID_REUSED RESOLVED",
    ):
        assert word in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"
    text = body(msg, "plain")
    html = body(msg, "html")
    for part in (text, html):
        assert "HASH_PLAINTEXT" in part and "FIRING" in part
        assert "EVENT_ID_REUSED" in part and "RESOLVED" in part
        assert "Purchase" in part and "Hash em with SHA-256" in part  # event and fix
        assert "2026-11-20 12:00 UTC" in part  # since when
        assert "25%" in part  # evidence numbers
        assert "j***@e***.com" in part  # masked example
    assert "&lt;" not in text and "&amp;" not in text  # plain text is not HTML-escaped
    assert "<!doctype html>" in html and "badge-firing" in html


def test_auth_only_with_username(tmp_path: Path) -> None:
    with smtp_server(auth=("capi", "s3cret-pass")) as (server, handler):
        notifier = EmailNotifier(
            settings(server.port, username="capi", password_env="P"), "s3cret-pass"
        )
        notifier.send(notification(), "k/email")
        assert handler.received[0].login == "capi"
        wrong = EmailNotifier(settings(server.port, username="capi", password_env="P"), "nope")
        with pytest.raises(NotifierError) as info:
            wrong.send(notification(), "k2/email")
    assert info.value.permanent
    assert "authentication failed" in str(info.value)
    assert len(handler.received) == 1


def test_starttls_with_a_private_ca_and_auth(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    with smtp_server(auth=("capi", "pw-123456"), starttls=tls) as (server, handler):
        cfg = settings(server.port, security="starttls", username="capi", password_env="P",
                       ca_file=str(tls.cert))  # fmt: skip
        EmailNotifier(cfg, "pw-123456").send(notification(), "k/email")
        assert handler.received[0].login == "capi"
        # Without the CA the certificate is not trusted: a config problem, permanent.
        untrusted = settings(server.port, security="starttls")
        with pytest.raises(NotifierError) as info:
            EmailNotifier(untrusted).send(notification(), "k2/email")
    assert info.value.permanent and "certificate" in str(info.value)


def test_implicit_tls(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    with smtp_server(implicit_tls=tls) as (server, handler):
        cfg = settings(server.port, security="ssl", ca_file=str(tls.cert))
        EmailNotifier(cfg).send(notification(), "k/email")
    assert len(handler.received) == 1


def test_rejections_are_permanent_or_transient_by_reply_code() -> None:
    with smtp_server(Handler(reject_rcpt="550 5.1.1 no such user")) as (server, _):
        with pytest.raises(NotifierError) as info:
            EmailNotifier(settings(server.port)).send(notification(), "k/email")
        assert info.value.permanent and "550" in str(info.value)
    with smtp_server(Handler(reject_rcpt="451 4.3.0 try again later")) as (server, _):
        with pytest.raises(NotifierError) as info:
            EmailNotifier(settings(server.port)).send(notification(), "k/email")
        assert not info.value.permanent


def test_connection_refused_is_transient() -> None:
    with pytest.raises(NotifierError) as info:
        EmailNotifier(settings(free_port()), timeout=2).send(notification(), "k/email")
    assert not info.value.permanent and "connection refused" in str(info.value)


def test_route_target_replaces_recipients() -> None:
    with smtp_server() as (server, handler):
        EmailNotifier(settings(server.port)).send(
            notification(), "k/email", target="acme@example.com, boss@example.com"
        )
    assert handler.received[0].rcpt_tos == ["acme@example.com", "boss@example.com"]
    assert handler.received[0].message["To"] == "acme@example.com, boss@example.com"


def test_resolution_replies_to_the_first_email() -> None:
    first = "<capi-monitor.abc@example.com>"
    n = notification(alert(state="RESOLVED", resolved_at=T0 + 3600))
    fp = n.alerts[0].fingerprint
    msg = build_alert_email(
        n, "n9/email", sender="a@example.com", recipients=["b@example.com"],
        first_reports={fp: FirstReport(first, T0 + 60)}, now=T0 + 3600,
    )  # fmt: skip
    assert msg["In-Reply-To"] == first and first in msg["References"]
    assert msg["Subject"].startswith("[capi-monitor] RESOLVED (was CRIT)")
    text = body(msg, "plain")
    assert "first reported at 2026-11-20 12:01 UTC" in text


def test_message_id_is_stable_per_key() -> None:
    assert message_id("k", "x@example.com") == message_id("k", "x@example.com")
    assert message_id("k", "x@example.com") != message_id("k2", "x@example.com")
    assert message_id("k", "x@example.com").endswith("@example.com>")


def test_header_injection_from_names_is_flattened() -> None:
    n = notification(name="Shop\r\nBcc: evil@example.com")
    assert "\n" not in subject(n) and "\r" not in subject(n)

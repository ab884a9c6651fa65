"""Helpers for the notify tests: notifications, outbox rows, a real SMTP server.

The SMTP server is aiosmtpd on 127.0.0.1 (a real socket, real TLS with a self-signed
certificate made here with ``cryptography``), so the email notifier is tested through
smtplib exactly as in production.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, insert

from monitor.alerts.model import AlertView, Notification, Reason
from monitor.model.findings import Example, Severity
from monitor.store.tables.core import metadata

T0 = 1_795_176_000.0  # 2026-11-20T12:00:00Z


def alert(
    code: str = "HASH_PLAINTEXT",
    *,
    state: str = "FIRING",
    severity: Severity = Severity.CRIT,
    reason: Reason | None = None,
    event_name: str | None = "Purchase",
    dataset_id: str = "1234567890",
    since: float = T0,
    resolved_at: float | None = None,
    fingerprint: str | None = None,
    count: int = 12,
) -> AlertView:
    return AlertView(
        fingerprint=fingerprint or f"fp-{dataset_id}-{code}-{event_name}",
        dataset_id=dataset_id,
        check="hash_validity",
        code=code,
        event_name=event_name,
        severity=severity,
        state=state,
        reason=reason or (Reason.RESOLVED if state == "RESOLVED" else Reason.NEW),
        since=since,
        message=f"{count} events carry a clear-text email in user_data.em",
        remediation="Hash em with SHA-256 after trimming and lower-casing it.",
        count=count,
        resolved_at=resolved_at,
        evidence={"share": 0.25, "events": 48},
        examples=[Example("logs/a.jsonl", 3, "j***@e***.com")],
    )


def notification(
    *alerts: AlertView,
    key: str = "n1",
    dataset_id: str = "1234567890",
    name: str | None = "Example shop",
    client: str | None = "acme",
    created_at: float = T0 + 600,
) -> Notification:
    return Notification(
        key=key,
        dataset_id=dataset_id,
        dataset_name=name,
        client=client,
        created_at=created_at,
        alerts=list(alerts) or [alert(dataset_id=dataset_id)],
    )


def add_outbox(engine: Engine, n: Notification) -> int:
    """Queue ``n`` as the alert lifecycle does: one ``outbox`` row."""
    table = metadata.tables["outbox"]
    row = {
        "key": n.key,
        "dataset_id": n.dataset_id,
        "created_at": n.created_at,
        "payload": n.to_dict(),
    }
    with engine.begin() as conn:
        key = conn.execute(insert(table).values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


# --- SMTP --------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class Handler:
    """Records messages; ``reject_rcpt`` answers RCPT with that reply (e.g. ``550 ...``)."""

    received: list[Received] = field(default_factory=list)
    reject_rcpt: str | None = None

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg, login))
        return "250 Message accepted"


class Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user,
            self.password,
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Tls:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def self_signed(tmp: Path) -> Tls:
    """A certificate for 127.0.0.1/localhost, valid now, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    tls = Tls(tmp / "smtp-cert.pem", tmp / "smtp-key.pem")
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


@contextmanager
def smtp_server(
    handler: Handler | None = None,
    *,
    auth: tuple[str, str] | None = None,
    starttls: Tls | None = None,
    implicit_tls: Tls | None = None,
    port: int | None = None,
) -> Iterator[tuple[Controller, Handler]]:
    """A running aiosmtpd on 127.0.0.1; yields (controller, handler). ``controller.port``."""
    handler = handler or Handler()
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs.update(authenticator=Authenticator(*auth), auth_require_tls=False)
    if starttls:
        kwargs.update(tls_context=starttls.server_context(), require_starttls=True)
    if implicit_tls:
        kwargs.update(ssl_context=implicit_tls.server_context())
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def body(msg: EmailMessage, subtype: str) -> str:
    """The ``text/<subtype>`` part of ``msg`` as text."""
    part = msg.get_body((subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())

"""Email over SMTP: one multipart message (plain text + HTML) per notification.

``security``: ``starttls`` (connect in clear, upgrade before anything else is said),
``ssl`` (TLS from the first byte, usually port 465) or ``none`` (local relays only). The
server's certificate is verified against the system store, or ``ca_file``. SMTP
authenticates only when ``username`` is set (docs/contracts.md §6); the password comes from the
environment variable named by ``password_env`` and never appears in an error or a log.

The ``Message-ID`` is derived from the delivery's idempotency key, so a notification sent
twice (at-least-once after a crash) carries the same id, which mail systems use to drop
the copy. A notification about alerts that were reported before refers to the first email
with ``In-Reply-To``/``References``, so mail clients thread the resolution under it.
SMTP cannot be asked what it delivered: ``find_sent`` always returns ``None``.

Errors: 5xx replies and authentication or TLS failures are permanent; 4xx replies,
dropped connections and network errors are transient.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from monitor.alerts.model import Notification
from monitor.config import EmailSettings
from monitor.notify.base import (
    FirstReport,
    NotifierError,
    codes_summary,
    contains_secret,
    dataset_label,
    scrub,
)
from monitor.notify.render import alert_lines, headline
from monitor.report.format import environment

log = logging.getLogger(__name__)

TEXT_TEMPLATE = "email_alert.txt.j2"
HTML_TEMPLATE = "email_alert.html.j2"
MAX_SUBJECT_CHARS = 200


def _one_line(text: str) -> str:
    # Header values come partly from config and logs: no newline may reach a header.
    return " ".join(text.split())


def subject(n: Notification) -> str:
    """``[capi-monitor] CRIT · 1 firing · Shop (123): HASH_PLAINTEXT FIRING`` — the severity,
    the dataset and every code with its state (as many as fit)."""
    text = f"[capi-monitor] {headline(n)} · {dataset_label(n)}: {codes_summary(n)}"
    text = _one_line(text)
    return text if len(text) <= MAX_SUBJECT_CHARS else text[: MAX_SUBJECT_CHARS - 1] + "…"


def message_id(key: str, sender: str) -> str:
    """``<capi-monitor.<sha256(key)[:32]>@<sender's domain>>``: the same key, the same id."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    domain = sender.rpartition("@")[2].strip(" >") or "capi-monitor.invalid"
    return f"<capi-monitor.{digest}@{domain}>"


def render_bodies(
    n: Notification, key: str, first_reports: Mapping[str, FirstReport] | None = None
) -> tuple[str, str]:
    """(plain text, HTML) bodies of the email for ``n``."""
    env = environment()
    context: dict[str, Any] = {
        "n": n,
        "key": key,
        "subject": subject(n),
        "headline": headline(n),
        "dataset_label": dataset_label(n),
        "lines": alert_lines(n, first_reports),
    }
    text = env.get_template(TEXT_TEMPLATE).render(context)
    html = env.get_template(HTML_TEMPLATE).render(context)
    return text, html


def build_alert_email(
    n: Notification,
    key: str,
    *,
    sender: str,
    recipients: Sequence[str],
    first_reports: Mapping[str, FirstReport] | None = None,
    now: float | None = None,
) -> EmailMessage:
    """The complete message for ``n`` (pure apart from reading the templates)."""
    text, html = render_bodies(n, key, first_reports)
    msg = EmailMessage()
    msg["Subject"] = subject(n)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(time.time() if now is None else now, usegmt=True)
    msg["Message-ID"] = message_id(key, sender)
    refs = [f.external_ref for f in sorted((first_reports or {}).values(), key=_by_time)]
    refs = [r for r in dict.fromkeys(refs) if r.startswith("<")]
    if refs:
        msg["In-Reply-To"] = refs[0]
        msg["References"] = " ".join(refs)
    msg["X-Capi-Monitor-Key"] = _one_line(key)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


def _by_time(f: FirstReport) -> float:
    return f.sent_at


def _reply_code(err: smtplib.SMTPResponseException) -> int:
    return int(err.smtp_code) if isinstance(err.smtp_code, int) else 0


def _reply_text(err: smtplib.SMTPResponseException) -> str:
    raw = err.smtp_error
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


class EmailNotifier:
    """Sends alert emails through one SMTP server."""

    id = "email"

    def __init__(
        self,
        settings: EmailSettings,
        password: str | None = None,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._password = password
        self._secrets = (password,) if password else ()
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._clock = clock

    def __repr__(self) -> str:  # never the password
        s = self.settings
        return f"EmailNotifier(host={s.host!r}, port={s.port}, security={s.security!r})"

    def send(
        self,
        n: Notification,
        key: str,
        *,
        target: str | None = None,
        first_reports: Mapping[str, FirstReport] | None = None,
    ) -> str | None:
        """Send ``n`` to ``target`` (comma-separated addresses) or the configured ``to``;
        returns the ``Message-ID``."""
        recipients = [a.strip() for a in target.split(",")] if target else list(self.settings.to)
        recipients = [a for a in recipients if a]
        msg = build_alert_email(
            n,
            key,
            sender=self.settings.from_,
            recipients=recipients,
            first_reports=first_reports,
            now=self._clock(),
        )
        failure: NotifierError
        try:
            self._deliver(msg, recipients)
            return str(msg["Message-ID"])
        except Exception as err:
            failure = self._error(err)
            keep = not contains_secret(repr(err.args), self._secrets)
            failure.__cause__ = err if keep else None
        raise failure  # outside ``except``: the original stays out of __context__

    def find_sent(self, key: str, *, target: str | None = None) -> str | None:
        """SMTP cannot be asked what it delivered: always ``None`` (at least once)."""
        return None

    def send_message(self, msg: EmailMessage, recipients: Sequence[str] | None = None) -> str:
        """Send a complete message built elsewhere (the weekly report) to ``recipients``
        (default: the configured ``to``); returns its ``Message-ID``. Errors as ``send``."""
        to = [a for a in (recipients or self.settings.to) if a]
        failure: NotifierError
        try:
            self._deliver(msg, to)
            return str(msg["Message-ID"])
        except Exception as err:
            failure = self._error(err)
            keep = not contains_secret(repr(err.args), self._secrets)
            failure.__cause__ = err if keep else None
        raise failure

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=self.settings.ca_file)
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self._timeout, context=self._context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=self._timeout)
        if s.security == "starttls":
            try:
                smtp.starttls(context=self._context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _deliver(self, msg: EmailMessage, recipients: list[str]) -> None:
        with self._connect() as smtp:
            if self.settings.username:
                smtp.login(self.settings.username, self._password or "")
            refused = smtp.send_message(msg, self.settings.from_, recipients)
        if refused:
            # Some recipients took it: the delivery counts as done; say who did not.
            log.warning(
                "email: %d of %d recipients refused the alert", len(refused), len(recipients)
            )

    def _error(self, err: Exception) -> NotifierError:
        """A scrubbed, classified ``NotifierError`` for ``err``."""
        where = f"SMTP {self.settings.host}:{self.settings.port}"
        permanent, why = self._classify(err)
        return NotifierError(scrub(f"{where}: {why}", self._secrets), permanent)

    def _classify(self, err: Exception) -> tuple[bool, str]:
        if isinstance(err, smtplib.SMTPAuthenticationError):
            return True, f"authentication failed ({_reply_code(err)} {_reply_text(err)})"
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            codes = [c for c, _ in err.recipients.values()]
            permanent = bool(codes) and all(c >= 500 for c in codes)
            return permanent, f"all {len(codes)} recipients refused ({', '.join(map(str, codes))})"
        if isinstance(err, smtplib.SMTPResponseException):
            code = _reply_code(err)
            return code >= 500, f"server replied {code} {_reply_text(err)}"
        if isinstance(err, smtplib.SMTPNotSupportedError):
            return True, f"server does not support this: {err}"
        if isinstance(err, smtplib.SMTPServerDisconnected):
            return False, "server closed the connection"
        if isinstance(err, ssl.SSLCertVerificationError):
            return True, f"TLS certificate not trusted ({err.verify_message})"
        if isinstance(err, ssl.SSLError):
            return True, f"TLS failed ({err.reason or type(err).__name__})"
        if isinstance(err, socket.gaierror):
            return False, "host name not found"
        if isinstance(err, ConnectionRefusedError):
            return False, "connection refused"
        if isinstance(err, TimeoutError | socket.timeout):
            return False, "timed out"
        if isinstance(err, OSError | smtplib.SMTPException):
            return False, f"{type(err).__name__}: {err}"
        return False, f"unexpected {type(err).__name__}"

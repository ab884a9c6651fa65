"""What every notifier is: the ``Notifier`` protocol, its error type, shared helpers.

A notifier turns one ``Notification`` (one dataset, one evaluation cycle, its alerts) into
one message on one service. It never retries by itself and never sleeps: the outbox sender
(``monitor.notify.sender``) decides when to try again from the ``NotifierError`` it gets.

Secrets (bot token, webhook URL, SMTP password) stay inside the notifier: every error
message is scrubbed with :func:`scrub` before it leaves, and third-party exceptions whose
text contains a secret are not chained (a printed traceback would show them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from monitor.alerts.model import FLEET_LABEL, AlertView, Notification
from monitor.errors import CapiMonitorError
from monitor.mask import scrub_secrets, scrub_text
from monitor.model.findings import Severity

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 300


class NotifierError(CapiMonitorError):
    """A notifier could not deliver. ``str(err)`` is scrubbed and fit for a user.

    ``permanent``: retrying cannot help (bad token, unknown channel, address rejected);
    the delivery is marked failed. Otherwise the sender retries with backoff, waiting at
    least ``retry_after`` seconds when the service said so (Slack's ``Retry-After``).
    ``uncertain``: the request may have reached the service (timeout, lost answer), so
    the next attempt first asks ``find_sent`` before sending again.
    """

    def __init__(
        self,
        message: str,
        permanent: bool,
        *,
        retry_after: float | None = None,
        uncertain: bool = False,
    ) -> None:
        # Last line of defence: token-like strings and emails never ride on an error.
        super().__init__(scrub_secrets(message)[:MAX_ERROR_CHARS])
        self.permanent = permanent
        self.retry_after = retry_after
        self.uncertain = uncertain


@dataclass(frozen=True, slots=True)
class FirstReport:
    """Where an alert was first reported by this notifier: the message a resolution
    refers to (a Slack ``ts`` to thread under, an email ``Message-ID`` to reply to)."""

    external_ref: str
    sent_at: float


@runtime_checkable
class Notifier(Protocol):
    """One channel to people. Implementations: ``slack.py``, ``email.py``.

    ``target`` is a destination chosen by a route (a Slack channel, comma-separated
    email addresses); ``None`` means the notifier's configured default.
    """

    id: str

    def send(
        self,
        n: Notification,
        key: str,
        *,
        target: str | None = None,
        first_reports: Mapping[str, FirstReport] | None = None,
    ) -> str | None:
        """Deliver ``n`` once; return the service's id of the message (or ``None``).

        ``key`` is the delivery's idempotency key (carried in the message where the service
        allows it); ``first_reports`` maps alert fingerprints to the message that first
        reported them, for resolutions to refer to. Raises ``NotifierError``.
        """
        ...

    def find_sent(self, key: str, *, target: str | None = None) -> str | None:
        """The id of a recent message carrying ``key``, or ``None`` if there is none or the
        service cannot tell (then the sender sends again: at least once). Raises
        ``NotifierError`` when the service cannot be asked right now."""
        ...


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` without any of ``secrets`` (exact strings) nor token-like strings or
    personal data; one line, at most ``MAX_ERROR_CHARS`` characters."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    line = " ".join(text.split())
    return scrub_text(line)[:MAX_ERROR_CHARS]


def contains_secret(text: str, secrets: Iterable[str | None]) -> bool:
    return any(s and s in text for s in secrets)


class RedactingFilter(logging.Filter):
    """Replace ``secrets`` in every record of the logger it is attached to.

    Third-party clients log their requests at DEBUG (slack_sdk's webhook client logs the
    whole URL, which *is* the webhook's secret); this runs before the record propagates.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if contains_secret(message, self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True


def private_logger(name: str, secrets: Iterable[str | None]) -> logging.Logger:
    """A logger for one client instance that redacts ``secrets``, below ``name``.

    It is deliberately not registered with ``logging.getLogger`` (the registry would keep
    every instance, each with its own secrets, for the life of the process); it
    propagates to ``name``'s logger like a child would.
    """
    logger = logging.Logger(f"{name}.client")
    logger.parent = logging.getLogger(name)
    logger.addFilter(RedactingFilter(secrets))
    return logger


def at_least(n: Notification, min_severity: Severity | str) -> Notification:
    """``n`` with only the alerts at or above ``min_severity`` (a resolution counts at the
    severity it had while firing)."""
    floor = Severity(min_severity).rank
    alerts = [a for a in n.alerts if a.severity.rank >= floor]
    return Notification(
        key=n.key,
        dataset_id=n.dataset_id,
        dataset_name=n.dataset_name,
        client=n.client,
        created_at=n.created_at,
        alerts=alerts,
        muted_note=n.muted_note,
    )


def ordered_alerts(n: Notification) -> list[AlertView]:
    """Alerts as messages list them: firing before resolved, most severe first, by code."""
    return sorted(
        n.alerts,
        key=lambda a: (a.state != "FIRING", -a.severity.rank, a.code, a.event_name or ""),
    )


def top_severity(n: Notification) -> Severity:
    """The severity a message leads with: the highest of its firing alerts, else (all
    resolved) the highest any of them had."""
    firing = [a.severity for a in n.alerts if a.state == "FIRING"]
    pool = firing or [a.severity for a in n.alerts] or [Severity.INFO]
    return max(pool, key=lambda s: s.rank)


def all_resolved(n: Notification) -> bool:
    return bool(n.alerts) and all(a.state == "RESOLVED" for a in n.alerts)


def dataset_label(n: Notification) -> str:
    """``Example shop (1234567890)``, or the id alone without a name (the name alone for a
    fleet notification, which has no dataset)."""
    if n.dataset_id is None:
        return n.dataset_name or FLEET_LABEL
    return f"{n.dataset_name} ({n.dataset_id})" if n.dataset_name else n.dataset_id


def codes_summary(n: Notification, limit: int = 8) -> str:
    """``HASH_PLAINTEXT FIRING, EVENT_ID_REUSED RESOLVED`` (+N more): codes with states."""
    parts = [f"{a.code} {a.state}" for a in ordered_alerts(n)]
    shown = list(dict.fromkeys(parts))[:limit]
    more = len(dict.fromkeys(parts)) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")

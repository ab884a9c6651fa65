"""Structured logging for the daemon: one JSON object per line on stderr, scrubbed.

Every line has ``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``msg``, plus the
``extra={...}`` fields of the call (``job``, ``counters``...). ``ScrubFilter`` runs on the
handler, so it sees records of every logger (ours, APScheduler's, httpx's): it masks
emails, phone numbers and token-like strings (``monitor.mask.scrub_text``) and every
configured secret value (the environment variables the config names) in the message, the
extra fields and the traceback. Log calls must still never pass customer data.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from monitor.config import Settings
from monitor.mask import REDACTED, scrub_text

MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words and numbers
# Chatty third-party loggers: APScheduler announces every run, httpx every request (and
# a request line can hold a webhook URL, which is a secret), Alembic every migration check.
QUIET_LOGGERS = (
    "alembic",
    "apscheduler",
    "httpx",
    "httpcore",
    "slack_sdk",
    "aiosmtpd",
    "mail.log",
)
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def secret_values(
    settings: Settings, env: Mapping[str, str], urls: Iterable[str] = ()
) -> list[str]:
    """The values of every environment variable the config names as holding a secret,
    and the passwords of the database URLs (``[storage] url`` and ``urls``)."""
    names: list[str | None] = [settings.meta.access_token_env if settings.meta else None]
    names += [ds.access_token_env for ds in settings.datasets]
    if settings.notify.slack is not None:
        names += [settings.notify.slack.token_env, settings.notify.slack.webhook_url_env]
    if settings.notify.email is not None:
        names.append(settings.notify.email.password_env)
    values = [env.get(n) for n in names if n]
    values += [_password(u) for u in (settings.storage.url, *urls)]
    return sorted(
        {v for v in values if v and len(v) >= MIN_SECRET_CHARS}, key=lambda v: (-len(v), v)
    )


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password if "://" in url else None
    except (ArgumentError, ValueError):
        return None


class ScrubFilter(logging.Filter):
    """Masks personal data, token-like strings and the given secret values in a record.

    The message is formatted and frozen (``args`` cleared), string extras are scrubbed,
    and a traceback is rendered and scrubbed into ``exc_text``.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (a reloaded config names new secrets); the
        ones already known stay masked, since earlier lines may be repeated later."""
        merged = set(self._secrets) | {s for s in secrets if s}
        self._secrets = sorted(merged, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return scrub_text(text)

    def _scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {str(k): self._scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub_value(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, self._scrub_value(value))
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.scrub(text)
            record.exc_info = None  # the raw exception is no longer rendered anywhere
        return True


def remember_secrets(secrets: Iterable[str]) -> None:
    """Tell every scrubbing handler on the root logger about more secret values."""
    secrets = list(secrets)  # each handler reads them
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, ScrubFilter):
                f.add(secrets)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra={...}`` fields of a record (attributes a plain record does not have)."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=str).decode("utf-8")


@contextmanager
def configured(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    *,
    urls: Iterable[str] = (),
    stream: TextIO | None = None,
    level: int = logging.INFO,
) -> Iterator[logging.Handler]:
    """Within the block, every log record (root logger) goes as a scrubbed JSON line to
    ``stream`` (default stderr); the handler and logger levels are restored afterwards."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    environ = os.environ if env is None else env
    handler.addFilter(ScrubFilter(secret_values(settings, environ, urls)))
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in QUIET_LOGGERS)]
    saved = [lg.level for lg in loggers]
    root = loggers[0]
    root.addHandler(handler)
    root.setLevel(level)
    for logger in loggers[1:]:
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()
        for logger, previous in zip(loggers, saved, strict=True):
            logger.setLevel(previous)

"""Keeping the access token out of logs and errors.

``safe`` is the one helper that makes text fit for an error, a log line or the store
(``monitor.mask.redact`` with the client's token). ``REDACTOR`` is a log filter on the
``httpx`` logger that replaces the tokens of live clients (``add``/``discard``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from monitor.mask import REDACTED, redact

__all__ = ["MAX_MESSAGE", "REDACTOR", "install_redactor", "safe"]

MAX_MESSAGE = 300


def safe(text: str, secret: str = "") -> str:
    """Text fit for an error, a log or the store: token replaced, then scrubbed, bounded."""
    return redact(text, (secret,), limit=MAX_MESSAGE)


class _SecretRedactor(logging.Filter):
    """Replaces registered secrets in records of the logger it is attached to.

    Attached to the ``httpx`` logger, whose INFO line "HTTP Request: GET <url>" includes
    the query string (``debug_token``'s ``input_token``). Logger filters are not inherited
    by child loggers; ``httpcore``'s loggers print no URLs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] += 1

    def discard(self, secret: str) -> None:
        with self._lock:
            self._secrets[secret] -= 1
            if self._secrets[secret] <= 0:
                del self._secrets[secret]

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is not ours to fix, only to not leak
            text = str(record.msg)
        if any(s in text for s in secrets):
            for s in secrets:
                text = text.replace(s, REDACTED)
            record.msg, record.args = text, None
        return True


REDACTOR = _SecretRedactor()


def install_redactor() -> None:
    logger = logging.getLogger("httpx")
    if REDACTOR not in logger.filters:
        logger.addFilter(REDACTOR)

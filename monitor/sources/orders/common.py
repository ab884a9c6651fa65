"""Shared parts of the orders readers: the error type, retries, money, secrets.

Retry policy (both APIs): a throttled or transient answer is retried at most
``max_retries`` times. The wait is what the service asked for when it said so
(``Retry-After``; Shopify's throttle status), else exponential backoff from
``backoff_base`` with full jitter; every wait is capped at ``backoff_max``. A page that
still fails makes the whole read fail: the reconciliation never works from part of a
source (docs/contracts.md §8).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from monitor.errors import SourceError
from monitor.mask import scrub_text

Sleep = Callable[[float], Awaitable[None]]
_REDACTED = "[redacted]"
# Stripe keys (sk_/rk_/pk_, live or test; Stripe's own messages show them half-starred)
# and Shopify Admin tokens (shpat_, shpca_, shppa_, shpss_ + 32 hex): both shorter than
# the generic token pattern of monitor.mask in some forms.
_KEYS = re.compile(r"\b(?:[srp]k_(?:live|test)_[A-Za-z0-9*]+|shp(?:at|ca|pa|ss)_[A-Za-z0-9]+)")


class OrdersError(SourceError):
    """An orders source could not be read in full. ``str(err)`` is scrubbed: no key, no
    token, no customer data. ``retryable`` says whether a later poll may succeed."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` fit for a log line or a finding: the given secrets and anything shaped
    like a Stripe key or Shopify token removed, emails and phones masked, length capped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return scrub_text(_KEYS.sub(_REDACTED, text))[:300]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    timeout: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return rng.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))

    def capped(self, seconds: float) -> float:
        return max(0.0, min(self.backoff_max, seconds))


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (the form both APIs use);
    ``None`` when absent or not a number."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


async def default_sleep(seconds: float) -> None:
    import asyncio  # deferred: importing this module (every audit) need not load asyncio

    await asyncio.sleep(seconds)


# ISO 4217 minor units where Stripe's API differs from two decimals. Zero-decimal
# currencies take amounts in whole units (500 = 500 JPY) and three-decimal ones in
# thousandths (5120 = 5.120 KWD), per Stripe's "Supported currencies" page. ISK, HUF and
# TWD are charged without fractions but keep two decimals in the API (100 = 1 ISK), so
# they are *not* in the zero-decimal list.
STRIPE_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def stripe_exponent(currency: str) -> int:
    """Decimal places of a Stripe API amount in ``currency`` (any case)."""
    code = currency.upper()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def from_minor(amount: int, currency: str) -> Decimal:
    """A Stripe amount in minor units as an exact major-unit ``Decimal``."""
    return Decimal(amount).scaleb(-stripe_exponent(currency))


def parse_major(text: object) -> Decimal:
    """A major-unit amount (``"19.99"``, ``19.99``, ``500``) as an exact ``Decimal``.

    Floats go through ``repr`` so 19.99 stays 19.99. Raises ``ValueError`` for anything
    else (booleans, empty text, ``NaN``, thousands separators)."""
    if isinstance(text, bool) or not isinstance(text, str | int | float | Decimal):
        raise ValueError("not an amount")
    try:
        value = Decimal(repr(text) if isinstance(text, float) else str(text).strip())
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not value.is_finite():
        raise ValueError("not an amount")
    return value

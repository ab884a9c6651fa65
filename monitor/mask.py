"""Masking of customer data and secrets for everything a user or a store can see.

Rules (tested in tests/cli/test_mask.py): an email keeps its first character, the first
character of its domain and its top-level domain (``j***@e***.com``); a phone keeps its
last two digits; names and other words keep their first character; digests keep a short
prefix; IP addresses keep their network part; tokens become ``[redacted]``. ``scrub_text``
applies the same rules to free text such as Meta error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

_EMAIL = re.compile(r"[^\s@<>\"',;:]+@[^\s@<>\"',;:]+\.[A-Za-z]{2,}")
_EMAIL_PARTS = re.compile(r"^\s*([^@\s]*)@([^@\s]*?)(?:\.([A-Za-z]{2,24}))?\s*$")
# A phone inside free text: a leading "+" or separators between digit groups. Bare digit
# runs are left alone: Meta messages are full of codes, ids and timestamps.
_PHONE_IN_TEXT = re.compile(
    r"(?<![\w.])(?:\+\d[\d\s().-]{5,}\d|\(?\d{2,4}\)?[\s.-]\d{2,4}[\s.-]\d{2,6})(?![\w.])"
)
_TOKEN_IN_TEXT = re.compile(
    r"\b(?:EAA[A-Za-z0-9]{16,}|xox[abposr]-[A-Za-z0-9-]{8,}|[A-Za-z0-9_\-]{40,})\b"
)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}")
_FB_COOKIE = re.compile(r"^(fb\.\d\.\d+\.)(.*)$")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#\s]*)([^?#\s]*)")

MAX_SHOWN = 80
_NON_PII_FIELDS = frozenset(
    {
        "event_name",
        "event_time",
        "action_source",
        "custom_data.value",
        "custom_data.currency",
        "response.error",
        "events_received",
    }
)


def mask_email(value: str) -> str:
    m = _EMAIL_PARTS.match(value)
    if not m:
        return mask_word(value)
    local, domain, tld = m.groups()
    masked = f"{local[:1]}***@{domain[:1]}***"
    return f"{masked}.{tld.lower()}" if tld else masked


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) >= 4 else "***"


def mask_word(value: str) -> str:
    v = value.strip()
    return f"{v[:1]}***" if v else '""'


def mask_digest(value: str) -> str:
    return f"{value[:6]}…({len(value)} chars)"


def mask_ip(value: str) -> str:
    m = _IPV4.match(value)
    if m:
        return f"{m.group(1)}.{m.group(2)}.*.*"
    if ":" in value:
        return ":".join(value.split(":")[:2]) + ":*"
    return mask_word(value)


def mask_fb_cookie(value: str) -> str:
    m = _FB_COOKIE.match(value)
    if not m:
        return mask_word(value)
    return f"{m.group(1)}{m.group(2)[:3]}***"


def mask_url(value: str) -> str:
    m = _URL.match(value)
    if not m:
        return scrub_text(value[:MAX_SHOWN])
    tail = "?…" if len(value) > m.end() else ""
    return scrub_text(f"{m.group(1)}{m.group(2)[:60]}{tail}")


def _looks_like_digest(value: str) -> bool:
    return len(value) >= 16 and bool(_HEX.match(value))


def _mask_string(value: str, leaf: str) -> str:
    if leaf == "client_ip_address":
        return mask_ip(value)
    if leaf in ("fbc", "fbp"):
        return mask_fb_cookie(value)
    if leaf == "client_user_agent":
        return scrub_text(value[:32]) + ("…" if len(value) > 32 else "")
    if leaf == "event_source_url":
        return mask_url(value)
    if _looks_like_digest(value.split(".")[0]):
        return mask_digest(value)
    if "@" in value:
        return mask_email(value)
    if leaf == "ph" or _PHONE_IN_TEXT.fullmatch(value.strip()) or value.strip().isdigit():
        return mask_phone(value)
    return mask_word(value)


def mask_value(value: Any, field: str | None) -> str:
    """A display-safe rendering of ``value`` found in ``field`` (a dotted path)."""
    leaf = (field or "").rsplit(".", 1)[-1]
    if isinstance(value, list):
        shown = [mask_value(v, field) for v in value[:3]]
        more = f", +{len(value) - 3}" if len(value) > 3 else ""
        return "[" + ", ".join(shown) + more + "]"
    if field in _NON_PII_FIELDS or leaf in ("event_time", "currency", "value"):
        return scrub_secrets(str(value)[:MAX_SHOWN])
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return "<number>" if leaf in ("ph", "zp", "db", "external_id") else str(value)
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    return _mask_string(value, leaf)


def _mask_phone_match(m: re.Match[str]) -> str:
    return mask_phone(m.group(0)) if sum(c.isdigit() for c in m.group(0)) >= 7 else m.group(0)


def scrub_secrets(text: str) -> str:
    """Mask token-like strings and emails inside text that is otherwise not personal."""
    text = _TOKEN_IN_TEXT.sub(REDACTED, text)
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def scrub_text(text: str) -> str:
    """Mask emails, phone numbers and token-like strings inside free text."""
    return _PHONE_IN_TEXT.sub(_mask_phone_match, scrub_secrets(text))


def redact(text: str, secrets: Iterable[str | None] = (), *, limit: int | None = None) -> str:
    """Free text fit for an error, a log line or the store: each of ``secrets`` (exact
    strings, longest first) replaced by ``[redacted]``, then ``scrub_text``-ed, folded to
    one line and cut to ``limit`` characters (``…`` marks a cut)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = scrub_text(" ".join(text.split()))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def scrub_deep(value: Any) -> Any:
    """``scrub_secrets`` applied to every string inside lists, tuples and dict values.

    The last line of defence before the database: no email or token gets stored, even
    where a caller forgot to mask it.
    """
    if isinstance(value, str):
        return scrub_secrets(value)
    if isinstance(value, list | tuple):
        return [scrub_deep(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_deep(v) for k, v in value.items()}
    return value

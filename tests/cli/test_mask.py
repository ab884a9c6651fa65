"""Masking makes raw emails, phones, names and tokens unrecoverable."""

from __future__ import annotations

import pytest

from monitor.mask import mask_value, scrub_text

EMAIL = "John.Smith@Example.com"
DIGEST = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        (EMAIL, "user_data.em", "J***@E***.com"),  # contract's example shape
        ("(650) 555-1212", "user_data.ph", "***12"),  # phone keeps 2 digits
        ("+1 650 555 1212", "user_data.em", "***12"),  # a phone in the wrong key is still a phone
        ("Mary", "user_data.fn", "M***"),  # names keep their initial
        (DIGEST, "user_data.em", "62a14e…(64 chars)"),  # digests keep a short prefix
        ("203.0.113.9", "user_data.client_ip_address", "203.0.*.*"),  # network part only
        ("2001:db8::1", "user_data.client_ip_address", "2001:db8:*"),
        ("fb.1.1554763741205.AbCdEfGhIj", "user_data.fbc", "fb.1.1554763741205.AbC***"),
        (1795176000123, "event_time", "1795176000123"),  # not personal: shown as is
        ("EUR", "custom_data.currency", "EUR"),
        ([EMAIL, "x@y.org"], "user_data.em", "[J***@E***.com, x***@y***.org]"),
    ],
)
def test_mask_value(value: object, field: str, expected: str) -> None:
    assert mask_value(value, field) == expected


@pytest.mark.parametrize(
    "secret",
    [EMAIL, "john.smith", "6505551212", "Mary-Ann", "EAABsbCS1iHgBAKZCZCZBZBZCZCVeryLongToken123"],
)
def test_raw_values_never_survive(secret: str) -> None:
    for field in ("user_data.em", "user_data.ph", "user_data.fn", "user_data.external_id", None):
        assert secret.lower() not in mask_value(secret, field).lower()


def test_url_query_strings_are_dropped() -> None:
    shown = mask_value("https://shop.example.com/thanks?email=jane@doe.com", "event_source_url")
    assert shown == "https://shop.example.com/thanks?…"


def test_scrub_text_masks_tokens_emails_phones_but_keeps_codes() -> None:
    text = "token EAABsbCS1iHgBAKZCZCZBZBZCZCVeryLongToken123 user jane@doe.com tel +1 650 555 1212"
    out = scrub_text(text + " code 2804003 at 1795176000")
    assert "EAAB" not in out and "jane@doe.com" not in out and "555 1212" not in out
    assert "[redacted]" in out and "j***@d***.com" in out
    assert "2804003" in out and "1795176000" in out  # Meta codes and times stay readable

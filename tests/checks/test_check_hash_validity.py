"""The hash_validity check: every code, its nearby valid variants, counts, masking, severity."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.hash_validity import (
    MUST_HASH_KEYS,
    HashCode,
    HashValidity,
    classify_hashed,
    is_digest,
)
from monitor.model.findings import Severity, Status
from tests.support.checkutil import WEIRD_VALUES, codes, delivery, event, one, run


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


D = sha("john_smith@gmail.com")  # a valid, lowercase SHA-256 digest
D2 = sha("16505551212")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
FBP = "fb.1.1767000000000.1116446470.AQIAAQMC"

# (intent, key, value, expected code or None for "no finding")
CASES: list[tuple[str, str, Any, HashCode | None]] = [
    # valid: nothing to report
    ("lowercase 64-hex digest", "em", D, None),
    ("digest in a list", "em", [D, D2], None),
    ("digest with 8-char parameter-builder appendix", "em", D + ".AQICAQMC", None),
    ("digest with legacy 2-char appendix", "ph", D + ".Ag", None),
    ("all-digit 64-char digest is still hex", "zp", "1" * 64, None),
    ("'na' hashed in country is Namibia, not a placeholder", "country", sha("na"), None),
    ("'nan' hashed as a first name is a name", "fn", sha("nan"), None),
    ("null value is simply absent", "em", None, None),
    ("empty list is nothing to judge", "ph", [], None),
    # HASH_PLAINTEXT
    ("clear email", "em", "John.Smith@example.com", HashCode.PLAINTEXT),
    ("clear email among digests", "em", [D, "jane@example.org"], HashCode.PLAINTEXT),
    ("formatted phone", "ph", "+1 (650) 555-1212", HashCode.PLAINTEXT),
    ("phone digits only (hex-only but clear)", "ph", "16505551212", HashCode.PLAINTEXT),
    ("ISO date", "db", "1997-02-16", HashCode.PLAINTEXT),
    ("YYYYMMDD date", "db", "19970216", HashCode.PLAINTEXT),
    ("ISO timestamp", "db", "1997-02-16T00:00:00Z", HashCode.PLAINTEXT),
    ("first name", "fn", "john", HashCode.PLAINTEXT),
    ("UTF-8 last name", "ln", "Valéry", HashCode.PLAINTEXT),
    ("city with a space", "ct", "new york", HashCode.PLAINTEXT),
    ("state code that is also hex", "st", "ca", HashCode.PLAINTEXT),
    ("gender letter that is also hex", "ge", "f", HashCode.PLAINTEXT),
    ("US zip", "zp", "94035", HashCode.PLAINTEXT),
    ("UK postcode", "zp", "SW1A 1AA", HashCode.PLAINTEXT),
    ("country code that is also hex", "country", "de", HashCode.PLAINTEXT),
    ("the word null sent unhashed", "fn", "null", HashCode.PLAINTEXT),
    # HASH_MALFORMED
    ("digest truncated by one", "em", D[:63], HashCode.MALFORMED),
    ("digest truncated to 20 hex", "em", D[:20], HashCode.MALFORMED),
    ("SHA-512-length hex", "em", hashlib.sha512(b"x").hexdigest(), HashCode.MALFORMED),
    ("64 chars with a non-hex character", "em", D[:63] + "g", HashCode.MALFORMED),
    ("base64-encoded digest", "em", base64.b64encode(bytes.fromhex(D)).decode(),
     HashCode.MALFORMED),
    ("prefixed digest", "em", "sha256:" + D, HashCode.MALFORMED),
    ("digest padded with spaces", "em", f" {D} ", HashCode.MALFORMED),
    ("digest with a 1-char appendix", "em", D + ".A", HashCode.MALFORMED),
    ("digest with a 3-char appendix", "em", D + ".abc", HashCode.MALFORMED),
    ("digest with text glued on", "em", D + " (hashed)", HashCode.MALFORMED),
    ("number instead of a string", "ph", 16505551212, HashCode.MALFORMED),
    ("object instead of a string", "em", {"value": D}, HashCode.MALFORMED),
    ("number inside a list", "em", [D, 5], HashCode.MALFORMED),
    ("punctuation-only junk", "ct", "-", HashCode.MALFORMED),
    # HASH_WEAK_ALGORITHM
    ("MD5-shaped", "em", hashlib.md5(b"x").hexdigest(), HashCode.WEAK_ALGORITHM),
    ("SHA-1-shaped", "ph", hashlib.sha1(b"x").hexdigest(), HashCode.WEAK_ALGORITHM),
    ("upper-case MD5 is still weak", "em", hashlib.md5(b"x").hexdigest().upper(),
     HashCode.WEAK_ALGORITHM),
    # HASH_UPPERCASE
    ("upper-case digest", "em", D.upper(), HashCode.UPPERCASE),
    ("mixed-case digest", "ln", D[:32] + D[32:].upper(), HashCode.UPPERCASE),
    ("upper-case digest with appendix", "em", D.upper() + ".AQICAQMC", HashCode.UPPERCASE),
    # HASH_EMPTY_VALUE
    ("SHA-256 of the empty string", "em", sha(""), HashCode.EMPTY_VALUE),
    ("empty-string digest with appendix", "ph", sha("") + ".AQICAQMC", HashCode.EMPTY_VALUE),
    ("unhashed empty string", "fn", "", HashCode.EMPTY_VALUE),
    ("unhashed blank string", "ln", "   ", HashCode.EMPTY_VALUE),
    # HASH_PLACEHOLDER
    ("hashed 'null'", "em", sha("null"), HashCode.PLACEHOLDER),
    ("hashed 'undefined'", "ph", sha("undefined"), HashCode.PLACEHOLDER),
    ("hashed 'NULL' (sender did not lowercase)", "em", sha("NULL"), HashCode.PLACEHOLDER),
    ("hashed test address", "em", sha("test@test.com"), HashCode.PLACEHOLDER),
    ("hashed JavaScript object", "fn", sha("[object object]"), HashCode.PLACEHOLDER),
    ("hashed 'na' outside country and names", "ct", sha("na"), HashCode.PLACEHOLDER),
    ("hashed '0'", "ph", sha("0"), HashCode.PLACEHOLDER),
    # HASHED_NOT_ALLOWED
    ("hashed IP address", "client_ip_address", sha("203.0.113.5"), HashCode.HASHED_NOT_ALLOWED),
    ("hashed user agent, upper case", "client_user_agent", sha(UA).upper(),
     HashCode.HASHED_NOT_ALLOWED),
    ("hashed fbc", "fbc", D, HashCode.HASHED_NOT_ALLOWED),
    ("hashed fbp with appendix", "fbp", D + ".AQICAQMC", HashCode.HASHED_NOT_ALLOWED),
    ("hashed fbc in a list", "fbc", [D], HashCode.HASHED_NOT_ALLOWED),
    # never-hash keys holding what they should
    ("IPv4", "client_ip_address", "203.0.113.5", None),
    ("IPv6", "client_ip_address", "2001:db8::1", None),
    ("IP with parameter-builder appendix", "client_ip_address", "168.212.226.204.ABcDEFGh", None),
    ("user agent", "client_user_agent", UA, None),
    ("fbp cookie", "fbp", FBP, None),
    # keys this check leaves alone
    ("external_id may be clear text (the Python SDK does not hash it)", "external_id",
     "john@example.com", None),
    ("'_'-prefixed keys are ignored", "_em", "john@example.com", None),
    ("unknown keys are ignored", "email", "john@example.com", None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "key", "value", "expected"), CASES, ids=[c[0] for c in CASES])
def test_single_value(intent: str, key: str, value: Any, expected: HashCode | None) -> None:
    ud = {"em": [D2], key: value} if key != "em" else {key: value}
    _, result = run(HashValidity, [delivery(event(user_data=ud))])
    if expected is None:
        assert result.findings == [], intent
        assert result.status is Status.OK
        return
    finding = one(result, expected)
    assert codes(result) == {expected}, intent
    assert finding.count == 1
    assert finding.field == f"user_data.{key}"
    assert finding.event_names == ["Purchase"]
    assert len(finding.examples) == 1
    assert finding.examples[0].file == "test.jsonl"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [(c[1], c[2], c[3]) for c in CASES if c[1] in MUST_HASH_KEYS],
    ids=[c[0] for c in CASES if c[1] in MUST_HASH_KEYS],
)
def test_classify_hashed_matches_check(key: str, value: Any, expected: HashCode | None) -> None:
    """The public classifier agrees with the check on every must-hash case (lists aside)."""
    items = value if isinstance(value, list) else [value]
    if value is None or not items:
        return
    verdicts = {classify_hashed(item, key) for item in items} - {None}
    assert verdicts == ({expected} if expected else set())


def test_is_digest_shapes() -> None:
    assert is_digest(D) and is_digest(D.upper()) and is_digest(D + ".AQICAQMC")
    assert not is_digest(D[:63]) and not is_digest(FBP) and not is_digest("2001:db8::1")


def test_counts_events_names_and_examples() -> None:
    """Count = affected events, names by frequency, at most 3 masked examples."""
    clear = ["alice@example.com", "bob@example.org", "carol@example.net", "dave@example.com"]
    events = [event("Purchase", user_data={"em": [e]}) for e in clear]
    events.append(event("Lead", user_data={"em": "erin@example.com"}))
    events += [event("PageView", user_data={"em": [D]}) for _ in range(15)]
    _, result = run(HashValidity, [delivery(*events)])
    finding = one(result, HashCode.PLAINTEXT)
    assert finding.count == 5
    assert finding.event_names == ["Purchase", "Lead"]
    assert len(finding.examples) == 3
    for example in finding.examples:
        assert "@" in example.value and "***" in example.value
        assert not any(e in example.value or e.split("@")[0] in example.value for e in clear)
    assert "5 of 20 events (25.0%)" in finding.message
    assert "Purchase" in finding.message and "user_data.em" in finding.message
    assert "SHA-256" in finding.remediation and "user_data.em" in finding.remediation


def test_examples_mask_phones_and_names() -> None:
    events = [
        event(user_data={"ph": "+1 (650) 555-1212", "fn": "Valéry", "ln": "Smith"}),
    ]
    _, result = run(HashValidity, [delivery(*events)])
    shown = " ".join(ex.value for f in result.findings for ex in f.examples)
    assert {f.field for f in result.findings} == {"user_data.ph", "user_data.fn", "user_data.ln"}
    for raw in ("650", "555", "1212", "Valéry", "Smith", "aléry", "mith"):
        assert raw not in shown


def test_one_event_counts_once_per_code_and_field() -> None:
    """Two clear emails in one event's list are one affected event."""
    ud = {"em": ["a@example.com", "b@example.com", D.upper()]}
    _, result = run(HashValidity, [delivery(event(user_data=ud))])
    assert one(result, HashCode.PLAINTEXT).count == 1
    assert one(result, HashCode.UPPERCASE).count == 1


def test_same_code_in_two_fields_gives_two_findings() -> None:
    _, result = run(HashValidity, [delivery(event(user_data={"em": "a@b.co", "fn": "ann"}))])
    fields = sorted(f.field or "" for f in result.findings if f.code == HashCode.PLAINTEXT)
    assert fields == ["user_data.em", "user_data.fn"]


# (intent, code-bearing value, affected of 100 events, settings, expected severity)
SEVERITY_CASES: list[tuple[str, str, int, dict[str, Any], Severity]] = [
    ("clear text is crit even for one event in a hundred", "a@b.co", 1, {}, Severity.CRIT),
    ("crit_share lets an operator downgrade a trickle of clear text",
     "a@b.co", 1, {"hash_validity": {"crit_share": 0.05}}, Severity.WARN),
    ("upper case below the share stays warn", D.upper(), 9, {}, Severity.WARN),
    ("upper case at 10 % escalates to crit", D.upper(), 10, {}, Severity.CRIT),
    ("a custom share moves the escalation point",
     D.upper(), 10, {"hash_validity": {"warn_to_crit_share": 0.5}}, Severity.WARN),
]  # fmt: skip


@pytest.mark.parametrize(
    ("intent", "value", "bad", "settings", "expected"),
    SEVERITY_CASES,
    ids=[c[0] for c in SEVERITY_CASES],
)
def test_severity(
    intent: str, value: str, bad: int, settings: dict[str, Any], expected: Severity
) -> None:
    events = [event(user_data={"em": value if i < bad else D}) for i in range(100)]
    _, result = run(HashValidity, [delivery(*events)], settings)
    (finding,) = result.findings
    assert finding.severity is expected, intent
    assert result.status == Status(expected.value)
    assert result.score is not None and result.score < 100


def test_ok_result_and_summary() -> None:
    _, result = run(HashValidity, [delivery(event(user_data={"em": [D], "ph": [D2]}))])
    assert (result.status, result.score, result.findings) == (Status.OK, 100, [])
    assert "1 events" in result.summary and "\n" not in result.summary


def test_no_events_is_skipped_not_ok() -> None:
    _, result = run(HashValidity, [])
    assert result.status is Status.SKIPPED


def test_verdict_cache_keeps_counting_repeated_bad_values() -> None:
    """Cached verdicts still count every event (a repeated defect is not deduplicated)."""
    deliveries = [delivery(event(user_data={"em": D.upper()}), line=i) for i in range(1, 8)]
    _, result = run(HashValidity, deliveries)
    finding = one(result, HashCode.UPPERCASE)
    assert finding.count == 7
    assert [ex.line for ex in finding.examples] == [1, 2, 3]


@pytest.mark.parametrize("weird", WEIRD_VALUES, ids=[repr(w)[:30] for w in WEIRD_VALUES])
def test_never_crashes_on_odd_types(weird: Any) -> None:
    ud = {k: weird for k in (*MUST_HASH_KEYS, "client_ip_address", "fbc", "fbp", "external_id")}
    events = [event(user_data=ud), event(user_data=weird), event(user_data={"em": [weird, D]})]
    _, result = run(HashValidity, [delivery(*events)])
    assert result.status in (Status.OK, Status.WARN, Status.CRIT)
    for finding in result.findings:
        assert finding.count >= 1 and finding.message and finding.remediation


# --- the fast path (observe) against the exact key-by-key route (_inspect) -------------------

_POOL: list[Any] = [
    D, D2, D.upper(), D + ".AQICAQMC", D + ".A", D[:63], D[:63] + "g", f" {D} ", "",
    sha(""), sha("null"), sha("na"), sha("nan"), hashlib.md5(b"x").hexdigest(), "john",
    "de", "f", "1" * 64, "a" * 31 + "\n" + "b" * 32, "192.168.0.1", UA, FBP, None, 5, [],
    {"v": D},
]  # fmt: skip
_values = st.sampled_from(_POOL) | st.lists(st.sampled_from(_POOL), max_size=3)
_user_data = st.dictionaries(
    st.sampled_from([*MUST_HASH_KEYS, "client_ip_address", "client_user_agent", "fbp", "fbc",
                     "external_id", "_x"]),
    _values,
    max_size=8,
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_user_data | st.none(), min_size=1, max_size=4), max_size=12))
def test_fast_path_finds_what_the_exact_route_finds(batches: list[list[Any]]) -> None:
    """Same tallies (counts, names, examples, in the same order) whether each event takes
    the fast path or the exact route, with caches warmed by earlier deliveries."""
    deliveries = [
        delivery(*(event("Lead", user_data=ud) for ud in batch), line=i + 1)
        for i, batch in enumerate(batches)
    ]
    fast, _ = run(HashValidity, deliveries)
    exact = HashValidity(fast.ctx)
    for d in deliveries:
        exact.total += len(d.events)
        for ev in d.events:
            if ev["user_data"].__class__ is dict:
                exact._inspect(ev, ev["user_data"], d)
    assert fast.total == exact.total
    assert list(fast.book.tallies) == list(exact.book.tallies)
    for key, tally in fast.book.tallies.items():
        assert tally == exact.book.tallies[key]

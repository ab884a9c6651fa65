"""hash_validity: are customer-information values hashed the way Meta expects?

Rules (docs/contracts.md §2 and §6, docs/meta-capi.md §6):

* must-hash keys (``em ph fn ln db ge ct st zp country``) hold a string or a list of
  strings, each the lowercase SHA-256 hex digest of the normalised value, optionally
  followed by a parameter-builder appendix (``.`` + 2 or 8 base64url characters);
* never-hash keys (``client_ip_address client_user_agent fbc fbp``) never hold a digest;
* ``external_id`` may be clear text (the Python SDK sends it unhashed) and is not judged.

``classify_hashed`` gives the verdict for one must-hash string and ``is_digest`` the one
for a never-hash string; the check counts affected *events* per (code, field).
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Final

from checks.base import (
    CheckContext,
    FindingBook,
    Tally,
    escalate,
    make_finding,
    names_text,
    result_from_findings,
    skipped,
)
from monitor.model.findings import CheckResult, Finding, Severity
from monitor.model.observations import Delivery
from monitor.model.rollup import key_layouts


class HashCode(StrEnum):
    PLAINTEXT = "HASH_PLAINTEXT"
    MALFORMED = "HASH_MALFORMED"
    WEAK_ALGORITHM = "HASH_WEAK_ALGORITHM"
    UPPERCASE = "HASH_UPPERCASE"
    EMPTY_VALUE = "HASH_EMPTY_VALUE"
    PLACEHOLDER = "HASH_PLACEHOLDER"
    HASHED_NOT_ALLOWED = "HASHED_NOT_ALLOWED"


MUST_HASH_KEYS: Final = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
NEVER_HASH_KEYS: Final = ("client_ip_address", "client_user_agent", "fbc", "fbp")

# Values people hash when the real one is missing. The sender may or may not have
# lowercased first, so case variants are hashed too (see _placeholder_digests).
PLACEHOLDERS: Final = frozenset(
    {
        "null", "undefined", "none", "nil", "nan", "n/a", "n.a.", "na", "[object object]",
        "unknown", "-", "--", "0", "false", "true", "test", "xxx",
        "not available", "not provided", "notprovided", "anonymous", "{{email}}",
        "test@test.com", "test@example.com", "example@example.com", "email@example.com",
        "user@example.com", "noemail@example.com", "no@email.com", "none@none.com",
        "0000000000", "1234567890", "00000000",
    }
)  # fmt: skip
# Placeholders that are genuine values of one key: ``na`` is Namibia's country code and a
# Korean surname, ``nan`` a given name. Hashing them there is not a defect.
PLACEHOLDER_EXEMPTIONS: Final[dict[str, frozenset[str]]] = {
    "country": frozenset({"na"}),
    "fn": frozenset({"na", "nan"}),
    "ln": frozenset({"na", "nan"}),
}
_EMPTY_INPUTS: Final = ("", " ", "  ", "\n", "\t")

_APPENDIX_CHARS = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_HEX_ANYCASE = re.compile(r"[0-9A-Fa-f]+", re.ASCII)
_PHONE = re.compile(r"\+?[\d\s().\-/]{5,}")
_DATE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[T ].*)?")
_NOT_TOKEN_CHARS = re.compile(r"[\s,;]")
_HEX_ONLY_WORD_MAX = 8  # shorter hex-only values are codes/words ("ca", "de", "f"), not digests
_TOKEN_MIN = 20  # longer blobs without spaces (base64, prefixed digests) are junk, not words
_CACHE_MAX = 4096  # per key; digests of ge/country/st/ct repeat across nearly every event
_CACHE_VALUE_MAX = 128  # longer values are judged every time rather than remembered
_fromhex = bytes.fromhex
_MISS: Any = object()
_NEVER: Final[dict[str, Any]] = {}  # route marker for never-hash keys (identity-compared)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _placeholder_digests(key: str) -> dict[str, HashCode]:
    """Digest -> EMPTY_VALUE/PLACEHOLDER for one must-hash key (case variants included)."""
    out = {_sha256(p): HashCode.EMPTY_VALUE for p in _EMPTY_INPUTS}
    for p in PLACEHOLDERS - PLACEHOLDER_EXEMPTIONS.get(key, frozenset()):
        for variant in (p, p.upper(), p.title()):
            out.setdefault(_sha256(variant), HashCode.PLACEHOLDER)
    return out


_BAD_DIGESTS: Final[dict[str, dict[str, HashCode]]] = {
    key: _placeholder_digests(key) for key in MUST_HASH_KEYS
}


def _is_lower_hex64(text: str) -> bool:
    """Exactly 64 lowercase hex characters (fromhex + round trip: ~2x faster than a regex)."""
    if len(text) != 64:
        return False
    try:
        return _fromhex(text).hex() == text
    except ValueError:
        return False


def _split_appendix(text: str) -> tuple[str, str | None]:
    """``(digest part, appendix)``; appendix None when ``text`` has no 2/8-char suffix."""
    if len(text) in (67, 73) and text[64] == ".":
        return text[:64], text[65:]
    return text, None


def is_digest(text: str) -> bool:
    """A SHA-256-shaped digest in any case, with or without a parameter-builder appendix."""
    head, appendix = _split_appendix(text)
    if len(head) != 64 or not _HEX_ANYCASE.fullmatch(head):
        return False
    return appendix is None or bool(_APPENDIX_CHARS.fullmatch(appendix))


def _classify_hex_only(text: str, padded: bool) -> HashCode:
    """Verdict for a value made only of hex digits that is not a valid lowercase digest."""
    n = len(text)
    if n == 64:
        return HashCode.MALFORMED if padded else HashCode.UPPERCASE
    if n in (32, 40):
        return HashCode.WEAK_ALGORITHM
    if (n < 32 and text.isdigit()) or n < _HEX_ONLY_WORD_MAX:
        return HashCode.PLAINTEXT  # phone, date, zip, or a code such as "ca", "de", "f"
    return HashCode.MALFORMED  # truncated, SHA-224/512 or otherwise hex-like


def _looks_like_token(text: str) -> bool:
    """A long blob without spaces that carries digits (or is digest-length): not a word."""
    if len(text) < _TOKEN_MIN or _NOT_TOKEN_CHARS.search(text):
        return False
    return len(text) == 64 or any(c.isdigit() for c in text)


def _classify_text(text: str) -> HashCode:
    """Verdict for a trimmed value that contains non-hex characters."""
    if len(text) > 64 and _HEX_ANYCASE.fullmatch(text, 0, 64):
        return HashCode.MALFORMED  # a digest with something glued on
    if "@" in text or _PHONE.fullmatch(text) or _DATE.fullmatch(text):
        return HashCode.PLAINTEXT
    if not any(c.isalnum() for c in text):
        return HashCode.MALFORMED  # punctuation-only junk such as "-" or "???"
    if _looks_like_token(text):
        return HashCode.MALFORMED  # base64 digest, "sha256:…", 64 chars with a non-hex
    return HashCode.PLAINTEXT  # a word or words: names, cities, "null", "n/a"


def classify_hashed(value: Any, key: str) -> HashCode | None:
    """Verdict for one value of the must-hash ``key``; ``None`` means a valid digest.

    Non-strings are MALFORMED; an empty or blank string is EMPTY_VALUE.
    """
    if not isinstance(value, str):
        return HashCode.MALFORMED
    head, appendix = _split_appendix(value)
    if appendix is not None and _HEX_ANYCASE.fullmatch(head):
        if not _APPENDIX_CHARS.fullmatch(appendix):
            return HashCode.MALFORMED
        if head != head.lower():
            return HashCode.UPPERCASE
    if _is_lower_hex64(head):
        return _BAD_DIGESTS[key].get(head)
    trimmed = value.strip()
    if not trimmed:
        return HashCode.EMPTY_VALUE
    if _HEX_ANYCASE.fullmatch(trimmed):
        return _classify_hex_only(trimmed, padded=trimmed != value)
    return _classify_text(trimmed)


# What a sender must do to one key's value before hashing (docs/meta-capi.md §6).
_NORMALISE: Final[dict[str, str]] = {
    "em": "trim and lowercase the email",
    "ph": "keep only the digits of the phone number, with the country code and no leading zeros",
    "fn": "lowercase the first name and remove punctuation (UTF-8 letters are fine)",
    "ln": "lowercase the last name and remove punctuation (UTF-8 letters are fine)",
    "db": "format the date of birth as YYYYMMDD",
    "ge": "reduce the gender to 'f' or 'm'",
    "ct": "lowercase the city and remove spaces and punctuation",
    "st": "use the lowercase 2-letter state or region code",
    "zp": "lowercase the postal code and remove spaces and dashes",
    "country": "use the lowercase ISO 3166-1 alpha-2 country code",
}

_WHAT: Final[dict[HashCode, str]] = {
    HashCode.PLAINTEXT: "clear-text values",
    HashCode.MALFORMED: "values that are not a 64-character hex SHA-256 digest",
    HashCode.WEAK_ALGORITHM: "MD5- or SHA-1-shaped hashes (32 or 40 hex characters)",
    HashCode.UPPERCASE: "digests in upper-case hex",
    HashCode.EMPTY_VALUE: "empty values or the SHA-256 of an empty string",
    HashCode.PLACEHOLDER: "the SHA-256 of a placeholder such as 'null' or a test address",
    HashCode.HASHED_NOT_ALLOWED: "hashed values in a field Meta needs unhashed",
}


def _remediation(code: HashCode, field: str, key: str) -> str:
    norm = _NORMALISE.get(key, "normalise the value")
    if code is HashCode.PLAINTEXT:
        return (
            f"In the sender, {norm}, then SHA-256 hex-encode it before putting it in "
            f"{field}; never send clear text."
        )
    if code is HashCode.MALFORMED:
        return (
            f"Send {field} as a string (or list of strings) holding the full 64-character "
            "lowercase hex SHA-256 digest; do not truncate, trim-pad, prefix or "
            "base64-encode it."
        )
    if code is HashCode.WEAK_ALGORITHM:
        return f"Hash {field} with SHA-256 instead of MD5/SHA-1: {norm}, then SHA-256 hex-encode."
    if code is HashCode.UPPERCASE:
        return f"Hex-encode the SHA-256 digest of {field} in lowercase (as hexdigest() does)."
    if code is HashCode.EMPTY_VALUE:
        return f"Leave {field} out when the value is empty instead of sending or hashing ''."
    if code is HashCode.PLACEHOLDER:
        return (
            f"Leave {field} out when the real value is unknown; never hash placeholders such "
            "as 'null', 'undefined' or test addresses."
        )
    return (
        f"Send {field} unhashed, exactly as read from the request (IP address, user agent, "
        "_fbc/_fbp cookie): Meta cannot match a hashed value there."
    )


_NEVER_HASH: Final = frozenset(NEVER_HASH_KEYS)
_MUST_HASH: Final = frozenset(MUST_HASH_KEYS)
# Digests that are a placeholder for at least one key: never "good" for every key.
_ANY_BAD: Final = frozenset(d for bad in _BAD_DIGESTS.values() for d in bad)
_GOOD_MAX = 1 << 16  # ~10 MB of 64-char strings at most
_PLANS_MAX = 256
# (must-hash getter, never-hash getter); a getter maps a user_data to a tuple of values.
_Getter = Callable[[dict[str, Any]], tuple[Any, ...]]
_Plan = tuple[_Getter | None, bool, _Getter | None]
_LEN_64: Final = frozenset({64})
_join = "".join
_lines = "\n".join


def _getter(keys: list[str]) -> _Getter | None:
    if not keys:
        return None
    return operator.itemgetter(*keys) if len(keys) > 1 else operator.itemgetter(keys[0], keys[0])


_DIGEST_LENGTHS: Final = frozenset({64, 67, 73})
_FIELDS: Final[dict[str, str]] = {k: f"user_data.{k}" for k in MUST_HASH_KEYS + NEVER_HASH_KEYS}


class HashValidity:
    """Counts events whose user_data values break Meta's hashing rules."""

    id: ClassVar[str] = "hash_validity"
    weight: ClassVar[float] = 2.0  # in the health score
    reads_graph: ClassVar[bool] = False
    title: ClassVar[str] = "Hash validity"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.book = FindingBook()
        self.total = 0
        self._fresh_caches()

    def _fresh_caches(self) -> None:
        # Verdicts already computed, per key: real traffic repeats most digests (gender,
        # country, state, returning customers), so a dict hit skips the hex test.
        self._verdicts: dict[str, dict[str, HashCode | None]] = {k: {} for k in MUST_HASH_KEYS}
        # key -> its verdict cache (must-hash), _NEVER (never-hash); other keys are absent.
        self._route: dict[str, dict[str, HashCode | None]] = {
            **dict.fromkeys(NEVER_HASH_KEYS, _NEVER),
            **self._verdicts,
        }
        # Strings judged valid digests for *every* must-hash key (not a placeholder of
        # any): an event whose must-hash values are all in it needs no per-key verdict.
        self._good: set[str] = set()
        # The tuple of an event's user_data keys -> its ``_Plan`` (senders use few).
        self._plans: dict[tuple[Any, ...], _Plan] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Pickled (parallel audit) without the caches: they are large, and _NEVER is
        # compared by identity, which unpickling would break.
        caches = ("_verdicts", "_route", "_good", "_plans")
        return {k: v for k, v in self.__dict__.items() if k not in caches}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fresh_caches()

    def merge(self, later: HashValidity) -> None:
        """Fold in the counts of the input right after this one (``Check.merge``)."""
        self.total += later.total
        self.book.merge(later.book)

    def observe(self, delivery: Delivery) -> None:
        """Fold one delivery: every event with a ``user_data`` object is inspected.

        Hot path: an event whose must-hash values are all known-good digests and whose
        never-hash values are all strings of no digest length is clean, which C-level set
        operations establish without a Python loop over its keys (``_Plan``); any other
        event takes ``_inspect``, the exact key-by-key route (same hits, same order).
        """
        events = delivery.events
        self.total += len(events)
        good = self._good
        plans = self._plans
        # The events' key layouts (``match_quality`` and the rollups count by them): an
        # event whose keys all hold a value has its user_data's keys as its layout.
        for event, (_, layout) in zip(events, key_layouts(delivery), strict=True):
            user_data = event.get("user_data")
            if user_data.__class__ is not dict:
                continue
            keys = layout if len(layout) == len(user_data) else tuple(user_data)
            plan = plans.get(keys)
            if plan is None:
                plan = self._plan(keys, user_data)
            must, lists, never = plan
            try:
                if must is not None:
                    values = must(user_data)
                    # Lists (the SDK's form) are checked as "\n"-joined items: one digest
                    # joins to itself; more items, or a string, to a string never good.
                    clean = good.issuperset(map(_lines, values) if lists else values)
                    if not clean:
                        clean = self._new_good(tuple(map(_lines, values)) if lists else values)
                else:
                    clean = True
                if clean and never is not None:
                    values = never(user_data)
                    _join(values)  # TypeError unless every value is a string
                    clean = _DIGEST_LENGTHS.isdisjoint(map(len, values))
            except TypeError:  # a value or item that is not a string
                clean = False
            if not clean:
                self._inspect(event, user_data, delivery)

    def _new_good(self, parts: tuple[Any, ...]) -> bool:
        """Whether ``parts`` are all valid digests for every must-hash key (then they are
        remembered as good): 64 lowercase hex characters each, no placeholder's digest.
        One C-level test over those not known good yet (a new visitor's digests beside
        the city's, state's... that others sent), rather than a verdict per value."""
        good = self._good
        new = set(parts).difference(good)
        if not _LEN_64.issuperset(map(len, new)):
            return False
        joined = _join(new)  # a hex round trip: fromhex would skip whitespace
        try:
            if _fromhex(joined).hex() != joined or not _ANY_BAD.isdisjoint(new):
                return False
        except ValueError:  # not hex
            return False
        if len(good) >= _GOOD_MAX:
            good.clear()
        good.update(parts)
        return True

    def _plan(self, keys: tuple[Any, ...], user_data: dict[str, Any]) -> _Plan:
        """Getters of the must-hash and never-hash values of a user_data with ``keys``
        (None: it has none; each returns a tuple, a single key fetched twice), and whether
        its must-hash values come as lists, as in this first ``user_data``."""
        must = [k for k in keys if k in _MUST_HASH]
        never = [k for k in keys if k in _NEVER_HASH]
        lists = bool(must) and user_data[must[0]].__class__ is list
        plan = (_getter(must), lists, _getter(never))
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[keys] = plan
        return plan

    def _inspect(self, event: dict[str, Any], user_data: dict[str, Any], d: Delivery) -> None:
        """The exact route for one event: each judged key in user_data order."""
        route = self._route
        for key, value in user_data.items():
            cache = route.get(key)
            if cache is None:  # external_id, custom keys, "_" keys: not judged
                continue
            if cache is _NEVER:
                if value.__class__ is not str or len(value) in _DIGEST_LENGTHS:
                    self._never_hash(key, value, event["event_name"], d)
                continue
            # Every item a string already judged a valid digest: nothing to say.
            try:
                if value.__class__ is list:
                    for item in value:
                        if cache.get(item, _MISS) is not None:
                            break
                    else:
                        continue
                elif value is None or cache.get(value, _MISS) is None:
                    continue
            except TypeError:
                pass  # an unhashable value or item; _must_hash says what is wrong
            self._must_hash(key, value, event["event_name"], d)

    def _verdict(self, key: str, item: Any) -> HashCode | None:
        """Cached ``classify_hashed`` for hashable strings; the hot path of the check."""
        if item.__class__ is not str:
            return HashCode.MALFORMED
        cache = self._verdicts[key]
        verdict = cache.get(item, _MISS)
        if verdict is not _MISS:
            return verdict
        verdict = classify_hashed(item, key)
        if len(item) <= _CACHE_VALUE_MAX:  # digests are <= 73 chars; keep memory small
            if len(cache) >= _CACHE_MAX:
                cache.clear()  # bounded memory; the common digests come straight back
            cache[item] = verdict
        return verdict

    def _must_hash(self, key: str, value: Any, name: str, delivery: Delivery) -> None:
        if value.__class__ is not list:
            code = self._verdict(key, value)
            if code is not None:
                self.book.hit(code, _FIELDS[key], name, delivery, value)
            return
        seen: list[HashCode] | None = None
        for item in value:
            code = self._verdict(key, item)
            if code is None:
                continue
            if seen is None:
                seen = []
            if code not in seen:  # one event counts once per (code, field)
                seen.append(code)
                self.book.hit(code, _FIELDS[key], name, delivery, item)

    def _never_hash(self, key: str, value: Any, name: str, delivery: Delivery) -> None:
        if value is None:
            return
        if value.__class__ is str:
            # Digests are 64, 67 or 73 characters: IPs and user agents skip the regex.
            if len(value) in _DIGEST_LENGTHS and is_digest(value):
                self.book.hit(HashCode.HASHED_NOT_ALLOWED, _FIELDS[key], name, delivery, value)
            return
        if value.__class__ is list:
            for item in value:
                if item.__class__ is str and len(item) in _DIGEST_LENGTHS and is_digest(item):
                    self.book.hit(HashCode.HASHED_NOT_ALLOWED, _FIELDS[key], name, delivery, item)
                    return

    def result(self) -> CheckResult:
        """One finding per (code, field); PLAINTEXT is crit, the rest escalate by share."""
        if self.total == 0:
            return skipped(self.id, "no events to check")
        findings = sorted(
            (self._finding(t) for t in self.book),
            key=lambda f: (-f.severity.rank, -f.count, f.code, f.field or ""),
        )
        return result_from_findings(
            self.id,
            findings,
            self.total,
            f"{self.total} events: customer information correctly hashed",
            f"{self.total} events: "
            + "; ".join(f"{f.code} in {f.field}" for f in findings[:3])
            + (f" and {len(findings) - 3} more" if len(findings) > 3 else ""),
        )

    def _severity(self, code: HashCode, share: float) -> Severity:
        settings = self.ctx.settings.hash_validity
        if code is HashCode.PLAINTEXT:
            # crit_share (default 0) lets an operator tolerate a trickle as warn.
            return Severity.CRIT if share >= settings.crit_share else Severity.WARN
        return escalate(Severity.WARN, share, settings.warn_to_crit_share)

    def _finding(self, tally: Tally) -> Finding:
        code = HashCode(tally.code)
        field = tally.field or ""
        share = tally.count / self.total
        names = sorted(tally.event_names, key=lambda n: (-tally.event_names[n], n))
        message = (
            f"{tally.count} of {self.total} events ({share:.1%}) have {_WHAT[code]} in "
            f"{field} ({names_text(names)})."
        )
        return make_finding(
            self.id,
            tally,
            self._severity(code, share),
            message,
            _remediation(code, field, field.rsplit(".", 1)[-1]),
            evidence={"share": round(share, 4), "total_events": self.total},
        )

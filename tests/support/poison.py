"""Poison lines: valid delivery-log lines damaged the ways a disk, a proxy or a buggy sender
damages them (issue 11, "no poison lines"). Used by the fuzz tests of the reader, the
audit command and the daemon.

Damage comes in four kinds: a bit flipped, the line cut short, bytes inserted (NUL,
invalid UTF-8), and the value at a key path replaced by something of the wrong type or an
absurd size. Replacements are JSON *text* (``RAW_VALUES``), so that they can be what no
JSON library writes: integers beyond 64 bits, ``1e400``, ``NaN``, nesting 3000 deep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

NOW = 1_795_176_000.0  # 2026-11-20T12:00:00Z
_HASH = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"

# JSON text put where a value was: wrong types, absurd numbers, invalid text.
RAW_VALUES: tuple[bytes, ...] = (
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1.5",
    b'""',
    b'"x"',
    b"[]",
    b"{}",
    b'[null, {"a": [1]}]',
    b"1e300",
    b"-1e300",
    b"1e400",  # infinite as a double
    b"1e-400",  # zero as a double
    b"123456789012345678901234567890",  # a 30-digit integer
    b"-123456789012345678901234567890",
    b"18446744073709551616",  # 2**64
    b"9223372036854775808",  # 2**63
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"[" * 3000 + b"]" * 3000,  # deeper than any parser allows
    b"[" * 200 + b"1" + b"]" * 200,  # deep but parsable
    b'"\\ud800"',  # a lone surrogate
    b'"\\u0000"',  # an escaped NUL
    b'"a\x00b"',  # a raw NUL inside a string
    b'"\xff\xfe"',  # invalid UTF-8
    b'"1e300"',
    b'"' + b"9" * 5000 + b'"',  # a numeric string too long for int()
    b'"\xc2\xb2"',  # a digit Python's isdigit() accepts but int() does not
)
INSERTS: tuple[bytes, ...] = (b"\x00", b"\xff", b"\xed\xa0\x80", b"\xc3", b'"', b"\\")


def record(k: int, dataset: str = "111", sent: float = NOW) -> dict[str, Any]:
    """A delivery record whose two events every check accepts, with every field the
    reader reads (response with body, duration, labels)."""
    return {
        "sent_at": sent + k,
        "dataset_id": dataset,
        "request": {
            "data": [event(k, 0), orjson.dumps(event(k, 1)).decode()],  # object, SDK string
            "partner_agent": "fuzz",
        },
        "response": {"status": 200, "body": {"events_received": 2, "fbtrace_id": "AbC"}},
        "duration_ms": 120,
    }


def failed_record(k: int, dataset: str = "111") -> dict[str, Any]:
    rec = record(k, dataset)
    body = {"error": {"code": 190, "error_subcode": 463, "message": "expired", "type": "OAuth"}}
    rec["response"] = {"status": 400, "body": body}
    return rec


def bare_request(k: int) -> dict[str, Any]:
    return {"data": [event(k, 0)], "test_event_code": "TEST1"}


def bare_event(k: int) -> dict[str, Any]:
    return {**event(k, 0), "dataset_id": 111}


def event(k: int, i: int) -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": int(NOW) + k - 30,
        "event_id": f"ev-{k}-{i}",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {"em": [_HASH], "client_user_agent": "Mozilla/5.0", "fbp": "fb.1.1.1"},
        "custom_data": {"value": 10.5, "currency": "EUR", "contents": [{"id": "a", "q": 1}]},
    }


BASES = (record, failed_record, bare_request, bare_event)


def valid_events(obj: dict[str, Any]) -> int:
    """Events of an undamaged base line."""
    if "request" in obj:
        return len(obj["request"]["data"])
    return len(obj["data"]) if "data" in obj else 1


def key_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a decoded JSON value (dict keys and list indexes), parents first."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from key_paths(child, (*prefix, key))


_MARK = "\x01poison\x01"


def replace_at(obj: Any, path: tuple[Any, ...], raw: bytes) -> bytes:
    """The JSON text of ``obj`` with the value at ``path`` replaced by the text ``raw``."""
    copy = orjson.loads(orjson.dumps(obj))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _MARK
    return orjson.dumps(copy).replace(orjson.dumps(_MARK), raw)


def flip(line: bytes, position: int, bit: int) -> bytes:
    """``line`` with one bit flipped (a newline it would create splits the line: fine)."""
    at = position % len(line)
    return line[:at] + bytes([line[at] ^ (1 << (bit % 8))]) + line[at + 1 :]


def insert(line: bytes, position: int, text: bytes) -> bytes:
    at = position % (len(line) + 1)
    return line[:at] + text + line[at:]


def truncate(line: bytes, keep: int) -> bytes:
    return line[: keep % len(line)]


def corpus(per_path: int = 3) -> list[bytes]:
    """A deterministic set of poison lines: for every base line, every key path replaced
    by ``per_path`` of ``RAW_VALUES`` (rotating, so that every value is used), every
    insert at a few places, cuts and bit flips at spread positions."""
    out: list[bytes] = []
    turn = 0
    for k, base in enumerate(BASES):
        obj = base(k)
        line = orjson.dumps(obj)
        for path in key_paths(obj):
            for _ in range(per_path):
                out.append(replace_at(obj, path, RAW_VALUES[turn % len(RAW_VALUES)]))
                turn += 1
        for j, text in enumerate(INSERTS):
            for spot in (0, len(line) // 3 + j, len(line) - 1):
                out.append(insert(line, spot, text))
        for spot in range(1, len(line), max(1, len(line) // 40)):
            out.append(truncate(line, spot))
            out.append(flip(line, spot * 7, spot))
    return [p.replace(b"\n", b" ") for p in out]  # one physical line each

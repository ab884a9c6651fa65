"""Delivery-log reader: shapes, aliases, malformed content, gzip, paths, datasets, window,
streaming. Every test reads real files written into tmp_path."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import tracemalloc
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from monitor.config import DatasetSettings
from monitor.errors import InputError
from monitor.model.observations import Delivery, ReadStats, ResponseInfo, Shape
from monitor.sources.logs.fields import parse_timestamp
from monitor.sources.logs.paths import DatasetResolver, InputFile, expand_paths
from monitor.sources.logs.reader import read_deliveries

T0 = 1795176000  # 2026-11-20T12:00:00Z
SECRET = "jane.secret@example.com"  # must never show up in a problem reason

RECORD: dict[str, Any] = {  # docs/contracts.md §1 (a), with a concrete event
    "sent_at": "2026-11-20T12:00:03Z",
    "dataset_id": "1234567890",
    "request": {
        "data": [{"event_name": "Purchase", "event_time": T0, "user_data": {"em": SECRET}}],
        "test_event_code": "TEST123",
        "partner_agent": "myplatform",
    },
    "response": {
        "status": 200,
        "body": {"events_received": 1, "messages": [], "fbtrace_id": "AbC"},
    },
    "duration_ms": 143,
}


def ev(name: str = "Purchase", t: float = T0, **extra: Any) -> dict[str, Any]:
    return {"event_name": name, "event_time": t, **extra}


def line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def write(path: Path, lines: Iterable[Any], *, gz: bool = False) -> Path:
    """Write JSON objects (or raw bytes as is) one per line."""
    raw = b"".join(x if isinstance(x, bytes) else line(x) for x in lines)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def read(paths: Sequence[Path | str], **kw: Any) -> tuple[list[Delivery], ReadStats]:
    stats = ReadStats()
    files = [InputFile(str(p)) for p in paths]
    return list(read_deliveries(files, stats, **kw)), stats


def read_one(tmp_path: Path, *lines: Any, **kw: Any) -> tuple[list[Delivery], ReadStats]:
    return read([write(tmp_path / "in.jsonl", lines)], **kw)


# ----------------------------------------------------------------------------- shapes


def test_record_every_field(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [RECORD])
    (d,), stats = read([path])
    assert d == Delivery(
        file=str(path),
        line=1,
        dataset_id="1234567890",
        shape=Shape.RECORD,
        events=RECORD["request"]["data"],
        sent_count=1,
        sent_at=T0 + 3.0,
        test_event_code="TEST123",
        partner_agent="myplatform",
        response=ResponseInfo(status=200, events_received=1, fbtrace_id="AbC"),
        duration_ms=143.0,
        times=[float(T0)],
    )
    assert (stats.files, stats.lines, stats.events, stats.malformed_lines) == (1, 1, 1, 0)
    assert stats.bytes_read == path.stat().st_size


def test_record_aliases_ts_and_integer_pixel_id(tmp_path: Path) -> None:
    rec = {"ts": T0, "pixel_id": 987, "request": {"data": [ev()]}}
    (d,), _ = read_one(tmp_path, rec)
    assert (d.dataset_id, d.sent_at, d.response, d.duration_ms) == ("987", float(T0), None, None)


@pytest.mark.parametrize(
    ("sent_at", "expected"),
    [
        ("2026-11-20T12:00:03Z", T0 + 3),  # Z
        ("2026-11-20T12:00:03+0000", T0 + 3),  # offset without colon
        ("2026-11-20T14:00:03+02:00", T0 + 3),  # other offset
        ("2026-11-20T12:00:03.250Z", T0 + 3.25),  # fraction
        ("2026-11-20T12:00:03.123456789Z", T0 + 3.123456),  # nanoseconds: cut to micro
        ("2026-11-20 12:00:03", T0 + 3),  # no offset: UTC
        ("2026-11-20t12:00:03z", T0 + 3),  # lower case
        ("2026-11-20 12:00:03 UTC", T0 + 3),
        ("1795176003", T0 + 3),  # Unix seconds as text
        (T0 + 3, T0 + 3),  # int
        (T0 + 3.5, T0 + 3.5),  # float
        ((T0 + 3) * 1000, T0 + 3),  # milliseconds
    ],
)
def test_sent_at_formats(tmp_path: Path, sent_at: Any, expected: float) -> None:
    (d,), _ = read_one(tmp_path, {"sent_at": sent_at, "request": {"data": [ev()]}})
    assert d.sent_at == pytest.approx(expected, abs=1e-6)


def test_event_times_are_seconds_with_milliseconds_flagged(tmp_path: Path) -> None:
    """The reader decides the unit of event_time once (Delivery.times/millis)."""
    data = [ev(t=T0), ev(t=(T0 + 2) * 1000 + 500), ev(t=T0 + 1.5)]
    (d,), _ = read_one(tmp_path, {"sent_at": T0 + 9, "request": {"data": data}})
    assert d.times == [T0, T0 + 2.5, T0 + 1.5]
    assert d.millis == [False, True, False]
    assert d.events[1]["event_time"] == (T0 + 2) * 1000 + 500  # the event stays as sent
    (plain,), _ = read_one(tmp_path, {"sent_at": T0 + 9, "request": {"data": [ev()]}})
    assert plain.millis is None


def test_a_delivery_needs_one_time_per_event() -> None:
    with pytest.raises(ValueError, match="one time per event"):
        Delivery("f", 1, "d", Shape.EVENT, [ev()], 1)


def test_window_subsets_times_and_flags(tmp_path: Path) -> None:
    data = [ev(t=T0 - 100), ev(t=T0 * 1000), ev(t=T0 + 100)]
    (d,), _ = read_one(tmp_path, {"data": data}, since=T0, until=T0 + 50)
    assert (d.times, d.millis, d.sent_count) == ([float(T0)], [True], 3)


def test_sent_at_cache_does_not_leak_between_values(tmp_path: Path) -> None:
    stamps = ["2026-11-20T12:00:03Z", "2026-11-20T12:00:03Z", "2026-11-20T12:00:04Z", T0]
    ds, _ = read_one(tmp_path, *({"sent_at": s, "request": {"data": [ev()]}} for s in stamps))
    assert [d.sent_at for d in ds] == [T0 + 3, T0 + 3, T0 + 4, T0]


def test_parse_timestamp_rejects_garbage() -> None:
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp("nan") is None


def test_data_items_as_json_strings(tmp_path: Path) -> None:
    items = [orjson.dumps(ev("Lead")).decode(), ev("Purchase")]
    (d,), stats = read_one(tmp_path, {"request": {"data": items}})
    assert [e["event_name"] for e in d.events] == ["Lead", "Purchase"]
    assert (d.sent_count, stats.malformed_events) == (2, 0)


def test_data_as_one_json_string(tmp_path: Path) -> None:
    data = orjson.dumps([ev("Lead"), ev("ViewContent")]).decode()
    ds, stats = read_one(tmp_path, {"request": {"data": data}}, {"data": data})
    assert [(d.shape, [e["event_name"] for e in d.events], d.sent_count) for d in ds] == [
        (Shape.RECORD, ["Lead", "ViewContent"], 2),
        (Shape.REQUEST, ["Lead", "ViewContent"], 2),
    ]
    assert stats.malformed_lines == 0


def test_bare_request_body(tmp_path: Path) -> None:
    body = {"data": [ev(), ev("Lead")], "test_event_code": "TEST9", "partner_agent": "stape"}
    (d,), _ = read_one(tmp_path, body)
    assert (d.shape, d.sent_at, d.test_event_code, d.partner_agent) == (
        Shape.REQUEST,
        None,
        "TEST9",
        "stape",
    )
    assert (d.dataset_id, d.sent_count, len(d.events), d.response) == ("unknown", 2, 2, None)


def test_bare_event(tmp_path: Path) -> None:
    event = ev(event_id="o-1", data={"not": "a request"})  # event_name wins over data
    (d,), _ = read_one(tmp_path, event)
    assert (d.shape, d.events, d.sent_count, d.sent_at) == (Shape.EVENT, [event], 1, None)


def test_response_error_envelope(tmp_path: Path) -> None:
    error = {
        "code": 190,
        "error_subcode": 463,
        "type": "OAuthException",
        "message": "Error validating access token",
        "error_user_title": "Token expired",
        "fbtrace_id": "Xyz",
    }
    as_object = {"request": {"data": [ev()]}, "response": {"status": 400, "body": {"error": error}}}
    as_text = {
        "request": {"data": [ev()]},
        "response": {"status": 400, "body": orjson.dumps({"error": error}).decode()},
    }
    expected = ResponseInfo(
        status=400,
        error_code=190,
        error_subcode=463,
        error_type="OAuthException",
        error_title="Token expired",
        error_message="Error validating access token",
        fbtrace_id="Xyz",
    )
    ds, _ = read_one(tmp_path, as_object, as_text)
    assert [d.response for d in ds] == [expected, expected]
    assert all(d.response is not None and d.response.is_error for d in ds)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"status": 502, "body": "<html>Bad gateway</html>"}, ResponseInfo(status=502)),
        ({"status": 200}, ResponseInfo(status=200)),
        ({"body": {"events_received": 3}}, ResponseInfo(events_received=3)),
        ({"status": 500, "body": {"error": "boom"}}, ResponseInfo(500, error_message="boom")),
        ({"body": {"error": {"code": "17"}}}, ResponseInfo(error_code=17)),  # stringified code
    ],
)
def test_response_partial_bodies(
    tmp_path: Path, response: dict[str, Any], expected: ResponseInfo
) -> None:
    (d,), stats = read_one(tmp_path, {"request": {"data": [ev()]}, "response": response})
    assert (d.response, stats.malformed_lines) == (expected, 0)


def test_blank_lines_skipped_and_not_counted(tmp_path: Path) -> None:
    ds, stats = read_one(tmp_path, b"\n", ev(), b"   \r\n", b"\t\n", ev("Lead"), b"\n")
    assert [d.line for d in ds] == [2, 5]  # physical line numbers
    assert (stats.lines, stats.malformed_lines, stats.events) == (2, 0, 2)


def test_underscore_keys_ignored_at_record_level(tmp_path: Path) -> None:
    ds, stats = read_one(
        tmp_path,
        {"_comment": "x", "_request": 5, "request": {"data": [ev()]}},
        {"_request": {"data": [ev()]}},  # only ignored keys: matches no shape
    )
    assert [d.line for d in ds] == [1]
    assert stats.problems[0].line == 2 and stats.malformed_lines == 1


def test_utf8_bom_on_first_line(tmp_path: Path) -> None:
    ds, stats = read_one(tmp_path, b"\xef\xbb\xbf" + line(ev()), ev())
    assert (len(ds), stats.malformed_lines) == (2, 0)


def test_test_event_code_number_is_text_and_odd_duration_ignored(tmp_path: Path) -> None:
    rec = {"request": {"data": [ev()], "test_event_code": 12345}, "duration_ms": "fast"}
    (d,), stats = read_one(tmp_path, rec)
    assert (d.test_event_code, d.duration_ms, stats.malformed_lines) == ("12345", None, 0)


# ----------------------------------------------------------------------------- malformed


def _with_secret(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "_note": SECRET}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_name": "Purchase", "em": "' + SECRET.encode() + b'"', "invalid JSON"),
        (b'{"em": "' + SECRET.encode() + b'"} trailing', "invalid JSON"),
        (b'{"em": "\xff\xfe' + SECRET.encode() + b'"}', "invalid JSON"),  # invalid UTF-8
        (b"\x00\x01\x02binary\x9c\x8f", "invalid JSON"),
        (line([ev(em=SECRET)]), "not a JSON object"),
        (line(SECRET), "not a JSON object"),
        (line(42), "not a JSON object"),
        (line(_with_secret({"foo": 1})), "not a delivery record"),
        (line(_with_secret({"request": [ev()]})), "request: expected an object"),
        (line(_with_secret({"request": None})), "request: expected an object"),
        (line(_with_secret({"request": {"data": {"a": ev()}}})), "request.data: expected a list"),
        (line(_with_secret({"request": {"data": "[{oops"}})), "request.data: string is not"),
        (line(_with_secret({"request": {"data": '{"a": 1}'}})), "request.data: expected a list"),
        (line(_with_secret({"request": {}})), "request.data: missing"),
        (line(_with_secret({"data": 7})), "data: expected a list"),
        (line({"sent_at": SECRET, "request": {"data": [ev()]}}), "sent_at: unparsable timestamp"),
        (line({"sent_at": True, "request": {"data": [ev()]}}), "sent_at: expected"),
        (line({"ts": [1], "request": {"data": [ev()]}}), "sent_at: expected"),
        (line({"dataset_id": [SECRET], "request": {"data": [ev()]}}), "dataset_id: expected"),
        (line({"request": {"data": [ev()]}, "response": SECRET}), "response: expected an object"),
        (line({"request": {"data": [ev()]}, "response": {"status": "200"}}), "response.status"),
        (line({"request": {"data": [ev()]}, "response": {"status": True}}), "response.status"),
        (line({"request": {"data": [ev()]}, "response": {"body": [SECRET]}}), "response.body"),
    ],
)
def test_malformed_line_is_counted_and_reading_goes_on(
    tmp_path: Path, raw: bytes, reason: str
) -> None:
    raw = raw if raw.endswith(b"\n") else raw + b"\n"
    ds, stats = read_one(tmp_path, ev("Lead"), raw, ev("Purchase"))
    assert [(d.line, d.events[0]["event_name"]) for d in ds] == [(1, "Lead"), (3, "Purchase")]
    assert (stats.lines, stats.malformed_lines, stats.malformed_events) == (3, 1, 0)
    (problem,) = stats.problems
    assert (problem.file, problem.line) == (str(tmp_path / "in.jsonl"), 2)
    assert problem.reason.startswith(reason)
    assert SECRET not in problem.reason and "jane" not in problem.reason


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (42, "request.data[1]: not a JSON object"),
        (None, "request.data[1]: not a JSON object"),
        ('{"event_name": "Lead", "em": "' + SECRET, "request.data[1]: not a JSON object"),
        ('["Lead"]', "request.data[1]: not a JSON object"),
        ({"event_name": 7, "event_time": T0}, "request.data[1]: event_name: expected a string"),
        ({"event_time": T0, "em": SECRET}, "request.data[1]: event_name: missing"),
        ({"event_name": "Lead", "event_time": str(T0)}, "request.data[1]: event_time: expected"),
        ({"event_name": "Lead", "event_time": True}, "request.data[1]: event_time: expected"),
        ({"event_name": "Lead"}, "request.data[1]: event_time: missing"),
    ],
)
def test_malformed_event_is_counted_and_siblings_kept(
    tmp_path: Path, item: Any, reason: str
) -> None:
    rec = {"sent_at": T0, "request": {"data": [ev("A"), item, ev("B", T0 + 0.5)]}}
    (d,), stats = read_one(tmp_path, rec)
    assert [e["event_name"] for e in d.events] == ["A", "B"]
    assert (d.sent_count, stats.events, stats.malformed_events, stats.malformed_lines) == (
        3,
        2,
        1,
        0,
    )
    assert stats.problems[0].reason == reason or stats.problems[0].reason.startswith(reason)
    assert SECRET not in stats.problems[0].reason


def test_malformed_bare_event(tmp_path: Path) -> None:
    (d,), stats = read_one(tmp_path, {"event_name": ["Purchase"], "event_time": T0})
    assert (d.events, d.sent_count, stats.malformed_events) == ([], 1, 1)
    assert stats.problems[0].reason == "event: event_name: expected a string"


def test_malformed_line_never_counts_its_events(tmp_path: Path) -> None:
    rec = {"request": {"data": [5, 6]}, "response": {"status": "x"}}
    _, stats = read_one(tmp_path, rec)
    assert (stats.malformed_lines, stats.malformed_events) == (1, 0)


def test_problem_list_is_capped_but_counts_are_exact(tmp_path: Path) -> None:
    stats = ReadStats(max_problems=3)
    path = write(tmp_path / "bad.jsonl", [b"nope\n"] * 10)
    assert list(read_deliveries([InputFile(str(path))], stats)) == []
    assert (stats.malformed_lines, len(stats.problems)) == (10, 3)


# ----------------------------------------------------------------------------- gzip, binary


def _numbered(n: int) -> list[dict[str, Any]]:
    return [ev(f"E{i}", event_id=f"id-{i}", pad="x" * 200) for i in range(1, n + 1)]


def test_gzip_detected_by_magic_not_suffix(tmp_path: Path) -> None:
    zipped = write(tmp_path / "plain-name.jsonl", _numbered(3), gz=True)
    not_zipped = write(tmp_path / "fake.jsonl.gz", _numbered(2))
    ds, stats = read([zipped, not_zipped])
    assert [d.events[0]["event_name"] for d in ds] == ["E1", "E2", "E3", "E1", "E2"]
    assert stats.malformed_lines == 0
    # bytes_read counts on-disk (compressed) bytes
    assert stats.bytes_read == zipped.stat().st_size + not_zipped.stat().st_size


def test_truncated_gzip_keeps_complete_lines_before_damage(tmp_path: Path) -> None:
    full = gzip.compress(b"".join(line(x) for x in _numbered(3000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])
    ds, stats = read([path])
    assert 0 < len(ds) < 3000
    # a strict prefix of the original lines, in order, each complete
    assert [d.events[0]["event_id"] for d in ds] == [f"id-{i}" for i in range(1, len(ds) + 1)]
    assert stats.malformed_lines >= 1
    assert stats.problems[-1].reason == "gzip: compressed stream ends early (truncated file)"
    assert stats.problems[-1].line == len(ds) + 1


def test_truncated_gzip_at_line_boundary_still_counts(tmp_path: Path) -> None:
    full = gzip.compress(b"".join(line(x) for x in _numbered(5)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[:-8])  # only the CRC/size trailer is missing
    ds, stats = read([path])
    assert (len(ds), stats.malformed_lines) == (5, 1)


def test_corrupt_gzip_is_content_problem(tmp_path: Path) -> None:
    full = bytearray(gzip.compress(b"".join(line(x) for x in _numbered(2000))))
    rng = random.Random(7)
    for i in range(len(full) // 2, len(full) // 2 + 64):
        full[i] = rng.randrange(256)
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(bytes(full))
    ds, stats = read([path])
    assert len(ds) < 2000
    assert stats.malformed_lines >= 1
    assert all(p.reason.startswith(("gzip:", "invalid JSON")) for p in stats.problems)


def test_gzip_magic_followed_by_garbage(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"\x1f\x8bthis is not deflate data at all" * 10)
    ds, stats = read([path])
    assert ds == []
    assert (stats.malformed_lines, stats.problems[0].reason) == (1, "gzip: not a valid gzip stream")


def test_binary_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    path.write_bytes(random.Random(1).randbytes(256 * 1024))
    ds, stats = read([path])
    assert ds == []
    assert stats.malformed_lines >= 1
    assert stats.malformed_lines == stats.lines


def test_fifty_megabyte_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    huge = b'{"event_name": "Purchase", "pad": "' + b"x" * (50 * 1024 * 1024) + b'"}\n'
    write(path, [ev("Before"), huge, ev("After")])
    del huge
    tracemalloc.start()
    try:
        ds, stats = read([path])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(d.line, d.events[0]["event_name"]) for d in ds] == [(1, "Before"), (3, "After")]
    assert stats.malformed_lines == 1
    assert stats.problems[0].reason == "line longer than 16777216 bytes"
    assert stats.bytes_read == path.stat().st_size
    # at most max_line_bytes (16 MiB) of the line is ever held, plus read buffers
    assert peak < 20 * 1024 * 1024


def test_long_line_in_gzip_and_small_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "big.jsonl.gz", [ev("A"), ev("B", pad="y" * 5000), ev("C")], gz=True)
    ds, stats = read([path], max_line_bytes=1024)
    assert [d.events[0]["event_name"] for d in ds] == ["A", "C"]
    assert stats.problems[0].reason == "line longer than 1024 bytes"


@pytest.mark.parametrize("pad", [100, 3 * 1024 * 1024])  # below and above the 1 MiB chunk
def test_line_limit_boundary(tmp_path: Path, pad: int) -> None:
    exact = line(ev("X", pad="p" * pad))[:-1]
    limit = len(exact)
    over = exact[:-1] + b" }"  # one byte longer, still valid JSON
    ds, stats = read_one(
        tmp_path, exact + b"\n", over + b"\n", exact + b"\r\n", exact, max_line_bytes=limit
    )
    # 1: exactly the limit (ok); 2 and 3: one byte over (a CR counts); 4: exact at EOF, no \n
    assert [(d.line, d.events[0]["event_name"]) for d in ds] == [(1, "X"), (4, "X")]
    assert [p.line for p in stats.problems] == [2, 3]
    assert stats.bytes_read == (tmp_path / "in.jsonl").stat().st_size


def test_long_valid_line_over_one_mebibyte(tmp_path: Path) -> None:
    big = ev("Big", pad="q" * (5 * 1024 * 1024))
    path = write(tmp_path / "big.jsonl.gz", [ev("A"), big, ev("C")], gz=True)
    ds, stats = read([path])
    assert [d.events[0]["event_name"] for d in ds] == ["A", "Big", "C"]
    assert ds[1].events[0] == big
    assert stats.malformed_lines == 0


# ----------------------------------------------------------------------------- opening


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone.jsonl"
    with pytest.raises(InputError, match=f"^{gone}: no such file or directory$"):
        read([gone])


def test_directory_as_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"^{tmp_path}: cannot open: is a directory$"):
        read([tmp_path])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_permission_denied_raises_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.jsonl", [ev()])
    path.chmod(0)
    with pytest.raises(InputError, match=f"^{path}: cannot open: permission denied$"):
        read([path])


def test_closing_early_closes_the_file(tmp_path: Path) -> None:
    # pytest turns an unclosed file's ResourceWarning into an error
    path = write(tmp_path / "a.jsonl.gz", _numbered(100), gz=True)
    stats = ReadStats()
    it = cast(Generator[Delivery, None, None], read_deliveries([InputFile(str(path))], stats))
    assert next(it).events[0]["event_name"] == "E1"
    it.close()
    assert (stats.files, stats.lines, stats.events) == (1, 1, 1)


def test_stdin(tmp_path: Path) -> None:
    stream = io.BytesIO(line(ev("A")) + b"\n" + line({"data": [ev("B")]}))
    stats = ReadStats()
    ds = list(read_deliveries([InputFile("<stdin>", is_stdin=True)], stats, stdin=stream))
    assert [(d.file, d.line, d.events[0]["event_name"]) for d in ds] == [
        ("<stdin>", 1, "A"),
        ("<stdin>", 3, "B"),
    ]
    assert not stream.closed  # the caller's stream is left open
    assert stats.bytes_read == len(stream.getvalue())


def test_gzip_on_stdin() -> None:
    stream = io.BufferedReader(io.BytesIO(gzip.compress(line(ev("Z")))))  # has peek()
    stats = ReadStats()
    (d,) = read_deliveries([InputFile("<stdin>", is_stdin=True)], stats, stdin=stream)
    assert d.events[0]["event_name"] == "Z"
    assert not stream.closed


def test_on_bytes_reports_on_disk_bytes_about_every_mib(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.jsonl", _numbered(12000))  # ~3 MB
    zipped = write(tmp_path / "b.jsonl.gz", _numbered(12000), gz=True)
    calls: list[int] = []
    _, stats = read([plain, zipped], on_bytes=calls.append)
    total = plain.stat().st_size + zipped.stat().st_size
    assert sum(calls) == stats.bytes_read == total
    assert all(c > 0 for c in calls)
    # about a MiB apart (on-disk bytes), plus the rest of each file at its end
    assert len(calls) == plain.stat().st_size // (1 << 20) + 1 + 1
    assert all(c >= 1 << 20 for c in calls[:3])


# ----------------------------------------------------------------------------- paths


def _touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(line(ev()))


def test_expand_directory_recursive_picks_log_files(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "b.jsonl",
        "a.ndjson",
        "sub/c.log",
        "sub/deep/d.jsonl.gz",
        "sub/e.LOG.gz",
        "sub/f.ndjson.gz",
        "notes.txt",
        "data.json",
        "x.csv.gz",
        "app.log.1",
    )
    files = expand_paths([str(tmp_path)])
    names = [os.path.relpath(f.path, tmp_path) for f in files]
    assert names == sorted(names)
    assert set(names) == {
        "b.jsonl",
        "a.ndjson",
        "sub/c.log",
        "sub/deep/d.jsonl.gz",
        "sub/e.LOG.gz",
        "sub/f.ndjson.gz",
    }
    assert all(f.path.startswith(str(tmp_path)) and not f.is_stdin for f in files)


def test_expand_glob_matched_as_written(tmp_path: Path) -> None:
    _touch(tmp_path, "a.jsonl", "b.jsonl.gz", "c.log", "sub/d.jsonl", "sub/x/e.jsonl.gz")
    flat = expand_paths([str(tmp_path / "*.jsonl*")])
    assert [os.path.basename(f.path) for f in flat] == ["a.jsonl", "b.jsonl.gz"]
    deep = expand_paths([str(tmp_path / "**" / "*.jsonl*")])
    assert [os.path.relpath(f.path, tmp_path) for f in deep] == [
        "a.jsonl",
        "b.jsonl.gz",
        "sub/d.jsonl",
        "sub/x/e.jsonl.gz",
    ]


def test_expand_order_duplicates_and_stdin(tmp_path: Path) -> None:
    _touch(tmp_path, "logs/a.jsonl", "logs/b.jsonl", "z.log")
    z = str(tmp_path / "z.log")
    files = expand_paths([z, "-", str(tmp_path / "logs"), str(tmp_path / "logs/b.jsonl"), "-", z])
    assert [(os.path.basename(f.path), f.is_stdin) for f in files] == [
        ("z.log", False),
        ("<stdin>", True),
        ("a.jsonl", False),
        ("b.jsonl", False),
    ]


def test_expand_explicit_file_with_any_suffix(tmp_path: Path) -> None:
    _touch(tmp_path, "capture.txt")
    assert expand_paths([str(tmp_path / "capture.txt")]) == [
        InputFile(str(tmp_path / "capture.txt"))
    ]


@pytest.mark.parametrize("missing", ["nope.jsonl", "logs/*.jsonl", "**/*.ndjson"])
def test_expand_missing_path_or_empty_glob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as err:
        expand_paths([missing])
    assert str(err.value) == f"{missing}: no such file or directory"


# ----------------------------------------------------------------------------- datasets


def _ds(ds_id: str, *logs: str) -> DatasetSettings:
    return DatasetSettings(id=ds_id, logs=list(logs))


def test_dataset_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "shop").mkdir()
    shop = tmp_path / "shop" / "x.jsonl"
    other = tmp_path / "other.jsonl"
    resolver = DatasetResolver([_ds("111", str(tmp_path / "shop" / "*.jsonl"))])
    write(shop, [{"request": {"data": [ev()]}}, {"pixel_id": 222, "request": {"data": [ev()]}}])
    write(other, [ev()])
    ds, _ = read([shop, other], resolver=resolver)
    # config glob for the file; the record's own id wins; otherwise "unknown"
    assert [d.dataset_id for d in ds] == ["111", "222", "unknown"]


def test_resolver_first_match_relative_globs_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    resolver = DatasetResolver(
        [
            _ds("a", "logs/*.ndjson"),
            _ds("b", "logs/**/*.jsonl*", "/elsewhere/*.jsonl"),
            _ds("c", "logs/*.jsonl"),  # also matches, but b comes first
        ]
    )
    assert resolver.for_file("logs/x.jsonl") == "b"
    assert resolver.for_file(str(tmp_path / "logs" / "deep" / "y.jsonl.gz")) == "b"
    assert resolver.for_file("./logs/../logs/z.ndjson") == "a"
    assert resolver.for_file("logs/sub/z.ndjson") is None  # "*" stays within one folder
    assert resolver.for_file("<stdin>") is None
    monkeypatch.chdir("/")  # answers are cached per path, and cwd was fixed at construction
    assert resolver.for_file("logs/x.jsonl") == "b"
    moved = DatasetResolver([_ds("a", "logs/*.jsonl")])  # now relative to "/"
    assert moved.for_file(str(tmp_path / "logs" / "x.jsonl")) is None
    assert moved.for_file("/logs/x.jsonl") == "a"


def test_resolver_sees_through_symlinks(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    via_link = DatasetResolver([_ds("L", str(tmp_path / "link" / "*.jsonl"))])
    assert via_link.for_file(str(real / "a.jsonl")) == "L"
    via_real = DatasetResolver([_ds("R", str(real / "*.jsonl"))])
    assert via_real.for_file(str(tmp_path / "link" / "a.jsonl")) == "R"


# ----------------------------------------------------------------------------- window


def test_since_until_filter_records_by_sent_at(tmp_path: Path) -> None:
    recs = [{"sent_at": T0 + k, "request": {"data": [ev(f"E{k}", T0 - 999)]}} for k in range(5)]
    ds, stats = read_one(tmp_path, *recs, since=T0 + 1, until=T0 + 3)
    assert [d.events[0]["event_name"] for d in ds] == ["E1", "E2"]  # since incl., until excl.
    assert (stats.lines, stats.events) == (5, 2)


def test_since_until_filter_events_without_sent_at(tmp_path: Path) -> None:
    body = {"data": [ev("old", T0 - 10), ev("in", T0), ev("in-ms", (T0 + 1) * 1000)]}
    ds, stats = read_one(tmp_path, body, ev("late", T0 + 100), since=T0, until=T0 + 50)
    (d,) = ds  # the bare event outside the window yields no delivery
    assert [e["event_name"] for e in d.events] == ["in", "in-ms"]
    assert (d.sent_count, stats.events) == (3, 2)


def test_window_drops_records_without_events_and_keeps_malformed_counts(tmp_path: Path) -> None:
    ds, stats = read_one(
        tmp_path,
        {"sent_at": T0, "request": {"data": []}},
        {"sent_at": T0 - 100, "request": {"data": [5]}},
        since=T0 - 1,
    )
    assert ds == []
    assert stats.malformed_events == 1
    unfiltered, _ = read_one(tmp_path, {"sent_at": T0, "request": {"data": []}})
    assert [d.sent_count for d in unfiltered] == [0]  # without a window it is still seen


# ----------------------------------------------------------------------------- streaming


def _peak_bytes(path: Path) -> int:
    stats = ReadStats()
    tracemalloc.start()
    try:
        for _ in read_deliveries([InputFile(str(path))], stats):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_log_size(tmp_path: Path) -> None:
    rec = {"sent_at": T0, "dataset_id": "1", "request": {"data": [ev(em="a" * 64)]}}
    one = line(rec)
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(one * 10_000)
    big.write_bytes(one * 100_000)
    peak_small, peak_big = _peak_bytes(small), _peak_bytes(big)
    assert peak_big <= 1.5 * peak_small, (peak_small, peak_big)


# ----------------------------------------------------------------------------- ranges


def text(obj: Any) -> bytes:
    """A line written by the standard library: integers of any size (orjson stops at 64 bits)."""
    return json.dumps(obj).encode() + b"\n"


OUT_OF_RANGE_LINES = [
    ("sent_at 1e300", {"sent_at": 1e300}, "sent_at: out of range"),
    ("sent_at of 30 digits", {"sent_at": 123456789012345678901234567890}, "sent_at: out of range"),
    ("sent_at before 1970", {"sent_at": "1969-12-31T23:59:59Z"}, "sent_at: out of range"),
    ("sent_at in the year 9999", {"sent_at": "9999-01-01T00:00:00Z"}, "sent_at: out of range"),
    ("sent_at as a huge numeric string", {"sent_at": "1e300"}, "sent_at: out of range"),
    ("status beyond HTTP", {"response": {"status": 10**12}}, "response.status: out of range"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("intent", "fields", "reason"), OUT_OF_RANGE_LINES, ids=[c[0] for c in OUT_OF_RANGE_LINES]
)
def test_out_of_range_fields_make_the_line_malformed(
    tmp_path: Path, intent: str, fields: dict[str, Any], reason: str
) -> None:
    deliveries, stats = read_one(tmp_path, text({"request": {"data": [ev()]}, **fields}))
    assert deliveries == [] and stats.malformed_lines == 1, intent
    assert stats.problems[0].reason == reason


@pytest.mark.parametrize("t", [1e300, -1, 1e14 + 1, 123456789012345678901234567890])
def test_out_of_range_event_times_make_the_event_malformed(tmp_path: Path, t: float) -> None:
    (d,), stats = read_one(tmp_path, text({"sent_at": T0, "request": {"data": [ev(t=t), ev()]}}))
    assert len(d.events) == 1 and stats.malformed_events == 1
    assert stats.problems[0].reason == "request.data[0]: event_time: out of range"


@pytest.mark.parametrize(
    ("code", "expected"),
    [(190, 190), ("190", 190), (" 190 ", 190), ("\u00b2", None), ("9" * 5000, None),
     (2**60, None), (-5, -5), (1.5, None), (True, None)],
)  # fmt: skip
def test_integer_fields_are_bounded_and_never_raise(
    tmp_path: Path, code: Any, expected: int | None
) -> None:
    body = {"error": {"code": code, "error_subcode": code}, "events_received": code}
    (d,), _ = read_one(tmp_path, text({**RECORD, "response": {"status": 400, "body": body}}))
    assert d.response is not None
    assert (d.response.error_code, d.response.error_subcode) == (expected, expected)
    assert d.response.events_received == expected


@pytest.mark.parametrize("duration", [10**400 // 10**100, -1e300, 1e300, "12"])
def test_duration_is_a_finite_number_or_unknown(tmp_path: Path, duration: Any) -> None:
    (d,), _ = read_one(tmp_path, text({**RECORD, "duration_ms": duration}))
    assert d.duration_ms is None or abs(d.duration_ms) <= 1e300


# ----------------------------------------------------------------------------- no answer


@pytest.mark.parametrize(
    ("logged", "word"),
    [
        ("timed_out", "timed_out"),
        ("ReadTimeout", "timed_out"),
        ("no status", "no_status"),
        (True, "failed"),
        # HTTP clients quote the request URL, token included: the text is never kept.
        (
            "Max retries exceeded with url: /v25.0/1/events?access_token=EAAFAKEtokenInLog",
            "failed",
        ),
    ],
)
def test_transport_error_is_a_failure_kept_as_one_word(
    tmp_path: Path, logged: object, word: str
) -> None:
    record = {**RECORD, "response": {"status": None, "transport_error": logged}}
    (d,), stats = read_one(tmp_path, record)
    assert d.response == ResponseInfo(transport_error=word)
    assert d.response.is_error
    assert stats.malformed_lines == 0


def test_transport_error_beside_a_status_is_ignored(tmp_path: Path) -> None:
    record = {**RECORD, "response": {"status": 200, "transport_error": "timed_out"}}
    (d,), _ = read_one(tmp_path, record)
    assert d.response is not None and d.response.transport_error is None


def test_expand_directory_takes_json_files_only_when_they_are_sender_exports(
    tmp_path: Path,
) -> None:
    formats = Path(__file__).resolve().parents[1] / "data" / "formats"
    sink = tmp_path / "run.googleapis.com" / "stdout" / "2026" / "11" / "20"
    sink.mkdir(parents=True)
    (sink / "14:00:00_14:59:59_S0.json").write_bytes(
        (formats / "cloud-logging.sink.json").read_bytes()
    )
    (tmp_path / "read.json").write_bytes((formats / "cloud-logging.gcloud.json").read_bytes())
    (tmp_path / "package.json").write_text('{"name": "shop", "version": "1.0.0"}\n')
    (tmp_path / "empty.json").write_bytes(b"")
    names = {os.path.relpath(f.path, tmp_path) for f in expand_paths([str(tmp_path)])}
    assert names == {"run.googleapis.com/stdout/2026/11/20/14:00:00_14:59:59_S0.json", "read.json"}

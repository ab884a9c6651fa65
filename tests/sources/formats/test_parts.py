"""The small parts: array splitting, field readers, format detection."""

from __future__ import annotations

import json

import orjson
import pytest

from monitor.sources.logs.formats import detect
from monitor.sources.logs.formats.array import ArraySplitter
from monitor.sources.logs.formats.fields import (
    decode_json,
    drop_tokens,
    events_dataset,
    failure_word,
    parse_duration,
    parse_time,
    pixel_id,
)
from tests.sources.formats.util import TOKEN, js, text

# ----------------------------------------------------------------------------- array


def split(lines: list[bytes], max_bytes: int = 1 << 20) -> list[tuple[int, object]]:
    s = ArraySplitter(max_bytes)
    pieces = [p for i, line in enumerate(lines, 1) for p in s.feed(line, i)] + s.flush()
    return [(p.line, orjson.loads(p.text) if p.text is not None else p.reason) for p in pieces]


def test_pretty_printed_array_element_by_element() -> None:
    items = [{"a": 1, "s": 'brackets ] } [ { and \\" quotes'}, {"b": [1, {"c": 2}]}]
    lines = text(json.dumps(items, indent=2).split("\n"))
    assert split(lines) == [(2, items[0]), (6, items[1])]


def test_one_line_array_and_bare_objects() -> None:
    assert split([b'[{"a":1},{"b":2}]\n', b'{"c":3}\n']) == [
        (1, {"a": 1}),
        (1, {"b": 2}),
        (2, {"c": 3}),
    ]


def test_stray_values_are_reported_once_per_line() -> None:
    assert split([b'[1, "x", {"a":1}]\n', b"junk text\n"]) == [
        (1, {"a": 1}),
        (1, "not a JSON object"),
        (2, "not a JSON object"),
    ]


def test_too_long_and_cut_short() -> None:
    big = b'[{"a": "' + b"x" * 100 + b'"},\n'
    assert split([big, b'{"b": 1},\n', b'{"c": \n'], max_bytes=50) == [
        (1, "entry longer than 50 bytes"),
        (2, {"b": 1}),
        (3, "incomplete JSON value at end of input"),
    ]


# ----------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("url", "dataset"),
    [
        (f"https://graph.facebook.com/v24.0/123/events?access_token={TOKEN}", "123"),
        ("https://graph.facebook.com/123/events", "123"),  # no version: the app's default
        ("https://graph.beta.facebook.com/v21.0/123/events/", "123"),
        ("https://graph.facebook.com/v21.0/123/product_catalogs", None),  # another endpoint
        (f"https://tr.snapchat.com/v3/123/events?access_token={TOKEN}", None),  # another vendor
        ("https://graph.facebook.com.evil.example/v21.0/123/events", None),
        ("not a url", None),
        (None, None),
    ],
)
def test_events_dataset(url: object, dataset: str | None) -> None:
    assert events_dataset(url) == dataset


def test_configured_graph_hosts_are_graph() -> None:
    url = "http://127.0.0.1:8080/v25.0/42/events"
    assert events_dataset(url) is None
    assert events_dataset(url, frozenset({"127.0.0.1"})) == "42"


def test_drop_tokens_from_body_and_events() -> None:
    body = {
        "access_token": TOKEN,
        "appsecret_proof": "p",
        "data": [{"event_name": "x", "access_token": TOKEN}],
    }
    assert drop_tokens(body) == {"data": [{"event_name": "x"}]}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2026-05-12T09:14:03.123456789Z", 1778577243.123456),  # Cloud Logging: nanoseconds
        ("2026-05-12T09:14:03+00:00", 1778577243.0),  # WooCommerce
        ("2026-05-12 09:14:03.5 UTC", 1778577243.5),  # BigQuery TIMESTAMP text
        ("1778577243123", 1778577243.123),  # BigQuery INT64 milliseconds as text
        (1778577243123, 1778577243.123),
        (1778577243, 1778577243.0),
        ("yesterday", None),
        (None, None),
    ],
)
def test_parse_time(value: object, seconds: float | None) -> None:
    got = parse_time(value)
    assert got == pytest.approx(seconds) if seconds is not None else got is None


def test_decode_json_unwraps_twice_encoded_text() -> None:
    body = {"events_received": 1}
    assert decode_json(js(js(body))) == body
    assert decode_json("<html>Bad gateway</html>") == "<html>Bad gateway</html>"


def test_small_readers() -> None:
    assert pixel_id("Request failed or timed out. Pixel ID: 42") == "42"
    assert pixel_id({"Pixel ID": 1}) is None
    assert parse_duration("0.41234s") == 412.34
    assert failure_word('{"reason":"timed_out"}') == "timed_out"
    assert failure_word(f'{{"reason":"{TOKEN}?x=1"}}') == "failed"  # never kept verbatim


# ----------------------------------------------------------------------------- detect


def lines_of(*objs: object) -> list[bytes]:
    return [(x if isinstance(x, str) else js(x)).encode() + b"\n" for x in objs]


@pytest.mark.parametrize(
    ("lines", "fmt"),
    [
        (lines_of({"sent_at": 1, "request": {"data": []}}), "v1"),
        (lines_of({"event_name": "Purchase", "event_time": 1}), "v1"),
        (
            lines_of("Listening on port 8080", {"Name": "GA4", "Type": "Request", "TraceId": "t"}),
            "gtms",
        ),
        # BigQuery rows carry event_name, and must not be taken for v1 bare events.
        (
            lines_of({"type": "Request", "tag_name": "Facebook", "event_name": "Purchase"}),
            "gtms-bigquery",
        ),
        (lines_of({"insertId": "x", "textPayload": "hello"}), "cloud-logging"),
        (
            lines_of("[", '  {"insertId": "x",', '   "timestamp": "2026-05-12T00:00:00Z"}', "]"),
            "cloud-logging",
        ),
        (
            lines_of('[{"type":"Response","tag_name":"Facebook","response_status_code":"200"}]'),
            "gtms-bigquery",
        ),
        (lines_of("[", "  {"), "cloud-logging"),  # an array cut in the first lines
        (
            lines_of("    [x-fb-rev] => 1", ")", "", "2026-05-12T09:14:03+00:00 NOTICE Response"),
            "woocommerce",
        ),
        (lines_of({"foo": 1}, "plain text"), None),
        ([b"\xef\xbb\xbf" + js({"data": []}).encode()], "v1"),  # a BOM
    ],
)
def test_detect(lines: list[bytes], fmt: str | None) -> None:
    assert detect(lines) == fmt

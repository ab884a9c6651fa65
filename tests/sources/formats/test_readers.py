"""Each format reader on the cases the samples do not spell out, and their streaming."""

from __future__ import annotations

from typing import Any

from monitor.sources.logs.formats import open_reader
from tests.sources.formats.util import DATA, TOKEN, js, run_file, run_lines, text

URL = f"https://graph.facebook.com/v24.0/111/events?access_token={TOKEN}"
EVENT = {"event_name": "Purchase", "event_time": 1778577000, "action_source": "website"}
OK = {"events_received": 1, "messages": [], "fbtrace_id": "AFake"}


def request(**extra: Any) -> dict[str, Any]:
    return {
        "Name": "Facebook",
        "Type": "Request",
        "EventName": "Purchase",
        "RequestMethod": "POST",
        "RequestUrl": URL,
        "RequestBody": {"data": [EVENT]},
        **extra,
    }


def response(**extra: Any) -> dict[str, Any]:
    return {
        "Name": "Facebook",
        "Type": "Response",
        "EventName": "Purchase",
        "ResponseStatusCode": 200,
        "ResponseHeaders": {},
        "ResponseBody": js(OK),
        "Message": "Pixel ID: 111",
        **extra,
    }


# ----------------------------------------------------------------------------- gtms


def test_gtms_record_comes_out_with_its_response_line() -> None:
    reader = open_reader("gtms")
    assert reader.feed(text([js(request())])[0], 1) == []
    (emitted,) = reader.feed(text([js(response())])[0], 2)
    assert emitted.line == 1
    assert emitted.record == {
        "dataset_id": "111",
        "request": {"data": [EVENT]},
        "response": {"status": 200, "body": OK},
    }
    assert reader.flush() == []


def test_gtms_older_tag_versions_and_variants() -> None:
    # Before 2026 the tag put TraceId second and no Pixel ID in the Message; a body may
    # come as JSON text; a token in the body is dropped; GET and other URLs are skipped.
    old_response = response(TraceId="t1")
    del old_response["Message"]
    run = run_lines(
        "gtms",
        text(
            [
                js(
                    {
                        "Name": "Facebook",
                        "Type": "Request",
                        "TraceId": "t1",
                        **request(RequestBody=js({"data": [EVENT], "access_token": TOKEN})),
                    }
                ),
                js(old_response),
                js(request(RequestMethod="GET")),
                js(request(RequestUrl="https://graph.facebook.com/v24.0/111/adspixels")),
                js({**request(Type="Request-Response"), **response(Type="Request-Response")}),
            ]
        ),
    )
    assert [r["request"] for r in run.dicts] == [{"data": [EVENT]}] * 2
    assert [r["response"]["status"] for r in run.dicts] == [200, 200]
    assert run.counts.skipped == 2


def test_gtms_failed_call_has_no_status() -> None:
    failed = {
        "Name": "Facebook",
        "Type": "Response",
        "EventName": "Purchase",
        "Message": "Request failed or timed out. Pixel ID: 111",
        "Reason": js({"reason": "failed"}),
    }
    run = run_lines("gtms", text([js(request()), js(failed)]))
    assert run.dicts[0]["response"] == {"status": None, "transport_error": "failed"}


def test_gtms_malformed_entries_are_reported_without_content() -> None:
    run = run_lines(
        "gtms",
        text(
            [
                '{"Name":"Facebook","Type":"Request","RequestUrl":"' + URL + '"',  # cut short
                js(request(RequestBody=None)),
                js(response(ResponseStatusCode="two hundred")),
            ]
        ),
    )
    reasons = [why for _, why in run.problems]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1:] == ["RequestBody: missing", "ResponseStatusCode: expected an integer"]
    assert all(TOKEN not in why for _, why in run.problems)
    assert run.counts.malformed == 3
    assert run.counts.unpaired_responses == 0  # the broken request's answer is not orphaned


# ----------------------------------------------------------------------------- cloud-logging


def entry(n: int, t: str, payload: dict[str, Any] | str) -> str:
    key = "textPayload" if isinstance(payload, str) else "jsonPayload"
    return js({"insertId": f"id{n}", "timestamp": t, key: payload, "logName": "x"})


def test_cloud_logging_text_payload_duplicates_and_bad_time() -> None:
    run = run_lines(
        "cloud-logging",
        text(
            [
                entry(1, "2026-05-12T09:00:00.000000001Z", js(request())),
                entry(1, "2026-05-12T09:00:00.000000001Z", js(request())),  # a sink's second write
                entry(2, "2026-05-12T09:00:00.25Z", response()),
                entry(3, "not a time", request()),
                entry(4, "2026-05-12T09:00:01Z", "Listening on port 8080"),
            ]
        ),
    )
    (record,) = run.dicts
    assert record["sent_at"] == 1778576400.0
    assert record["duration_ms"] == 250.0
    assert run.problems == [(4, "timestamp: unparsable")]
    assert run.counts.skipped == 2


def test_cloud_logging_newest_first_beyond_the_reorder_window() -> None:
    lines = []
    for n in range(50):  # newest first, as gcloud prints; answers come before requests
        minute = 59 - n
        lines.append(entry(2 * n, f"2026-05-12T09:{minute:02d}:00.3Z", response()))
        lines.append(entry(2 * n + 1, f"2026-05-12T09:{minute:02d}:00Z", request()))
    run = run_lines("cloud-logging", text(lines), reorder_window=4)
    assert len(run.dicts) == 50
    assert {r["duration_ms"] for r in run.dicts} == {300.0}
    assert run.counts.unpaired_responses == 0


# ----------------------------------------------------------------------------- bigquery


def row(kind: str, ms: int, **cols: Any) -> dict[str, Any]:
    return {
        "timestamp": str(ms),
        "type": kind,
        "tag_name": "Facebook",
        "event_name": "Purchase",
        "trace_id": None,
        **cols,
    }


def test_bigquery_query_array_int64_text_and_double_encoding() -> None:
    rows = [
        row(
            "Response",
            1778577243500,
            response_status_code="400",
            response_body=js(js({"error": {"code": 190, "fbtrace_id": "x"}})),
            message="Pixel ID: 111",
        ),
        row(
            "Request",
            1778577243000,
            request_url=URL,
            request_method="POST",
            request_body=js({"data": [EVENT]}),
        ),
    ]
    run = run_lines("gtms-bigquery", [js(rows).encode() + b"\n"])
    (record,) = run.dicts
    assert record["sent_at"] == 1778577243.0
    assert record["response"] == {
        "status": 400,
        "body": {"error": {"code": 190, "fbtrace_id": "x"}},
    }


# ----------------------------------------------------------------------------- woocommerce

WC_REQUEST = [
    "2026-05-12T09:14:03+00:00 NOTICE Request",
    "method: POST",
    "uri: https://graph.facebook.com/v21.0/111/events",
    "user-agent: Facebook-for-WooCommerce/3.5.4 (WooCommerce/9.8.1; WordPress/6.8.1)",
    'body: {"data":[{"event_name":"Purchase","event_time":1778577000,'
    '"event_source_url":"https:\\/\\/shop.example.com\\/"}]}',
    "duration: 0.5s",
    "",
]


def test_woocommerce_entry_is_complete_at_its_last_key() -> None:
    reader = open_reader("woocommerce")
    out = [e for i, line in enumerate(text(WC_REQUEST), 1) for e in reader.feed(line, i)]
    assert out == []
    answer = ["2026-05-12T09:14:03+00:00 NOTICE Response", "code: 200", "message: OK"]
    for i, line in enumerate(text(answer), 10):
        assert reader.feed(line, i) == []
    (emitted,) = reader.feed(text(["body: " + js(OK)])[0], 13)  # no need to wait for more
    assert emitted.record["request"]["data"][0]["event_source_url"] == "https://shop.example.com/"
    assert emitted.record["duration_ms"] == 500.0
    assert emitted.record["sent_at"] == 1778577243.0


def test_woocommerce_no_answer_and_resume_offset() -> None:
    reader = open_reader("woocommerce")
    offset = 0
    for i, line in enumerate(text(WC_REQUEST[:3]), 1):
        reader.feed(line, i, offset)
        offset += len(line)
    assert reader.resume_offset() == 0  # the open entry starts there
    lines = text(
        [*WC_REQUEST[3:], "2026-05-12T09:14:33+00:00 NOTICE Response", "code:", "message:", "body:"]
    )
    out = [e for i, line in enumerate(lines, 4) for e in reader.feed(line, i)]
    assert out[0].record["response"] == {"status": None, "transport_error": "no status"}
    assert reader.resume_offset() is None


def test_woocommerce_over_long_entry() -> None:
    lines = [*WC_REQUEST[:4], "body: " + js({"data": [EVENT] * 50}), "duration: 0.1s"]
    run = run_lines("woocommerce", text(lines), max_entry_bytes=600)
    assert run.problems == [(1, "entry longer than 600 bytes")]
    assert run.dicts == []


# ----------------------------------------------------------------------------- streaming


def test_state_stays_bounded_when_answers_never_come() -> None:
    reader = open_reader("gtms", max_pending=50)
    line = text([js(request())])[0]
    emitted = 0
    for i in range(1, 5001):
        emitted += len(reader.feed(line, i))
        assert reader.pending <= 50
    emitted += len(reader.flush())
    assert emitted == 5000  # every one a delivery with unknown outcome


def test_records_come_out_while_reading_not_at_the_end() -> None:
    lines = (DATA / "gtms.log").read_bytes().splitlines(keepends=True)
    reader = open_reader("gtms")
    during = sum(len(reader.feed(line, i)) for i, line in enumerate(lines, 1))
    at_end = len(reader.flush())
    assert (during, at_end) == (9, 1)  # only the call that never got an answer waits


def test_feeding_across_reads_equals_one_read() -> None:
    whole = run_file(DATA / "woocommerce.log")
    lines = (DATA / "woocommerce.log").read_bytes().splitlines(keepends=True)
    reader = open_reader("woocommerce")
    out = []
    for start in range(0, len(lines), 7):  # a tailer's reads: a few lines at a time
        for i, line in enumerate(lines[start : start + 7], start + 1):
            out += reader.feed(line, i)
    out += reader.flush()
    assert [e.record for e in out] == whole.dicts

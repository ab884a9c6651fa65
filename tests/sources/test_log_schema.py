"""The delivery-log JSON Schema accepts the contract's examples, rejects malformed lines,
and agrees with the reader on which lines are well-formed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from monitor.model.observations import ReadStats
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "delivery-log-v1.schema.json"
T0 = 1795176000

# docs/contracts.md §1, verbatim where the contract gives a complete line.
CONTRACT_RECORD = {
    "sent_at": "2026-11-20T12:00:03Z",
    "dataset_id": "1234567890",
    "request": {
        "data": [{"event_name": "Purchase", "event_time": 1795176000, "...": "..."}],
        "test_event_code": "TEST123",
        "partner_agent": "myplatform",
    },
    "response": {
        "status": 200,
        "body": {"events_received": 1, "messages": [], "fbtrace_id": "AbC"},
    },
    "duration_ms": 143,
}
CONTRACT_ERROR_BODY = {
    "error": {"code": 190, "error_subcode": 463, "message": "...", "fbtrace_id": "..."}
}
EVENT = {"event_name": "Purchase", "event_time": T0, "action_source": "website"}

VALID: list[tuple[str, Any]] = [
    ("contract record", CONTRACT_RECORD),
    (
        "contract error envelope",
        {**CONTRACT_RECORD, "response": {"status": 400, "body": CONTRACT_ERROR_BODY}},
    ),
    ("contract bare request", {"data": [EVENT], "test_event_code": "TEST123"}),
    ("contract bare event", EVENT),
    ("aliases", {"ts": T0, "pixel_id": 1234567890, "request": {"data": [EVENT]}}),
    ("offset without colon", {"sent_at": "2026-11-20T12:00:03+0000", "request": {"data": []}}),
    ("SDK string items", {"request": {"data": [orjson.dumps(EVENT).decode()]}}),
    ("data as one string", {"data": orjson.dumps([EVENT]).decode()}),
    ("body as text", {"request": {"data": [EVENT]}, "response": {"status": 502, "body": "<h1>"}}),
    ("no response", {"sent_at": T0, "request": {"data": [EVENT]}}),
    ("underscore keys", {"_source": "relay", "request": {"data": [EVENT]}, "_x": [1]}),
]

INVALID: list[tuple[str, Any]] = [
    ("array line", [EVENT]),
    ("string line", "Purchase"),
    ("no shape", {"foo": 1}),
    ("only ignored keys", {"_request": {"data": [EVENT]}}),
    ("request not an object", {"request": [EVENT]}),
    ("request without data", {"request": {}}),
    ("data an object", {"data": {"0": EVENT}}),
    ("sent_at bool", {"sent_at": True, "request": {"data": [EVENT]}}),
    ("sent_at words", {"sent_at": "yesterday", "request": {"data": [EVENT]}}),
    ("status as text", {"request": {"data": [EVENT]}, "response": {"status": "200"}}),
    ("response a list", {"request": {"data": [EVENT]}, "response": [200]}),
    ("event_name a number", {"event_name": 7, "event_time": T0}),
    ("event_time as text", {"data": [{"event_name": "Lead", "event_time": "1795176000"}]}),
    ("event_time bool", {"event_name": "Lead", "event_time": True}),
    ("event item a number", {"request": {"data": [EVENT, 5]}}),
]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _reader_accepts(tmp_path: Path, obj: Any) -> bool:
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(obj) + b"\n")
    stats = ReadStats()
    list(read_deliveries([InputFile(str(path))], stats))
    return stats.malformed_lines == 0 and stats.malformed_events == 0


@pytest.mark.parametrize(("label", "obj"), VALID, ids=[v[0] for v in VALID])
def test_valid_lines(
    validator: jsonschema.Draft202012Validator, tmp_path: Path, label: str, obj: Any
) -> None:
    errors = [e.message for e in validator.iter_errors(obj)]
    assert errors == []
    assert _reader_accepts(tmp_path, obj)


@pytest.mark.parametrize(("label", "obj"), INVALID, ids=[v[0] for v in INVALID])
def test_invalid_lines(
    validator: jsonschema.Draft202012Validator, tmp_path: Path, label: str, obj: Any
) -> None:
    assert not validator.is_valid(obj)
    assert not _reader_accepts(tmp_path, obj)


def test_every_field_is_documented() -> None:
    """Each property of the three shapes carries a description for users."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    defs = schema["$defs"]
    undocumented = [
        f"{shape}.{name}"
        for shape in ("record", "requestBody", "event", "successBody")
        for name, spec in defs[shape]["properties"].items()
        if "description" not in spec
    ]
    nested = defs["record"]["properties"]
    for group in (nested["request"]["properties"], nested["response"]["properties"]):
        undocumented += [name for name, spec in group.items() if "description" not in spec]
    assert undocumented == []

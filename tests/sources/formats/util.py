"""Shared by the sender-format tests: run a reader over a file, the samples, the token."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from monitor.sources.logs.formats import FormatCounts, detect, open_reader
from monitor.sources.logs.formats.pairing import Emitted

DATA = Path(__file__).resolve().parents[2] / "data" / "formats"
TOKEN = "EAAFAKETOKENcapimonitor123"  # planted in every URL a writer puts one in
PROOF = "fakeproof0capimonitor0appsecret0proof"
NOW = 1778580000.0  # 2026-05-12T10:00:00Z, just after the samples

# sample -> (format, its v1 twin, expected counts: entries, skipped, unpaired, malformed)
SAMPLES: dict[str, tuple[str, str, tuple[int, int, int, int]]] = {
    "gtms.log": ("gtms", "gtms.v1.jsonl", (27, 6, 1, 1)),
    "cloud-logging.sink.json": ("cloud-logging", "cloud-logging.v1.jsonl", (29, 8, 1, 1)),
    "cloud-logging.gcloud.json": ("cloud-logging", "cloud-logging.v1.jsonl", (28, 7, 1, 1)),
    "gtms-bigquery.ndjson": ("gtms-bigquery", "gtms-bigquery.v1.jsonl", (25, 4, 1, 1)),
    "woocommerce.log": ("woocommerce", "woocommerce.v1.jsonl", (24, 5, 1, 1)),
}


@dataclass
class Run:
    records: list[Emitted] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    counts: FormatCounts = field(default_factory=FormatCounts)

    @property
    def dicts(self) -> list[dict[str, Any]]:
        return [e.record for e in self.records]


def run_lines(fmt: str, lines: list[bytes], **options: Any) -> Run:
    """Feed ``lines`` (with their newlines) to a fresh reader, then flush."""
    run = Run()
    reader = open_reader(fmt, lambda line, why: run.problems.append((line, why)), **options)
    offset = 0
    for lineno, line in enumerate(lines, 1):
        run.records += reader.feed(line, lineno, offset)
        offset += len(line)
    run.records += reader.flush()
    run.counts = reader.counts
    return run


def run_file(path: Path, fmt: str | None = None, **options: Any) -> Run:
    lines = path.read_bytes().splitlines(keepends=True)
    return run_lines(fmt or detect(lines) or "v1", lines, **options)


def text(lines: list[str]) -> list[bytes]:
    return [(x + "\n").encode() for x in lines]


def js(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def canonical(records: list[dict[str, Any]]) -> list[str]:
    """Records in a comparable, order-free form."""
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode() for r in records)


def twin(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (DATA / name).read_bytes().splitlines() if x.strip()]

"""Fuzz: a damaged line costs only itself (issue 11, "no poison lines").

Between two valid lines, one line damaged at random (bit flips, cuts, inserted bytes,
wrong types and absurd numbers at every key path). The reader must never raise, must
hand on both valid lines whole, and whatever it hands on must be judged by every check
and rolled up without an error: values out of range are stopped at the source.
"""

from __future__ import annotations

import io
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import settings_from_dict
from monitor.engine.audit import DatasetAudit
from monitor.model.observations import Delivery, ReadStats
from monitor.sources.logs.fields import TIME_MAX, TIME_MIN
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries
from tests.support import poison

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays deterministic
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """One poison line made from a random base line."""
    base = draw(st.sampled_from(poison.BASES))(draw(st.integers(0, 50)))
    line = orjson.dumps(base)
    kind = draw(st.sampled_from(["replace", "json", "flip", "insert", "truncate", "bytes"]))
    if kind in ("replace", "json"):
        path = draw(st.sampled_from(list(poison.key_paths(base))))
        raw = (
            draw(st.sampled_from(poison.RAW_VALUES))
            if kind == "replace"
            else orjson.dumps(draw(JSON_VALUES))
        )
        out = poison.replace_at(base, path, raw)
    elif kind == "flip":
        out = line
        for _ in range(draw(st.integers(1, 3))):
            out = poison.flip(out, draw(st.integers(0, 10**6)), draw(st.integers(0, 7)))
    elif kind == "insert":
        text = draw(st.sampled_from(poison.INSERTS) | st.binary(min_size=1, max_size=4))
        out = poison.insert(line, draw(st.integers(0, 10**6)), text)
    elif kind == "truncate":
        out = poison.truncate(line, draw(st.integers(1, 10**6)))
    else:
        out = draw(st.binary(max_size=200))
    return out.replace(b"\n", b" ")


def read(content: bytes) -> tuple[list[Delivery], ReadStats]:
    stats = ReadStats()
    source = [InputFile("<stdin>", is_stdin=True)]
    return list(read_deliveries(source, stats, stdin=io.BytesIO(content))), stats


SETTINGS = settings_from_dict({})


def judge(deliveries: list[Delivery]) -> dict[str, DatasetAudit]:
    audits: dict[str, DatasetAudit] = {}
    for d in deliveries:
        audit = audits.get(d.dataset_id)
        if audit is None:
            audit = audits[d.dataset_id] = DatasetAudit(d.dataset_id, SETTINGS, poison.NOW)
        audit.observe(d)
    return audits


def assert_sane(d: Delivery) -> None:
    """What the reader promises every consumer about the numbers it hands on."""
    assert len(d.times) == len(d.events)
    for t in d.times:
        assert TIME_MIN <= t < TIME_MAX
    if d.sent_at is not None:
        assert TIME_MIN <= d.sent_at < TIME_MAX
    if d.duration_ms is not None:
        assert math.isfinite(d.duration_ms)
    r = d.response
    if r is not None:
        assert r.status is None or 0 <= r.status <= 999
        for code in (r.events_received, r.error_code, r.error_subcode):
            assert code is None or abs(code) < 2**53


@FUZZ
@given(damaged(), st.sampled_from(poison.BASES), st.sampled_from(poison.BASES))
def test_a_poison_line_costs_only_itself(bad: bytes, first: Any, last: Any) -> None:
    before, after = first(1), last(2)
    content = orjson.dumps(before) + b"\n" + bad + b"\n" + orjson.dumps(after) + b"\n"
    deliveries, stats = read(content)
    by_line = {d.line: d for d in deliveries}
    assert len(by_line[1].events) == poison.valid_events(before)
    assert len(by_line[3].events) == poison.valid_events(after)
    assert stats.lines in (2, 3)  # the damaged line may have become blank
    for d in deliveries:
        assert_sane(d)
    audits = judge(deliveries)
    for audit in audits.values():
        report = audit.report()
        assert audit.failures == {} and audit.rollup_failures == 0
        orjson.dumps(report.to_dict())
        for row in report.rollups:
            assert 0 <= row.hour < TIME_MAX and row.hour % 3600 == 0


def test_the_fixed_corpus_never_raises_and_keeps_every_valid_event() -> None:
    """Every deterministic poison line between valid lines (see tests.support.poison)."""
    bad = poison.corpus()
    good = [orjson.dumps(poison.record(k)) for k in range(len(bad))]
    content = b"".join(g + b"\n" + b + b"\n" for g, b in zip(good, bad, strict=True))
    deliveries, stats = read(content)
    valid = {d.line: d for d in deliveries if d.line % 2 == 1}
    assert len(valid) == len(good) and all(len(d.events) == 2 for d in valid.values())
    assert stats.malformed_lines + stats.malformed_events > len(bad) // 2
    for d in deliveries:
        assert_sane(d)
    for audit in judge(deliveries).values():
        audit.report()
        assert audit.failures == {} and audit.rollup_failures == 0

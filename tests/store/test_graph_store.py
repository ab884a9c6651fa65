"""Graph snapshots in the store: upsert without double counting, history, no secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.model.graph import GraphErrorKind, Part, TokenInfo
from monitor.store import Store
from monitor.store.graph import (
    load_graph_history,
    record_graph,
    stored_polls,
    stored_source_counts,
)
from monitor.store.tables.core import metadata
from tests.support.graphutil import (
    DAY,
    HOUR,
    NOW,
    da,
    dedupe,
    diag,
    failure,
    judged_hours,
    quality,
    snapshot,
    sources,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'capi.db'}") as s:
        yield s


def test_rereading_the_same_hours_replaces_instead_of_adding(store: Store) -> None:
    first = snapshot(source_counts=sources("Purchase", 40, 44))
    record_graph(store, [first])
    # An hour later the 48 h window overlaps 47 hours; Meta's numbers for them changed.
    later_hours = [h + HOUR for h in judged_hours()]
    second = dataclasses.replace(
        snapshot(source_counts=sources("Purchase", 41, 45, later_hours)), polled_at=NOW + HOUR
    )
    record_graph(store, [second])
    record_graph(store, [second])  # and the same poll twice
    rows = stored_source_counts(store, "123")
    by_hour = {int(r.hour.timestamp()): (r.browser, r.server) for r in rows}
    assert len(rows) == 25  # 24 hours + the new one, each once
    assert by_hour[judged_hours()[0]] == (40, 44)  # not re-read: kept
    assert all(by_hour[h] == (41, 45) for h in later_hours)  # re-read: replaced, not added


def test_dataset_wide_counts_round_trip(store: Store) -> None:
    record_graph(store, [snapshot(source_counts=sources(None, 5, 6, [judged_hours()[0]]))])
    [row] = stored_source_counts(store, "123")
    assert row.event is None and (row.browser, row.server) == (5, 6)


def test_history_excludes_the_current_poll_and_old_readings(store: Store) -> None:
    def reading(t: float, score: float, em: float) -> None:
        q = quality("Purchase", composite_score=score, match_key_coverage={"em": em})
        record_graph(store, [dataclasses.replace(snapshot(quality_=[q]), polled_at=t)])

    reading(NOW - 10 * DAY, 1.0, 10.0)  # outside the 7-day window
    reading(NOW - 2 * DAY, 8.0, 95.0)
    reading(NOW - 1 * DAY, 8.2, 96.0)
    reading(NOW, 3.0, 5.0)  # the poll being judged
    hist = load_graph_history(store, ["123", "999"], now=NOW, window=7 * DAY)
    assert hist["123"].scores("Purchase") == [8.0, 8.2]
    assert hist["123"].key_coverages("Purchase", "em") == [95.0, 96.0]
    assert hist["123"].median_score("Purchase") == pytest.approx(8.1)
    assert hist["999"].points == {}  # every asked dataset gets a (possibly empty) history


def test_same_clock_replaces_its_own_poll(store: Store) -> None:
    for score in (8.0, 7.0):
        q = quality("Purchase", composite_score=score)
        record_graph(store, [snapshot(quality_=[q], da_checks=[da("pixel_decline", "failed")])])
    hist = load_graph_history(store, ["123"], now=NOW + 1, window=DAY)
    assert hist["123"].scores("Purchase") == [7.0]
    assert len(stored_polls(store, "123")) == 1


def test_quality_and_poll_rows_keep_what_was_read(store: Store) -> None:
    q = quality(
        "Purchase",
        composite_score=None,
        coverage_pct=33.3,
        coverage_goal_pct=75.0,
        dedupe=[dedupe(100, 12)],
        upload_frequency="daily",
        diagnostics=[diag()],
    )
    snap = snapshot(
        quality_=[q, quality("PageView")],
        da_checks=[da("pixel_decline", "failed")],
        errors=[failure(Part.STATS_MATCH_KEYS, GraphErrorKind.RATE_LIMITED, 17)],
    )
    assert record_graph(store, [snap]) == 1
    [poll] = stored_polls(store)
    assert poll["da_checks"][0]["result"] == "failed"
    assert poll["token"]["valid"] is True and poll["errors"][0]["kind"] == "rate_limited"
    table = metadata.tables["graph_quality"]
    cols = (table.c.event_name, table.c.composite_score, table.c.dedupe, table.c.upload_frequency)
    with store.engine.connect() as conn:
        rows = conn.execute(select(*cols).order_by(table.c.event_name)).all()
    assert tuple(rows[0]) == ("PageView", None, None, None)  # unknown stays unknown, not 0
    assert tuple(rows[1]) == (
        "Purchase",
        None,
        [{"key": "event_id", "browser_pct": 100, "server_pct": 12, "overall_pct": None}],
        "daily",
    )


def test_no_secret_reaches_the_database_file(tmp_path: Path) -> None:
    token = "EAAB" + "s3cr3t" * 8
    db = tmp_path / "capi.db"
    with Store.open(f"sqlite:///{db}") as s:
        snap = snapshot(
            token=TokenInfo(valid=False, checked_at=NOW, error=f"bad token {token}", code=190),
            errors=[
                dataclasses.replace(
                    failure(Part.STATS_EVENT), message_scrubbed=f"GET ?access_token={token}"
                )
            ],
            da_checks=[da("pixel_decline", "failed", title="mail jane.doe@example.com")],
        )
        record_graph(s, [snap])
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("capi.db"))
    assert token.encode() not in data
    assert b"jane.doe@example.com" not in data


def test_nothing_to_record(store: Store) -> None:
    assert record_graph(store, []) == 0
    assert load_graph_history(store, [], now=NOW, window=DAY) == {}

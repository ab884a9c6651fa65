"""Request/Response pairing: keys, adjacency, order, give-up rules, bounded state."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.sources.logs.formats.pairing import Answer, Call, Emitted, FormatCounts, Pairer

BODY = {"data": [{"event_name": "Purchase", "event_time": 1}]}


def call(
    seq: int,
    *,
    t: float | None = None,
    tag: str | None = "Facebook",
    trace: str | None = None,
    event: str | None = "Purchase",
    dataset: str | None = "1",
    other: bool = False,
) -> Call:
    request = None if other else {"n": seq, **BODY}
    return Call(seq, seq, t, tag, trace, event, None if other else dataset, request)


def answer(
    seq: int,
    *,
    t: float | None = None,
    tag: str | None = "Facebook",
    trace: str | None = None,
    event: str | None = "Purchase",
    dataset: str | None = None,
    status: int | None = 200,
    graph: bool = False,
) -> Answer:
    return Answer(seq, seq, t, tag, trace, event, dataset, status, {"seq": seq}, None, graph)


def pairer(**kw: Any) -> tuple[Pairer, list[Emitted], FormatCounts]:
    out: list[Emitted] = []
    counts = FormatCounts()
    return Pairer(out, counts, **kw), out, counts


def pairs(out: list[Emitted]) -> list[tuple[int, int | None]]:
    """(request seq, answer seq or None) per record."""
    return [
        (
            e.record["request"]["n"],
            e.record["response"]["body"]["seq"] if "response" in e.record else None,
        )
        for e in out
    ]


def test_adjacent_request_and_response_make_one_record() -> None:
    p, out, counts = pairer()
    p.call(call(1))
    assert out == []  # waits for its answer
    p.answer(answer(2))
    assert pairs(out) == [(1, 2)]
    assert out[0].record == {
        "dataset_id": "1",
        "request": {"n": 1, **BODY},
        "response": {"status": 200, "body": {"seq": 2}},
    }
    assert counts.deliveries == 1


def test_trace_id_wins_over_adjacency() -> None:
    p, out, _ = pairer()
    p.call(call(1, trace="a"))
    p.call(call(2, trace="b"))
    p.answer(answer(3, trace="a"))
    p.answer(answer(4, trace="b"))
    assert pairs(out) == [(1, 3), (2, 4)]


def test_pixel_id_separates_a_multi_pixel_call() -> None:
    p, out, _ = pairer()
    p.call(call(1, dataset="111"))
    p.call(call(2, dataset="222"))
    p.answer(answer(3, dataset="111"))
    p.answer(answer(4, dataset="222"))
    assert pairs(out) == [(1, 3), (2, 4)]


def test_without_keys_the_closest_request_answers() -> None:
    # A request whose answer was lost does not take the next call's answer.
    p, out, _ = pairer()
    p.call(call(1))
    p.call(call(2))
    p.answer(answer(3))
    p.flush()
    assert sorted(pairs(out), key=str) == [(1, None), (2, 3)]


def test_event_names_and_tags_must_agree() -> None:
    p, out, counts = pairer()
    p.call(call(1, event="Lead"))
    p.answer(answer(2, event="Purchase", graph=True))  # Facebook's, but not this call's
    p.answer(answer(3, tag="TikTok"))  # another tag's answer
    p.flush()
    assert pairs(out) == [(1, None)]
    assert (counts.unpaired_responses, counts.skipped) == (1, 1)


def test_answer_of_another_endpoint_is_skipped() -> None:
    p, out, counts = pairer()
    p.call(call(1, other=True))
    p.answer(answer(2))
    assert out == []
    assert counts.skipped == 1  # the answer; the request is counted by its reader
    assert counts.unpaired_responses == 0


def test_meta_answer_never_pairs_with_another_endpoint() -> None:
    p, out, _ = pairer()
    p.call(call(1))
    p.call(call(2, other=True))  # e.g. a catalog call logged in between
    p.answer(answer(3, graph=True))
    assert pairs(out) == [(1, 3)]


def test_answer_without_request_is_unpaired_only_when_it_answers_graph() -> None:
    p, _, counts = pairer()
    p.answer(answer(1, graph=True))  # carries a Pixel ID or Meta's body
    p.answer(answer(2, tag="Facebook"))  # a tag known to call Graph
    p.answer(answer(3, tag="Other"))
    assert (counts.unpaired_responses, counts.skipped) == (2, 1)


def test_no_status_is_a_failure_word_not_a_status() -> None:
    p, out, _ = pairer()
    p.call(call(1))
    a = answer(2, status=None)
    a.failure = "timed_out"
    p.answer(a)
    assert out[0].record["response"] == {"status": None, "transport_error": "timed_out"}


def test_send_time_and_duration_come_from_entry_times() -> None:
    p, out, _ = pairer()
    p.call(call(1, t=100.0))
    p.answer(answer(2, t=100.25))
    assert out[0].record["sent_at"] == 100.0
    assert out[0].record["duration_ms"] == 250.0


@pytest.mark.parametrize("symmetric", [False, True])
def test_an_answer_never_precedes_its_request_in_time(symmetric: bool) -> None:
    p, out, counts = pairer(symmetric=symmetric)
    p.answer(answer(1, t=99.0, graph=True))  # answers an earlier call
    p.call(call(2, t=100.0))
    p.flush()
    assert pairs(out) == [(2, None)]
    assert counts.unpaired_responses == 1


def test_symmetric_pairs_a_newest_first_stream() -> None:
    # gcloud logging read prints newest first: each answer comes before its request.
    p, out, counts = pairer(symmetric=True)
    p.answer(answer(1, t=20.2, dataset="1"))
    p.call(call(2, t=20.0))
    p.answer(answer(3, t=10.3))
    p.call(call(4, t=10.1))
    p.call(call(5, t=5.0))  # never answered
    p.flush()
    assert pairs(out) == [(2, 1), (4, 3), (5, None)]
    assert counts.unpaired_responses == 0


def test_symmetric_prefers_the_closest_in_time() -> None:
    p, out, _ = pairer(symmetric=True)
    p.call(call(1, t=10.0))
    p.call(call(2, t=20.0))
    p.answer(answer(3, t=20.1))
    p.answer(answer(4, t=10.2))  # arrives late (unordered export)
    assert sorted(pairs(out)) == [(1, 4), (2, 3)]


def test_pending_is_bounded_and_given_up_in_order() -> None:
    p, out, _ = pairer(max_pending=3)
    for seq in range(1, 11):
        p.call(call(seq))
        assert p.pending <= 3
    assert pairs(out) == [(n, None) for n in range(1, 8)]  # unknown outcome, oldest first


def test_calls_older_than_max_wait_are_given_up() -> None:
    p, out, _ = pairer(max_wait=60.0)
    p.call(call(1, t=0.0))
    p.call(call(2, t=30.0))
    assert out == []
    p.call(call(3, t=61.0))
    assert pairs(out) == [(1, None)]


def test_both_in_one_entry() -> None:
    p, out, _ = pairer()
    p.both(call(1), answer(1))
    assert pairs(out) == [(1, 1)]


def test_oldest_offset_is_the_earliest_waiting_graph_call() -> None:
    p, _, _ = pairer()
    assert p.oldest_offset() is None
    first, other, second = call(1), call(2, other=True), call(3)
    first.offset, other.offset, second.offset = 500, 100, 900
    for c in (first, other, second):
        p.call(c)
    assert p.oldest_offset() == 500  # a placeholder is not worth re-reading

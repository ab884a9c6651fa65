"""What sources observed, in the shape checks consume. Value types only, no I/O.

A ``Delivery`` is one delivery-log line (docs/contracts.md §1) after parsing: the well-formed
events it carried plus what is known of the request and Meta's response. Events stay the
plain dicts the sender logged (already JSON-decoded, ``_``-keys included) so that the hot
path does not copy them; checks must treat them as read-only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.model.meta_errors import MetaError


class Shape(StrEnum):
    RECORD = "record"  # (a) delivery record with send time and maybe a response
    REQUEST = "request"  # (b) bare request body
    EVENT = "event"  # (c) bare event


@dataclass(slots=True)
class ResponseInfo:
    """Meta's answer to one ``POST /{dataset}/events`` as logged by the sender.

    ``error_code`` is the envelope's ``code``, else the ``(#NNN)`` prefix of its message;
    ``is_transient`` is Meta's flag as sent (``None``: absent). ``messages`` are the
    ``messages`` of a successful answer, as text. Texts are Meta's: scrub before display.
    """

    status: int | None = None
    events_received: int | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_type: str | None = None
    error_title: str | None = None  # error_user_title; sender-visible text, scrub before display
    error_message: str | None = None  # scrub before display
    fbtrace_id: str | None = None
    # Why there is no HTTP answer at all ("timed_out", "failed", ...): the call failed
    # before Meta could answer (docs/log-format.md, ``response.transport_error``).
    transport_error: str | None = None
    error_user_msg: str | None = None  # error_user_msg; localised, scrub before display
    is_transient: bool | None = None
    messages: tuple[str, ...] = ()

    @property
    def is_error(self) -> bool:
        if self.error_code is not None or self.transport_error is not None:
            return True
        return self.status is not None and self.status >= 400

    @property
    def error(self) -> MetaError | None:
        """The failure as the shared classifier sees it; ``None`` for a success."""
        if not self.is_error:
            return None
        return MetaError(
            code=self.error_code,
            subcode=self.error_subcode,
            type=self.error_type,
            is_transient=self.is_transient,
            message=self.error_message,
            user_title=self.error_title,
            user_msg=self.error_user_msg,
            fbtrace_id=self.fbtrace_id,
            http_status=self.status,
        )


@dataclass(slots=True)
class Delivery:
    """One log line: a request (or a bare event) and, for records, Meta's response."""

    file: str
    line: int
    dataset_id: str
    shape: Shape
    events: list[dict[str, Any]]  # well-formed events only, in request order
    sent_count: int  # events in the request, malformed ones included
    sent_at: float | None = None  # Unix seconds; None for shapes (b) and (c)
    test_event_code: str | None = None
    partner_agent: str | None = None
    response: ResponseInfo | None = None
    duration_ms: float | None = None
    # Each event's event_time in Unix seconds, in the order of ``events``: milliseconds are
    # normalised once, by the reader (``monitor.sources.logs.fields.event_times``); checks
    # read these, never ``event["event_time"]``, whose unit is the sender's.
    times: list[float] = field(default_factory=list)
    # Which events gave their event_time in milliseconds (``times`` holds seconds anyway);
    # None when none did, the usual case. Only ``payload`` reports it.
    millis: list[bool] | None = None
    # Memo of ``monitor.model.rollup.key_layouts`` (the rollup and ``match_quality`` both
    # read it): computed on first use, never by the reader, never copied by ``subset``.
    layouts: list[tuple[str, tuple[Any, ...]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if len(self.times) != len(self.events):
            raise ValueError("Delivery: one time per event is required (see event_times)")

    def subset(self, keep: Sequence[int]) -> Delivery:
        """A copy with only the events at the indexes ``keep`` (their times, their flags);
        ``sent_count`` stays the request's size."""
        millis = self.millis
        return dataclasses.replace(
            self,
            events=[self.events[i] for i in keep],
            times=[self.times[i] for i in keep],
            millis=None if millis is None else [millis[i] for i in keep],
        )


@dataclass(slots=True)
class Problem:
    """A malformed line or event: where, and why."""

    file: str
    line: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(slots=True)
class ReadStats:
    """Counters of one read; problems are kept up to ``max_problems`` (counts are exact).

    ``formats`` counts entries per detected format (a line, a LogEntry, a BigQuery row, a
    multi-line WooCommerce entry); ``skipped_lines`` are entries of other tags or
    endpoints and ``unpaired_responses`` Responses without their Request (sender formats,
    docs/log-format.md); neither is malformed."""

    files: int = 0
    lines: int = 0
    events: int = 0
    malformed_lines: int = 0
    malformed_events: int = 0
    bytes_read: int = 0
    max_problems: int = 200
    problems: list[Problem] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    skipped_lines: int = 0
    unpaired_responses: int = 0

    def count_format(self, name: str, entries: int) -> None:
        self.formats[name] = self.formats.get(name, 0) + entries

    def problem(self, file: str, line: int, reason: str, *, event: bool = False) -> None:
        if event:
            self.malformed_events += 1
        else:
            self.malformed_lines += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(file, line, reason))

    def merge(self, later: ReadStats) -> None:
        """Fold in the counts of a read of the input right after this one: the sums, and
        the problems in input order up to ``max_problems`` (as one read would keep them)."""
        self.files += later.files
        self.lines += later.lines
        self.events += later.events
        self.malformed_lines += later.malformed_lines
        self.malformed_events += later.malformed_events
        self.bytes_read += later.bytes_read
        for name, entries in later.formats.items():
            self.count_format(name, entries)
        self.skipped_lines += later.skipped_lines
        self.unpaired_responses += later.unpaired_responses
        room = self.max_problems - len(self.problems)
        if room > 0:
            self.problems.extend(later.problems[:room])

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "events": self.events,
            "malformed_lines": self.malformed_lines,
            "malformed_events": self.malformed_events,
            "formats": dict(self.formats),
            "skipped_lines": self.skipped_lines,
            "unpaired_responses": self.unpaired_responses,
            "problems": [p.to_dict() for p in self.problems],
        }

"""Errors of the Graph API source.

``GraphError`` (a ``monitor.errors.SourceError``) carries the ``GraphErrorKind`` its
envelope was classified as, the codes, the HTTP status and how many attempts were made;
its text is already redacted (``monitor.sources.graph.redact``). ``classify_error`` maps
Meta's envelope codes (docs/meta-capi.md §8), else the HTTP status, to a kind: mocks pair
codes 190 and 17 with HTTP 500, so the body decides, not the status.
"""

from __future__ import annotations

from monitor.errors import SourceError
from monitor.model.graph import GraphErrorKind, Part, PartError

__all__ = ["GraphError", "GraphErrorKind", "classify_error", "classify_status"]


class GraphError(SourceError):
    """A Graph API call failed. ``str(err)`` is scrubbed and never contains the token."""

    def __init__(
        self,
        message: str,
        *,
        kind: GraphErrorKind,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool | None = None,
        regain_access_s: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.regain_access_s = regain_access_s
        self.attempts = attempts

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def retryable(self) -> bool:
        """Transient and throttling errors; Meta's ``is_transient`` only for unknown codes."""
        if self.kind in (GraphErrorKind.TRANSIENT, GraphErrorKind.RATE_LIMITED):
            return True
        return self.kind is GraphErrorKind.UNKNOWN and bool(self.is_transient)

    def clone(self, *, attempts: int | None = None) -> GraphError:
        """A fresh copy (for re-raising a shared outcome without a shared traceback)."""
        return GraphError(
            self.message,
            kind=self.kind,
            code=self.code,
            subcode=self.subcode,
            http_status=self.http_status,
            fbtrace_id=self.fbtrace_id,
            is_transient=self.is_transient,
            regain_access_s=self.regain_access_s,
            attempts=self.attempts if attempts is None else attempts,
        )

    def to_part_error(self, part: Part) -> PartError:
        return PartError(
            part=part,
            kind=self.kind,
            code=self.code,
            subcode=self.subcode,
            message_scrubbed=self.message,
            http_status=self.http_status,
            attempts=self.attempts,
        )

    def __repr__(self) -> str:
        return (
            f"GraphError(kind={self.kind.value!r}, code={self.code!r}, "
            f"subcode={self.subcode!r}, http_status={self.http_status!r}, "
            f"message={self.message!r})"
        )


def classify_error(
    code: int | None, subcode: int | None, http_status: int | None
) -> GraphErrorKind:
    """Classify a Graph error from its envelope code (docs/meta-capi.md §8), else the HTTP
    status."""
    if code is None:
        return classify_status(http_status)
    if code in (190, 102):
        return GraphErrorKind.TOKEN_INVALID
    if code in (4, 17, 32, 341, 613) or 80000 <= code <= 80014:
        return GraphErrorKind.RATE_LIMITED
    if code in (3, 10, 368) or 200 <= code <= 299:
        return GraphErrorKind.PERMISSION
    # 2044055: dataset_quality "unknown dataset" (§3); 100/33: object missing (§8).
    if code in (2044055, 803) or (code == 100 and subcode == 33):
        return GraphErrorKind.NOT_FOUND
    if code in (100, 2500):
        return GraphErrorKind.INVALID
    if code in (1, 2):
        return GraphErrorKind.TRANSIENT
    return GraphErrorKind.UNKNOWN


def classify_status(http_status: int | None) -> GraphErrorKind:
    if http_status is None or http_status >= 500:
        return GraphErrorKind.TRANSIENT
    if http_status == 429:
        return GraphErrorKind.RATE_LIMITED
    if http_status in (401, 403):
        return GraphErrorKind.PERMISSION
    if http_status == 404:
        return GraphErrorKind.NOT_FOUND
    return GraphErrorKind.UNKNOWN

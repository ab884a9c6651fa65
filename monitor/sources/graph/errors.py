"""Errors of the Graph API source.

``GraphError`` (a ``monitor.errors.SourceError``) carries the ``GraphErrorKind`` its
envelope was classified as, the codes, the HTTP status, whether a retry may succeed and
how many attempts were made; its text is already redacted
(``monitor.sources.graph.redact``). Envelopes are classified by ``MetaError``
(``monitor.model.meta_errors``), the classifier the log side shares (docs/contracts.md
§9): the body decides, not the HTTP status (mocks pair 190 and 17 with HTTP 500).
"""

from __future__ import annotations

from monitor.errors import SourceError
from monitor.model.graph import GraphErrorKind, Part, PartError
from monitor.model.meta_errors import MetaError, classify
from monitor.sources.graph.redact import safe

__all__ = ["GraphError", "GraphErrorKind", "classify_error", "classify_status", "envelope_error"]


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
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        # Without a word from the caller: transient and throttled kinds are retried.
        if retryable is None:
            retryable = kind in (GraphErrorKind.TRANSIENT, GraphErrorKind.RATE_LIMITED)
        self.retryable = retryable
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
            retryable=self.retryable,
        )

    def relabelled(self, message: str) -> GraphError:
        """The same error with another (already redacted) text."""
        copy = self.clone()
        copy.args = (message,)
        return copy

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


def envelope_error(
    label: str, error: MetaError, *, secret: str = "", regain_access_s: float | None = None
) -> GraphError:
    """A ``GraphError`` from Meta's envelope: kind and retry from ``MetaError``; the text
    names the call, the kind, the codes, Meta's message and its ``error_user_title`` /
    ``error_user_msg``, redacted (no token, no PII)."""
    kind = error.kind
    text = error.message or "no message"
    explanation = ": ".join(t for t in (error.user_title, error.user_msg) if t)
    if explanation:
        text = f"{text} ({explanation})"
    msg = (
        f"{label}: {kind.value} (code {error.code}, subcode {error.subcode}, "
        f"HTTP {error.http_status}): {text}"
    )
    if error.fbtrace_id:
        msg += f" [fbtrace_id {error.fbtrace_id}]"
    return GraphError(
        safe(msg, secret),
        kind=kind,
        code=error.code,
        subcode=error.subcode,
        http_status=error.http_status,
        fbtrace_id=error.fbtrace_id,
        is_transient=error.is_transient,
        regain_access_s=regain_access_s if kind is GraphErrorKind.RATE_LIMITED else None,
        retryable=error.transient,
    )


def classify_error(
    code: int | None, subcode: int | None, http_status: int | None, type_: str | None = None
) -> GraphErrorKind:
    """The kind of a Graph error from its envelope code, else the HTTP status (the shared
    classifier, ``monitor.model.meta_errors.classify``)."""
    return classify(code, subcode, http_status, type_)


def classify_status(http_status: int | None) -> GraphErrorKind:
    """The kind of an answer without a Graph error envelope."""
    return classify(None, None, http_status)

"""Meta's error envelope read whole, and the one classification both sides share.

The log side (``checks.delivery``, from the ``response`` senders log) and the Graph side
(``monitor.sources.graph``, from the answers of our own reads) classify a failed call
with the same ``MetaError`` (docs/contracts.md §9; docs/meta-capi.md §8):

- **Code.** ``code``, ``error_subcode``, ``type`` and ``is_transient`` are read from the
  envelope; when ``code`` is missing, the ``(#NNN)`` prefix of ``message`` stands in for it
  (a present ``code`` wins over the prefix). Without an envelope only the HTTP status is
  known; without a status, nothing came back ("no answer").
- **Kind** (``GraphErrorKind``): 190/102 token; 4, 17, 32, 341, 613, 80000-80014 (and
  HTTP 429) throttling; 3, 10, 200-299 permission; 100/33, 803, 2044055 and
  ``GraphMethodException`` on 100 "object missing or not accessible" (a dataset-id or
  token-access problem, not a payload one); 100, 2500 and the 2804xxx codes that
  ``CodedException`` puts in ``code`` invalid; 1, 2 and 368 (a temporary block: wait and
  retry) transient.
- **Transient** (retrying may succeed): ``is_transient: true``, or codes 1, 2, 4, 17, 32,
  341, 368, 613, 80000-80014, or no code and HTTP 5xx, 429 or no answer, or an unknown
  code with HTTP 5xx. ``is_transient: false`` overrides all of it, ``true`` likewise (Meta
  knows its own outage better than our table). A known non-transient code answered with
  HTTP 5xx (mocks pair 190 with 500) stays non-transient: the body decides, not the status.

``user_title``/``user_msg`` are Meta's own explanation (``error_user_title``,
``error_user_msg``), localised to the token user's language: shown after scrubbing,
never matched on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.model.graph import GraphErrorKind

__all__ = [
    "THROTTLING_CODES",
    "TOKEN_CODES",
    "TRANSIENT_CODES",
    "MetaError",
    "classify",
    "code_from_message",
    "is_transient",
]

TOKEN_CODES = frozenset({190, 102})
THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2, 368, *THROTTLING_CODES})
_PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})
_NOT_FOUND_CODES = frozenset({803, 2044055})  # alias unknown; dataset_quality unknown dataset
_INVALID_CODES = frozenset({100, 2500})
_PREFIX = re.compile(r"\s*\(#(\d{1,9})\)")


def code_from_message(message: object) -> int | None:
    """The ``NNN`` of a message starting ``(#NNN)``, else ``None``."""
    if not isinstance(message, str):
        return None
    m = _PREFIX.match(message)
    return int(m.group(1)) if m else None


def classify(
    code: int | None,
    subcode: int | None = None,
    http_status: int | None = None,
    type_: str | None = None,
) -> GraphErrorKind:
    """The kind of a failed call (module docstring); ``code`` is the effective code."""
    if code is None:
        return _classify_status(http_status)
    if code in TOKEN_CODES:
        return GraphErrorKind.TOKEN_INVALID
    if code in THROTTLING_CODES:
        return GraphErrorKind.RATE_LIMITED
    if code in _PERMISSION_CODES:
        return GraphErrorKind.PERMISSION
    if code in _NOT_FOUND_CODES or (
        code == 100 and (subcode == 33 or type_ == "GraphMethodException")
    ):
        return GraphErrorKind.NOT_FOUND
    if code in _INVALID_CODES or 2804000 <= code <= 2804999:
        return GraphErrorKind.INVALID
    if code in TRANSIENT_CODES:
        return GraphErrorKind.TRANSIENT
    return GraphErrorKind.UNKNOWN


def _classify_status(http_status: int | None) -> GraphErrorKind:
    if http_status is None or http_status >= 500:
        return GraphErrorKind.TRANSIENT
    if http_status == 429:
        return GraphErrorKind.RATE_LIMITED
    if http_status in (401, 403):
        return GraphErrorKind.PERMISSION
    if http_status == 404:
        return GraphErrorKind.NOT_FOUND
    return GraphErrorKind.UNKNOWN


def is_transient(
    code: int | None, http_status: int | None, flag: bool | None, kind: GraphErrorKind
) -> bool:
    """Whether retrying the same call may succeed (module docstring). ``flag`` is the
    envelope's ``is_transient`` (``None`` when absent)."""
    if flag is not None:
        return flag
    if code is None:
        return http_status is None or http_status >= 500 or http_status == 429
    if code in TRANSIENT_CODES:
        return True
    return kind is GraphErrorKind.UNKNOWN and http_status is not None and http_status >= 500


_INT_LIMIT = 2**53  # codes beyond this are not codes (and not worth a huge int)


def _int(value: object) -> int | None:
    """An integer code; digit strings (proxies stringify codes) and integral floats are
    read too; anything else, or beyond ±2**53, is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 16):
            return None
        value = int(text)
    elif isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    elif not isinstance(value, int):
        return None
    return value if -_INT_LIMIT < value < _INT_LIMIT else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class MetaError:
    """One failed call as Meta described it (module docstring).

    ``code`` is the effective code: the envelope's, else the ``(#NNN)`` message prefix
    (``code_in_message`` then True). ``is_transient`` is Meta's flag as sent (``None``:
    absent). Texts are Meta's, unscrubbed: scrub before showing them.
    """

    code: int | None = None
    subcode: int | None = None
    type: str | None = None
    is_transient: bool | None = None
    message: str | None = None
    user_title: str | None = None
    user_msg: str | None = None
    fbtrace_id: str | None = None
    http_status: int | None = None
    code_in_message: bool = False

    @classmethod
    def from_envelope(cls, error: Mapping[str, Any], http_status: int | None = None) -> MetaError:
        """The ``error`` object of ``{"error": {...}}`` (any key may be missing or odd)."""
        message = _text(error.get("message"))
        code = _int(error.get("code"))
        from_message = code is None and (code := code_from_message(message)) is not None
        flag = error.get("is_transient")
        return cls(
            code=code,
            subcode=_int(error.get("error_subcode")),
            type=_text(error.get("type")),
            is_transient=flag if isinstance(flag, bool) else None,
            message=message,
            user_title=_text(error.get("error_user_title")),
            user_msg=_text(error.get("error_user_msg")),
            fbtrace_id=_text(error.get("fbtrace_id")),
            http_status=http_status,
            code_in_message=from_message,
        )

    @property
    def kind(self) -> GraphErrorKind:
        return classify(self.code, self.subcode, self.http_status, self.type)

    @property
    def transient(self) -> bool:
        return is_transient(self.code, self.http_status, self.is_transient, self.kind)

    @property
    def object_inaccessible(self) -> bool:
        """100/33 and its kin: the object (dataset) is missing or the token cannot see it."""
        return self.code is not None and self.kind is GraphErrorKind.NOT_FOUND

    @property
    def label(self) -> str:
        """``190/463``, ``17``, ``HTTP 502``, or ``no answer``."""
        if self.code is not None:
            return f"{self.code}/{self.subcode}" if self.subcode else str(self.code)
        return f"HTTP {self.http_status}" if self.http_status is not None else "no answer"

"""Times in and out: parsing user-supplied times (``--now``, ``--since``, ``--until``),
writing Unix seconds as ISO 8601 UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_iso(value: str) -> float:
    """ISO 8601 (``Z``, ``+01:00`` or ``+0100``; naive means UTC) or Unix seconds -> float.

    Raises ``ValueError`` with a message fit for a user.
    """
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    text = _COMPACT_OFFSET.sub(r"\1:\2", text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-20T12:00:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def iso_utc(ts: float, *, zulu: bool = True) -> str:
    """Unix seconds as ISO 8601 UTC: ``2026-11-20T12:00:00Z`` (``+00:00`` with
    ``zulu=False``, as ``datetime.isoformat`` writes it)."""
    text = datetime.fromtimestamp(ts, UTC).isoformat()
    return text.replace("+00:00", "Z") if zulu else text

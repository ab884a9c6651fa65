"""Inhibition: while a root-cause alert fires for a dataset, the alerts that depend on
what it broke are muted (tracked, never notified), and notifications say so. Pure.

The dependency map, explicitly (one place to read and change):

- ``TOKEN_INVALID`` breaks everything that needs Meta to accept or answer with the
  dataset's token: every delivery fails (``DELIVERY_ERRORS``, ``EVENTS_DROPPED``),
  accepted volume collapses (``volume``), Meta-side data goes stale or unreadable
  (``parity``, ``diagnostics``, Dataset Quality: ``EMQ_*``, ``MATCH_KEY_DROP``,
  ``DEDUP_KEY_COVERAGE_LOW``, ``EVENT_COVERAGE_LOW``, ``FRESHNESS_SLOW``,
  ``META_DIAGNOSTIC``, ``TOKEN_EXPIRING``).
- ``SOURCE_UNAVAILABLE`` (a log or the Graph API cannot be read) makes the same alerts
  meaningless: they are built from data that did not arrive.

Not inhibited: what the sender's own logs show regardless of Meta (``hash_validity``,
``payload``, ``dedup``'s ``MISSING_EVENT_ID``/``EVENT_ID_REUSED``, ``latency``'s
``LATENCY_HIGH``, ``MATCH_KEY_COVERAGE_LOW``) and ``RATE_LIMITED`` seen in delivery logs.
``reconcile``'s ``SOURCE_UNAVAILABLE`` (an orders source cannot be read) is about that
source alone: it inhibits nothing and blocks no resolution (``OWN_SOURCE_CHECKS``).
Inhibitors never inhibit each other (both are root causes worth a post), and an
inhibitor inhibits while it fires even if it is itself silenced (as in Alertmanager).

Source trouble also blocks resolution: a check with a Graph part that could not be read
may still report ``warn``/``crit`` for its log part (``checks.graph_common``), so "the
check ran" does not prove its Meta-side findings were judged. In a cycle in which any of
``SOURCE_TROUBLE`` is seen, the dependent alerts are treated as not evaluated
(``evaluated``): they neither count a clean cycle nor reset one. That can delay a
resolution by a cycle, never fake one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from monitor.alerts.model import AlertKey

TOKEN_INVALID = "TOKEN_INVALID"
SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
INHIBITORS: tuple[str, ...] = (TOKEN_INVALID, SOURCE_UNAVAILABLE)  # precedence order
# Seen in a cycle, these mean Meta-side data may not have been read (see the docstring).
SOURCE_TROUBLE: frozenset[str] = frozenset({*INHIBITORS, "RATE_LIMITED"})

# Checks whose SOURCE_UNAVAILABLE concerns a source of their own (an orders source), not
# Meta nor the logs: such an alert is no root cause of any other.
OWN_SOURCE_CHECKS: frozenset[str] = frozenset({"reconcile"})

# Checks whose every finding depends on Meta-side data or on successful delivery.
DEPENDENT_CHECKS: frozenset[str] = frozenset({"volume", "parity", "diagnostics"})
# Codes (of any check) that depend on Meta-side data or on successful delivery.
DEPENDENT_CODES: frozenset[str] = frozenset(
    {
        "DELIVERY_ERRORS",
        "EVENTS_DROPPED",
        "VOLUME_DROP",
        "VOLUME_STOPPED",
        "VOLUME_SPIKE",
        "PARITY_SERVER_MISSING",
        "PARITY_BROWSER_MISSING",
        "PARITY_LOW",
        "EVENT_COVERAGE_LOW",
        "DEDUP_KEY_COVERAGE_LOW",
        "EMQ_LOW",
        "EMQ_DROP",
        "MATCH_KEY_DROP",
        "FRESHNESS_SLOW",
        "META_DIAGNOSTIC",
        "TOKEN_EXPIRING",
    }
)
# How a muted note explains each inhibitor.
WHY: dict[str, str] = {
    TOKEN_INVALID: "depend on the token",
    SOURCE_UNAVAILABLE: "depend on a source that cannot be read",
}
INHIBITED_PREFIX = "inhibited:"


def is_inhibitor(key: AlertKey) -> bool:
    """Whether ``key``'s alert may inhibit others (and, seen, hide their data)."""
    return key.code in INHIBITORS and key.check not in OWN_SOURCE_CHECKS


def depends_on_source(key: AlertKey) -> bool:
    """Whether ``key``'s alert is meaningless while an inhibitor fires for its dataset."""
    if key.code in INHIBITORS:
        return False
    return key.check in DEPENDENT_CHECKS or key.code in DEPENDENT_CODES


def evaluated(key: AlertKey, check_ran: bool, seen_codes: Collection[str]) -> bool:
    """Whether ``key``'s absence this cycle may count as clean: its check ran, and no
    source trouble (``SOURCE_TROUBLE``, seen this cycle for its dataset) hides its data."""
    if not check_ran:
        return False
    return not (depends_on_source(key) and not SOURCE_TROUBLE.isdisjoint(seen_codes))


def inhibited_by(key: AlertKey, firing_inhibitors: Collection[str]) -> str | None:
    """``"inhibited:<CODE>"`` when an inhibitor firing for ``key``'s dataset mutes it.

    ``firing_inhibitors``: the inhibitor codes firing for that dataset this cycle."""
    if not depends_on_source(key):
        return None
    code = next((c for c in INHIBITORS if c in firing_inhibitors), None)
    return None if code is None else INHIBITED_PREFIX + code


def inhibitor_of(muted_by: str | None) -> str | None:
    """The inhibitor code in a ``muted_by`` value, ``None`` for silences and unmuted."""
    if muted_by is None or not muted_by.startswith(INHIBITED_PREFIX):
        return None
    return muted_by.removeprefix(INHIBITED_PREFIX)


def inhibited_note(code: str, muted: Iterable[AlertKey]) -> str:
    """``"4 alerts muted while TOKEN_INVALID fires (VOLUME_DROP, EMQ_LOW depend on the
    token)"``: how many, which codes, and why."""
    keys = list(muted)
    codes = ", ".join(sorted({k.code for k in keys}))
    noun = "alert" if len(keys) == 1 else "alerts"
    return f"{len(keys)} {noun} muted while {code} fires ({codes} {WHY.get(code, 'depend on it')})"

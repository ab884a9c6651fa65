"""``dataset_quality``, ``da_checks`` and ``debug_token`` answers of the fake. No I/O.

Shapes and wording follow Meta's examples in ``tests/data/meta/``:

- ``dataset_quality`` answers **only the requested fields** (``fields=web{...}``), with
  Meta's defaults for a block asked without a sub-selection (``event_match_quality``
  alone gives ``composite_score`` and ``match_key_feedback``, as in Meta's example), and
  refuses a field the node does not have with ``(#100) Tried accessing nonexisting
  field`` (so ``dedup_key_feedback``, the field table's misspelling, fails as reported).
  A block Meta would not send (PageView has no coverage or dedup feedback) stays absent
  even when asked for.
- ``da_checks`` items carry ``description, key, result, title`` (and ``action_uri`` on
  ``pixel_decline``) with Meta's keys, titles and lower-case results (``passed``,
  ``failed``, ``unavailable``); ``checks=`` narrows the list.
- ``debug_token``: ``app_id`` a number, ``user_id`` a string, ``metadata``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.testing.fakegraph.errors import nonexisting_field
from monitor.testing.fakegraph.scenarios import Reply, Scenario, ScenarioKind

__all__ = ["da_checks_body", "dataset_quality_reply", "debug_token_body", "parse_fields"]

Spec = dict[str, "Spec | None"]
Node = tuple[dict[str, "Node | None"], tuple[str, ...]]  # children, defaults when bare

_PCT: Node = ({"percentage": None, "description": None}, ("percentage",))
_DIAGNOSTIC: Node = (
    dict.fromkeys(
        (
            "name",
            "description",
            "solution",
            "percentage",
            "affected_event_count",
            "total_event_count",
        )
    ),
    ("name", "description", "solution", "percentage", "affected_event_count", "total_event_count"),
)
_EMQ: Node = (
    {
        "composite_score": None,
        "match_key_feedback": (
            {"identifier": None, "coverage": _PCT, "potential_aly_acr_increase": _PCT},
            ("identifier", "coverage"),
        ),
        "diagnostics": _DIAGNOSTIC,
    },
    ("composite_score", "match_key_feedback"),
)
_DEDUPE: Node = (
    {
        "dedupe_key": None,
        "browser_events_with_dedupe_key": _PCT,
        "server_events_with_dedupe_key": _PCT,
        "overall_browser_coverage_from_dedupe_key": _PCT,
    },
    (
        "dedupe_key",
        "browser_events_with_dedupe_key",
        "server_events_with_dedupe_key",
        "overall_browser_coverage_from_dedupe_key",
    ),
)
_WEB: Node = (
    {
        "event_name": None,
        "event_match_quality": _EMQ,
        "event_coverage": (
            {
                "percentage": None,
                "goal_percentage": None,
                "description": None,
                "potential_aly_acr_increase": _PCT,
            },
            ("percentage", "goal_percentage"),
        ),
        "dedupe_key_feedback": _DEDUPE,
        "data_freshness": ({"upload_frequency": None, "description": None}, ("upload_frequency",)),
        "acr": _PCT,
        "event_potential_aly_acr_increase": _PCT,
    },
    ("event_name", "event_match_quality"),
)
_ROOT: Node = ({"web": _WEB}, ("web",))


class FieldError(ValueError):
    """A requested field the node does not have (``args[0]`` is its name)."""


def parse_fields(text: str) -> Spec:
    """``web{event_name,acr{percentage}}`` -> ``{"web": {"event_name": None, "acr":
    {"percentage": None}}}``; ``ValueError`` when the braces do not balance."""
    spec, rest = _parse_list(text.replace(" ", ""), 0)
    if rest != len(text.replace(" ", "")):
        raise ValueError("unbalanced braces in fields")
    return spec


def _parse_list(text: str, i: int) -> tuple[Spec, int]:
    spec: Spec = {}
    while i < len(text) and text[i] != "}":
        j = i
        while j < len(text) and text[j] not in ",{}":
            j += 1
        name = text[i:j]
        child: Spec | None = None
        if j < len(text) and text[j] == "{":
            child, j = _parse_list(text, j + 1)
            if j >= len(text) or text[j] != "}":
                raise ValueError("unbalanced braces in fields")
            j += 1
        if name:
            spec[name] = child
        i = j + 1 if j < len(text) and text[j] == "," else j
    return spec, i


def project(value: Any, spec: Spec | None, node: Node) -> Any:
    """Only the fields of ``spec`` (``None``: the node's defaults) of ``value``."""
    children, defaults = node
    wanted: Mapping[str, Spec | None] = spec if spec is not None else dict.fromkeys(defaults)
    if isinstance(value, list):
        return [project(v, spec, node) for v in value]
    out: dict[str, Any] = {}
    for name, sub in wanted.items():
        if name not in children:
            raise FieldError(name)
        if name not in value:
            continue  # a block Meta does not send for this entry
        child = children[name]
        if child is None:
            out[name] = value[name]
        else:
            out[name] = project(value[name], sub, child)
    return out


# ------------------------------------------------------------- dataset_quality

_DESCRIPTIONS = {
    "event_coverage": "The percentage of events received from your Conversions API "
    "compared to unique browser events from the Meta Pixel.",
    "data_freshness": "The average frequency with which instances of this event are "
    "received through the Conversions API.",
    "browser_events_with_dedupe_key": "The percentage of browser events that contain this "
    "dedupe key.",
    "server_events_with_dedupe_key": "The percentage of server events that contain this "
    "dedupe key.",
    "overall_browser_coverage_from_dedupe_key": "The overall percentage of browser events "
    "that are deduped with Conversions API events using this key. This percentage is "
    "incremental for each dedupe key.",
}
_GOOD_COVERAGE = {"email": 96.4, "ip_address": 99.1, "user_agent": 99.6, "external_id": 88.0}
_LOW_COVERAGE = {"email": 8.2, "ip_address": 97.0, "user_agent": 99.0}
# Meta's wording (dataset_quality_emq_diagnostics.json); the numbers are the fake's.
_IP_DIAGNOSTIC = {
    "name": "Server sending mismatched IP addresses",
    "description": "Your server is sending client IP addresses that do not match those from "
    "Meta Pixel. This may impact the attribution and optimization of your ad campaigns.",
    "solution": "In your server payload, send the client_ip_address retrieved from customer "
    "interactions. Use the payload helper to see how this value should be structured when "
    "it's sent to Meta.",
    "percentage": 62.5,
    "affected_event_count": 410,
    "total_event_count": 656,
}


def _pct(value: float, description: str | None = None) -> dict[str, Any]:
    return {"percentage": value, "description": description or f"{value:g}% of events."}


def _dedupe(browser: float, server: float, overall: float, key: str = "event_id") -> dict[str, Any]:
    entry: dict[str, Any] = {"dedupe_key": key}
    for name, value in (
        ("browser_events_with_dedupe_key", browser),
        ("server_events_with_dedupe_key", server),
        ("overall_browser_coverage_from_dedupe_key", overall),
    ):
        entry[name] = _pct(value, _DESCRIPTIONS[name])
    return entry


def _emq(score: float, coverage: Mapping[str, float], diagnostics: list[Any]) -> dict[str, Any]:
    feedback = [{"identifier": k, "coverage": {"percentage": v}} for k, v in coverage.items()]
    return {"composite_score": score, "match_key_feedback": feedback, "diagnostics": diagnostics}


def _conversion_entry(sc: Scenario, event: str) -> dict[str, Any]:
    kind = sc.kind
    low_emq = kind is ScenarioKind.EMQ_LOW
    coverage = 81.2
    if kind is ScenarioKind.COVERAGE_LOW:
        coverage = 33.3
    elif kind is ScenarioKind.SERVER_MISSING and event == "Purchase":
        coverage = 0.0
    dedupe = [_dedupe(100, 100, 79.9), _dedupe(92.0, 88.5, 4.1, "external_id")]
    if kind is ScenarioKind.DEDUP_BROKEN:
        dedupe = [_dedupe(100, 12.0, 9.5)]
    frequency = "real_time"
    if kind is ScenarioKind.SLOW_FRESHNESS:
        # Not in Meta's examples (real_time, hourly): kept as a tolerance case.
        frequency = "daily" if event == "Purchase" else "Weekly"
    return {
        "event_name": event,
        "event_match_quality": _emq(
            3.1 if low_emq else 8.1,
            _LOW_COVERAGE if low_emq else _GOOD_COVERAGE,
            [_IP_DIAGNOSTIC] if low_emq else [],
        ),
        "event_coverage": {
            "percentage": coverage,
            "goal_percentage": 75,
            "description": _DESCRIPTIONS["event_coverage"],
        },
        "dedupe_key_feedback": dedupe,
        "data_freshness": {
            "upload_frequency": frequency,
            "description": _DESCRIPTIONS["data_freshness"],
        },
        "acr": _pct(21.4),
        "event_potential_aly_acr_increase": _pct(3.5),
    }


def dataset_quality_entries(sc: Scenario) -> list[dict[str, Any]]:
    """Every block of every event name; PageView sparse on purpose (absent blocks mean
    "unknown", not zero)."""
    web = [_conversion_entry(sc, e) for e in ("Purchase", "InitiateCheckout", "AddToCart")]
    score = 6.4 if sc.kind is ScenarioKind.EMQ_LOW else 7.2
    web.append(
        {
            "event_name": "PageView",
            "event_match_quality": {"composite_score": score, "match_key_feedback": []},
            "data_freshness": {
                "upload_frequency": "real_time",
                "description": _DESCRIPTIONS["data_freshness"],
            },
        }
    )
    return web


def dataset_quality_reply(sc: Scenario, fields: str, usage: Mapping[str, str]) -> Reply:
    """``{"web": [...]}`` with only the fields asked for, or Meta's field error."""
    try:
        spec = parse_fields(fields or "web")
        body = project({"web": dataset_quality_entries(sc)}, spec, _ROOT)
    except FieldError as err:
        return nonexisting_field(str(err.args[0]))
    except ValueError:
        return nonexisting_field(fields)
    return Reply(200, body, usage)


# -------------------------------------------------------------------- da_checks

_DA_CHECKS = (
    {
        "description": "Pixel hasn't sent some or any events for Advantage+ catalog ads (ex: "
        "ViewContent, AddToCart, Purchase) at least once in the last 24 hours.",
        "key": "pixel_missing_dpa_event",
        "title": "Pixel is not sending DPA events",
    },
    {
        "description": "Pixel events might be missing parameters some or all of the time.",
        "key": "pixel_missing_param_in_events",
        "title": "Pixel missing parameter in DPA events",
    },
    {
        "description": "The number of pixel events has dropped to less than half of the "
        "weekly average.",
        "key": "pixel_decline",
        "title": "Decline in number of pixel events",
    },
)


def da_checks_body(sc: Scenario, dataset_id: str, checks: str = "") -> dict[str, Any]:
    """``/da_checks`` items (docs/meta-capi.md §4); ``da_checks_failed``: ``pixel_decline``
    failed and the parameter check ``unavailable``."""
    failed = sc.kind is ScenarioKind.DA_CHECKS_FAILED
    results = {
        "pixel_missing_dpa_event": "passed",
        "pixel_missing_param_in_events": "unavailable" if failed else "passed",
        "pixel_decline": "failed" if failed else "passed",
    }
    wanted = {c.strip() for c in checks.split(",") if c.strip()}
    items = []
    for check in _DA_CHECKS:
        if wanted and check["key"] not in wanted:
            continue
        item = {**check, "result": results[check["key"]]}
        if check["key"] == "pixel_decline":
            uri = f"https://www.facebook.com/ads/manage/pixels/?pixel_id={dataset_id}&m2w=1"
            item = {"action_uri": uri, **item}
        items.append(dict(sorted(item.items())))  # alphabetical, as in Meta's example
    return {"data": items}


# ------------------------------------------------------------------ debug_token


def debug_token_body(sc: Scenario, now: float) -> dict[str, Any]:
    """A valid system-user token (appendix); ``expires_at`` 0 means never."""
    return {
        "data": {
            "app_id": 100200300,
            "type": "SYSTEM_USER",
            "application": "capi-monitor fake",
            "data_access_expires_at": 0,
            "expires_at": sc.token_expires_at,
            "is_valid": True,
            "issued_at": int(now) - 86400 * 30,
            "metadata": {},
            "scopes": list(sc.token_scopes),
            "user_id": "100000000000042",
        }
    }

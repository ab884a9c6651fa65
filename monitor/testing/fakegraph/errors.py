"""Error envelopes, failing scenarios and usage headers of the fake Graph API. No I/O.

Every envelope copies a real one of ``tests/data/meta/`` (see its ``SOURCES.md``): keys,
wording, ``type`` (``OAuthException``, ``GraphMethodException``), which keys are absent
(``is_transient`` is sent only where Meta was seen sending it; ``error_subcode`` only
where it was seen) and the HTTP status the sources show. "Cannot parse access token"
comes with HTTP 400: issue 12 expected 401, but no source shows 401 and Meta's own PHP
SDK fixture pairs code 190 with 400 (docs/meta-capi.md §8).
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.testing.fakegraph.scenarios import Reply, Scenario, ScenarioKind, unit

__all__ = [
    "TOKEN_EXPIRED",
    "bad_token",
    "error_body",
    "failure",
    "no_such_object",
    "nonexisting_field",
    "usage_headers",
]

TOKEN_EXPIRED = (
    "Error validating access token: Session has expired on Thursday, 01-Jan-26 00:00:00 PST. "
    "The current time is Friday, 02-Jan-26 08:00:00 PST."
)
_TRANSIENT_2 = "An unexpected error has occurred. Please retry your request later."
_AD_ACCOUNT_CALLS = (
    "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. "
    "For more info, please refer to "
    "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
)


def error_body(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    type_: str = "OAuthException",
    transient: bool | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
    trace: str | None = "AFakeTrace0001",
) -> dict[str, Any]:
    """Meta's error envelope (docs/meta-capi.md §8); optional keys only when given."""
    err: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if transient is not None:
        err["is_transient"] = transient
    if user_title is not None:
        err["error_user_title"] = user_title
    if user_msg is not None:
        err["error_user_msg"] = user_msg
    if trace is not None:
        err["fbtrace_id"] = trace
    return {"error": err}


def bad_token() -> Reply:
    """A token the Graph cannot parse (``token_parse_190.json``)."""
    msg = "Invalid OAuth access token - Cannot parse access token"
    return Reply(400, error_body(190, msg, trace="A9xnjd1iwrUx8qFJt1sld_Q"))


def no_such_object(object_id: str, method: str = "get") -> Reply:
    """100/33 as ``error_graphmethod_100_33*.json``: missing or not accessible."""
    msg = (
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot "
        "be loaded due to missing permissions, or does not support this operation. Please "
        "read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
    )
    return Reply(400, error_body(100, msg, subcode=33, type_="GraphMethodException"))


def nonexisting_field(name: str) -> Reply:
    """What asking for a field a node does not have gets (docs/meta-capi.md §3)."""
    return Reply(400, error_body(100, f"(#100) Tried accessing nonexisting field ({name})"))


def _token_expired(status: int = 400) -> Reply:
    """190/463 as ``error_oauth_190_463.json`` (a live 400; key order kept)."""
    err = {"error_subcode": 463, "type": "OAuthException", "code": 190, "message": TOKEN_EXPIRED}
    return Reply(status, {"error": err})


def _token_undecryptable() -> Reply:
    """190 as ``error_oauth_190_decrypt_events.json``: ``error_user_msg``, HTTP 500."""
    msg = "The access token could not be decrypted"
    return Reply(500, error_body(190, msg, user_msg=msg, trace="fbpixel_trace_id"))


def business_object(dataset_id: str) -> str:
    """The ad account a dataset's usage is booked on (usage headers are keyed by the
    business object, not the pixel: docs/meta-capi.md §8)."""
    return str(10**15 + int(unit("ad account", dataset_id) * 10**9))


def usage_headers(
    sc: Scenario, dataset_id: str | None, *, throttled: bool = False
) -> dict[str, str]:
    """``X-App-Usage``, ``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage`` (§8)."""
    pct = sc.app_usage_pct
    headers = {
        "X-App-Usage": orjson.dumps(
            {"call_count": pct, "total_time": max(pct - 2, 0), "total_cputime": max(pct - 3, 0)}
        ).decode(),
        "X-Ad-Account-Usage": orjson.dumps(
            {"acc_id_util_pct": min(pct, 100), "reset_time_duration": 0}
        ).decode(),
    }
    if dataset_id is not None:
        entry = {
            "type": "ads_management",
            "call_count": 100 if throttled else pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": sc.regain_minutes if throttled else 0,
            "ads_api_access_tier": "standard_access",
        }
        key = business_object(dataset_id)
        headers["X-Business-Use-Case-Usage"] = orjson.dumps({key: [entry]}).decode()
    return headers


def failure(sc: Scenario, endpoint: str, call_no: int, dataset_id: str | None) -> Reply | None:
    """The failing answer of scenario ``sc`` for call number ``call_no`` (0-based), if any.

    ``endpoint`` is ``stats``, ``dataset_quality``, ``da_checks`` or ``debug_token``.
    """
    kind = sc.kind
    if kind is ScenarioKind.TOKEN_INVALID:
        # Both real 190 shapes: the mock's decrypt failure with HTTP 500 on /stats, the
        # live expired session with HTTP 400 elsewhere.
        return _token_undecryptable() if endpoint == "stats" else _token_expired()
    if kind is ScenarioKind.RATE_LIMITED:
        return _throttled(sc, endpoint, dataset_id)
    if kind is ScenarioKind.SERVER_ERROR:
        if endpoint in ("stats", "debug_token"):
            html = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            return Reply(503, None, raw=html, content_type="text/html")
        return Reply(500, error_body(2, _TRANSIENT_2, transient=True, trace=None))
    if kind is ScenarioKind.MALFORMED_JSON:
        return Reply(200, None, raw=b'{"data": [{"start_time": "2026-09-19T15:00:00+0000", "ag')
    if kind is ScenarioKind.FLAKY and call_no < sc.fail_first:
        return Reply(500, error_body(2, _TRANSIENT_2, transient=True, trace=None))
    if kind is ScenarioKind.NO_ACCESS and endpoint != "debug_token":
        return no_such_object(dataset_id or "")
    return None


def _throttled(sc: Scenario, endpoint: str, dataset_id: str | None) -> Reply:
    headers = usage_headers(sc, dataset_id, throttled=True)
    if endpoint in ("stats", "da_checks"):
        # error_80004_ad_account.json: no is_transient key, HTTP 400.
        body = error_body(80004, _AD_ACCOUNT_CALLS, subcode=2446079, trace="AFm-w0VSqFxoRyuKX")
        return Reply(400, body, headers)
    if endpoint == "dataset_quality":
        # error_17_user_request_limit_events.json: no subcode, HTTP 500.
        return Reply(500, error_body(17, "User request limit reached"), headers)
    return Reply(400, error_body(4, "(#4) Application request limit reached"), headers)

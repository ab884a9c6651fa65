"""The ``diagnostics`` check: token, throttling, unreadable parts, Meta's own diagnostics."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from checks.diagnostics import (
    META_DIAGNOSTIC,
    RATE_LIMITED,
    SOURCE_UNAVAILABLE,
    TOKEN_EXPIRING,
    TOKEN_INVALID,
    Diagnostics,
)
from monitor.model.findings import Severity, Status
from monitor.model.graph import GraphErrorKind, Part, TokenInfo, Usage
from tests.support.checkutil import codes, one
from tests.support.graphutil import DAY, NOW, da, diag, failure, quality, run_graph, snapshot


def test_healthy_snapshot_is_ok() -> None:
    graph = snapshot(
        da_checks=[da("pixel_decline", "passed"), da("catalog_match", "unavailable")],
        quality_=[quality("Purchase", composite_score=8.1)],
    )
    result = run_graph(Diagnostics, graph)
    assert result.status is Status.OK and result.score == 100 and not result.findings


def test_no_graph_source_is_skipped() -> None:
    assert run_graph(Diagnostics, None).status is Status.SKIPPED


# (intent, token, errors, expected codes)
SOURCE: list[tuple[str, TokenInfo | None, list[Any], set[str]]] = [
    ("debug_token says invalid", TokenInfo(valid=False, checked_at=NOW, error="expired",
     code=190, subcode=463), [], {TOKEN_INVALID}),
    ("190 on the stats calls", None, [failure(Part.STATS_EVENT, GraphErrorKind.TOKEN_INVALID, 190),
     failure(Part.TOKEN, GraphErrorKind.TOKEN_INVALID, 190)], {TOKEN_INVALID}),
    ("throttled after retries", None, [failure(Part.DATASET_QUALITY, GraphErrorKind.RATE_LIMITED,
     80004)], {RATE_LIMITED}),
    ("5xx", None, [failure(Part.DA_CHECKS)], {SOURCE_UNAVAILABLE}),
    ("permission", None, [failure(Part.DATASET_QUALITY, GraphErrorKind.PERMISSION, 10)],
     {SOURCE_UNAVAILABLE}),
    ("mixed causes", None, [failure(Part.STATS_EVENT, GraphErrorKind.RATE_LIMITED, 17),
     failure(Part.DA_CHECKS, GraphErrorKind.UNKNOWN)], {RATE_LIMITED, SOURCE_UNAVAILABLE}),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "token", "errors", "expected"), SOURCE)
def test_source_problems(
    intent: str, token: TokenInfo | None, errors: list[Any], expected: set[str]
) -> None:
    graph = snapshot(token=token or TokenInfo(valid=True, checked_at=NOW), errors=errors)
    result = run_graph(Diagnostics, graph)
    assert codes(result) == expected, intent
    for f in result.findings:
        assert f.event_names == []  # dataset-wide: one alert per dataset
        assert f.severity is (Severity.CRIT if f.code == TOKEN_INVALID else Severity.WARN)
    assert result.status is not Status.OK


def test_token_invalid_explains_its_parts_and_names_the_code() -> None:
    errors = [
        failure(p, GraphErrorKind.TOKEN_INVALID, 190)
        for p in (Part.STATS_EVENT, Part.DATASET_QUALITY)
    ]
    finding = one(run_graph(Diagnostics, snapshot(errors=errors)), TOKEN_INVALID)
    assert finding.count == 2 and finding.evidence["code"] == 190
    assert finding.evidence["parts"] == ["stats.event", "dataset_quality"]


def test_rate_limited_carries_usage() -> None:
    graph = snapshot(errors=[failure(Part.STATS_EVENT, GraphErrorKind.RATE_LIMITED, 4)])
    graph = dataclasses.replace(graph, usage=Usage(app_pct=96.0))
    finding = one(run_graph(Diagnostics, graph), RATE_LIMITED)
    assert finding.evidence["usage_pct"]["app"] == 96.0


# (intent, expires_at, data_access_expires_at, settings, expected severity)
EXPIRY: list[tuple[str, float | None, float | None, dict[str, Any], Severity | None]] = [
    ("never expires (expires_at 0)", None, None, {}, None),
    ("in 10 days", NOW + 10 * DAY, None, {}, None),
    ("in 3 days", NOW + 3 * DAY, None, {}, Severity.WARN),
    ("in 12 hours", NOW + 0.5 * DAY, None, {}, Severity.CRIT),
    ("data access in 2 days", None, NOW + 2 * DAY, {}, Severity.WARN),
    ("window widened to 30 days", NOW + 10 * DAY, None, {"token_expiry_warn": "30d"},
     Severity.WARN),
    ("warning disabled", NOW + 3 * DAY, None, {"token_expiry_warn": 0}, None),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "expires", "data_access", "cfg", "severity"), EXPIRY)
def test_token_expiring(
    intent: str,
    expires: float | None,
    data_access: float | None,
    cfg: dict[str, Any],
    severity: Severity | None,
) -> None:
    token = TokenInfo(
        valid=True, checked_at=NOW, expires_at=expires, data_access_expires_at=data_access
    )
    result = run_graph(Diagnostics, snapshot(token=token), {"diagnostics": cfg})
    if severity is None:
        assert not result.findings, intent
        return
    finding = one(result, TOKEN_EXPIRING)
    assert finding.severity is severity, intent
    assert finding.field == "access_token"


def test_expiry_is_judged_against_the_run_clock() -> None:
    # Checked an hour "ago" per the token probe does not matter: --now is the clock.
    token = TokenInfo(valid=True, checked_at=NOW - 3600, expires_at=NOW + 3 * DAY)
    assert codes(run_graph(Diagnostics, snapshot(token=token))) == {TOKEN_EXPIRING}


# (intent, da_checks results, settings, failed keys reported)
DA: list[tuple[str, list[tuple[str, str]], dict[str, Any], list[str]]] = [
    ("all passed", [("pixel_decline", "passed")], {}, []),
    ("unavailable is not a failure", [("pixel_decline", "unavailable")], {}, []),
    ("unknown result", [("pixel_decline", "unknown")], {}, []),
    ("pixel_decline failed", [("pixel_decline", "failed")], {}, ["pixel_decline"]),
    ("two failed", [("pixel_decline", "failed"), ("pixel_missing_dpa_event", "failed")], {},
     ["pixel_decline", "pixel_missing_dpa_event"]),
    ("ignored key", [("pixel_missing_dpa_event", "failed")],
     {"ignore_da_checks": ["PIXEL_MISSING_DPA_EVENT"]}, []),
    ("unknown key kept", [("some_future_check", "failed")], {}, ["some_future_check"]),
]  # fmt: skip


@pytest.mark.parametrize(("intent", "results", "cfg", "failed"), DA)
def test_da_checks(
    intent: str, results: list[tuple[str, str]], cfg: dict[str, Any], failed: list[str]
) -> None:
    graph = snapshot(da_checks=[da(k, r) for k, r in results])
    result = run_graph(Diagnostics, graph, {"diagnostics": cfg})
    fields = sorted(f.field or "" for f in result.findings if f.code == META_DIAGNOSTIC)
    assert fields == [f"da_checks.{k}" for k in failed], intent


def test_emq_diagnostics_grouped_by_name_with_min_affected_guard() -> None:
    graph = snapshot(
        quality_=[
            quality("Purchase", diagnostics=[diag(), diag("Update IPv4 to IPv6", affected=3)]),
            quality("AddToCart", diagnostics=[diag()]),
            quality("Lead", diagnostics=[diag("No counts", affected=None)]),
        ]
    )
    result = run_graph(Diagnostics, graph)
    found = {f.evidence["diagnostic"]: f for f in result.findings if f.code == META_DIAGNOSTIC}
    assert set(found) == {"Server sending mismatched IP addresses", "No counts"}  # 3 < 10
    ip = found["Server sending mismatched IP addresses"]
    assert ip.event_names == ["AddToCart", "Purchase"] and ip.count == 820
    assert ip.remediation == "Send the client's IP."  # Meta's own solution
    assert found["No counts"].count == 1


def test_meta_text_is_scrubbed() -> None:
    leak = "Contact jane.doe@example.com, token EAAB" + "x" * 40
    graph = snapshot(da_checks=[da("pixel_decline", "failed", title=leak)])
    text = str(one(run_graph(Diagnostics, graph), META_DIAGNOSTIC).to_dict())
    assert "jane.doe@example.com" not in text and "EAAB" + "x" * 40 not in text


def test_absent_parts_do_not_crash() -> None:
    graph = snapshot(quality_=None, da_checks=None, token=None)
    assert run_graph(Diagnostics, graph).status is Status.OK

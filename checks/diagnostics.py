"""The ``diagnostics`` check (Graph API): Meta's own diagnostics, the token, the source.

Everything here is dataset-wide (``event_names`` empty) except the EMQ diagnostics, which
Meta gives per event name. Thresholds are in ``[checks.diagnostics]``.

``TOKEN_INVALID`` (crit)
    ``/debug_token`` says ``is_valid: false``, or any Graph call answered code 190/102
    (docs/meta-capi.md §8, appendix). The parts that failed for it are explained by this
    finding, not repeated as ``SOURCE_UNAVAILABLE``.
``RATE_LIMITED`` (warn)
    A part stayed throttled (4, 17, 32, 341, 613, 80000-80014, HTTP 429) after the client's
    retries: "throttled" is its own state, not an outage (§8).
``SOURCE_UNAVAILABLE`` (warn)
    A part could not be read for another reason: 5xx, malformed JSON, timeouts,
    permission, unknown dataset (100/33: the remediation names the dataset id and the
    token's access). The checks that need that part report ``error``.
``TOKEN_EXPIRING`` (warn; crit within ``token_expiry_crit``, 1 d)
    The token, or its data access, expires within ``token_expiry_warn`` (7 d) of ``now``
    (``expires_at`` 0 means never, appendix). ``token_expiry_warn = 0`` disables it.
``META_DIAGNOSTIC`` (warn)
    One per failed ``da_checks`` entry (result compared case-insensitively; ``unavailable``
    is not a failure, §4), unless its key is in ``ignore_da_checks``; and one per EMQ
    ``diagnostics`` entry name (§3) over the event names that carry it, unless Meta says it
    affects fewer than ``min_affected_events`` (10) events.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from checks.base import CheckContext, names_text
from checks.graph_common import (
    GraphPart,
    GraphState,
    graph_finding,
    graph_only,
    skipped_part,
    unreadable,
)
from monitor.mask import scrub_text
from monitor.model.findings import CheckResult, Finding, Severity
from monitor.model.graph import (
    DaCheck,
    EmqDiagnostic,
    GraphErrorKind,
    GraphSnapshot,
    Part,
    PartError,
)
from monitor.model.observations import Delivery

TOKEN_INVALID = "TOKEN_INVALID"
TOKEN_EXPIRING = "TOKEN_EXPIRING"
RATE_LIMITED = "RATE_LIMITED"
SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
META_DIAGNOSTIC = "META_DIAGNOSTIC"
PARTS = (Part.DA_CHECKS, Part.DATASET_QUALITY, Part.TOKEN)
_DAY = 86400.0


class Diagnostics:
    """Judges the snapshot's errors, token info, ``da_checks`` and EMQ diagnostics."""

    id: ClassVar[str] = "diagnostics"
    weight: ClassVar[float] = 1.0  # in the health score
    reads_graph: ClassVar[bool] = True
    title: ClassVar[str] = "Meta diagnostics, token and Graph access"

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.settings.diagnostics

    def observe(self, delivery: Delivery) -> None:
        """Nothing to fold: everything here comes from the Graph API."""

    def merge(self, later: Diagnostics) -> None:
        """Nothing observed, nothing to merge."""

    def result(self) -> CheckResult:
        return graph_only(self.id, self.graph_part())

    def graph_part(self) -> GraphPart:
        snap = self.ctx.graph
        if snap is None:
            return skipped_part()
        findings = self._source_findings(snap)
        if snap.token is not None and snap.token.valid:
            findings += self._expiry_findings(snap)
        findings += [self._da_finding(c) for c in self._failed_checks(snap)]
        findings += self._emq_findings(snap)
        failed = unreadable(snap, PARTS)
        if findings:
            text = f"{len(findings)} finding(s): " + ", ".join(sorted({f.code for f in findings}))
            state = GraphState.ERROR if failed else GraphState.EVALUATED
            return GraphPart(state, text + ".", findings)
        if failed:  # unreachable in practice: a failed part always yields a finding
            return GraphPart(GraphState.ERROR, "Meta's diagnostics could not be read.")
        if not any(snap.polled(p) for p in PARTS):  # a /stats-only poll (daemon job graph)
            return GraphPart(
                GraphState.EVALUATED,
                "the Graph API answered; token and Meta's diagnostics not read in this cycle.",
            )
        checks = len(snap.da_checks or ())
        return GraphPart(
            GraphState.EVALUATED,
            f"token valid, {checks} da_checks without failure, no EMQ diagnostics.",
        )

    # -- the source itself

    def _source_findings(self, snap: GraphSnapshot) -> list[Finding]:
        token_errors = [e for e in snap.errors if e.kind is GraphErrorKind.TOKEN_INVALID]
        throttled = [e for e in snap.errors if e.kind is GraphErrorKind.RATE_LIMITED]
        other = [e for e in snap.errors if e not in token_errors and e not in throttled]
        out = []
        if snap.token_invalid:
            out.append(self._token_invalid(snap, token_errors))
        if throttled:
            out.append(self._rate_limited(snap, throttled))
        if other:
            out.append(self._unavailable(other))
        return out

    def _token_invalid(self, snap: GraphSnapshot, errors: list[PartError]) -> Finding:
        # debug_token's own verdict first (it says why), else the first 190/102 answer.
        probe = snap.token if snap.token is not None and not snap.token.valid else None
        first = errors[0] if errors else None
        reason = (probe.error if probe else None) or (
            first.message_scrubbed if first else "debug_token: is_valid is false"
        )
        code = probe.code if probe and probe.code is not None else (first and first.code)
        subcode = (
            probe.subcode if probe and probe.subcode is not None else (first and first.subcode)
        )
        msg = (
            "Meta rejects the access token used for this dataset's Graph API reads "
            f"({scrub_text(reason)})."
        )
        rem = (
            "Issue a new long-lived system-user token with ads_read (Business Settings > "
            "System users), put it in the environment variable named by access_token_env, "
            "and update the CAPI sender too if it uses the same token."
        )
        evidence = {
            "code": code,
            "subcode": subcode,
            "parts": [e.part.value for e in errors] or [Part.TOKEN.value],
        }
        return graph_finding(
            self.id,
            TOKEN_INVALID,
            Severity.CRIT,
            max(1, len(errors)),
            msg,
            rem,
            field_name="access_token",
            evidence=evidence,
        )

    def _rate_limited(self, snap: GraphSnapshot, errors: list[PartError]) -> Finding:
        usage = snap.usage
        msg = (
            f"Meta throttled {len(errors)} Graph API read(s) for this dataset even after "
            f"retries ({', '.join(e.part.value for e in errors)}): those checks are not "
            "evaluated this time."
        )
        rem = (
            "Poll less often ([schedule] graph_every, quality_every), lower [meta] "
            "concurrency, or move the app to standard access; other apps or scripts "
            "sharing this ad account's quota count too."
        )
        evidence: dict[str, Any] = {"parts": _parts(errors)}
        if usage is not None:
            evidence["usage_pct"] = {
                "app": usage.app_pct,
                "business": usage.business_pct,
                "ad_account": usage.ad_account_pct,
            }
            evidence["regain_access_s"] = usage.regain_access_s
        return graph_finding(
            self.id, RATE_LIMITED, Severity.WARN, len(errors), msg, rem, evidence=evidence
        )

    def _unavailable(self, errors: list[PartError]) -> Finding:
        kinds = sorted({e.kind.value for e in errors})
        msg = (
            f"{len(errors)} part(s) of Meta's Graph API could not be read "
            f"({', '.join(e.part.value for e in errors)}: {', '.join(kinds)}); the checks "
            "that need them report error, not ok."
        )
        rem = _UNAVAILABLE_ADVICE.get(kinds[0], _UNAVAILABLE_ADVICE["transient"])
        if len(kinds) > 1:
            rem = _UNAVAILABLE_ADVICE["transient"]
        rem = rem.format(dataset=self.ctx.dataset_id)
        return graph_finding(
            self.id,
            SOURCE_UNAVAILABLE,
            Severity.WARN,
            len(errors),
            msg,
            rem,
            evidence={"parts": _parts(errors)},
        )

    # -- token expiry

    def _expiry_findings(self, snap: GraphSnapshot) -> list[Finding]:
        token = snap.token
        warn = self.cfg.token_expiry_warn
        if token is None or warn <= 0:
            return []
        now = self.ctx.now
        expiries = {
            "token": token.expires_at,
            "data_access": token.data_access_expires_at,
        }
        soon = {k: t for k, t in expiries.items() if t is not None and t - now < warn}
        if not soon:
            return []
        what, when = min(soon.items(), key=lambda kv: kv[1])
        left = when - now
        severity = Severity.CRIT if left < self.cfg.token_expiry_crit else Severity.WARN
        noun = "The access token" if what == "token" else "The token's data access"
        verb = "expired" if left <= 0 else "expires"
        ago = f"{-left / _DAY:.1f} days ago" if left <= 0 else f"in {left / _DAY:.1f} days"
        msg = f"{noun} used for this dataset {verb} {ago}."
        rem = (
            "Replace it with a system-user token that does not expire (expires_at 0) and "
            "update the environment variable named by access_token_env."
        )
        evidence = {
            "expires_at": token.expires_at,
            "data_access_expires_at": token.data_access_expires_at,
            "seconds_left": round(left),
            "warn_seconds": warn,
            "type": token.type,
        }
        return [
            graph_finding(
                self.id,
                TOKEN_EXPIRING,
                severity,
                1,
                msg,
                rem,
                field_name="access_token",
                evidence=evidence,
            )
        ]

    # -- Meta's own diagnostics

    def _failed_checks(self, snap: GraphSnapshot) -> list[DaCheck]:
        ignored = {k.strip().lower() for k in self.cfg.ignore_da_checks}
        return [c for c in snap.da_checks or () if c.failed and c.key.lower() not in ignored]

    def _da_finding(self, check: DaCheck) -> Finding:
        title = scrub_text(check.title or check.key)
        detail = scrub_text(check.description or check.user_message or "")
        msg = f"Meta's diagnostic {check.key!r} failed: {title}." + (f" {detail}" if detail else "")
        rem = _DA_ADVICE.get(check.key, _DA_DEFAULT)
        if check.action_uri:
            rem += f" Details in Events Manager: {scrub_text(check.action_uri)}"
        evidence = {"key": check.key, "result": check.result, "title": title}
        return graph_finding(
            self.id,
            META_DIAGNOSTIC,
            Severity.WARN,
            1,
            msg,
            rem,
            field_name=f"da_checks.{check.key}",
            evidence=evidence,
        )

    def _emq_findings(self, snap: GraphSnapshot) -> list[Finding]:
        by_name: dict[str, list[tuple[str, EmqDiagnostic]]] = defaultdict(list)
        for q in snap.quality or ():
            for d in q.diagnostics:
                affected = d.affected_event_count
                if affected is not None and affected < self.cfg.min_affected_events:
                    continue
                by_name[d.name].append((q.event_name, d))
        return [self._emq_finding(name, items) for name, items in sorted(by_name.items())]

    def _emq_finding(self, name: str, items: list[tuple[str, EmqDiagnostic]]) -> Finding:
        events = sorted({e for e, _ in items})
        first = items[0][1]
        affected = sum(d.affected_event_count or 0 for _, d in items)
        share = max((d.percentage for _, d in items if d.percentage is not None), default=None)
        msg = f"Meta reports {scrub_text(name)!r} for {names_text(events)}" + (
            f" (up to {share:g}% of events)." if share is not None else "."
        )
        if first.description:
            msg += f" {scrub_text(first.description)}"
        rem = scrub_text(first.solution) if first.solution else _DA_DEFAULT
        evidence = {
            "diagnostic": scrub_text(name),
            "affected_event_count": affected or None,
            "by_event_name": {
                e: {
                    "percentage": d.percentage,
                    "affected_event_count": d.affected_event_count,
                    "total_event_count": d.total_event_count,
                }
                for e, d in items
            },
        }
        return graph_finding(
            self.id,
            META_DIAGNOSTIC,
            Severity.WARN,
            affected or len(items),
            msg,
            rem,
            event_names=events,
            field_name="event_match_quality.diagnostics",
            evidence=evidence,
        )


def _parts(errors: list[PartError]) -> list[dict[str, Any]]:
    """Failed parts for the evidence: kinds, codes and Meta's (already scrubbed) words."""
    return [
        {
            "part": e.part.value,
            "kind": e.kind.value,
            "code": e.code,
            "subcode": e.subcode,
            "http_status": e.http_status,
            "attempts": e.attempts,
            "message": scrub_text(e.message_scrubbed),
        }
        for e in errors
    ]


_UNAVAILABLE_ADVICE = {
    "permission": "Give the token's system user access to this dataset (Business Settings > "
    "Data sources > Datasets > Assign people) with ads_read, and the app ads_read plus "
    "ads_management or business_management.",
    "not_found": "Meta cannot reach dataset {dataset} with this token (100/33: the object "
    "is missing or the token has no access): check the dataset id in the config and that "
    "the token's system user is assigned to dataset {dataset} (Business Settings > Data "
    "sources > Datasets) with ads_read.",
    "invalid": "The request was refused as invalid: check [meta] api_version and graph_url.",
    "transient": "Usually temporary on Meta's side: it is retried on the next poll. If it "
    "persists, check [meta] graph_url (proxies) and Meta's status page.",
}
_DA_ADVICE = {
    "pixel_decline": "Events fell below half of the weekly average over 24 hours: check "
    "recent site or tag changes, consent-banner changes and the server sender's errors.",
    "pixel_missing_dpa_event": "Send ViewContent, AddToCart and Purchase with content_ids "
    "for dynamic ads, or ignore this key in [checks.diagnostics] ignore_da_checks if the "
    "dataset runs no dynamic ads.",
    "pixel_missing_param_in_events": "Send content_ids and content_type (and value and "
    "currency on Purchase) with the dynamic-ads events.",
}
_DA_DEFAULT = "Follow Meta's recommendation in Events Manager > Diagnostics for this dataset."

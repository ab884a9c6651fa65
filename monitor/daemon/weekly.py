"""Delivering the weekly report: files, an email with inline charts, a Slack summary.

``run_weekly(store, settings, now, notifiers, owner)`` is the daemon's ``weekly_report``
job. It works out which weeks are due (``[schedule] weekly_report``, e.g. ``mon 08:00``
in ``[schedule] timezone``: at that time the last complete week is due), claims each
one in the store (``monitor.store.reports``: only one process ever delivers a week),
builds the report, and delivers it:

- **files**: ``[report] dir``/``<YYYY-Www>``/``index.html`` + one page per dataset;
- **email** through ``[notify.email]``: ``multipart/related`` HTML (the index page with
  its charts as ``cid:`` inline images — Gmail and Outlook do not show ``data:`` images)
  and a plain-text part, plus the self-contained pages attached. The ``Message-ID`` is
  derived from the week, so a resend after a crash is recognised by mail systems;
- **Slack** through ``[notify.slack]``: one post with the headline numbers per dataset.

Each delivered channel is recorded at once, so a retry after a partial failure sends
only what is missing. On start the job runs at once, so a week whose report time passed
while the daemon was down is delivered then (at most ``MAX_CATCH_UP`` weeks back; a
week before any data in the store is recorded as skipped, not sent). Secrets stay in
the notifiers; errors are scrubbed ``NotifierError`` text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

from monitor.config import Settings, parse_weekly
from monitor.notify.base import NotifierError
from monitor.notify.slack import escape
from monitor.report.weekly.load import build_weekly_report
from monitor.report.weekly.render import render_index, render_pages, write_pages
from monitor.report.weekly.view import WeeklyReport
from monitor.report.window import ReportWindow, latest_due_week
from monitor.store import Store
from monitor.store import weekly as weekly_data
from monitor.store.reports import ClaimState, claim_week, claims, finish, record_delivery

log = logging.getLogger(__name__)

MAX_CATCH_UP = 8  # weeks delivered after an outage; older due weeks are marked skipped
MAX_ATTACHMENTS_BYTES = 15 * 1024 * 1024  # pages attached to one email, at most
SLACK_DATASETS = 20  # datasets listed in the Slack summary
EVENT_TYPE = "capi_monitor_weekly_report"


class MessageSender(Protocol):
    def send_message(self, msg: EmailMessage, recipients: Sequence[str] | None = None) -> str: ...


class Poster(Protocol):
    def post(
        self,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        metadata: dict[str, Any] | None = None,
        target: str | None = None,
    ) -> str | None: ...


def default_owner() -> str:
    """Who holds a claim: ``host:pid`` (for people reading ``report_claims``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


# --- the email -------------------------------------------------------------------------


def subject(report: WeeklyReport) -> str:
    """``[capi-monitor] Weekly CAPI audit 2026-W47: Shop D 64 (−28), Leads A 96``."""
    parts = [f"{d.title} {d.grade} {d.score.text}" for d in report.datasets[:4]]
    more = f" +{len(report.datasets) - 4} more" if len(report.datasets) > 4 else ""
    text = f"[capi-monitor] Weekly CAPI audit {report.window.week or report.window.slug}"
    text += f": {', '.join(parts)}{more}" if parts else ""
    return " ".join(text.split())[:200]  # header values: one line, bounded


def text_body(report: WeeklyReport, not_attached: Sequence[str] = ()) -> str:
    lines = [f"Weekly CAPI audit {report.window.label}", ""]
    for label, d in report.totals:
        lines.append(f"{label}: {d.text} ({d.change_text} vs last week)")
    lines.append("")
    lines += report.headline_text() or ["No dataset had data in this window."]
    lines.append("")
    lines.append("The full report is attached: open index.html, or a dataset's page.")
    if not_attached:
        lines.append(f"Not attached (too large): {', '.join(not_attached)}")
    return "\n".join(lines) + "\n"


def build_weekly_email(
    report: WeeklyReport,
    pages: Mapping[str, str],
    *,
    sender: str,
    recipients: Sequence[str],
    now: float,
) -> EmailMessage:
    """The weekly email: text + HTML with inline (CID) charts, the pages attached."""
    attached, skipped, size = [], [], 0
    for name, html in pages.items():
        n = len(html.encode("utf-8"))
        if size + n <= MAX_ATTACHMENTS_BYTES:
            attached.append(name)
            size += n
        else:
            skipped.append(name)
    msg = EmailMessage()
    msg["Subject"] = subject(report)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(now, usegmt=True)
    digest = hashlib.sha256(report.window.slug.encode()).hexdigest()[:24]
    domain = sender.rpartition("@")[2].strip(" >") or "capi-monitor.invalid"
    msg["Message-ID"] = f"<capi-monitor.weekly.{digest}@{domain}>"
    msg.set_content(text_body(report, skipped))
    msg.add_alternative(render_index(report, images="cid", email=True), subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)  # add_alternative made it one
    for chart in report.charts:
        # add_related turns the HTML part into multipart/related: the images travel with
        # it and mail clients resolve src="cid:..." against their Content-ID.
        html_part.add_related(chart.png, "image", "png", cid=f"<{chart.cid}>",
                              filename=f"{chart.id}.png")  # fmt: skip
    for name in attached:
        msg.add_attachment(
            pages[name].encode("utf-8"), maintype="text", subtype="html", filename=name
        )
    return msg


# --- the Slack summary -----------------------------------------------------------------


def slack_summary(report: WeeklyReport, where: str | None) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks): the totals, then one line per dataset."""
    title = f"Weekly CAPI audit {report.window.label}"
    totals = " · ".join(f"*{label}* {d.text} ({d.change_text})" for label, d in report.totals)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": totals or "No data."}},
    ]
    rows = []
    for d in report.datasets[:SLACK_DATASETS]:
        top = f" · fix first `{escape(d.top[0].code)}` ×{d.top[0].count:,}" if d.top else ""
        rows.append(
            f"*{escape(d.title)}* · grade {d.grade} ({d.score.text}, {d.score.change_text})"
            f" · {escape(dict(d.headline)['Server events'].text)} server events"
            f" · {len(d.alerts_open)} open alerts{top}"
        )
    if len(report.datasets) > SLACK_DATASETS:
        rows.append(f"+{len(report.datasets) - SLACK_DATASETS} more datasets in the report")
    if rows:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(rows)[:2900]}}
        )
    note = f"Full report: {escape(where)}" if where else "Full report: sent by email"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note[:2900]}]})
    return escape(f"{title}: " + "; ".join(report.headline_text())[:2800]), blocks


# --- the job ---------------------------------------------------------------------------


def due_weeks(store: Store, settings: Settings, now: float) -> list[ReportWindow]:
    """Weeks whose report time has passed and that no claim covers yet, oldest first:
    the newest due week, and after an outage those missed since the newest claimed one."""
    when = parse_weekly(settings.schedule.weekly_report)
    if when is None:
        return []
    latest = latest_due_week(now, settings.schedule.timezone, when)
    claimed = {c.week for c in claims(store)}
    newest = max(claimed, default=None)
    weeks = [latest]
    while newest is not None and len(weeks) <= MAX_CATCH_UP:
        before = weeks[-1].previous()
        if before.week is None or before.week <= newest:
            break
        weeks.append(before)
    return [w for w in reversed(weeks) if w.week not in claimed or _retryable(store, w)]


def _retryable(store: Store, week: ReportWindow) -> bool:
    # A claimed week may still need a retry (failed, or its holder died): claim_week decides.
    return any(c.week == week.week and c.state in (ClaimState.FAILED, ClaimState.CLAIMED)
               for c in claims(store))  # fmt: skip


def has_destination(settings: Settings) -> bool:
    """Whether the weekly job has anywhere to deliver (files, email or Slack)."""
    r, n = settings.report, settings.notify
    return bool(r.dir or (r.email and n.email) or (r.slack and n.slack))


def enabled(settings: Settings) -> bool:
    """The job runs unless ``weekly_report = "off"`` or it has nowhere to deliver."""
    return parse_weekly(settings.schedule.weekly_report) is not None and has_destination(settings)


def run_weekly(
    store: Store,
    settings: Settings,
    now: float,
    notifiers: Mapping[str, Any],
    *,
    owner: str | None = None,
    clock: Any = time.time,
) -> dict[str, Any]:
    """Deliver every due, unclaimed week; returns counters for ``job_runs``."""
    counters: dict[str, Any] = {"weeks_sent": 0, "weeks_failed": 0, "weeks_skipped": 0}
    if not enabled(settings):
        counters["disabled"] = 1
        return counters
    me = owner or default_owner()
    weeks = due_weeks(store, settings, now)
    for window in weeks:
        assert window.week is not None
        claim = claim_week(store, window.week, me, now)
        if claim is None:
            continue  # another process has it, or it is done
        if not weekly_data.has_history(store, window.end):
            finish(store, window.week, me, ClaimState.SKIPPED, now, "no data before the week ended")
            counters["weeks_skipped"] += 1
            continue
        state, error = _deliver(store, settings, window, notifiers, me, claim.deliveries, clock)
        finish(store, window.week, me, state, clock(), error)
        counters["weeks_sent" if state is ClaimState.SENT else "weeks_failed"] += 1
        counters["last_week"] = window.week
    return counters


def _deliver(
    store: Store,
    settings: Settings,
    window: ReportWindow,
    notifiers: Mapping[str, Any],
    owner: str,
    done: Mapping[str, Any],
    clock: Any,
) -> tuple[ClaimState, str | None]:
    """Generate ``window``'s report and send it where it has not gone yet."""
    assert window.week is not None
    report = build_weekly_report(store, settings, window, now=clock())
    pages = render_pages(report)
    errors: list[str] = []
    where: str | None = None
    if settings.report.dir:
        target = Path(settings.report.dir) / window.slug
        where = str(target / "index.html")
        if "files" not in done:
            try:
                write_pages(pages, target)
                record_delivery(store, window.week, owner, "files", where, clock())
            except OSError as err:
                errors.append(f"files: cannot write {target}: {err.strerror}")
    email = notifiers.get("email")
    if settings.report.email and email is not None and "email" not in done:
        try:
            ref = _send_email(email, settings, report, pages, clock())
            record_delivery(store, window.week, owner, "email", ref, clock())
        except NotifierError as err:
            errors.append(f"email: {err}")
    slack = notifiers.get("slack")
    if settings.report.slack and slack is not None and "slack" not in done:
        try:
            text, blocks = slack_summary(report, where)
            metadata = {"event_type": EVENT_TYPE, "event_payload": {"week": window.week}}
            ref = slack.post(text, blocks, metadata=metadata, target=settings.report.slack_channel)
            record_delivery(store, window.week, owner, "slack", ref, clock())
        except NotifierError as err:
            errors.append(f"slack: {err}")
    if errors:
        log.warning(
            "weekly report not fully delivered", extra={"week": window.week, "errors": errors}
        )
        return ClaimState.FAILED, "; ".join(errors)
    log.info("weekly report delivered", extra={"week": window.week})
    return ClaimState.SENT, None


def _send_email(
    email: MessageSender, settings: Settings, report: WeeklyReport, pages: Mapping[str, str],
    now: float,
) -> str:  # fmt: skip
    conf = settings.notify.email
    assert conf is not None
    recipients = settings.report.email_to or conf.to
    msg = build_weekly_email(report, pages, sender=conf.from_, recipients=recipients, now=now)
    return email.send_message(msg, recipients)

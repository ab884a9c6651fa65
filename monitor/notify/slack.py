"""Slack: a bot token with the Web API (``chat.postMessage``), or an incoming webhook.

One post per notification: a header with the severity and the dataset, then one section
per alert naming its code, its state (``FIRING``/``RESOLVED``), the event name, what broke,
since when, the numbers and the fix. Every post carries message ``metadata``
(``event_type: "capi_monitor_alert"``) so other tools can read it (docs/contracts.md §6).

With a bot token, a notification that only resolves alerts is posted in the thread of the
post that first reported them (and broadcast to the channel), and each resolved alert
says when it was first reported. ``find_sent`` looks for the idempotency key in the
metadata of recent posts (``conversations.history`` with ``include_all_metadata``): the
sender asks it before re-sending a post whose outcome it does not know. Needed scopes:
``chat:write``, ``channels:history`` (``groups:history`` for private channels) and, to
find a channel's id from its name, ``channels:read``/``groups:read``.

An incoming webhook posts to its one channel, cannot thread and cannot be asked what it
posted: ``find_sent`` returns ``None`` and an unknown outcome is sent again.

slack_sdk's own retry handlers are switched off: the outbox sender owns retries (it
must never sleep inside a send, and it persists the backoff). The token and the webhook
URL never leave this module: errors are rebuilt from Slack's error code, and slack_sdk
logs through a per-client logger that redacts them.
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from monitor.alerts.model import FLEET_LABEL, Notification
from monitor.notify.base import (
    FirstReport,
    NotifierError,
    all_resolved,
    codes_summary,
    contains_secret,
    dataset_label,
    ordered_alerts,
    private_logger,
    scrub,
    top_severity,
)
from monitor.notify.render import AlertLine, alert_lines, headline

EVENT_TYPE = "capi_monitor_alert"
MAX_DETAILED_ALERTS = 10  # alerts shown in full; the rest are listed by code and state
MAX_SECTION_CHARS = 2900  # Slack rejects section text over 3000 characters
MAX_HEADER_CHARS = 150
MAX_METADATA_ALERTS = 50
HISTORY_PAGES = 2  # find_sent looks at the newest 2 x 100 posts of the channel
HISTORY_PAGE_SIZE = 100
LIST_PAGES = 10
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
T = TypeVar("T")
_EMOJI = {"crit": ":red_circle:", "warn": ":large_orange_circle:", "info": ":large_blue_circle:"}

# Slack error codes (https://api.slack.com/methods/chat.postMessage#errors). Anything
# else answered with HTTP 200 is Slack refusing this request: permanent.
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)
_HINTS = {
    "invalid_auth": "the bot token is not valid; check the environment variable",
    "not_authed": "no bot token was sent",
    "token_revoked": "the bot token was revoked",
    "token_expired": "the bot token expired",
    "account_inactive": "the bot's account is deactivated",
    "channel_not_found": "no such channel, or the app cannot see it",
    "not_in_channel": "invite the app to the channel (/invite @app)",
    "is_archived": "the channel is archived",
    "missing_scope": "the bot token lacks a scope (chat:write, channels:history)",
}


def escape(text: str) -> str:
    """Slack mrkdwn escaping: log-controlled text must not become links or @-mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the message -----------------------------------------------------------------------


@dataclass(slots=True)
class SlackMessage:
    """What one notification becomes: fallback text, Block Kit blocks, metadata, thread."""

    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any]
    thread_ts: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION_CHARS)}}


def _context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": _cut(t, MAX_SECTION_CHARS)} for t in texts if t]
    return {"type": "context", "elements": elements}


def _alert_text(line: AlertLine) -> str:
    head = (
        f"*{line.state}* · `{escape(line.code)}` · {line.severity.upper()} · {escape(line.scope)}"
    )
    if line.firing:
        head += f" · {line.reason}"
        when = f"*Since* {line.since} ({line.duration}) · *Affected* {line.count}"
    else:
        resolved = line.resolved_at or "now"
        when = (
            f"Resolved at {resolved} — first reported at {line.first_reported_at}"
            f" (fired for {line.duration}) · *Affected* {line.count}"
        )
    parts = [head, escape(line.message), when]
    if line.evidence:
        parts.append(" · ".join(f"{escape(k)}: {escape(v)}" for k, v in line.evidence))
    if line.firing and line.remediation:
        parts.append(f"*Fix:* {escape(line.remediation)}")
    if line.firing and line.examples:
        shown = ", ".join(f"`{escape(e.value)}`" for e in line.examples)
        parts.append(f"_Examples (masked):_ {shown}")
    return "\n".join(p for p in parts if p)


def _overflow_blocks(lines: list[AlertLine]) -> list[dict[str, Any]]:
    """The alerts past ``MAX_DETAILED_ALERTS``, by code and state, in few sections."""
    rows = [f"*{ln.state}* `{escape(ln.code)}` {escape(ln.scope)}" for ln in lines]
    blocks: list[dict[str, Any]] = []
    chunk: list[str] = [f"*{len(lines)} more alerts:*"]
    for row in rows:
        if sum(len(r) + 1 for r in chunk) + len(row) > MAX_SECTION_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk = []
        chunk.append(row)
    blocks.append(_section("\n".join(chunk)))
    return blocks


def _dataset_context(n: Notification) -> dict[str, Any]:
    name = f"*{escape(n.dataset_name)}* " if n.dataset_name else ""
    client = f"Client *{escape(n.client)}*" if n.client else ""
    if n.dataset_id is None:
        return _context(escape(dataset_label(n)), client, "capi-monitor")
    return _context(f"Dataset {name}`{escape(n.dataset_id)}`", client, "capi-monitor")


def build_blocks(n: Notification, lines: list[AlertLine]) -> list[dict[str, Any]]:
    """Block Kit for ``n``: header, dataset context, one section per alert."""
    severity = str(top_severity(n))
    emoji = _EMOJI.get(severity, "") if any(ln.firing for ln in lines) else ":white_check_mark:"
    title = f"{emoji} {headline(n)} · {n.dataset_name or n.dataset_id or FLEET_LABEL}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER_CHARS)}},
        _dataset_context(n),
    ]
    for line in lines[:MAX_DETAILED_ALERTS]:
        blocks += [{"type": "divider"}, _section(_alert_text(line))]
    if len(lines) > MAX_DETAILED_ALERTS:
        blocks += [{"type": "divider"}, *_overflow_blocks(lines[MAX_DETAILED_ALERTS:])]
    if n.muted_note:
        blocks.append(_context(escape(n.muted_note)))
    return blocks


def build_metadata(n: Notification, key: str) -> dict[str, Any]:
    """Message metadata: the leading alert's labels at the top, every alert in ``alerts``.

    Slack accepts only strings, numbers, booleans and (lists of) flat objects here, no
    null: a dataset-wide alert has ``event_name: ""``.
    """
    alerts = ordered_alerts(n)
    items = [
        {
            "fingerprint": a.fingerprint,
            "state": a.state,
            "code": a.code,
            "dataset_id": a.dataset_id or "",
            "event_name": a.event_name or "",
            **({"instance": a.instance} if a.instance else {}),
            "severity": str(a.severity),
            "reason": str(a.reason),
        }
        for a in alerts[:MAX_METADATA_ALERTS]
    ]
    payload: dict[str, Any] = dict(items[0]) if items else {"dataset_id": n.dataset_id or ""}
    payload.update(key=key, alert_count=len(alerts), alerts=items)
    if n.dataset_name:
        payload["dataset_name"] = n.dataset_name
    if n.client:
        payload["client"] = n.client
    return {"event_type": EVENT_TYPE, "event_payload": payload}


def _thread_of(n: Notification, first_reports: Mapping[str, FirstReport]) -> str | None:
    """The ``ts`` to reply under: only for a notification that only resolves alerts, under
    the earliest post that first reported one of them."""
    if not all_resolved(n):
        return None
    known = [first_reports[a.fingerprint] for a in n.alerts if a.fingerprint in first_reports]
    return min(known, key=lambda f: f.sent_at).external_ref if known else None


def build_message(
    n: Notification, key: str, first_reports: Mapping[str, FirstReport] | None = None
) -> SlackMessage:
    """The Slack message for ``n`` (pure: no I/O)."""
    firsts = first_reports or {}
    lines = alert_lines(n, firsts)
    label = dataset_label(n)
    # The fallback text is what notifications and screen readers show: codes and states.
    text = f"[{headline(n)}] {label}: {codes_summary(n, limit=20)}"
    return SlackMessage(
        text=escape(_cut(text, 2900)),
        blocks=build_blocks(n, lines),
        metadata=build_metadata(n, key),
        thread_ts=_thread_of(n, firsts),
    )


# --- errors ----------------------------------------------------------------------------


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


def _api_error(err: SlackApiError, what: str) -> NotifierError:
    """A ``NotifierError`` from Slack's answer: its error code and HTTP status only (the
    raw error carries the request, with the token in its headers)."""
    response = err.response
    status = int(getattr(response, "status_code", 200) or 200)
    data = getattr(response, "data", None)
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    headers = getattr(response, "headers", None) or {}
    if status == 429 or code in ("ratelimited", "rate_limited"):
        wait = _retry_after(headers)
        return NotifierError(f"{what}: rate limited by Slack", False, retry_after=wait)
    if status >= 500:
        # Slack may have acted before failing: the next attempt checks before re-posting.
        return NotifierError(f"{what}: Slack answered HTTP {status}", False, uncertain=True)
    if code in TRANSIENT_ERRORS:
        return NotifierError(f"{what}: Slack error {code}", False, uncertain=True)
    if not re.fullmatch(r"[a-z_]{1,60}", code):
        code = f"HTTP {status}, unexpected answer"
    hint = _HINTS.get(code)
    return NotifierError(f"{what}: Slack error {code}" + (f" ({hint})" if hint else ""), True)


def _network_reason(err: BaseException) -> tuple[str, bool]:
    """(why, uncertain) for a network-level failure."""
    reason: Any = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out", True
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused", False
    if isinstance(reason, http.client.RemoteDisconnected | ConnectionResetError):
        return "connection closed before an answer", True
    if isinstance(reason, socket.gaierror):
        return "host name not found", False
    if isinstance(reason, http.client.HTTPException):
        return f"bad HTTP answer ({type(reason).__name__})", True
    return f"{type(reason).__name__}", False


_NETWORK_ERRORS = (urllib.error.URLError, OSError, http.client.HTTPException)


def _wrap(err: Exception, what: str, secrets: tuple[str, ...]) -> NotifierError:
    """Any failure of a slack_sdk call as a scrubbed ``NotifierError``."""
    if isinstance(err, SlackApiError):
        return _api_error(err, what)
    if isinstance(err, _NETWORK_ERRORS):
        why, uncertain = _network_reason(err)
        return NotifierError(scrub(f"{what}: {why}", secrets), False, uncertain=uncertain)
    if isinstance(err, SlackClientError):
        return NotifierError(scrub(f"{what}: {err}", secrets), True)
    return NotifierError(scrub(f"{what}: {type(err).__name__}: {err}", secrets), False)


def guarded(what: str, secrets: tuple[str, ...], call: Callable[[], T]) -> T:
    """``call()``, its failures raised as a scrubbed ``NotifierError``.

    The original exception stays attached as the cause only when it cannot hold a secret:
    a ``SlackApiError`` keeps the request (token in its headers), and anything whose text
    shows a secret is dropped. Raising outside the ``except`` block keeps it out of
    ``__context__`` too.
    """
    failure: NotifierError
    try:
        return call()
    except Exception as err:
        failure = _wrap(err, what, secrets)
        leaky = isinstance(err, SlackApiError) or contains_secret(repr(err.args), secrets)
        failure.__cause__ = None if leaky else err
    raise failure


def _host(url: str) -> str:
    return urlsplit(url).netloc or "Slack"


# --- notifiers -------------------------------------------------------------------------


class SlackNotifier:
    """Posts with a bot token through the Web API (``chat.postMessage``)."""

    id = "slack"

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        api_url: str = "https://slack.com/api/",
        timeout: float = 10.0,
    ) -> None:
        self.channel = channel
        self._secrets = (token,)
        self._channel_ids: dict[str, str] = {}
        self._client = WebClient(
            token=token,
            base_url=api_url,
            timeout=max(1, math.ceil(timeout)),
            logger=private_logger("monitor.notify.slack", self._secrets),
            retry_handlers=[],  # the outbox sender retries, with persisted backoff
        )

    def __repr__(self) -> str:  # never the token
        return f"SlackNotifier(channel={self.channel!r}, api_url={self._client.base_url!r})"

    def send(
        self,
        n: Notification,
        key: str,
        *,
        target: str | None = None,
        first_reports: Mapping[str, FirstReport] | None = None,
    ) -> str | None:
        """Post ``n`` to ``target`` (or the default channel); returns the post's ``ts``."""
        channel = target or self.channel
        msg = build_message(n, key, first_reports)
        response = guarded(
            f"chat.postMessage to {channel}",
            self._secrets,
            lambda: self._client.chat_postMessage(
                channel=channel,
                text=msg.text,
                blocks=msg.blocks,
                metadata=msg.metadata,
                thread_ts=msg.thread_ts,
                reply_broadcast=True if msg.thread_ts else None,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        if isinstance(response.get("channel"), str):
            self._channel_ids[channel] = response["channel"]
        ts = response.get("ts")
        return str(ts) if ts else None

    def post(
        self,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        metadata: dict[str, Any] | None = None,
        target: str | None = None,
    ) -> str | None:
        """Post a message built elsewhere (the weekly summary); returns its ``ts``."""
        channel = target or self.channel
        response = guarded(
            f"chat.postMessage to {channel}",
            self._secrets,
            lambda: self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, metadata=metadata,
                unfurl_links=False, unfurl_media=False,
            ),
        )  # fmt: skip
        ts = response.get("ts")
        return str(ts) if ts else None

    def find_sent(self, key: str, *, target: str | None = None) -> str | None:
        """The ``ts`` of a recent post whose metadata carries ``key``, else ``None``."""
        channel = target or self.channel
        channel_id = self._channel_id(channel)
        if channel_id is None:
            raise NotifierError(f"cannot find the id of channel {channel}", True)
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = self._call(
                "conversations.history",
                channel=channel_id,
                limit=HISTORY_PAGE_SIZE,
                include_all_metadata=True,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                if _carries(message, key):
                    return str(message.get("ts"))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or not cursor:
                break
        return None

    def _channel_id(self, channel: str) -> str | None:
        """``conversations.history`` wants an id: from a post's answer, the name, or a
        ``conversations.list`` lookup."""
        if channel in self._channel_ids:
            return self._channel_ids[channel]
        if _CHANNEL_ID.match(channel):
            return channel
        name, cursor = channel.lstrip("#"), None
        for _ in range(LIST_PAGES):
            page = self._call(
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            for item in page.get("channels") or []:
                if item.get("name") == name and isinstance(item.get("id"), str):
                    self._channel_ids[channel] = item["id"]
                    return str(item["id"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        verb = "GET" if method != "auth.test" else "POST"
        response = guarded(
            method,
            self._secrets,
            lambda: self._client.api_call(method, http_verb=verb, params=clean),
        )
        return dict(response.data) if isinstance(response.data, dict) else {}

    def check(self) -> str:
        """``auth.test``: the bot's user and team, or a ``NotifierError`` (for diagnostics)."""
        data = self._call("auth.test")
        return f"{data.get('user', '?')} on {data.get('team', '?')}"


def _carries(message: Mapping[str, Any], key: str) -> bool:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("key") == key


class SlackWebhookNotifier:
    """Posts through an incoming webhook (its URL is the secret). No threads, no lookup."""

    id = "slack"

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._secrets = (url,)
        self._client = WebhookClient(
            url,
            timeout=max(1, math.ceil(timeout)),
            logger=private_logger("monitor.notify.slack", self._secrets),
            retry_handlers=[],
        )

    def __repr__(self) -> str:  # never the URL
        return "SlackWebhookNotifier()"

    def send(
        self,
        n: Notification,
        key: str,
        *,
        target: str | None = None,
        first_reports: Mapping[str, FirstReport] | None = None,
    ) -> str | None:
        """Post ``n`` to the webhook's channel (``target`` cannot apply); returns ``None``."""
        msg = build_message(n, key, first_reports)
        what = "Slack webhook"
        response = guarded(
            what,
            self._secrets,
            lambda: self._client.send(
                text=msg.text,
                blocks=msg.blocks,
                metadata=msg.metadata,
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        status, body = response.status_code, str(response.body or "")
        if 200 <= status < 300:
            return None
        # Webhook errors are short words (no_service, invalid_payload, channel_is_archived).
        word = body if re.fullmatch(r"[a-z_]{1,60}", body) else f"HTTP {status}"
        if status == 429:
            wait = _retry_after(response.headers or {})
            raise NotifierError(f"{what}: rate limited by Slack", False, retry_after=wait)
        if status >= 500:
            raise NotifierError(f"{what}: Slack answered {word}", False, uncertain=True)
        raise NotifierError(scrub(f"{what}: Slack refused the post: {word}", self._secrets), True)

    def post(
        self,
        text: str,
        blocks: list[dict[str, Any]],
        *,
        metadata: dict[str, Any] | None = None,
        target: str | None = None,
    ) -> str | None:
        """Post a message built elsewhere (the weekly summary) to the webhook's channel."""
        what = "Slack webhook"
        response = guarded(
            what,
            self._secrets,
            lambda: self._client.send(
                text=text, blocks=blocks, metadata=metadata, unfurl_links=False,
                unfurl_media=False,
            ),
        )  # fmt: skip
        if 200 <= response.status_code < 300:
            return None
        permanent = response.status_code < 500 and response.status_code != 429
        raise NotifierError(f"{what}: Slack answered HTTP {response.status_code}", permanent)

    def find_sent(self, key: str, *, target: str | None = None) -> str | None:
        """Webhooks cannot be asked what they posted: always ``None`` (at least once)."""
        return None

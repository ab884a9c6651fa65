"""``capi-monitor doctor``: what a new setup gets wrong, checked one by one, each failure
with its fix (README "Run as a service").

Every check is read-only and safe against production: it opens the store without
migrating it, lists and sniffs log files, asks Meta's ``debug_token`` and one dataset
read, calls Slack's ``auth.test`` and ``conversations.list``, connects (and logs in) to
the SMTP server without sending, and reads one hour of each orders source. Nothing is
stored, nothing is sent; no secret appears in what it prints.

``run_doctor`` returns the checklist; ``checklist_lines`` renders it. An item is
``ok``, ``warn`` (works, but will bite: a token that expires soon), ``fail`` (this setup
will not work; the item says how to fix it) or ``skip`` (not configured).
"""

from __future__ import annotations

import glob
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from monitor.config import Settings
from monitor.mask import scrub_text

TOKEN_EXPIRY_WARN = 7 * 86400.0  # a token expiring sooner is a warning
READ_SCOPES = ("ads_read", "ads_management")  # either lets the monitor read a dataset
SNIFF_BYTES = 64 * 1024
ORDERS_PROBE = 3600.0  # seconds of orders read to prove the source answers


class State(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the checklist: ``what`` was checked, what was found, how to fix it."""

    area: str
    what: str
    state: State
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def _clean(text: object, secrets: Iterable[str] = ()) -> str:
    out = str(text)
    for s in secrets:
        if s:
            out = out.replace(s, "[redacted]")
    return scrub_text(" ".join(out.split()))[:300]


# --- store -----------------------------------------------------------------------------


def store_items(settings: Settings) -> list[Item]:
    from monitor.errors import StoreError
    from monitor.store.db import create_store_engine, mask_url, parse_url
    from monitor.store.schema import is_at_head

    url = settings.storage.url
    shown = mask_url(url)
    try:
        engine = create_store_engine(parse_url(url))
    except (StoreError, ValueError, ImportError) as err:
        return [Item("store", shown, State.FAIL, _clean(err), "fix [storage] url")]
    try:
        with engine.connect():
            pass
        migrated = is_at_head(engine)
    except Exception as err:
        why = _clean(getattr(err, "orig", None) or err, [parse_url(url).password or ""])
        return [
            Item(
                "store",
                shown,
                State.FAIL,
                f"unreachable: {why}",
                "start the database, or fix [storage] url (host, port, user, password)",
            )
        ]
    finally:
        engine.dispose()
    if not migrated:
        return [
            Item(
                "store",
                shown,
                State.FAIL,
                "reachable, but its schema is not the newest",
                "run `capi-monitor once --config FILE` (it migrates), or upgrade capi-monitor"
                " if this database is newer",
            )
        ]
    return [Item("store", shown, State.OK, "reachable, schema up to date")]


# --- delivery logs ---------------------------------------------------------------------


def _sniff(path: str) -> str:
    from monitor.sources.logs.formats.detect import detect

    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head[:2] == b"\x1f\x8b":
        return "gzip (format detected when read)"
    return detect(head.splitlines(keepends=True)) or "v1 (no line tells yet)"


def log_items(settings: Settings) -> list[Item]:
    items = []
    for ds in settings.datasets:
        if not ds.logs:
            items.append(Item("logs", f"dataset {ds.id}", State.SKIP, "no logs configured"))
            continue
        for pattern in ds.logs:
            paths = sorted(
                p
                for p in glob.glob(os.path.expanduser(pattern), recursive=True)
                if os.path.isfile(p)
            )
            what = f"dataset {ds.id}: {pattern}"
            if not paths:
                items.append(
                    Item(
                        "logs",
                        what,
                        State.FAIL,
                        "matches no file",
                        "fix the glob in [[datasets]] logs, or check the sender writes"
                        " its log there (absolute paths; ** for subdirectories)",
                    )
                )
                continue
            formats: dict[str, int] = {}
            unreadable = []
            for path in paths:
                try:
                    fmt = _sniff(path)
                except OSError as err:
                    unreadable.append(f"{path} ({(err.strerror or 'error').lower()})")
                    continue
                formats[fmt] = formats.get(fmt, 0) + 1
            if unreadable:
                items.append(
                    Item(
                        "logs",
                        what,
                        State.FAIL,
                        "cannot read " + ", ".join(unreadable[:3]),
                        "give the capi-monitor user read access (e.g. add it to the"
                        " sender's group, or setfacl -m u:capi-monitor:r)",
                    )
                )
            if formats:
                shown = ", ".join(f"{n} x {f}" for f, n in sorted(formats.items()))
                items.append(
                    Item("logs", what, State.OK, f"{sum(formats.values())} file(s): {shown}")
                )
    return items


# --- Meta ------------------------------------------------------------------------------


def meta_items(settings: Settings, env: Mapping[str, str], now: float, **poll: Any) -> list[Item]:
    if settings.meta is None:
        return [
            Item("meta", "Graph API", State.SKIP, "no [meta] section: Meta's side is not checked")
        ]
    from monitor.engine.graph_inputs import poll_graph
    from monitor.model.graph import Part
    from monitor.sources.graph.poll import resolve_token

    items = []
    missing = []
    for ds in settings.datasets:
        if resolve_token(settings.meta, ds, env) is None:
            var = ds.access_token_env or settings.meta.access_token_env
            missing.append(ds.id)
            items.append(
                Item(
                    "meta",
                    f"dataset {ds.id}: token",
                    State.FAIL,
                    f"the environment variable {var} is not set",
                    f"export {var}=<a system user token with ads_read> in the service's"
                    " environment (e.g. /etc/capi-monitor/env)",
                )
            )
    parts = frozenset({Part.TOKEN, Part.DA_CHECKS})
    snapshots = poll_graph(settings, now=now, env=env, parts=parts, **poll)
    for ds in settings.datasets:
        snap = snapshots.get(ds.id)
        if snap is None or ds.id in missing:
            continue
        items.append(_token_item(ds.id, snap.token, snap.error(Part.TOKEN), now))
        err = snap.error(Part.DA_CHECKS)
        if err is None:
            items.append(Item("meta", f"dataset {ds.id}: access", State.OK, "the token reads it"))
        else:
            items.append(
                Item(
                    "meta",
                    f"dataset {ds.id}: access",
                    State.FAIL,
                    f"{err.kind}: {err.message_scrubbed}",
                    _access_fix(str(err.kind)),
                )
            )
    return items


def _token_item(dataset: str, token: Any, error: Any, now: float) -> Item:
    what = f"dataset {dataset}: token"
    if token is None:
        why = error.message_scrubbed if error is not None else "no answer"
        return Item(
            "meta", what, State.FAIL, f"debug_token failed: {why}", _access_fix("transient")
        )
    if not token.valid:
        return Item(
            "meta",
            what,
            State.FAIL,
            f"invalid: {token.error or 'is_valid false'}",
            "generate a new system user token (Business settings > System users) and"
            " put it in the token's environment variable",
        )
    scopes = set(token.scopes)
    if not scopes & set(READ_SCOPES):
        return Item(
            "meta",
            what,
            State.FAIL,
            f"scopes {sorted(scopes)} lack ads_read",
            "regenerate the token with the ads_read permission (and ads_management to send events)",
        )
    if token.expires_at is not None and token.expires_at - now < TOKEN_EXPIRY_WARN:
        days = max(0.0, (token.expires_at - now) / 86400)
        return Item(
            "meta",
            what,
            State.WARN,
            f"valid, but expires in {days:.1f} days",
            "use a system user token that never expires",
        )
    expiry = "never expires" if token.expires_at is None else "expires later than a week"
    return Item("meta", what, State.OK, f"valid, {expiry}, scopes {', '.join(sorted(scopes))}")


def _access_fix(kind: str) -> str:
    return {
        "token_invalid": "the token is invalid for this dataset: generate a new one",
        "permission": "assign the dataset to the system user (Business settings > Data"
        " sources > Datasets > Assign people) with at least view access",
        "not_found": "check the dataset id in [[datasets]] id (Events Manager > Settings)",
        "rate_limited": "Meta throttles this app now: try again later",
    }.get(kind, "Meta did not answer: check the network and [meta] graph_url, then try again")


# --- notifiers -------------------------------------------------------------------------


def slack_items(settings: Settings, env: Mapping[str, str], **client: Any) -> list[Item]:
    conf = settings.notify.slack
    if conf is None:
        return [Item("slack", "Slack", State.SKIP, "no [notify.slack]")]
    if conf.webhook_url_env and not conf.token_env:
        ok = bool(env.get(conf.webhook_url_env))
        return [
            Item(
                "slack",
                "webhook",
                State.OK if ok else State.FAIL,
                "set" if ok else f"the environment variable {conf.webhook_url_env} is not set",
                "" if ok else f"export {conf.webhook_url_env}=<the incoming webhook URL>",
            )
        ]
    var = conf.token_env or ""
    token = (env.get(var) or "").strip()
    if not token:
        return [
            Item(
                "slack",
                "bot token",
                State.FAIL,
                f"the environment variable {var} is not set",
                f"export {var}=xoxb-... (the bot's OAuth token) in the service's environment",
            )
        ]
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    web = WebClient(
        token=token, base_url=conf.api_url, timeout=int(settings.notify.timeout), **client
    )
    try:
        who = web.auth_test()
    except SlackApiError as err:
        code = err.response.get("error", "error") if err.response else "error"
        return [
            Item(
                "slack",
                "auth.test",
                State.FAIL,
                f"Slack says {code}",
                "the bot token is wrong or revoked: reinstall the app and copy its"
                " Bot User OAuth Token",
            )
        ]
    except Exception as err:
        return [
            Item(
                "slack",
                "auth.test",
                State.FAIL,
                _clean(err, [token]),
                "check the network and [notify.slack] api_url",
            )
        ]
    items = [Item("slack", "auth.test", State.OK, f"bot {who.get('user')} in {who.get('team')}")]
    if conf.channel:
        items.append(_channel_item(web, conf.channel))
    return items


def _channel_item(web: Any, channel: str) -> Item:
    name = channel.lstrip("#")
    cursor = None
    while True:
        page = web.conversations_list(
            types="public_channel,private_channel", limit=200, cursor=cursor
        )
        for c in page.get("channels") or []:
            if name in (c.get("name"), c.get("id")):
                if c.get("is_member"):
                    return Item("slack", f"channel {channel}", State.OK, "the bot is a member")
                return Item(
                    "slack",
                    f"channel {channel}",
                    State.FAIL,
                    "the bot is not a member",
                    f"invite it: /invite @<the app> in {channel}",
                )
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return Item(
                "slack",
                f"channel {channel}",
                State.FAIL,
                "no such channel the bot can see",
                "fix [notify.slack] channel, or invite the bot to the private channel",
            )


def email_items(settings: Settings, env: Mapping[str, str]) -> list[Item]:
    conf = settings.notify.email
    if conf is None:
        return [Item("email", "SMTP", State.SKIP, "no [notify.email]")]
    what = f"SMTP {conf.host}:{conf.port} ({conf.security})"
    password = (env.get(conf.password_env or "") or "") if conf.password_env else ""
    if conf.username and conf.password_env and not password:
        return [
            Item(
                "email",
                what,
                State.FAIL,
                f"the environment variable {conf.password_env} is not set",
                f"export {conf.password_env}=<the SMTP password>",
            )
        ]
    context = ssl.create_default_context(cafile=conf.ca_file)
    timeout = settings.notify.timeout
    try:
        if conf.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                conf.host, conf.port, timeout=timeout, context=context
            )
        else:
            server = smtplib.SMTP(conf.host, conf.port, timeout=timeout)
        with server:
            server.ehlo()
            if conf.security == "starttls":
                server.starttls(context=context)
                server.ehlo()
            if conf.username:
                server.login(conf.username, password)
    except smtplib.SMTPAuthenticationError:
        return [
            Item(
                "email",
                what,
                State.FAIL,
                f"login as {conf.username} refused",
                "fix [notify.email] username or the password in its environment variable",
            )
        ]
    except (OSError, smtplib.SMTPException) as err:
        return [
            Item(
                "email",
                what,
                State.FAIL,
                _clean(err, [password]),
                "check host, port and security (587 starttls, 465 ssl) and the firewall",
            )
        ]
    login = f", logged in as {conf.username}" if conf.username else ""
    return [Item("email", what, State.OK, f"connected{login}")]


# --- orders ----------------------------------------------------------------------------


def orders_items(
    settings: Settings, env: Mapping[str, str], now: float, **reader: Any
) -> list[Item]:
    if not settings.orders:
        return []
    import asyncio

    from monitor.engine.orders_inputs import make_reader
    from monitor.sources.orders import read_snapshot

    items = []
    for entry in settings.orders:
        source = make_reader(entry, env=env, **reader)
        snap = asyncio.run(read_snapshot(source, now - ORDERS_PROBE, now))
        what = f"orders {entry.name} ({entry.kind})"
        if snap.error:
            items.append(
                Item(
                    "orders",
                    what,
                    State.FAIL,
                    _clean(snap.error),
                    "check the key/token variable and the source's settings in [[orders]]",
                )
            )
        else:
            items.append(
                Item(
                    "orders",
                    what,
                    State.OK,
                    f"answers ({len(snap.orders)} order(s) in the last hour)",
                )
            )
    return items


# --- the checklist ---------------------------------------------------------------------


def run_doctor(
    settings: Settings,
    env: Mapping[str, str] | None = None,
    now: float | None = None,
    *,
    graph: Mapping[str, Any] | None = None,
) -> list[Item]:
    """Every check of ``settings`` (module docstring). ``graph``: extra arguments of the
    Graph poll (tests: ``transport``)."""
    environ = os.environ if env is None else env
    at = time.time() if now is None else now
    steps: list[Callable[[], list[Item]]] = [
        lambda: store_items(settings),
        lambda: log_items(settings),
        lambda: meta_items(settings, environ, at, **(graph or {})),
        lambda: slack_items(settings, environ),
        lambda: email_items(settings, environ),
        lambda: orders_items(settings, environ, at),
    ]
    items: list[Item] = []
    for step in steps:
        items += step()
    return items


_MARK = {State.OK: "ok  ", State.WARN: "WARN", State.FAIL: "FAIL", State.SKIP: "skip"}


def checklist_lines(items: Iterable[Item]) -> list[str]:
    lines = []
    for i in items:
        lines.append(f"[{_MARK[i.state]}] {i.area}: {i.what}: {i.detail}")
        if i.fix and i.state in (State.FAIL, State.WARN):
            lines.append(f"       fix: {i.fix}")
    return lines

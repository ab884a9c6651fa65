"""A fake Slack Web API and incoming-webhook endpoint for tests and demos.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` in a background thread), so the
notifiers are tested through slack_sdk's own HTTP code, as in production::

    with FakeSlack(token="xoxb-test") as slack:
        # [notify.slack] api_url = slack.url, token in the env var, channel "#capi-alerts"
        ...
        assert slack.messages[0]["metadata"]["event_type"] == "capi_monitor_alert"

Served: ``chat.postMessage`` (checks the token -> ``invalid_auth``, the channel ->
``channel_not_found``, blocks and metadata the way Slack documents them),
``conversations.history`` (channel ids only, like Slack; ``include_all_metadata``),
``conversations.list``, ``auth.test``, and incoming webhooks at ``/webhook/<id>``
(``add_webhook`` returns a URL).

Trouble on demand: ``down()`` (connection refused, or ``down("503")``) and ``up()``;
``fail("invalid_auth")`` or any Slack error code; ``http_error(500)``;
``rate_limit(retry_after=1)``; ``lose_responses()`` (the post is stored but the client
gets a 503, as when an answer is lost). ``times=`` limits a mode to that many requests.

``python -m monitor.testing.fakeslack`` runs one in the foreground and prints what it receives.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = ("capi-alerts", "alerts")
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
_WEBHOOK_ERRORS = {"invalid_auth": (403, "invalid_token"), "channel_not_found": (404, "no_service")}


@dataclass(slots=True)
class _Reply:
    status: int
    body: Any  # dict -> JSON, str -> text/plain
    headers: dict[str, str]

    def payload(self) -> tuple[bytes, str]:
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode("utf-8"), "application/json; charset=utf-8"


def _ok(**fields: Any) -> _Reply:
    return _Reply(200, {"ok": True, **fields}, {})


def _err(error: str, status: int = 200, **headers: str) -> _Reply:
    return _Reply(status, {"ok": False, "error": error}, dict(headers))


@dataclass(slots=True)
class _Mode:
    """A failure mode: answer every request with ``reply`` (``times`` requests, or all)."""

    kind: str  # "error", "http", "ratelimit", "lose", "down503"
    error: str = ""
    status: int = 200
    retry_after: float = 1.0
    times: int | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # up() binds the same port again right after down()

    def __init__(self, addr: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up mid-answer is normal here; the default prints to stderr.
        log.debug("fakeslack: connection from %s ended with an error", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def _answer(self, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake._serve(self.command, self.path, headers, body)
        payload, content_type = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines to stderr, and a webhook's path is its secret.
        return


def _parse_params(query: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Query string, form fields and JSON body merged, as Slack accepts all three."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    if not body:
        return params
    if headers.get("content-type", "").startswith("application/json"):
        data = json.loads(body.decode("utf-8"))
        if isinstance(data, dict):
            params.update(data)
        return params
    params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in ("blocks", "metadata"):  # form posts carry these as JSON strings
        if isinstance(params.get(name), str):
            params[name] = json.loads(params[name])
    return params


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _flat(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, str | int | float | bool) and not isinstance(v, dict) for v in value.values()
    )


def metadata_problem(metadata: Any) -> str | None:
    """Why Slack would reject ``metadata``, or ``None``. Payload values are strings,
    numbers, booleans, flat objects or lists of flat objects (no null)."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("event_type"), str):
        return "metadata needs a string event_type"
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return "metadata needs an object event_payload"
    for key, value in payload.items():
        ok = (
            isinstance(value, str | int | float | bool)
            or _flat(value)
            or (isinstance(value, list) and all(_flat(v) for v in value))
        )
        if not ok:
            return f"event_payload.{key} has an unsupported value"
    return None


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def blocks_problem(blocks: Any) -> str | None:
    """Why Slack would reject ``blocks`` (the limits this project relies on), or ``None``."""
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return f"blocks must be a list of at most {MAX_BLOCKS}"
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or "type" not in block:
            return f"blocks[{i}] has no type"
        kind = block["type"]
        if kind == "header" and _text_len(block.get("text")) > MAX_HEADER_TEXT:
            return f"blocks[{i}] header text over {MAX_HEADER_TEXT} characters"
        if kind == "section" and _text_len(block.get("text")) > MAX_SECTION_TEXT:
            return f"blocks[{i}] section text over {MAX_SECTION_TEXT} characters"
    return None


class FakeSlack:
    """The fake Slack. ``with FakeSlack(token=...) as slack:`` then use ``slack.url``.

    ``channels``: names (``"capi-alerts"``) or a name -> id mapping; ``messages``: what was
    posted (dicts with ``channel`` id, ``ts``, ``text``, ``blocks``, ``metadata``,
    ``thread_ts``, ``reply_broadcast``, ``via`` ``"api"``/``"webhook"``); ``calls``: the
    method (or ``"webhook"``) of every request that reached the server, in order.
    """

    def __init__(
        self,
        token: str = "xoxb-test",
        *,
        channels: Iterable[str] | Mapping[str, str] = DEFAULT_CHANNELS,
        member_of: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        if isinstance(channels, Mapping):
            self._channels = {k.lstrip("#"): v for k, v in channels.items()}
        else:
            self._channels = {n.lstrip("#"): f"C{i:08d}" for i, n in enumerate(channels, 1)}
        # Channels the bot is a member of (``conversations.list`` ``is_member``): all of
        # them unless ``member_of`` names some.
        members = self._channels if member_of is None else [n.lstrip("#") for n in member_of]
        self._member_of = set(members)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._calls: list[str] = []
        self._webhooks: dict[str, str] = {}  # webhook id -> channel id
        self._mode: _Mode | None = None
        self._ts = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeSlack:
        """Bind (the same port again after ``down()``) and serve in a thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self._host, self._port), self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (connections are then refused)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Web API base URL ending with ``/`` (use as ``[notify.slack] api_url``)."""
        return f"http://{self._host}:{self._port}/api/"

    # -- trouble on demand

    def down(self, how: str = "refused") -> None:
        """Become unreachable: ``"refused"`` closes the port, ``"503"`` answers 503."""
        if how == "refused":
            self.stop()
        elif how == "503":
            self._set(_Mode("down503", status=503))
        else:
            raise ValueError(f"down() takes 'refused' or '503', not {how!r}")

    def up(self) -> None:
        """Answer normally again (rebinding the port if it was closed)."""
        self._set(None)
        self.start()

    def fail(self, error: str = "invalid_auth", *, times: int | None = None) -> None:
        """Answer ``{"ok": false, "error": error}`` (HTTP 200, like Slack)."""
        self._set(_Mode("error", error=error, times=times))

    def http_error(self, status: int = 500, *, times: int | None = None) -> None:
        """Answer with a bare HTTP error page."""
        self._set(_Mode("http", status=status, times=times))

    def rate_limit(self, retry_after: float = 1.0, *, times: int | None = None) -> None:
        """Answer 429 ``ratelimited`` with a ``Retry-After`` header."""
        self._set(_Mode("ratelimit", status=429, retry_after=retry_after, times=times))

    def lose_responses(self, times: int | None = 1) -> None:
        """Accept posts but answer 503, as when the answer is lost on the way back."""
        self._set(_Mode("lose", status=503, times=times))

    def reset(self) -> None:
        """Clear any failure mode (the server keeps running)."""
        self._set(None)

    def _set(self, mode: _Mode | None) -> None:
        with self._lock:
            self._mode = mode

    # -- state

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def calls(self) -> list[str]:
        with self._lock:
            return list(self._calls)

    def channel_id(self, name: str) -> str:
        return self._channels[name.lstrip("#")]

    def add_webhook(self, channel: str = DEFAULT_CHANNELS[0], hook_id: str | None = None) -> str:
        """Register an incoming webhook posting to ``channel``; returns its URL."""
        hook = hook_id or f"T0FAKE/B0FAKE/{len(self._webhooks) + 1:024d}"
        with self._lock:
            self._webhooks[hook] = self.channel_id(channel)
        return f"http://{self._host}:{self._port}/webhook/{hook}"

    # -- serving

    def _serve(self, verb: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        parts = urlsplit(raw_path)
        is_hook = parts.path.startswith("/webhook/")
        method = "webhook" if is_hook else parts.path.removeprefix("/api/")
        with self._lock:
            self._calls.append(method)
            mode = self._take_mode()
        if mode is not None and mode.kind != "lose":
            return self._failure(mode, is_hook)
        try:
            params = _parse_params(parts.query, headers, body)
        except (ValueError, UnicodeDecodeError):
            return _Reply(400, "invalid_payload", {}) if is_hook else _err("invalid_json")
        if is_hook:
            reply = self._webhook(parts.path.removeprefix("/webhook/"), params)
        else:
            reply = self._api(method, headers, params)
        return _Reply(503, "Service Unavailable", {}) if mode is not None else reply

    def _take_mode(self) -> _Mode | None:
        mode = self._mode
        if mode is not None and mode.times is not None:
            mode.times -= 1
            if mode.times <= 0:
                self._mode = None
        return mode

    @staticmethod
    def _failure(mode: _Mode, is_hook: bool) -> _Reply:
        if mode.kind == "ratelimit":
            retry = str(max(1, round(mode.retry_after)))
            if is_hook:
                return _Reply(429, "rate_limited", {"Retry-After": retry})
            return _err("ratelimited", 429, **{"Retry-After": retry})
        if mode.kind == "error":
            if is_hook:
                status, text = _WEBHOOK_ERRORS.get(mode.error, (400, mode.error))
                return _Reply(status, text, {})
            return _err(mode.error)
        text = "Service Unavailable" if mode.status == 503 else "Internal Server Error"
        return _Reply(mode.status, text, {})

    def _api(self, method: str, headers: Mapping[str, str], params: dict[str, Any]) -> _Reply:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _err("not_authed")
        if auth.removeprefix("Bearer ") != self.token:
            return _err("invalid_auth")
        handler = {
            "chat.postMessage": self._post_message,
            "conversations.history": self._history,
            "conversations.list": self._list,
            "auth.test": self._auth_test,
        }.get(method)
        return handler(params) if handler else _err("unknown_method", 404)

    def _resolve(self, channel: Any) -> str | None:
        if not isinstance(channel, str):
            return None
        if channel in self._channels.values():
            return channel
        return self._channels.get(channel.lstrip("#"))

    def _post_message(self, params: dict[str, Any]) -> _Reply:
        channel = self._resolve(params.get("channel"))
        if channel is None:
            return _err("channel_not_found")
        problem = self._message_problem(params)
        if problem is not None:
            return _err(problem)
        message = self._store(channel, params, via="api")
        return _ok(channel=channel, ts=message["ts"], message={"text": message["text"]})

    @staticmethod
    def _message_problem(params: dict[str, Any]) -> str | None:
        if not params.get("text") and not params.get("blocks"):
            return "no_text"
        if "blocks" in params and blocks_problem(params["blocks"]) is not None:
            return "invalid_blocks"
        if "metadata" in params and metadata_problem(params["metadata"]) is not None:
            return "invalid_metadata_format"
        return None

    def _store(self, channel: str, params: dict[str, Any], *, via: str) -> dict[str, Any]:
        with self._lock:
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            message = {
                "channel": channel,
                "ts": ts,
                "text": params.get("text", ""),
                "blocks": params.get("blocks"),
                "metadata": params.get("metadata"),
                "thread_ts": params.get("thread_ts"),
                "reply_broadcast": _truthy(params.get("reply_broadcast", False)),
                "via": via,
            }
            self._messages.append(message)
        return message

    def _history(self, params: dict[str, Any]) -> _Reply:
        channel = params.get("channel")
        if channel not in self._channels.values():  # Slack wants the id here, not a name
            return _err("channel_not_found")
        with_metadata = _truthy(params.get("include_all_metadata", False))
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        start = int(params.get("cursor") or 0)
        with self._lock:
            # Like Slack: newest first; thread replies only when broadcast to the channel.
            visible = [
                m
                for m in reversed(self._messages)
                if m["channel"] == channel and (not m["thread_ts"] or m["reply_broadcast"])
            ]
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        out = [self._history_item(m, with_metadata) for m in page]
        cursor = str(start + limit) if more else ""
        return _ok(messages=out, has_more=more, response_metadata={"next_cursor": cursor})

    @staticmethod
    def _history_item(m: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
        item = {"type": "message", "ts": m["ts"], "text": m["text"], "blocks": m["blocks"]}
        if m["thread_ts"]:
            item["thread_ts"] = m["thread_ts"]
        if with_metadata and m["metadata"]:
            item["metadata"] = m["metadata"]
        return item

    def _list(self, params: dict[str, Any]) -> _Reply:
        channels = [
            {"id": cid, "name": name, "is_channel": True, "is_member": name in self._member_of}
            for name, cid in self._channels.items()
        ]
        return _ok(channels=channels, response_metadata={"next_cursor": ""})

    def _auth_test(self, params: dict[str, Any]) -> _Reply:
        return _ok(
            url="https://fake.slack.invalid/", team="Fake", user="capi-monitor", bot_id="B0FAKE"
        )

    def _webhook(self, hook: str, params: dict[str, Any]) -> _Reply:
        with self._lock:
            channel = self._webhooks.get(hook)
        if channel is None:
            return _Reply(404, "no_service", {})
        if self._message_problem(params) is not None:
            return _Reply(400, "invalid_payload", {})
        self._store(channel, params, via="webhook")
        return _Reply(200, "ok", {})


def main(argv: list[str] | None = None) -> int:
    """Run a FakeSlack in the foreground, printing each message it receives."""
    parser = argparse.ArgumentParser(
        prog="python -m monitor.testing.fakeslack", description=__doc__
    )
    parser.add_argument("--token", default="xoxb-test")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--channel", action="append", default=None)
    args = parser.parse_args(argv)
    fake = FakeSlack(args.token, channels=args.channel or DEFAULT_CHANNELS, port=args.port)
    with fake:
        print(f"fake Slack Web API at {fake.url}  webhook: {fake.add_webhook()}", flush=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                messages = fake.messages
                for m in messages[seen:]:
                    print(f"[{m['channel']} {m['ts']}] {m['text']}", flush=True)
                seen = len(messages)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())

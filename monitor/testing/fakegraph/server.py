"""A real HTTP server on 127.0.0.1 that answers like the Graph API, driven by scenarios.

Serves ``GET /{version}/{dataset}/stats``, ``/{version}/dataset_quality``,
``/{version}/{dataset}/da_checks`` and ``/{version}/debug_token`` (bodies built in
``scenarios.py`` and ``bodies.py``, errors in ``errors.py``), Meta's batch requests
(``POST /`` with a form field ``batch``: a JSON list of at most 50 ``{"method": "GET",
"relative_url": ...}``; the answer is a list, in order, of ``{"code", "headers": [{"name",
"value"}], "body": "<JSON text>"}``, or ``null`` for an item that did not finish;
``include_headers=false`` drops ``headers``), plus ``GET /__fakegraph/stats`` (request
count and max in-flight) for out-of-process use. Tokens are accepted as the
``access_token`` query parameter or an ``Authorization: Bearer|OAuth`` header, like Meta;
a wrong or missing token gets code 190.

Thread per connection (``ThreadingHTTPServer``, HTTP/1.1 keep-alive, daemon threads, a
deep accept queue) so hundreds of concurrent slow calls are served in parallel. The
in-flight counter is decremented *before* the answer is written, so a client that bounds
its in-flight calls can never be seen above its bound.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from monitor.testing.fakegraph import bodies, errors
from monitor.testing.fakegraph import scenarios as sc
from monitor.testing.fakegraph.scenarios import Reply, Scenario, ScenarioKind

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^v\d+\.\d+$")
_SECRET_PARAMS = ("access_token", "input_token")
MAX_BATCH = 50  # requests per batch call (docs/meta-capi.md §8)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it, without its tokens (``auth``: how one was sent)."""

    path: str
    params: dict[str, str]
    endpoint: str
    dataset_id: str | None
    auth: str  # "query", "header" or "none"
    status: int
    batched: bool = False  # an item of a batch request (``POST /``)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # listen() backlog: bursts of hundreds of new connections

    def __init__(self, addr: tuple[str, int], fake: FakeGraph) -> None:
        self.fake = fake
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is normal here; the default prints a
        # traceback to stderr.
        log.debug("fakegraph: connection from %s ended with an error", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one thread per client connection
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls
    server: _Server

    def do_GET(self) -> None:
        reply = self.server.fake._serve(self.path, dict(self.headers.items()))
        self._send(reply)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        reply = self.server.fake._serve_post(self.path, dict(self.headers.items()), body)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes request lines (with their tokens) to stderr: say nothing.
        return


class FakeGraph:
    """The fake Graph API. ``with FakeGraph(...) as fg:`` then point a client at ``fg.url``.

    - ``scenarios``: dataset id -> scenario name or ``Scenario``; others get ``default``.
    - ``latency``: seconds added to every answer (plus the scenario's own).
    - ``token``: the expected token (``None``: any non-empty token is accepted);
      ``tokens``: per-dataset expected tokens overriding it.
    - ``requests``: what was asked (tokens removed); ``max_in_flight``: the most requests
      being processed at once since start (or ``reset_stats``).
    """

    def __init__(
        self,
        scenarios: Mapping[str, str | Scenario] | None = None,
        default: str | Scenario = "healthy",
        latency: float = 0.0,
        token: str | None = None,
        *,
        tokens: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._scenarios = {k: Scenario.coerce(v) for k, v in (scenarios or {}).items()}
        self._default = Scenario.coerce(default)
        self.latency = latency
        self._token = token
        self._tokens = dict(tokens or {})
        self._host, self._port = host, port
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._calls: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._total = 0
        self._batch_items = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeGraph:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop serving, wake sleeping handlers, wait for in-flight answers, close."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=drain_timeout)
        deadline = time.monotonic() + drain_timeout
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self._server = self._thread = None

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use as ``[meta] graph_url``)."""
        if self._server is None:
            raise RuntimeError("FakeGraph is not running")
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    # -- observations

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def total_requests(self) -> int:
        """HTTP requests served (a batch request counts once)."""
        with self._lock:
            return self._total

    @property
    def batch_items(self) -> int:
        """Requests served as items of batch requests."""
        with self._lock:
            return self._batch_items

    def reset_stats(self) -> None:
        """Forget recorded requests, call counters (``flaky``) and the in-flight maximum."""
        with self._lock:
            self._requests.clear()
            self._calls.clear()
            self._max_in_flight = self._in_flight
            self._total = 0
            self._batch_items = 0

    def scenario_for(self, dataset_id: str | None) -> Scenario:
        with self._lock:
            return self._scenarios.get(dataset_id or "", self._default)

    def set_scenario(self, dataset_id: str, scenario: str | Scenario) -> None:
        """Change how ``dataset_id`` behaves from the next request on (an incident that
        starts or ends while a client keeps polling)."""
        coerced = Scenario.coerce(scenario)
        with self._lock:
            self._scenarios[dataset_id] = coerced

    # -- request handling (runs on handler threads)

    def _serve(self, raw_path: str, headers: Mapping[str, str]) -> Reply:
        def get() -> tuple[Reply, float]:
            reply, delay = self._route(raw_path, headers)
            assert reply is not None  # only batch items come back unfinished
            return reply, delay

        return self._counted(get)

    def _serve_post(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        return self._counted(lambda: self._post(raw_path, headers, body))

    def _counted(self, answer: Callable[[], tuple[Reply, float]]) -> Reply:
        """Run one HTTP request counted in flight; its delay is waited before returning."""
        with self._lock:
            self._in_flight += 1
            self._total += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            reply, delay = answer()
            if delay > 0:
                self._stop.wait(delay)  # interruptible: stop() wakes slow answers
            return reply
        finally:
            with self._lock:
                self._in_flight -= 1

    def _route(
        self, raw_path: str, headers: Mapping[str, str], *, batched: bool = False
    ) -> tuple[Reply | None, float]:
        """The answer to one GET (``None``: a batch item that did not finish) and its delay."""
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        segments = [s for s in parts.path.split("/") if s]
        if segments[:1] == ["__fakegraph"] and not batched:
            return self._admin(segments[1:]), 0.0
        endpoint, dataset_id = _endpoint(segments, params)
        owner = (
            self._token_owner(params.get("input_token"))
            if endpoint == "debug_token"
            else dataset_id
        )
        scenario = self.scenario_for(owner)
        token, auth = _presented_token(params, headers)
        reply = self._answer(
            endpoint, segments, params, dataset_id, owner, scenario, token, batched
        )
        status = reply.status if reply is not None else 0
        self._record(parts.path, params, endpoint, dataset_id, auth, status, batched)
        return reply, self.latency + scenario.latency

    def _answer(
        self,
        endpoint: str,
        segments: list[str],
        params: dict[str, str],
        dataset_id: str | None,
        owner: str | None,
        scenario: Scenario,
        token: str | None,
        batched: bool = False,
    ) -> Reply | None:
        if not segments or not _VERSION.match(segments[0]):
            return Reply(400, errors.error_body(2500, "Unknown path components"))
        if endpoint == "unknown":
            return errors.no_such_object(dataset_id or "")
        if not self._token_ok(endpoint, dataset_id, token):
            return errors.bad_token()
        with self._lock:
            call_no = self._calls.get(owner or "", 0)
            self._calls[owner or ""] = call_no + 1
        if batched and scenario.kind is ScenarioKind.BATCH_NULL and call_no < scenario.fail_first:
            return None  # "timed out": Meta answers null for the item (docs/meta-capi.md §8)
        failed = errors.failure(scenario, endpoint, call_no, dataset_id)
        if failed is not None:
            return failed
        usage = errors.usage_headers(scenario, dataset_id)
        if endpoint == "stats":
            return self._stats(segments, params, dataset_id or "", scenario, token, usage)
        if endpoint == "dataset_quality":
            return self._dataset_quality(params, scenario, usage)
        if endpoint == "da_checks":
            body = bodies.da_checks_body(scenario, dataset_id or "", params.get("checks", ""))
            return Reply(200, body, usage)
        return Reply(200, bodies.debug_token_body(scenario, self._clock()), usage)

    # -- batch requests

    def _post(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[Reply, float]:
        parts = urlsplit(raw_path)
        segments = [s for s in parts.path.split("/") if s]
        if segments and not (len(segments) == 1 and _VERSION.match(segments[0])):
            return errors.no_such_object(segments[-2] if len(segments) > 1 else "", "post"), 0.0
        form = dict(parse_qsl(parts.query, keep_blank_values=True))
        form.update(_form(body, headers))
        try:
            items = orjson.loads(form.get("batch") or "null")
        except orjson.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not items:
            msg = "(#100) The parameter batch is required and must be a JSON list"
            return Reply(400, errors.error_body(100, msg)), 0.0
        if len(items) > MAX_BATCH:
            msg = f"(#100) Too many requests in batch message. Maximum batch size is {MAX_BATCH}"
            return Reply(400, errors.error_body(100, msg)), 0.0
        token, _ = _presented_token(form, headers)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        with_headers = form.get("include_headers", "true").lower() != "false"
        answers, delay = [], self.latency
        for item in items:
            answer, item_delay = self._item(item, auth, with_headers)
            answers.append(answer)
            delay = max(delay, item_delay)
        return Reply(200, answers), delay

    def _item(
        self, item: Any, auth: Mapping[str, str], with_headers: bool
    ) -> tuple[dict[str, Any] | None, float]:
        if not isinstance(item, dict) or str(item.get("method", "GET")).upper() != "GET":
            reply: Reply | None = Reply(400, errors.error_body(100, "(#100) Only GET is served"))
            return _item_answer(reply, with_headers), 0.0
        relative = str(item.get("relative_url") or "").lstrip("/")
        reply, delay = self._route("/" + relative, auth, batched=True)
        return _item_answer(reply, with_headers), delay

    def _stats(
        self,
        segments: list[str],
        params: dict[str, str],
        dataset_id: str,
        scenario: Scenario,
        token: str | None,
        usage: dict[str, str],
    ) -> Reply:
        aggregation = params.get("aggregation", "event")
        if not sc.valid_aggregation(aggregation):
            # The wording is ours (no real answer to copy); the envelope's shape is Meta's.
            msg = (
                f"(#100) param aggregation must be one of the documented values, got {aggregation}"
            )
            return Reply(400, errors.error_body(100, msg))
        now = self._clock()
        try:
            end = sc.parse_time(params.get("end_time"), now)
            start = sc.parse_time(params.get("start_time"), end - 86400)
        except ValueError:
            return Reply(400, errors.error_body(100, "(#100) Invalid start_time or end_time"))
        page = _decode_cursor(params.get("after"))
        event = params.get("event") or None
        results, more = sc.stats_page(scenario, dataset_id, aggregation, event, start, end, page)
        paging: dict[str, Any] = {
            "cursors": {"before": _encode_cursor(page), "after": _encode_cursor(page + 1)}
        }
        if more:
            # Meta's next links are absolute and carry the access_token (brief, §2).
            query = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
            query.update({"after": _encode_cursor(page + 1), "access_token": token or ""})
            paging["next"] = f"{self.url}/{'/'.join(segments)}?{urlencode(query)}"
        return Reply(200, {"data": results, "paging": paging}, usage)

    def _dataset_quality(
        self, params: dict[str, str], scenario: Scenario, usage: dict[str, str]
    ) -> Reply:
        if not params.get("dataset_id"):
            msg = "(#100) The parameter dataset_id is required"
            return Reply(400, errors.error_body(100, msg))
        return bodies.dataset_quality_reply(scenario, params.get("fields", ""), usage)

    def _admin(self, segments: list[str]) -> Reply:
        if segments == ["stats"]:
            with self._lock:
                body = {
                    "requests": self._total,
                    "in_flight": self._in_flight - 1,  # not counting this request
                    "max_in_flight": self._max_in_flight,
                    "batch_items": self._batch_items,
                    "cpu_s": round(time.process_time(), 3),  # of the whole process
                }
            return Reply(200, body)
        if segments == ["reset"]:
            self.reset_stats()
            return Reply(200, {"ok": True})
        return Reply(404, {"error": "unknown admin path"})

    def _expected(self, dataset_id: str | None) -> str | None:
        return self._tokens.get(dataset_id or "", self._token)

    def _known_tokens(self) -> set[str]:
        known = set(self._tokens.values())
        if self._token is not None:
            known.add(self._token)
        return known

    def _token_ok(self, endpoint: str, dataset_id: str | None, token: str | None) -> bool:
        if not token:
            return False
        if endpoint == "debug_token":
            known = self._known_tokens()
            return not known or token in known
        expected = self._expected(dataset_id)
        return expected is None or token == expected

    def _token_owner(self, input_token: str | None) -> str | None:
        """The dataset whose expected token is ``input_token`` (scenario of the probe)."""
        return next((ds for ds, tok in self._tokens.items() if tok == input_token), None)

    def _record(
        self,
        path: str,
        params: dict[str, str],
        endpoint: str,
        dataset_id: str | None,
        auth: str,
        status: int,
        batched: bool = False,
    ) -> None:
        clean = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
        rec = RecordedRequest(path, clean, endpoint, dataset_id, auth, status, batched)
        with self._lock:
            self._requests.append(rec)
            self._batch_items += batched


def _endpoint(segments: list[str], params: Mapping[str, str]) -> tuple[str, str | None]:
    rest = segments[1:]
    if rest == ["dataset_quality"]:
        return "dataset_quality", params.get("dataset_id") or None
    if rest == ["debug_token"]:
        return "debug_token", None
    if len(rest) == 2 and rest[1] in ("stats", "da_checks"):
        return rest[1], rest[0]
    return "unknown", rest[0] if rest else None


def _presented_token(
    params: Mapping[str, str], headers: Mapping[str, str]
) -> tuple[str | None, str]:
    if params.get("access_token"):
        return params["access_token"], "query"
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip(), "header"
    return None, "none"


def _form(body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
    """The fields of a POST body: form-encoded (what SDKs send) or a JSON object."""
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    text = body.decode("utf-8", "replace")
    if "json" in kind:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}
    return dict(parse_qsl(text, keep_blank_values=True))


def _item_answer(reply: Reply | None, with_headers: bool) -> dict[str, Any] | None:
    """One batch item as Meta answers it: ``{code, headers, body}`` with the body as JSON
    text, or ``None``."""
    if reply is None:
        return None
    answer: dict[str, Any] = {"code": reply.status}
    if with_headers:
        names = {"Content-Type": reply.content_type, **reply.headers}
        answer["headers"] = [{"name": k, "value": v} for k, v in names.items()]
    answer["body"] = reply.payload().decode("utf-8", "replace")
    return answer


def _encode_cursor(page: int) -> str:
    return base64.urlsafe_b64encode(f"page:{page}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return max(0, int(text.removeprefix("page:")))
    except (ValueError, UnicodeDecodeError):
        return 0

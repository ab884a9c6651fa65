"""The README's SDK snippets: the Python one runs against the real ``facebook-business``
SDK and a loopback Graph server, and what it logs is read back as v1."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from facebook_business.adobjects.serverside.action_source import ActionSource
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.event_request import EventRequest
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from monitor.model.observations import ReadStats
from monitor.sources.logs.paths import InputFile
from monitor.sources.logs.reader import read_deliveries

README = Path(__file__).resolve().parents[3] / "README.md"
TOKEN = "EAAFAKEsnippetTOKEN0capimonitor"
PIXEL = "1234567890"


def snippet(name: str) -> str:
    """The fenced code block after ``<!-- snippet: name -->`` in the README."""
    found = re.search(rf"<!-- snippet: {name} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert found, f"no snippet {name} in README.md"
    return found.group(1)


class _Graph(BaseHTTPRequestHandler):
    """POST /{version}/{pixel}/events: a success, a token error, or no answer in time."""

    protocol_version = "HTTP/1.1"
    mode = "ok"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode == "slow":
            time.sleep(1.0)  # longer than the client's timeout
            return
        body: dict[str, Any]
        if self.mode == "expired":
            status, body = 400, {"error": {
                "message": "Error validating access token: Session has expired.",
                "type": "OAuthException", "code": 190, "error_subcode": 463,
                "fbtrace_id": "AFakeTrace"}}  # fmt: skip
        else:
            status, body = 200, {"events_received": 1, "messages": [], "fbtrace_id": "AFake"}
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Graph]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Graph)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(FacebookSession, "GRAPH", f"http://127.0.0.1:{server.server_port}")
    previous = FacebookAdsApi.get_default_api()
    FacebookAdsApi.init(access_token=TOKEN, timeout=0.3, crash_log=False)
    try:
        yield _Graph
    finally:
        FacebookAdsApi.set_default_api(previous)
        server.shutdown()
        server.server_close()


def request() -> EventRequest:
    user = UserData(email="jane.doe@example.com", client_ip_address="203.0.113.24",
                    client_user_agent="Mozilla/5.0")  # fmt: skip
    event = Event(event_name="Purchase", event_time=int(time.time()) - 30, user_data=user,
                  action_source=ActionSource.WEBSITE, event_source_url="https://shop.example.com/",
                  event_id="order-1")  # fmt: skip
    return EventRequest(pixel_id=PIXEL, events=[event], test_event_code="TEST123")


def test_python_snippet_logs_every_outcome_as_v1(graph: type[_Graph], tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(snippet("python-sdk"), namespace)
    execute_logged = namespace["execute_logged"]
    log = tmp_path / "deliveries.jsonl"

    graph.mode = "ok"
    assert execute_logged(request(), PIXEL, str(log)).events_received == 1
    graph.mode = "expired"
    with pytest.raises(FacebookRequestError):
        execute_logged(request(), PIXEL, str(log))
    graph.mode = "slow"
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        execute_logged(request(), PIXEL, str(log))

    text = log.read_text()
    assert TOKEN not in text
    stats = ReadStats()
    ok, expired, slow = read_deliveries([InputFile(str(log))], stats)
    assert stats.formats == {"v1": 3} and stats.malformed_lines == stats.malformed_events == 0
    assert (ok.dataset_id, ok.test_event_code, ok.sent_count) == (PIXEL, "TEST123", 1)
    (em,) = ok.events[0]["user_data"]["em"]  # the SDK's form: hashed, in a list
    assert re.fullmatch("[0-9a-f]{64}", em)
    assert ok.response is not None and ok.response.events_received == 1
    assert expired.response is not None and expired.response.error_code == 190
    assert slow.response is not None and slow.response.transport_error == "timed_out"
    assert slow.response.is_error


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_snippet_is_valid_javascript(tmp_path: Path) -> None:
    path = tmp_path / "snippet.js"
    path.write_text(snippet("node-sdk"))
    proc = subprocess.run(["node", "--check", str(path)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")
def test_php_snippet_is_valid_php(tmp_path: Path) -> None:
    path = tmp_path / "snippet.php"
    path.write_text("<?php\n" + snippet("php-sdk"))
    proc = subprocess.run(["php", "-l", str(path)], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stdout.decode()


def test_snippets_write_the_same_keys_and_never_the_token() -> None:
    keys = ("sent_at", "dataset_id", "request", "response", "transport_error", "duration_ms")
    for name in ("python-sdk", "node-sdk", "php-sdk"):
        code = snippet(name)
        assert all(k in code for k in keys), name
        assert "access_token" not in code.replace("hold the access token", ""), name

"""The daemon's HTTP server on ``[server] listen`` (docs/contracts.md §10).

``/metrics`` (Prometheus text format), ``/healthz`` (200 when every scheduled job ran
recently enough, else 503 naming the late ones), ``/`` (the live page) and
``/api/status`` (what the page shows, as JSON). A ``ThreadingHTTPServer`` in a
background thread: the scheduler's jobs never wait for a scrape, and a slow client
holds one thread of its own. Every answer is read-only, carries nothing personal or
secret, and is built by the ``LiveViews`` the daemon hands over. Binding is done when
the server is created: a busy port is a ``ServerError`` (exit 2, one line) before the
daemon joins its fleet or schedules anything.
"""

from __future__ import annotations

import errno
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import orjson

from monitor.errors import ServerError

log = logging.getLogger(__name__)

METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LiveViews(Protocol):
    """What the server shows (``monitor.daemon.live.Views``)."""

    def metrics(self) -> bytes: ...

    def health(self) -> tuple[int, dict[str, Any]]: ...

    def page(self) -> str: ...

    def status(self) -> dict[str, Any]: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "capi-monitor"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        views = self.server.views
        try:
            if path == "/metrics":
                self._send(200, METRICS_TYPE, views.metrics())
            elif path == "/healthz":
                code, body = views.health()
                self._send(code, "application/json", orjson.dumps(body))
            elif path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", views.page().encode())
            elif path == "/api/status":
                self._send(200, "application/json", orjson.dumps(views.status(), default=str))
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
        except Exception:  # a broken view answers 500 and leaves the daemon running
            log.exception("cannot answer", extra={"path": path})
            self._send(500, "text/plain; charset=utf-8", b"internal error\n")

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], views: LiveViews) -> None:
        self.views = views
        super().__init__(address, _Handler)


class DaemonServer:
    """The server, bound at creation (``ServerError`` when it cannot be), serving from
    ``start`` until ``stop``."""

    def __init__(self, address: tuple[str, int], views: LiveViews) -> None:
        host, port = address
        try:
            self._server = _Server((host, port), views)
        except OSError as err:
            why = "the port is in use" if err.errno == errno.EADDRINUSE else err.strerror
            raise ServerError(f"server.listen: cannot listen on {host}:{port}: {why}") from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="capi-monitor-http", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        host, port = self.address
        log.info("serving", extra={"url": f"http://{host}:{port}/"})

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

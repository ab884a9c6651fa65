"""Headless Chromium driven through the DevTools protocol over a pipe (no extra package).

``--remote-debugging-pipe`` makes Chromium read protocol messages from fd 3 and write
them to fd 4, each a JSON text ended by a NUL byte. A ``bash`` wrapper moves our pipe ends
onto those numbers (``exec 3<&R 4>&W``; dash takes one-digit fds only), so no
``preexec_fn`` runs in a threaded interpreter. ``open_page`` loads one file and records
what the page did: console messages, uncaught exceptions, log entries and every network
request.

``find_chromium`` returns Debian's ``/usr/bin/chromium`` (installed by ``.ci/run``) or
``None``; tests skip with that reason only when it is absent.
"""

from __future__ import annotations

import base64
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI containers: Chromium refuses to sandbox as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class PageLog:
    """What a page did while it loaded."""

    console: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    log_entries: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        out = [str(e) for e in self.exceptions]
        out += [str(c) for c in self.console if c.get("type") in ("error", "assert")]
        out += [str(e) for e in self.log_entries if e.get("level") == "error"]
        return out


class DevTools:
    """One protocol session over Chromium's pipe (flattened target sessions)."""

    def __init__(self, proc: subprocess.Popen[bytes], to_chrome: int, from_chrome: int) -> None:
        self.proc = proc
        self._out = to_chrome
        self._in = from_chrome
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, orjson.dumps(msg) + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result") or {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = self._read(deadline)
            if msg.get("method") == method:
                return msg
            self.events.append(msg)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return dict(orjson.loads(raw))


@contextmanager
def chromium(binary: str, user_data_dir: Path) -> Iterator[DevTools]:
    """A headless Chromium with a DevTools pipe; killed on exit."""
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    wrapper = 'exec 3<&"$1" 4>&"$2"; shift 2; exec "$@"'
    args = ["bash", "-c", wrapper, "bash", str(to_r), str(from_w), binary, *FLAGS,
            f"--user-data-dir={user_data_dir}", "about:blank"]  # fmt: skip
    log = open(user_data_dir / "chromium.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        args, pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    os.close(to_r)
    os.close(from_w)
    try:
        yield DevTools(proc, to_w, from_r)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()
        os.close(to_w)
        os.close(from_r)


@dataclass
class LoadedPage:
    log: PageLog
    facts: dict[str, Any]
    screenshot: bytes
    pdf: bytes


FACTS_JS = """JSON.stringify({
  images: [...document.images].map(i => ({src: i.src.slice(0, 30), complete: i.complete,
    width: i.naturalWidth, shown: i.getBoundingClientRect().height})),
  text: document.body.innerText,
  title: document.title,
  scripts: document.scripts.length,
  width: document.documentElement.scrollWidth,
  viewport: window.innerWidth
})"""


def open_page(
    tools: DevTools,
    path: Path | str,
    *,
    width: int = 1200,
    height: int = 900,
    mobile: bool = False,
) -> LoadedPage:
    """Load ``path`` (a file, or a URL such as the daemon's live page) in a new tab of
    ``width`` CSS pixels; return what happened."""
    target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.send(f"{domain}.enable", session=session)
    tools.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        session=session,
    )
    tools.events.clear()
    url = path if isinstance(path, str) else path.resolve().as_uri()
    tools.send("Page.navigate", {"url": url}, session=session)
    tools.wait_for("Page.loadEventFired")
    time.sleep(0.3)  # late console messages
    facts = orjson.loads(
        tools.send(
            "Runtime.evaluate", {"expression": FACTS_JS, "returnByValue": True}, session=session
        )["result"]["value"]
    )
    shot = tools.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
    )
    pdf = tools.send("Page.printToPDF", {"printBackground": True}, session=session, timeout=60)
    log = _page_log(tools.events, session)
    tools.send("Target.closeTarget", {"targetId": target})
    return LoadedPage(log, facts, base64.b64decode(shot["data"]), base64.b64decode(pdf["data"]))


def _page_log(events: list[dict[str, Any]], session: str) -> PageLog:
    log = PageLog()
    for e in events:
        if e.get("sessionId") != session:
            continue
        method, params = e.get("method"), e.get("params") or {}
        if method == "Runtime.consoleAPICalled":
            log.console.append({"type": params.get("type"), "args": params.get("args")})
        elif method == "Runtime.exceptionThrown":
            log.exceptions.append(params.get("exceptionDetails") or {})
        elif method == "Log.entryAdded":
            log.log_entries.append(params.get("entry") or {})
        elif method == "Network.requestWillBeSent":
            log.requests.append(str((params.get("request") or {}).get("url", "")))
        elif method == "Network.loadingFailed":
            log.failed.append(params)
    return log

"""End to end: ``capi-monitor run`` as a subprocess, a fake Slack and a real SMTP server on
loopback. An incident written to a watched log reaches Slack and email once; SIGTERM ends
the daemon with status 0; a restart posts nothing twice; a notification held during a
Slack outage is delivered once when Slack answers again."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TextIO

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor.testing.fakeslack import FakeSlack

REPO = Path(__file__).resolve().parents[2]
SLACK_TOKEN = "xoxb-e2e-0000000000-secret"
STOP_WITHIN = 10.0


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        with self._lock:
            self._messages.append(message_from_bytes(data))
        return "250 OK"

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox(free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=SLACK_TOKEN, channels=["capi-alerts"]) as fake:
        yield fake


def wait_for(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def incident(event_name: str) -> bytes:
    """A delivery sent just now whose ``em`` is clear text: HASH_PLAINTEXT (crit)."""
    now = time.time()
    event = {
        "event_name": event_name,
        "event_time": int(now) - 5,
        "event_id": hashlib.sha256(f"{event_name}{now}".encode()).hexdigest()[:16],
        "action_source": "website",
        "event_source_url": "https://shop.example.com/checkout",
        "user_data": {"em": ["jane.doe@example.com"], "client_user_agent": "Mozilla/5.0"},
    }
    record = {"sent_at": now, "request": {"data": [event]}, "response": {"status": 200}}
    return orjson.dumps(record) + b"\n"


class DaemonProcess:
    """``python -m monitor run`` with its JSON log going to a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self._config, self._log_path = config, log
        self._log: TextIO | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "E2E_SLACK_TOKEN": SLACK_TOKEN, "PYTHONPATH": str(REPO)}
        self._log = open(self._log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self._config)],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log, cwd=self._config.parent,
        )  # fmt: skip

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_WITHIN + 5)
        finally:
            self.stop()
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_records(self) -> list[dict[str, Any]]:
        # Complete lines only: the daemon may be writing the last one right now.
        lines = self._log_path.read_text().split("\n")[:-1]
        return [orjson.loads(x) for x in lines if x.strip()]


def write_config(tmp_path: Path, slack: FakeSlack, smtp_port: int) -> Path:
    (tmp_path / "logs").mkdir()
    config = tmp_path / "capi-monitor.toml"
    config.write_text(
        f"""
[storage]
url = "sqlite:///{tmp_path}/state.db"

[server]
listen = "off"

[[datasets]]
id = "1234567890"
name = "E2E shop"
logs = ["{tmp_path}/logs/*.jsonl"]

[schedule]
logs_every = "1s"
notify_every = "1s"

[alerts]
window = "1h"

[notify.slack]
token_env = "E2E_SLACK_TOKEN"
channel = "#capi-alerts"
api_url = "{slack.url}"

[notify.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "capi-monitor@example.com"
to = ["ops@example.com"]
"""
    )
    return config


def mentions(text: str, *words: str) -> bool:
    return all(w in text for w in words)


def email_text(m: Message) -> str:
    parts = [p.get_payload(decode=True) for p in m.walk() if not p.is_multipart()]
    return str(m["Subject"]) + "".join(p.decode() for p in parts if isinstance(p, bytes))


@pytest.mark.slow
def test_daemon_end_to_end(tmp_path: Path, slack: FakeSlack, inbox: Inbox) -> None:
    config = write_config(tmp_path, slack, inbox.port)
    watched = tmp_path / "logs" / "capi.jsonl"
    watched.write_bytes(b"")
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        daemon.start()
        with open(watched, "ab") as f:
            f.write(incident("Purchase"))
        wait_for("the Slack post", lambda: len(slack.messages) == 1, 30)
        wait_for("the email", lambda: len(inbox.messages) == 1, 30)
        post = slack.messages[0]
        assert mentions(post["text"], "HASH_PLAINTEXT", "FIRING")
        assert post["metadata"]["event_type"] == "capi_monitor_alert"
        assert mentions(email_text(inbox.messages[0]), "HASH_PLAINTEXT", "FIRING")

        code, took = daemon.terminate()
        assert code == 0 and took < STOP_WITHIN

        # A restart re-reads nothing and posts nothing again.
        daemon.start()
        wait_for("two cycles after the restart", lambda: logs_runs(tmp_path) >= 3, 30)
        time.sleep(1.5)  # room for a (wrong) second drain to post
        assert len(slack.messages) == 1 and len(inbox.messages) == 1

        # Slack goes away; a new incident is held for it (email still goes out).
        slack.down()
        with open(watched, "ab") as f:
            f.write(incident("Lead"))
        wait_for("the second email", lambda: len(inbox.messages) == 2, 30)
        time.sleep(2)
        slack.up()
        wait_for("the held Slack post", lambda: len(slack.messages) == 2, 30)
        time.sleep(1.5)
        assert len(slack.messages) == 2, "the held message was posted twice"
        held = slack.messages[1]
        assert mentions(held["text"], "HASH_PLAINTEXT", "FIRING")
        assert held["metadata"]["event_payload"]["event_name"] == "Lead"

        code, took = daemon.terminate()
        assert code == 0 and took < STOP_WITHIN
    finally:
        daemon.stop()
    records = daemon.log_records()
    assert {r["msg"] for r in records} >= {"daemon started", "job finished", "daemon stopped"}
    text = (tmp_path / "daemon.log").read_text()
    assert SLACK_TOKEN not in text and "jane.doe@example.com" not in text


def logs_runs(tmp_path: Path) -> int:
    """Logs job runs recorded so far (read straight from the daemon's SQLite file)."""
    with closing(sqlite3.connect(tmp_path / "state.db")) as conn:
        row = conn.execute("SELECT count(*) FROM job_runs WHERE job = 'logs'").fetchone()
    return int(row[0])


def test_sigint_stops_the_daemon_with_status_0(tmp_path: Path) -> None:
    config = tmp_path / "capi-monitor.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/state.db"\n'
        f'[[datasets]]\nid = "1"\nlogs = ["{tmp_path}/*.jsonl"]\n'
        '[schedule]\nlogs_every = "1h"\n[server]\nlisten = "off"\n'
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log")
    try:
        daemon.start()
        wait_for(
            "the daemon to start",
            lambda: any(r["msg"] == "daemon started" for r in daemon.log_records()),
            30,
        )
        assert daemon.proc is not None
        started = time.monotonic()
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.proc.wait(timeout=STOP_WITHIN + 5) == 0
        assert time.monotonic() - started < STOP_WITHIN
    finally:
        daemon.stop()
    assert any(r["msg"] == "daemon stopped" for r in daemon.log_records())

"""Delivering the weekly report: claims in the store (one winner, no resend after a
restart), the email through a real SMTP server on loopback (inline CID charts, pages
attached), the Slack summary through the fake Slack, and the daemon's job."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Settings, settings_from_dict
from monitor.daemon.jobs import JOBS
from monitor.daemon.scheduler import Daemon
from monitor.daemon.weekly import build_weekly_email, due_weeks, enabled, run_weekly
from monitor.notify import build_notifiers
from monitor.notify.email import EmailNotifier
from monitor.notify.slack import SlackNotifier
from monitor.report.weekly.load import build_weekly_report
from monitor.report.weekly.render import render_pages
from monitor.report.window import iso_week
from monitor.store import Store
from monitor.store.reports import ClaimState, claim_week, claims, finish, get_claim
from monitor.testing.fakeslack import FakeSlack
from tests.support import weeklyutil as wu
from tests.support.notifyutil import smtp_server

TOKEN = "xoxb-weekly-0000000000-secret"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/state.db") as s:
        yield s


@pytest.fixture
def populated(store: Store) -> Store:
    wu.populate(store)
    return store


def config(
    tmp_path: Path, smtp_port: int | None = None, slack: str | None = None, **extra: Any
) -> Settings:
    data: dict[str, Any] = {
        "datasets": [{"id": "111", "name": "Shop", "client": "Acme"}],
        "schedule": {"weekly_report": "mon 08:00", "timezone": "UTC"},
        "report": {"dir": str(tmp_path / "reports")},
        "notify": {},
    }
    if smtp_port:
        data["notify"]["email"] = {
            "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "from": "capi-monitor@example.com", "to": ["ops@example.com"],
        }  # fmt: skip
    if slack:
        data["notify"]["slack"] = {"token_env": "T", "channel": "#capi-alerts", "api_url": slack}
    data.update(extra)
    return settings_from_dict(data)


# --- claims ----------------------------------------------------------------------------


def test_two_concurrent_claims_of_one_week_have_one_winner(store: Store) -> None:
    barrier = threading.Barrier(8)
    won: list[str] = []

    def claim(i: int) -> None:
        barrier.wait()
        if claim_week(store, "2026-W47", f"p{i}", wu.NOW) is not None:
            won.append(f"p{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert [c.claimed_by for c in claims(store)] == won


def test_finished_claims_are_never_taken_again_but_dead_and_failed_ones_are(store: Store) -> None:
    assert claim_week(store, "2026-W46", "a", 0.0) is not None
    finish(store, "2026-W46", "a", ClaimState.SENT, 10.0)
    assert claim_week(store, "2026-W46", "b", 10**9) is None  # sent: never again
    assert claim_week(store, "2026-W47", "a", 0.0) is not None
    assert claim_week(store, "2026-W47", "b", 60.0) is None  # the holder is working on it
    taken = claim_week(store, "2026-W47", "b", 3600.0)  # its lease ran out: it died
    assert taken is not None and (taken.claimed_by, taken.attempts) == ("b", 2)
    finish(store, "2026-W47", "b", ClaimState.FAILED, 3600.0, "smtp down for jane@example.com")
    failed = get_claim(store, "2026-W47")
    assert (
        failed is not None and failed.error is not None and "jane@example.com" not in failed.error
    )
    assert claim_week(store, "2026-W47", "c", 3700.0) is None  # backoff
    assert claim_week(store, "2026-W47", "c", 3600.0 + 1200) is not None


def test_due_weeks_catch_up_after_an_outage(store: Store, tmp_path: Path) -> None:
    s = config(tmp_path)
    assert [w.week for w in due_weeks(store, s, wu.NOW)] == ["2026-W47"]
    assert [w.week for w in due_weeks(store, s, wu.NOW - 1)] == ["2026-W46"]
    claim_week(store, "2026-W44", "x", 0.0)
    finish(store, "2026-W44", "x", ClaimState.SENT, 0.0)
    assert [w.week for w in due_weeks(store, s, wu.NOW)] == ["2026-W45", "2026-W46", "2026-W47"]
    off = config(tmp_path, schedule={"weekly_report": "off"})
    assert due_weeks(store, off, wu.NOW) == [] and not enabled(off)
    assert not enabled(config(tmp_path, report={}))  # nowhere to deliver


# --- email and Slack -------------------------------------------------------------------


def test_the_email_carries_inline_charts_and_the_pages(populated: Store, tmp_path: Path) -> None:
    report = build_weekly_report(
        populated, config(tmp_path), iso_week("2026-W47", "UTC"), now=wu.NOW
    )
    pages = render_pages(report)
    msg = build_weekly_email(
        report, pages, sender="c@example.com", recipients=["o@example.com"], now=wu.NOW
    )
    with smtp_server() as (controller, handler):
        s = config(tmp_path, smtp_port=controller.port)
        assert s.notify.email is not None
        EmailNotifier(s.notify.email).send_message(msg)
    got = handler.received[0].message
    assert got.get_content_type() == "multipart/mixed"
    related = next(p for p in got.walk() if p.get_content_type() == "multipart/related")
    html = next(p for p in related.walk() if p.get_content_type() == "text/html").get_content()
    images = [p for p in related.walk() if p.get_content_type() == "image/png"]
    assert images and all(p["Content-ID"].strip("<>") in html for p in images)
    assert 'src="cid:health@capi-monitor"' in html and "data:image" not in html
    assert all(p.get_content().startswith(b"\x89PNG") for p in images)
    attached = {p.get_filename(): p for p in got.iter_attachments() if p.get_filename()}
    assert set(attached) >= {"index.html", "111.html", "222.html", "333.html"}
    assert "data:image/png;base64," in attached["111.html"].get_content()
    text = next(p for p in got.walk() if p.get_content_type() == "text/plain").get_content()
    assert "Shop: grade D, score 64" in text
    assert "Weekly CAPI audit 2026-W47" in str(got["Subject"])


def test_the_daemon_job_delivers_each_week_once(
    populated: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T", TOKEN)
    with smtp_server() as (controller, handler), FakeSlack(token=TOKEN) as slack:
        s = config(tmp_path, smtp_port=controller.port, slack=slack.url)
        notifiers = build_notifiers(s, {"T": TOKEN})
        assert isinstance(notifiers["slack"], SlackNotifier)
        d = Daemon(s, populated, _NoSender(), clock=lambda: wu.NOW, notifiers=notifiers)
        assert [spec.name for spec in d.jobs()] == ["logs", "notify", "weekly_report"]
        weekly = next(spec for spec in JOBS if spec.name == "weekly_report")
        first = d.run_job(weekly, wu.NOW)
        assert first.ok and first.counters["weeks_sent"] == 1, first
        # A restart (a new daemon on the same store) sends nothing again.
        again = Daemon(s, populated, _NoSender(), clock=lambda: wu.NOW + 600, notifiers=notifiers)
        assert again.run_job(weekly, wu.NOW + 600).counters["weeks_sent"] == 0
        assert len(handler.received) == 1 and len(slack.messages) == 1
    post = slack.messages[0]
    assert "Weekly CAPI audit 2026-W47" in post["text"] and "Shop" in post["text"]
    assert post["metadata"]["event_type"] == "capi_monitor_weekly_report"
    assert (tmp_path / "reports" / "2026-W47" / "index.html").is_file()
    assert (tmp_path / "reports" / "2026-W47" / "111.html").is_file()
    claim = get_claim(populated, "2026-W47")
    assert claim is not None and claim.state is ClaimState.SENT
    assert set(claim.deliveries) == {"files", "email", "slack"}
    assert TOKEN not in str(claim)


def test_a_failed_channel_is_retried_alone(populated: Store, tmp_path: Path) -> None:
    with smtp_server() as (controller, handler):
        port = controller.port
        s = config(tmp_path, smtp_port=port)
        notifiers = build_notifiers(s, {})
    # The SMTP server is gone: files are written, the email fails (transient).
    first = run_weekly(populated, s, wu.NOW, notifiers, owner="a", clock=lambda: wu.NOW)
    assert first["weeks_failed"] == 1
    claim = get_claim(populated, "2026-W47")
    assert claim is not None and claim.state is ClaimState.FAILED and "files" in claim.deliveries
    with smtp_server(port=port) as (_controller, handler):
        later = wu.NOW + 1200
        second = run_weekly(populated, s, later, notifiers, owner="b", clock=lambda: later)
        assert second["weeks_sent"] == 1 and len(handler.received) == 1
    claim = get_claim(populated, "2026-W47")
    assert claim is not None and claim.state is ClaimState.SENT and claim.attempts == 2


def test_a_week_before_any_data_is_skipped_not_sent(store: Store, tmp_path: Path) -> None:
    with smtp_server() as (controller, handler):
        s = config(tmp_path, smtp_port=controller.port)
        counters = run_weekly(store, s, wu.NOW, build_notifiers(s, {}), owner="a")
    assert counters["weeks_skipped"] == 1 and handler.received == []
    claim = get_claim(store, "2026-W47")
    assert claim is not None and claim.state is ClaimState.SKIPPED


class _NoSender:
    def drain(self, now: float | None = None) -> dict[str, int]:
        return {"sent": 0}

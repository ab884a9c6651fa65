"""The outbox sender on a real SQLite store with FakeSlack and aiosmtpd: nothing lost in an
outage, nothing posted twice after a crash, order kept, permanent failures reported."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from monitor.alerts.model import Reason
from monitor.config import NotifySettings, Settings
from monitor.model.findings import Severity
from monitor.notify import OutboxSender, build_notifiers, notifier_health
from monitor.notify.sender import delivery_key
from monitor.store import Store
from monitor.store.deliveries import DELIVERIES
from monitor.testing.fakeslack import FakeSlack
from tests.support.notifyutil import (
    T0,
    add_outbox,
    alert,
    body,
    free_port,
    notification,
    smtp_server,
)

TOKEN = "xoxb-test-token-0000000001"
ENV = {"SLACK_BOT_TOKEN": TOKEN}
NOW = T0 + 1000


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    with Store.open(str(tmp_path / "capi.db")) as store:
        yield store.engine


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(TOKEN, channels=["capi-alerts", "client-x"]) as fake:
        yield fake


def notify(slack: FakeSlack | None = None, **extra: Any) -> NotifySettings:
    data: dict[str, Any] = {"timeout": "3s"}
    if slack is not None:
        data["slack"] = {"channel": "#capi-alerts", "api_url": slack.url}
    data.update(extra)
    return NotifySettings.model_validate(data)


def sender(
    engine: Engine, settings: NotifySettings | Settings, env: dict[str, str] = ENV
) -> OutboxSender:
    return OutboxSender(engine, build_notifiers(settings, env), settings, clock=lambda: NOW)


def deliveries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(DELIVERIES).order_by(DELIVERIES.c.id)).mappings()
        return [dict(r) for r in rows]


def leave_sending(engine: Engine, delivery_id: int, at: float) -> None:
    """What a crash between "mark sending" and "mark sent" leaves behind (lease expired)."""
    with engine.begin() as conn:
        conn.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == delivery_id)
            .values(state="sending", attempts=1, last_attempt_at=at, next_attempt_at=at)
        )


def test_outage_holds_everything_then_delivers_each_exactly_once(
    engine: Engine, slack: FakeSlack
) -> None:
    s = sender(engine, notify(slack))
    for i in range(3):
        add_outbox(engine, notification(alert(f"CODE_{i}"), key=f"n{i}", created_at=T0 + i))
    slack.down()
    t = NOW
    first = s.drain(t)
    assert (first.planned, first.sent, first.retried, first.pending) == (3, 0, 1, 3)
    # Keep failing for a while: the backoff doubles up to the cap, never beyond it.
    gaps = []
    for _ in range(8):
        row = deliveries(engine)[0]
        t = row["next_attempt_at"]
        assert s.drain(t - 0.01).retried == 0  # not due yet: nothing is tried
        s.drain(t)
        gaps.append(deliveries(engine)[0]["next_attempt_at"] - t)
    assert gaps[:4] == [2.0, 4.0, 8.0, 16.0]
    assert max(gaps) == 20.0  # retry_max_delay: held messages go out <= 20 s after recovery
    slack.up()
    done = s.drain(t + 20.0)
    assert (done.sent, done.pending) == (3, 0)
    assert s.drain(t + 60.0).sent == 0
    messages = slack.messages
    assert len(messages) == 3  # nothing lost, nothing twice
    assert [m["metadata"]["event_payload"]["code"] for m in messages] == [
        "CODE_0",
        "CODE_1",
        "CODE_2",
    ]
    assert [d["state"] for d in deliveries(engine)] == ["sent"] * 3
    assert all(
        d["external_ref"] == m["ts"] for d, m in zip(deliveries(engine), messages, strict=True)
    )


def test_crash_after_the_post_succeeded_does_not_post_again(
    engine: Engine, slack: FakeSlack
) -> None:
    s = sender(engine, notify(slack))
    n = notification(key="n1")
    add_outbox(engine, n)
    slack.down()
    s.drain(NOW)  # planned, held
    slack.up()
    # The process posted, then died before recording it: the row is left "sending".
    notifier = build_notifiers(notify(slack), ENV)["slack"]
    ts = notifier.send(n, delivery_key("n1", "slack"))
    row = deliveries(engine)[0]
    leave_sending(engine, row["id"], NOW)
    stats = s.drain(NOW + 1)
    assert (stats.recovered, stats.sent) == (1, 0)
    assert len(slack.messages) == 1
    assert deliveries(engine)[0]["state"] == "sent" and deliveries(engine)[0]["external_ref"] == ts


def test_crash_before_the_post_sends_it_once(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(key="n1"))
    slack.down()
    s.drain(NOW)
    slack.up()
    leave_sending(engine, deliveries(engine)[0]["id"], NOW)
    stats = s.drain(NOW + 1)
    assert (stats.recovered, stats.sent) == (0, 1)
    assert len(slack.messages) == 1
    assert s.drain(NOW + 100).sent == 0 and len(slack.messages) == 1


def test_claim_lease_keeps_a_live_send_from_being_repeated(
    engine: Engine, slack: FakeSlack
) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(key="n1"))
    slack.lose_responses()  # posted, but the answer is lost: outcome unknown
    stats = s.drain(NOW)
    row = deliveries(engine)[0]
    assert stats.retried == 1 and row["state"] == "sending"
    assert s.drain(row["next_attempt_at"]).recovered == 1  # asked first: it had arrived
    assert len(slack.messages) == 1


def test_order_is_kept_while_the_head_waits(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(alert("FIRST"), key="n1"))
    slack.http_error(500, times=1)
    s.drain(NOW)
    add_outbox(engine, notification(alert("SECOND"), key="n2"))
    assert s.drain(NOW + 0.5).sent == 0  # the head is not due: the newer one waits too
    assert s.drain(NOW + 2).sent == 2
    assert [m["metadata"]["event_payload"]["code"] for m in slack.messages] == ["FIRST", "SECOND"]


def test_retry_after_is_honoured(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(key="n1"))
    slack.rate_limit(retry_after=7, times=1)
    s.drain(NOW)
    row = deliveries(engine)[0]
    assert row["state"] == "pending" and row["next_attempt_at"] == NOW + 7
    assert s.drain(NOW + 7).sent == 1


def test_permanent_failure_is_recorded_reported_and_not_retried(
    engine: Engine, slack: FakeSlack
) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(key="n1"))
    add_outbox(engine, notification(key="n2"))
    slack.fail("channel_not_found")
    stats = s.drain(NOW)
    assert (stats.failed, stats.sent, stats.pending) == (2, 0, 0)
    slack.reset()
    assert s.drain(NOW + 100).sent == 0
    [health] = notifier_health(engine, NOW + 100, ["slack", "email"])[1:]
    assert health.notifier == "slack" and health.failed == 2 and health.pending == 0
    assert health.status == "error" and "channel_not_found" in (health.last_error or "")
    assert health.last_error_at == NOW and health.last_success_at is None
    email = notifier_health(engine, NOW, ["email"])[0]
    assert (email.notifier, email.failed, email.pending, email.status) == ("email", 0, 0, "ok")


def test_health_counts_pending_and_last_success(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(key="n1"))
    s.drain(NOW)
    add_outbox(engine, notification(key="n2"))
    slack.down()
    s.drain(NOW + 10)
    [h] = notifier_health(engine, NOW + 40)
    assert (h.pending, h.failed, h.last_success_at, h.status) == (1, 0, NOW, "error")
    assert h.oldest_pending_age == 30 and "connection refused" in (h.last_error or "")
    assert h.to_dict()["status"] == "error"


def test_resolution_is_threaded_under_the_first_post(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack))
    add_outbox(engine, notification(alert(), key="n1"))
    s.drain(NOW)
    repeat = alert(reason=Reason.REPEAT)
    add_outbox(engine, notification(repeat, key="n2", created_at=T0 + 4 * 3600))
    s.drain(NOW + 10)
    add_outbox(engine, notification(alert(state="RESOLVED", resolved_at=T0 + 5 * 3600), key="n3"))
    s.drain(NOW + 20)
    first, _, resolved = slack.messages
    assert resolved["thread_ts"] == first["ts"]  # the first report, not the reminder
    assert "first reported at" in str(resolved["blocks"])


def test_new_episode_does_not_thread_under_the_previous_one(
    engine: Engine, slack: FakeSlack
) -> None:
    s = sender(engine, notify(slack))
    for i, a in enumerate([alert(), alert(state="RESOLVED"), alert(), alert(state="RESOLVED")]):
        add_outbox(engine, notification(a, key=f"n{i}"))
    s.drain(NOW)
    m = slack.messages
    assert m[1]["thread_ts"] == m[0]["ts"] and m[3]["thread_ts"] == m[2]["ts"]


def test_routing_by_client_channel_and_severity(engine: Engine, slack: FakeSlack) -> None:
    settings = Settings.model_validate(
        {
            "datasets": [{"id": "111", "client": "x"}, {"id": "222"}],
            "notify": {
                "timeout": "3s",
                "slack": {"channel": "#capi-alerts", "api_url": slack.url},
                "routes": [{"match_client": "x", "notifiers": ["slack"], "channel": "#client-x"}],
            },
        }
    )
    s = sender(engine, settings)
    # The client comes from [[datasets]] when the notification does not carry it.
    add_outbox(
        engine, notification(alert(dataset_id="111"), key="a", dataset_id="111", client=None)
    )
    add_outbox(
        engine, notification(alert(dataset_id="222"), key="b", dataset_id="222", client=None)
    )
    info_only = alert("NOTE", severity=Severity.INFO, dataset_id="222")
    add_outbox(engine, notification(info_only, key="c", dataset_id="222", client=None))
    stats = s.drain(NOW)
    assert (stats.sent, stats.skipped) == (2, 1)
    x, other = slack.messages
    assert x["channel"] == slack.channel_id("client-x")
    assert other["channel"] == slack.channel_id("capi-alerts")
    skipped = [d for d in deliveries(engine) if d["state"] == "skipped"]
    assert skipped[0]["last_error"] == "no alert at or above warn"


def test_each_notifier_gets_only_alerts_at_its_threshold(engine: Engine, slack: FakeSlack) -> None:
    with smtp_server() as (server, handler):
        settings = notify(
            slack,
            email={"host": "127.0.0.1", "port": server.port, "security": "none",
                   "from": "capi@example.com", "to": ["ops@example.com"], "min_severity": "crit"},
        )  # fmt: skip
        s = sender(engine, settings)
        add_outbox(
            engine, notification(alert("BAD"), alert("MEH", severity=Severity.WARN), key="n1")
        )
        assert s.drain(NOW).sent == 2
    assert "MEH" in str(slack.messages[0]["blocks"])
    [mail] = handler.received
    assert "BAD FIRING" in mail.message["Subject"] and "MEH" not in mail.message["Subject"]
    assert "MEH" not in body(mail.message, "plain")


def test_email_outage_then_recovery_delivers_once(engine: Engine) -> None:
    port = free_port()
    settings = notify(
        email={
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from": "c@example.com",
            "to": ["o@example.com"],
        }
    )
    s = sender(engine, settings)
    add_outbox(engine, notification(key="n1"))
    assert s.drain(NOW).retried == 1  # nothing listens yet
    with smtp_server(port=port) as (_, handler):
        assert s.drain(NOW + 2).sent == 1
        assert s.drain(NOW + 60).sent == 0
    assert len(handler.received) == 1
    assert deliveries(engine)[0]["external_ref"] == handler.received[0].message["Message-ID"]


def test_give_up_after_and_stale_rows(engine: Engine, slack: FakeSlack) -> None:
    s = sender(engine, notify(slack, give_up_after="1h"))
    add_outbox(engine, notification(key="n1", created_at=NOW))
    slack.down()
    s.drain(NOW)
    stats = s.drain(NOW + 3601)
    assert stats.failed == 1
    row = deliveries(engine)[0]
    assert row["state"] == "failed" and row["last_error"].startswith("gave up after 1h: ")
    # Queued long ago (e.g. no notifier was configured then): not sent now.
    add_outbox(engine, notification(key="old", created_at=NOW - 7200))
    assert s.drain(NOW + 3601).skipped == 1


def test_unreadable_payload_and_removed_notifier_fail_visibly(
    engine: Engine, slack: FakeSlack
) -> None:
    from monitor.store.tables.core import metadata

    with engine.begin() as conn:
        conn.execute(
            metadata.tables["outbox"]
            .insert()
            .values(key="bad", dataset_id="1", created_at=NOW, payload={})
        )
    s = sender(engine, notify(slack))
    assert s.drain(NOW).failed == 1  # planned straight to failed
    assert deliveries(engine)[0]["state"] == "failed"
    slack.down()
    add_outbox(engine, notification(key="n1"))
    s.drain(NOW)
    without_slack = OutboxSender(engine, {}, notify(), clock=lambda: NOW)
    assert without_slack.drain(NOW + 100).failed == 1
    assert "not configured" in deliveries(engine)[1]["last_error"]


def test_two_senders_on_one_database_never_send_twice(engine: Engine, slack: FakeSlack) -> None:
    for i in range(20):
        add_outbox(engine, notification(alert(f"C{i}"), key=f"n{i}"))
    senders = [sender(engine, notify(slack)) for _ in range(2)]
    errors: list[BaseException] = []

    # One clock for both, as in production: the real time elapsed since the start. (A
    # clock per sender that advanced by each of its own drains let a fast sender run past
    # the slow one's lease on a loaded machine and take over its claims.)
    t0 = time.monotonic()

    def run(s: OutboxSender) -> None:
        try:
            for _ in range(200):
                if s.drain(NOW + time.monotonic() - t0).pending == 0:
                    return
                time.sleep(0.02)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    keys = [m["metadata"]["event_payload"]["key"] for m in slack.messages]
    assert len(keys) == 20 and len(set(keys)) == 20


class Broken:
    """A notifier with a bug: raises something that is not a NotifierError."""

    id = "slack"

    def send(self, n: Any, key: str, *, target: Any = None, first_reports: Any = None) -> str:
        raise RuntimeError("template exploded")

    def find_sent(self, key: str, *, target: Any = None) -> None:
        return None


def test_a_notifier_bug_is_retried_not_fatal(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    s = OutboxSender(engine, {"slack": Broken()}, notify(), clock=lambda: NOW)
    add_outbox(engine, notification(key="n1"))
    stats = s.drain(NOW)
    assert (stats.retried, stats.failed) == (1, 0)
    row = deliveries(engine)[0]
    assert row["state"] == "sending" and row["last_error"] == "unexpected RuntimeError"
    assert any(r.exc_info and "template exploded" in str(r.exc_info[1]) for r in caplog.records)

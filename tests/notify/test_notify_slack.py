"""The Slack notifiers against FakeSlack (a real HTTP server): message content, metadata,
threading of resolutions, find_sent, the webhook alternative, error classification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.model.findings import Severity
from monitor.notify.base import FirstReport, NotifierError
from monitor.notify.slack import (
    EVENT_TYPE,
    MAX_DETAILED_ALERTS,
    SlackNotifier,
    SlackWebhookNotifier,
    build_message,
)
from monitor.testing.fakeslack import FakeSlack, blocks_problem, metadata_problem
from tests.support.notifyutil import T0, alert, notification

TOKEN = "xoxb-test-token-0000000001"


def bot(slack: FakeSlack, channel: str = "#capi-alerts") -> SlackNotifier:
    return SlackNotifier(TOKEN, channel, api_url=slack.url, timeout=3)


def block_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"])


def test_post_names_codes_states_dataset_and_carries_metadata() -> None:
    n = notification(
        alert("HASH_PLAINTEXT"),
        alert("EVENT_ID_REUSED", state="RESOLVED", severity=Severity.WARN, resolved_at=T0 + 300),
    )
    with FakeSlack(TOKEN) as slack:
        ts = bot(slack).send(n, "n1/slack")
        [msg] = slack.messages
    assert ts == msg["ts"] and msg["channel"] == slack.channel_id("capi-alerts")
    blocks = block_text(msg)
    for word in ("*FIRING*", "`HASH_PLAINTEXT`", "*RESOLVED*", "`EVENT_ID_REUSED`", "CRIT"):
        assert word in blocks
    for word in ("Example shop", "1234567890", "Client *acme*", "event Purchase"):
        assert word in blocks  # dataset name/id/client, event name
    assert "Since* 2026-11-20 12:00 UTC" in blocks  # since when
    assert "*Affected* 12" in blocks and "share: 25%" in blocks  # the numbers
    assert "*Fix:* Hash em with SHA-256" in blocks  # the remediation
    assert "first reported at" in blocks  # the resolved one refers to its start
    assert "HASH_PLAINTEXT FIRING" in msg["text"] and "EVENT_ID_REUSED RESOLVED" in msg["text"]
    meta = msg["metadata"]
    assert meta["event_type"] == EVENT_TYPE == "capi_monitor_alert"
    payload = meta["event_payload"]
    first = n.alerts[0]
    assert {
        k: payload[k]
        for k in ("fingerprint", "state", "code", "dataset_id", "event_name", "severity")
    } == {
        "fingerprint": first.fingerprint,
        "state": "FIRING",
        "code": "HASH_PLAINTEXT",
        "dataset_id": "1234567890",
        "event_name": "Purchase",
        "severity": "crit",
    }
    assert payload["key"] == "n1/slack" and payload["alert_count"] == 2
    assert [(a["code"], a["state"]) for a in payload["alerts"]] == [
        ("HASH_PLAINTEXT", "FIRING"),
        ("EVENT_ID_REUSED", "RESOLVED"),
    ]


def test_dataset_wide_alert_has_empty_event_name_in_metadata() -> None:
    msg = build_message(notification(alert("TOKEN_INVALID", event_name=None)), "k")
    assert msg.metadata["event_payload"]["event_name"] == ""
    assert metadata_problem(msg.metadata) is None  # Slack takes no null here


def test_resolution_threads_under_the_first_post_and_is_broadcast() -> None:
    with FakeSlack(TOKEN) as slack:
        notifier = bot(slack)
        fired = notification(alert(), key="n1")
        first_ts = notifier.send(fired, "n1/slack")
        assert first_ts is not None
        resolved = notification(
            alert(state="RESOLVED", resolved_at=T0 + 7200), key="n2", created_at=T0 + 7200
        )
        fp = resolved.alerts[0].fingerprint
        notifier.send(resolved, "n2/slack", first_reports={fp: FirstReport(first_ts, T0 + 600)})
        reply = slack.messages[1]
    assert reply["thread_ts"] == first_ts and reply["reply_broadcast"] is True
    assert "first reported at 2026-11-20 12:10 UTC" in block_text(reply)
    assert "RESOLVED" in reply["text"]


def test_mixed_notification_is_not_threaded() -> None:
    n = notification(alert(), alert("EVENT_ID_REUSED", state="RESOLVED"))
    fp = n.alerts[1].fingerprint
    msg = build_message(n, "k", {fp: FirstReport("1.000001", T0)})
    assert msg.thread_ts is None


def test_find_sent_finds_the_key_in_metadata_by_channel_name() -> None:
    with FakeSlack(TOKEN) as slack:
        bot(slack).send(notification(), "n1/slack")
        fresh = bot(slack)  # a new process: no channel id cached, looks it up by name
        assert fresh.find_sent("n1/slack") == slack.messages[0]["ts"]
        assert fresh.find_sent("other/slack") is None
        assert "conversations.list" in slack.calls


def test_route_target_channel() -> None:
    with FakeSlack(TOKEN, channels=["capi-alerts", "client-x"]) as slack:
        bot(slack).send(notification(), "n1/slack", target="#client-x")
        assert slack.messages[0]["channel"] == slack.channel_id("client-x")
        assert bot(slack).find_sent("n1/slack", target="#client-x") is not None


def test_log_controlled_text_cannot_mention_or_link() -> None:
    evil = alert(event_name="<!channel> <http://x|click>")
    msg = build_message(notification(evil), "k")
    text = json.dumps(msg.blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text


def test_many_alerts_stay_within_block_limits_and_still_name_every_code() -> None:
    alerts = [alert(f"CODE_{i:02d}", event_name=f"Event{i}") for i in range(60)]
    msg = build_message(notification(*alerts), "k")
    assert blocks_problem(msg.blocks) is None
    text = json.dumps(msg.blocks)
    assert all(f"CODE_{i:02d}" in text for i in range(60))
    assert f"{60 - MAX_DETAILED_ALERTS} more alerts" in text


@pytest.mark.parametrize(
    ("setup", "permanent", "fragment"),
    [
        (lambda s: s.fail("invalid_auth"), True, "invalid_auth"),
        (lambda s: s.fail("not_in_channel"), True, "invite the app"),
        (lambda s: s.http_error(500), False, "HTTP 500"),
        (lambda s: s.rate_limit(retry_after=7), False, "rate limited"),
        (lambda s: s.down("503"), False, "HTTP 503"),
        (lambda s: s.down(), False, "connection refused"),
    ],
)
def test_errors_are_classified(setup: Any, permanent: bool, fragment: str) -> None:
    with FakeSlack(TOKEN) as slack:
        notifier = bot(slack)
        setup(slack)
        with pytest.raises(NotifierError) as info:
            notifier.send(notification(), "k/slack")
    assert info.value.permanent is permanent
    assert fragment in str(info.value)
    if "rate" in fragment:
        assert info.value.retry_after == 7


def test_unknown_channel_is_permanent() -> None:
    with FakeSlack(TOKEN) as slack, pytest.raises(NotifierError) as info:
        bot(slack, "#nope").send(notification(), "k/slack")
    assert info.value.permanent and "channel_not_found" in str(info.value)


def test_lost_answer_is_uncertain_and_find_sent_sees_the_post() -> None:
    with FakeSlack(TOKEN) as slack:
        notifier = bot(slack)
        slack.lose_responses()
        with pytest.raises(NotifierError) as info:
            notifier.send(notification(), "k/slack")
        assert info.value.uncertain and not info.value.permanent
        assert notifier.find_sent("k/slack") == slack.messages[0]["ts"]


def test_webhook_posts_blocks_and_metadata() -> None:
    with FakeSlack(TOKEN) as slack:
        url = slack.add_webhook("capi-alerts")
        hook = SlackWebhookNotifier(url, timeout=3)
        assert hook.send(notification(), "n1/slack") is None
        assert hook.find_sent("n1/slack") is None
        [msg] = slack.messages
    assert msg["via"] == "webhook"
    assert "*FIRING*" in block_text(msg) and "`HASH_PLAINTEXT`" in block_text(msg)
    assert msg["metadata"]["event_payload"]["code"] == "HASH_PLAINTEXT"


def test_webhook_errors() -> None:
    with FakeSlack(TOKEN) as slack:
        good = slack.add_webhook()
        with pytest.raises(NotifierError) as info:
            SlackWebhookNotifier(good + "-wrong", timeout=3).send(notification(), "k")
        assert info.value.permanent and "no_service" in str(info.value)
        slack.rate_limit(retry_after=3)
        with pytest.raises(NotifierError) as info:
            SlackWebhookNotifier(good, timeout=3).send(notification(), "k")
        assert not info.value.permanent and info.value.retry_after == 3


def test_check_reports_bot_identity() -> None:
    with FakeSlack(TOKEN) as slack:
        assert bot(slack).check() == "capi-monitor on Fake"

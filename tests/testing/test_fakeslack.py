"""FakeSlack itself: Slack's documented answers over a real socket, and trouble on demand."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from monitor.testing.fakeslack import FakeSlack, blocks_problem, metadata_problem


def call(slack: FakeSlack, method: str, token: str | None = "xoxb-test", **body: Any) -> Any:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        slack.url + method, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_post_then_history_newest_first_with_metadata_on_request() -> None:
    with FakeSlack() as slack:
        meta = {"event_type": "x", "event_payload": {"key": "a"}}
        first = call(slack, "chat.postMessage", channel="#capi-alerts", text="one", metadata=meta)
        second = call(slack, "chat.postMessage", channel="capi-alerts", text="two")
        cid = slack.channel_id("capi-alerts")
        assert first["ok"] and first["channel"] == cid
        plain = call(slack, "conversations.history", channel=cid)
        assert [m["text"] for m in plain["messages"]] == ["two", "one"]
        assert "metadata" not in plain["messages"][1]
        rich = call(slack, "conversations.history", channel=cid, include_all_metadata=True)
        assert rich["messages"][1]["metadata"] == meta
        assert second["ts"] > first["ts"]
        # Slack wants a channel id in conversations.history, not a name.
        assert (
            call(slack, "conversations.history", channel="#capi-alerts")["error"]
            == "channel_not_found"
        )


def test_history_hides_thread_replies_unless_broadcast() -> None:
    with FakeSlack() as slack:
        root = call(slack, "chat.postMessage", channel="#alerts", text="root")
        call(slack, "chat.postMessage", channel="#alerts", text="quiet", thread_ts=root["ts"])
        call(
            slack,
            "chat.postMessage",
            channel="#alerts",
            text="loud",
            thread_ts=root["ts"],
            reply_broadcast=True,
        )
        history = call(slack, "conversations.history", channel=slack.channel_id("alerts"))
        assert [m["text"] for m in history["messages"]] == ["loud", "root"]


def test_validation_errors() -> None:
    with FakeSlack() as slack:
        assert (
            call(slack, "chat.postMessage", token="xoxb-bad", channel="#alerts", text="x")["error"]
            == "invalid_auth"
        )
        assert (
            call(slack, "chat.postMessage", token=None, channel="#alerts", text="x")["error"]
            == "not_authed"
        )
        assert (
            call(slack, "chat.postMessage", channel="#nope", text="x")["error"]
            == "channel_not_found"
        )
        assert call(slack, "chat.postMessage", channel="#alerts")["error"] == "no_text"
        bad_meta = {"event_type": "x", "event_payload": {"v": None}}
        assert (
            call(slack, "chat.postMessage", channel="#alerts", text="x", metadata=bad_meta)["error"]
            == "invalid_metadata_format"
        )
        assert slack.messages == []


def test_modes_times_and_down_up() -> None:
    with FakeSlack() as slack:
        slack.rate_limit(retry_after=2, times=1)
        with pytest.raises(urllib.error.HTTPError) as info:
            call(slack, "auth.test")
        assert info.value.code == 429 and info.value.headers["Retry-After"] == "2"
        info.value.close()
        assert call(slack, "auth.test")["ok"]  # times=1: back to normal
        slack.down()
        with pytest.raises(urllib.error.URLError):
            call(slack, "auth.test")
        slack.up()
        assert call(slack, "auth.test")["ok"]
        slack.fail("channel_not_found")
        assert call(slack, "auth.test")["error"] == "channel_not_found"
        slack.reset()
        slack.lose_responses()
        with pytest.raises(urllib.error.HTTPError) as info:
            call(slack, "chat.postMessage", channel="#alerts", text="kept")
        info.value.close()
        assert [m["text"] for m in slack.messages] == ["kept"]


def test_limits_helpers() -> None:
    assert blocks_problem([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert blocks_problem([{"type": "divider"}] * 51)
    assert blocks_problem([{"type": "divider"}]) is None
    assert metadata_problem({"event_type": "x", "event_payload": {"a": [{"b": 1}]}}) is None
    assert metadata_problem({"event_type": "x", "event_payload": {"a": ["s"]}})

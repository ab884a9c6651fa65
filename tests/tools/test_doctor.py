"""``capi-monitor doctor``: each misconfiguration a new setup gets wrong is caught, with
its fix, against real loopback servers (fake Graph API, fake Slack, aiosmtpd) and real
files; a good setup passes; nothing secret is printed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.config import settings_from_dict
from monitor.store import Store
from monitor.testing.fakegraph import FakeGraph
from monitor.testing.fakegraph.scenarios import Scenario
from monitor.testing.fakeslack import FakeSlack
from monitor.tools.doctor import State, checklist_lines, run_doctor
from tests.daemon.test_daemon import run_cli
from tests.daemon.test_daemon_e2e import free_port

NOW = time.time()
META_TOKEN = "EAAB-doctor-secret-token"
SLACK_TOKEN = "xoxb-doctor-secret"
SMTP_PASSWORD = "smtp-doctor-secret"
V1_LINE = (
    b'{"sent_at": 1795176000, "request": {"data": [{"event_name": "Purchase",'
    b' "event_time": 1795175990}]}}\n'
)
GTMS_LINES = (
    b'{"Name":"Facebook","Type":"Request","EventName":"Purchase","RequestMethod":"POST",'
    b'"RequestUrl":"https://graph.facebook.com/v21.0/111/events","RequestBody":{"data":[]}}\n'
)


class Inbox:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[int]:
    port = free_port()
    controller = Controller(
        Inbox(), hostname="127.0.0.1", port=port, auth_required=False,
        auth_require_tls=False, authenticator=check_login,
    )  # fmt: skip
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(
        token=SLACK_TOKEN, channels=["capi-alerts", "elsewhere"], member_of=["capi-alerts"]
    ) as s:
        yield s


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    scenarios: dict[str, str | Scenario] = {
        "111": "healthy",
        "222": Scenario.named("healthy").with_(token_expires_at=int(NOW + 2 * 86400)),
        "333": Scenario.named("healthy").with_(token_scopes=("business_management",)),
        "444": "token_invalid",
    }
    tokens = {
        "111": META_TOKEN,
        "222": "tok-222",
        "333": "tok-333",
        "444": "tok-444",
        "555": "tok-555",
    }
    with FakeGraph(scenarios, tokens=tokens) as fake:
        yield fake


@pytest.fixture
def good(tmp_path: Path, graph: FakeGraph, slack: FakeSlack, smtp: int) -> dict[str, Any]:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.jsonl").write_bytes(V1_LINE)
    (tmp_path / "logs" / "b.log").write_bytes(GTMS_LINES)
    db = f"sqlite:///{tmp_path}/state.db"
    Store.open(db).close()
    return {
        "storage": {"url": db},
        "meta": {"graph_url": graph.url, "access_token_env": "META_TOKEN", "max_retries": 0},
        "datasets": [{"id": "111", "name": "Shop", "logs": [str(tmp_path / "logs" / "*")]}],
        "notify": {
            "slack": {
                "token_env": "SLACK_TOKEN", "channel": "#capi-alerts", "api_url": slack.url + "/",
            },
            "email": {
                "host": "127.0.0.1", "port": smtp, "security": "none", "username": "capi",
                "password_env": "SMTP_PASSWORD", "from": "capi@example.com",
                "to": ["ops@example.com"],
            },
        },
    }  # fmt: skip


ENV = {"META_TOKEN": META_TOKEN, "SLACK_TOKEN": SLACK_TOKEN, "SMTP_PASSWORD": SMTP_PASSWORD}


def doctor(config: dict[str, Any], env: dict[str, str] = ENV) -> dict[tuple[str, str], Any]:
    items = run_doctor(settings_from_dict(config), env, NOW)
    text = "\n".join(checklist_lines(items))
    for secret in (META_TOKEN, SLACK_TOKEN, SMTP_PASSWORD):
        assert secret not in text
    return {(i.area, i.what): i for i in items}


def failing(found: dict[tuple[str, str], Any]) -> dict[tuple[str, str], str]:
    return {k: i.detail for k, i in found.items() if i.state is State.FAIL}


def test_a_good_setup_passes(good: dict[str, Any]) -> None:
    found = doctor(good)
    assert failing(found) == {}
    logs = next(i for (area, _), i in found.items() if area == "logs")
    assert "gtms" in logs.detail and "v1" in logs.detail
    assert found[("slack", "channel #capi-alerts")].state is State.OK
    assert (
        found[("email", next(w for a, w in found if a == "email"))].detail
        == "connected, logged in as capi"
    )


def test_store_unreachable_and_not_migrated(good: dict[str, Any], tmp_path: Path) -> None:
    bad = {**good, "storage": {"url": "postgresql+psycopg://u:pw-secret@127.0.0.1:1/x"}}
    (item,) = [i for (a, _), i in doctor(bad).items() if a == "store"]
    assert (
        item.state is State.FAIL and "unreachable" in item.detail and "pw-secret" not in item.detail
    )
    (tmp_path / "empty.db").write_bytes(b"")
    fresh = {**good, "storage": {"url": f"sqlite:///{tmp_path}/empty.db"}}
    (item,) = [i for (a, _), i in doctor(fresh).items() if a == "store"]
    assert item.state is State.FAIL and "capi-monitor once" in item.fix


def test_log_globs_that_match_nothing(good: dict[str, Any], tmp_path: Path) -> None:
    good["datasets"][0]["logs"] = [str(tmp_path / "nowhere" / "*.jsonl")]
    assert list(failing(doctor(good)).values()) == ["matches no file"]


@pytest.mark.parametrize(
    ("dataset", "env", "state", "words"),
    [
        # why: Meta says the token is invalid
        ("444", {"META_TOKEN": "tok-444"}, State.FAIL, "invalid"),
        # why: it expires in two days
        ("222", {"META_TOKEN": "tok-222"}, State.WARN, "expires in 2.0 days"),
        # why: it cannot read ads data
        ("333", {"META_TOKEN": "tok-333"}, State.FAIL, "lack ads_read"),
        # why: no token in the environment at all
        ("111", {}, State.FAIL, "META_TOKEN is not set"),
    ],
)
def test_meta_token_problems(
    good: dict[str, Any], dataset: str, env: dict[str, str], state: State, words: str
) -> None:
    good["datasets"] = [{"id": dataset}]
    item = doctor(good, {**ENV, "META_TOKEN": "", **env})[("meta", f"dataset {dataset}: token")]
    assert item.state is state and words in item.detail and item.fix


def test_a_token_without_access_to_the_dataset(good: dict[str, Any]) -> None:
    # A valid token (dataset 555's), but not one that may read dataset 111.
    item = doctor(good, {**ENV, "META_TOKEN": "tok-555"})[("meta", "dataset 111: access")]
    assert item.state is State.FAIL and item.fix


def test_slack_bad_token_missing_channel_and_not_a_member(good: dict[str, Any]) -> None:
    assert (
        "invalid_auth"
        in failing(doctor(good, {**ENV, "SLACK_TOKEN": "xoxb-wrong"}))[("slack", "auth.test")]
    )
    good["notify"]["slack"]["channel"] = "#elsewhere"
    assert failing(doctor(good)) == {("slack", "channel #elsewhere"): "the bot is not a member"}
    good["notify"]["slack"]["channel"] = "#nope"
    assert failing(doctor(good)) == {("slack", "channel #nope"): "no such channel the bot can see"}


def test_smtp_login_refused_and_server_unreachable(good: dict[str, Any]) -> None:
    (detail,) = failing(doctor(good, {**ENV, "SMTP_PASSWORD": "wrong"})).values()
    assert detail == "login as capi refused"
    good["notify"]["email"]["port"] = free_port()
    (detail,) = failing(doctor(good)).values()
    assert "refused" in detail.lower()


def test_orders_sources_are_checked(good: dict[str, Any], tmp_path: Path) -> None:
    good["orders"] = [{"name": "stripe", "kind": "stripe", "api_key_env": "STRIPE_KEY"}]
    assert failing(doctor(good)) == {
        ("orders", "orders stripe (stripe)"): "the environment variable STRIPE_KEY is not set"
    }


def test_the_command_prints_a_checklist_and_exits_1_on_failure(
    good: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    config = tmp_path / "capi-monitor.toml"
    good["datasets"][0]["logs"] = [str(tmp_path / "nowhere.jsonl")]
    config.write_bytes(_toml(good))
    assert run_cli("doctor", "--config", str(config)) == 1
    out = capsys.readouterr().out
    assert (
        "[FAIL] logs: dataset 111" in out and "fix: fix the glob" in out and "[ok  ] store" in out
    )
    assert run_cli("doctor", "--config", str(config), "--json") == 1
    assert any(i["state"] == "fail" for i in orjson.loads(capsys.readouterr().out))
    config.write_text("[storage\n")
    assert run_cli("doctor", "--config", str(config)) == 2


def _toml(data: dict[str, Any]) -> bytes:
    """A tiny TOML writer for this test's shapes (tables, arrays of tables, scalars)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return orjson.dumps(v).decode()

    def table(prefix: str, d: dict[str, Any], out: list[str]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) and not _tables(v)}
        if prefix and scalars:
            out.append(f"[{prefix}]")
        out += [f"{k} = {value(v)}" for k, v in scalars.items()]
        for k, v in d.items():
            name = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                table(name, v, out)
            elif _tables(v):
                for item in v:
                    out.append(f"[[{name}]]")
                    out += [f"{a} = {value(b)}" for a, b in item.items()]

    lines: list[str] = []
    table("", data, lines)
    return ("\n".join(lines) + "\n").encode()


def _tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

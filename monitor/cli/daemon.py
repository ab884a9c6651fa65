"""``capi-monitor run|once|status``: the daemon and its state."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
import orjson

from monitor.app import open_store, store_url
from monitor.cli.params import ISO
from monitor.config import load_settings

_DAEMON_JOBS_HELP = """
\b
Jobs: logs (every [schedule] logs_every: read new log lines, run the checks on events
sent within [alerts] window, evaluate alerts), graph (every [schedule] graph_every: poll
Meta's /stats, run the Graph checks, evaluate alerts), quality (every quality_every:
Dataset Quality, da_checks, the token; graph and quality need [meta] and a token),
notify (every [schedule] notify_every: send queued Slack/email notifications),
weekly_report (at [schedule] weekly_report, e.g. "mon 08:00", or "off": the weekly
audit report, emailed and summarised on Slack, each week once).
"""
_daemon_config = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file.",
)  # fmt: skip
_daemon_db = click.option(
    "--db", "db_url", metavar="URL", help="Store URL (default: [storage] url)."
)


@contextmanager
def _stop_on_signals(
    stop: threading.Event, reload: threading.Event | None = None
) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop``, SIGHUP sets ``reload`` (and they do nothing else)
    while inside the block."""
    signals = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if reload else ()))
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    if reload is not None:
        signal.signal(signal.SIGHUP, lambda _signum, _frame: reload.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command(epilog=_DAEMON_JOBS_HELP)
@_daemon_config
@_daemon_db
def run(config_path: str, db_url: str | None) -> int:
    """Run the daemon until SIGTERM or SIGINT (then exit 0); SIGHUP reloads the config
    (validated first: a bad one is reported and the running one kept). Logs: JSON lines
    on stderr."""
    from monitor import jsonlog
    from monitor.daemon.scheduler import Daemon

    settings = load_settings(config_path)
    url = db_url or store_url(settings)
    stop, reload = threading.Event(), threading.Event()
    with (
        jsonlog.configured(settings, urls=[url]),
        _stop_on_signals(stop, reload),
        Daemon.open(settings, url) as d,
    ):
        d.run(stop, reload, lambda: load_settings(config_path))
    return 0


@click.command(epilog=_DAEMON_JOBS_HELP)
@_daemon_config
@_daemon_db
@click.option("--now", type=ISO, help="Clock of this cycle (ISO 8601). Default: system time.")
def once(config_path: str, db_url: str | None, now: float | None) -> int:
    """Run every daemon job once, sending what it queued, then exit (cron, tests).

    Exit 0 when every job succeeded, 1 when one failed (see the JSON log on stderr).
    """
    from monitor import jsonlog
    from monitor.daemon.scheduler import Daemon

    settings = load_settings(config_path)
    url = db_url or store_url(settings)
    with jsonlog.configured(settings, urls=[url]), Daemon.open(settings, url) as d:
        # A cron instance stays registered between runs: silent once the runs stop.
        d.fleet.join(time.time() if now is None else now)
        try:
            results = d.run_once(now)
        finally:
            d.fleet.release()
    return 0 if all(r.ok for r in results) else 1


@click.command("status")
@_daemon_config
@_daemon_db
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def status_cmd(config_path: str, db_url: str | None, as_json: bool) -> int:
    """Open alerts, active silences, the last run of each job and notifier health."""
    from monitor.daemon.status import status, status_lines

    settings = load_settings(config_path)
    with open_store(db_url or store_url(settings)) as store:
        data = status(store, settings, time.time())
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        for line in status_lines(data):
            click.echo(line)
    return 0

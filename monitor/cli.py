"""Command line entry point: the only place that touches exit codes and the terminal.

Exit codes (CONTRACTS.md §4): 0 nothing at or above ``--fail-on``; 1 findings at or above
it; 2 usage, config or unreadable-input error, reported as one line on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from monitor import __version__
from monitor.config import Settings, load_settings, parse_duration
from monitor.engine.audit import input_files, run_audit
from monitor.engine.parallel import MAX_AUTO_JOBS, default_jobs
from monitor.errors import CapiMonitorError, InputError, StoreError
from monitor.model.findings import Severity
from monitor.model.results import AuditReport
from monitor.sources.logs.reader import InputFile
from monitor.timeutil import parse_iso

DEFAULT_DB = "sqlite:///capi-monitor.db"
PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # below this, reading takes about a second: no bar


class IsoTime(click.ParamType):
    name = "ISO-TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_iso(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


ISO = IsoTime()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="capi-monitor")
def cli() -> None:
    """capi-monitor: health monitor and auditor for Meta Conversions API setups.

    \b
    Audit delivery logs once:   capi-monitor audit logs/ --html report.html
    Use in CI:                  capi-monitor audit logs/ --json - --fail-on warn
    """


@cli.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--now", type=ISO, help="Clock of the whole run (ISO 8601). Default: system time.")
@click.option("--since", type=ISO, help="Only events sent at or after this time.")
@click.option("--until", type=ISO, help="Only events sent before this time.")
@click.option("--json", "json_out", metavar="FILE|-", help="Write the JSON report (- = stdout).")
@click.option("--html", "html_out", metavar="FILE", help="Write a self-contained HTML report.")
@click.option(
    "--fail-on",
    type=click.Choice(["info", "warn", "crit", "never"]),
    default="crit",
    show_default=True,
    help="Exit 1 when a finding is at or above this severity.",
)
@click.option("--db", "db_url", metavar="URL", help="Store URL (default: [storage] url).")
@click.option("--no-store", is_flag=True, help="Do not record this run in the store.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on the terminal.")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help=f"Worker processes for inputs of 32 MiB or more (not stdin): 0 = one per CPU, at "
    f"most {MAX_AUTO_JOBS}; 1 = none. The report is the same either way.",
)
def audit(
    paths: tuple[str, ...],
    config_path: str | None,
    now: float | None,
    since: float | None,
    until: float | None,
    json_out: str | None,
    html_out: str | None,
    fail_on: str,
    db_url: str | None,
    no_store: bool,
    quiet: bool,
    jobs: int,
) -> int:
    """Audit CAPI delivery logs: files, directories (recursive), globs, or - for stdin.

    Without PATH, audits the `logs` of every [[datasets]] entry of --config. With [meta]
    in --config, each dataset that has a token is also read from Meta's Graph API.
    """
    from monitor.engine import graph_inputs  # deferred: httpx import, --help need not pay

    settings = load_settings(config_path)
    files = input_files(settings, paths)
    if not files and not graph_inputs.graph_datasets(settings):
        _err("nothing to audit: no log files matched the configured datasets' logs")
        return 0
    stores: list[Any] = []  # the store, once opened

    def open_store() -> None:
        if not no_store and not stores:
            stores.append(_open_store(db_url or _store_url(settings)))

    if graph_inputs.graph_datasets(settings):
        open_store()  # the Graph inputs read their history from it
    clock = now if now is not None else time.time()
    graph = graph_inputs.collect_graph(settings, now=clock, store=stores[0] if stores else None)
    with _progress(files) as on_bytes:
        # Opening the store (SQLAlchemy import, migrations: ~1 s) overlaps a parallel
        # read; otherwise it happens before reading, so a bad --db still fails first.
        report = run_audit(
            settings, files, now=clock, since=since, until=until, on_bytes=on_bytes,
            stdin=sys.stdin.buffer if any(f.is_stdin for f in files) else None,
            jobs=jobs or default_jobs(), graph=graph, meanwhile=open_store,
            series=_series_loader(stores, settings, clock),
        )  # fmt: skip
    store = stores[0] if stores else None
    if store is not None:
        with store:
            store.record_audit(report)
            graph_inputs.store_graph(store, graph)
    _write_outputs(report, json_out, html_out, quiet)
    return _exit_code(report, fail_on)


def _series_loader(stores: list[Any], settings: Settings, clock: float) -> Any:
    """What ``run_audit(series=...)`` calls after reading: the stored hourly series of
    the datasets (``volume``), none without a store. This audit's own rollups replace
    the stored ones of the same hours, as ``record_audit`` will."""

    def load(dataset_ids: Sequence[str]) -> Any:
        if not stores:
            return {}
        from monitor.engine.series import load_volume_history
        from monitor.model.series import Current

        return load_volume_history(stores[0], settings, clock, dataset_ids, current=Current.REPLACE)

    return load


def _store_url(settings: Settings) -> str:
    return settings.storage.url if settings.source_path else DEFAULT_DB


def _open_store(url: str):  # type: ignore[no-untyped-def]
    from monitor.store import Store  # deferred: SQLAlchemy import is slow, --help need not pay

    return Store.open(url)


def _write_outputs(
    report: AuditReport, json_out: str | None, html_out: str | None, quiet: bool
) -> None:
    if json_out:
        data = orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        if json_out == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            _write_file(json_out, data)
    if html_out:
        from monitor.report.html import render_audit_html

        _write_file(html_out, render_audit_html(report).encode("utf-8"))
    if not quiet:
        from monitor.report.console import print_summary

        # JSON on stdout must stay parseable: the summary then goes to stderr.
        console = Console(stderr=json_out == "-", highlight=False)
        print_summary(report, console)
        if html_out:
            console.print(f"HTML report: {Path(html_out).resolve()}", markup=False)


def _write_file(path: str, data: bytes) -> None:
    """Write a report atomically (temp file + rename) so a reader never sees half of it.

    A target that exists and is not a regular file (``/dev/null``, a FIFO, a terminal) is
    written in place: renaming over it would replace the device itself.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            with p.open("wb") as out:
                out.write(data)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror}") from None


def _exit_code(report: AuditReport, fail_on: str) -> int:
    if fail_on == "never":
        return 0
    threshold = Severity(fail_on).rank
    return 1 if any(f.severity.rank >= threshold for f in report.findings) else 0


@contextmanager
def _progress(files: Sequence[InputFile]) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only on a terminal and only for inputs big enough to wait for."""
    total = sum(_size(f) for f in files)
    if not sys.stderr.isatty() or total < PROGRESS_MIN_BYTES:
        yield None
        return
    columns = (TextColumn("reading logs"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("read", total=total)
        yield lambda n: bar.advance(task, n)


def _size(f: InputFile) -> int:
    try:
        return 0 if f.is_stdin else os.path.getsize(f.path)
    except OSError:
        return 0


# --- silence: add / list / expire --------------------------------------------------------


class DurationType(click.ParamType):
    """A positive duration: ``30m``, ``2h``, ``1d`` (see ``monitor.config.parse_duration``)."""

    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if seconds <= 0:
            self.fail(
                f"expected a positive duration such as '30m' or '2h', got {value!r}", param, ctx
            )
        return seconds


_silence_config = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file."
)
_silence_db = click.option(
    "--db", "db_url", metavar="URL", help="Store URL (default: [storage] url)."
)


@cli.group()
def silence() -> None:
    """Mute the alerts of a dataset for a while (they stay tracked, nothing is posted).

    \b
    capi-monitor silence add --dataset 1234567890 --code VOLUME_DROP --for 2h --reason deploy
    capi-monitor silence list
    capi-monitor silence expire 3
    """


@silence.command("add")
@click.option("--dataset", "dataset_id", required=True, metavar="ID", help="Dataset to mute.")
@click.option("--code", metavar="CODE", help="Only alerts with this finding code.")
@click.option("--event", "event_name", metavar="NAME", help="Only alerts about this event name.")
@click.option("--for", "duration", type=DurationType(), required=True, help="e.g. 30m, 2h, 1d.")
@click.option("--reason", required=True, help="Why (kept with the silence).")
@_silence_config
@_silence_db
def silence_add(
    dataset_id: str,
    code: str | None,
    event_name: str | None,
    duration: float,
    reason: str,
    config_path: str | None,
    db_url: str | None,
) -> int:
    """Mute a dataset's alerts (optionally one code and/or event name) for --for."""
    from monitor.alerts.silences import add_silence

    settings = load_settings(config_path)
    if settings.datasets and settings.dataset(dataset_id) is None:
        raise click.BadParameter(
            f"{dataset_id!r} is not in {config_path}", param_hint="'--dataset'"
        )
    with _open_store(db_url or _store_url(settings)) as store:
        s = add_silence(
            store.engine, dataset_id=dataset_id, duration=duration, reason=reason,
            author=os.environ.get("USER") or "cli", now=time.time(),
            code=code.upper() if code else None, event_name=event_name,
        )  # fmt: skip
    click.echo(f"silence {s.id} added: {s.describe()}")
    return 0


@silence.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Include silences that have ended.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@_silence_config
@_silence_db
def silence_list(
    include_ended: bool, as_json: bool, config_path: str | None, db_url: str | None
) -> int:
    """List the active silences (with --all, every silence)."""
    import dataclasses

    from monitor.alerts.silences import list_silences

    now = time.time()
    with _open_store(db_url or _store_url(load_settings(config_path))) as store:
        silences = list_silences(store.engine, now, include_expired=include_ended)
    if as_json:
        rows = [{**dataclasses.asdict(s), "active": s.active(now)} for s in silences]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    elif not silences:
        click.echo("no silences" if include_ended else "no active silences")
    for s in [] if as_json else silences:
        state = "" if s.active(now) else " [ended]"
        click.echo(f"{s.id}: {s.describe()}, by {s.author}{state}")
    return 0


@silence.command("expire")
@click.argument("silence_id", type=int, metavar="ID")
@_silence_config
@_silence_db
def silence_expire(silence_id: int, config_path: str | None, db_url: str | None) -> int:
    """End silence ID now: its alerts that still fire are notified at the next cycle."""
    from monitor.alerts.silences import expire_silence

    with _open_store(db_url or _store_url(load_settings(config_path))) as store:
        ended = expire_silence(store.engine, silence_id, time.time())
    click.echo(f"silence {silence_id} {'expired' if ended else 'had already ended'}")
    return 0


# --- the daemon: run / once / status ---------------------------------------------------

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
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (and do nothing else) while inside the block."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command(epilog=_DAEMON_JOBS_HELP)
@_daemon_config
@_daemon_db
def run(config_path: str, db_url: str | None) -> int:
    """Run the daemon until SIGTERM or SIGINT (then exit 0). Logs: JSON lines on stderr."""
    from monitor import jsonlog
    from monitor.daemon.runner import Daemon

    settings = load_settings(config_path)
    url = db_url or _store_url(settings)
    stop = threading.Event()
    with (
        jsonlog.configured(settings, urls=[url]),
        _stop_on_signals(stop),
        Daemon.open(settings, url) as d,
    ):
        d.run(stop)
    return 0


@cli.command(epilog=_DAEMON_JOBS_HELP)
@_daemon_config
@_daemon_db
@click.option("--now", type=ISO, help="Clock of this cycle (ISO 8601). Default: system time.")
def once(config_path: str, db_url: str | None, now: float | None) -> int:
    """Run every daemon job once, sending what it queued, then exit (cron, tests).

    Exit 0 when every job succeeded, 1 when one failed (see the JSON log on stderr).
    """
    from monitor import jsonlog
    from monitor.daemon.runner import Daemon

    settings = load_settings(config_path)
    url = db_url or _store_url(settings)
    with jsonlog.configured(settings, urls=[url]), Daemon.open(settings, url) as d:
        results = d.run_once(now)
    return 0 if all(r.ok for r in results) else 1


@cli.command("status")
@_daemon_config
@_daemon_db
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def status_cmd(config_path: str, db_url: str | None, as_json: bool) -> int:
    """Open alerts, active silences, the last run of each job and notifier health."""
    from monitor.daemon.runner import status, status_lines

    settings = load_settings(config_path)
    with _open_store(db_url or _store_url(settings)) as store:
        data = status(store, settings, time.time())
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        for line in status_lines(data):
            click.echo(line)
    return 0


# --- the weekly report -----------------------------------------------------------------


@cli.command("report")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file.",
)  # fmt: skip
@click.option("--week", metavar="YYYY-Www", help="ISO week in [schedule] timezone (e.g. 2026-W47).")
@click.option("--from", "start", type=ISO, help="Start of the window (send time, inclusive).")
@click.option("--to", "end", type=ISO, help="End of the window (send time, exclusive).")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Directory for the pages.")
@click.option("--db", "db_url", metavar="URL", help="Store URL (default: [storage] url).")
@click.option("--now", type=ISO, help="Clock for the default week (ISO 8601). Default: now.")
def report_cmd(
    config_path: str,
    week: str | None,
    start: float | None,
    end: float | None,
    out_dir: str,
    db_url: str | None,
    now: float | None,
) -> int:
    """Write the weekly audit report: DIR/index.html and DIR/<dataset_id>.html.

    Without --week or --from/--to: the last complete ISO week. Every page is one
    self-contained file (charts embedded) that opens offline and prints to PDF.
    """
    from monitor.report.weekly.build import build_weekly_report, render_pages, write_pages
    from monitor.report.window import WindowError, choose_window

    settings = load_settings(config_path)
    clock = now if now is not None else time.time()
    try:
        window = choose_window(settings.schedule.timezone, clock, week, start, end)
    except WindowError as err:
        raise click.UsageError(str(err)) from None
    with _open_store(db_url or _store_url(settings)) as store:
        report = build_weekly_report(store, settings, window, now=clock)
    try:
        written = write_pages(render_pages(report), out_dir)
    except OSError as err:
        raise InputError(f"{out_dir}: cannot write: {err.strerror}") from None
    click.echo(
        f"weekly report {window.label}: {written[0].resolve()}"
        f" ({len(written) - 1} dataset page{'s' if len(written) != 2 else ''})"
    )
    return 0


# --- backtest and simulate ------------------------------------------------------------


@cli.command("backtest")
@click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="TOML config file (its datasets' logs are replayed).",
)  # fmt: skip
@click.option("--from", "start", type=ISO, required=True, help="First evaluation (ISO 8601).")
@click.option("--to", "end", type=ISO, required=True, help="End of the replay (exclusive).")
@click.option(
    "--step", type=DurationType(), help="Time between evaluations (default: [schedule] logs_every)."
)
@click.option("--json", "json_out", metavar="FILE|-", help="Write the alerts as JSON (- = stdout).")
@click.option("--db", "db_url", metavar="URL", help="Store with earlier history (read only).")
def backtest_cmd(
    config_path: str,
    start: float,
    end: float,
    step: float | None,
    json_out: str | None,
    db_url: str | None,
) -> int:
    """Replay stored history and the configured logs with a simulated clock, through the
    daemon's checks and alert lifecycle, and list the alerts that would have fired.

    Nothing is sent and the store is not written. Exit 0 when the replay ran.
    """
    from monitor.tools.backtest import episodes_table, run_backtest

    settings = load_settings(config_path)
    if end <= start:
        raise click.UsageError("--to must be later than --from")
    result = run_backtest(
        settings, start=start, end=end, step=step, store_url=db_url or _store_url(settings)
    )
    if json_out:
        data = orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        if json_out == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            _write_file(json_out, data)
    if json_out != "-":
        for line in episodes_table(result.alerts, settings.schedule.timezone):
            click.echo(line)
        click.echo(
            f"({result.cycles} evaluations, {result.deliveries} deliveries replayed in "
            f"{result.seconds:.1f} s)",
            err=True,
        )
    return 0


@cli.command("simulate")
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Directory to write.")
@click.option("--weeks", type=click.IntRange(min=2), default=5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--datasets", type=click.IntRange(1, 3), default=2, show_default=True)
@click.option(
    "--scale", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
    help="Multiply every dataset's traffic.",
)  # fmt: skip
def simulate_cmd(out_dir: str, weeks: int, seed: int, datasets: int, scale: float) -> int:
    """Write weeks of realistic traffic with injected incidents: delivery logs, Meta's
    hourly counts (for the fake Graph API), ground_truth.json and a config.toml.

    \b
    capi-monitor simulate --out sim/ --weeks 5 --seed 7
    capi-monitor backtest --config sim/config.toml --from ... --to ...
    """
    from monitor.tools.simulate import write_scenario

    summary = write_scenario(out_dir, seed, weeks=weeks, datasets=datasets, scale=scale)
    events = sum(summary["events"].values())
    click.echo(
        f"{events} events for {len(summary['events'])} datasets and "
        f"{summary['incidents']} incidents written to {summary['out']}"
    )
    return 0


def _err(message: str) -> None:
    click.echo(f"capi-monitor: {message}", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: maps errors to one line on stderr and exit status 2."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="capi-monitor",
                      standalone_mode=False)  # fmt: skip
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
        _err(f"{err.format_message()}{hint}")
        sys.exit(2)
    except click.ClickException as err:
        _err(err.format_message())
        sys.exit(err.exit_code)
    except (CapiMonitorError, StoreError) as err:
        _err(str(err))
        sys.exit(2)
    except click.Abort:
        _err("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(rv if isinstance(rv, int) else 0)

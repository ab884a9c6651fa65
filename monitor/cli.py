"""Command line entry point: the only place that touches exit codes and the terminal.

Exit codes (CONTRACTS.md §4): 0 nothing at or above ``--fail-on``; 1 findings at or above
it; 2 usage, config or unreadable-input error, reported as one line on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from monitor import __version__
from monitor.audit import input_files, run_audit
from monitor.config import Settings, load_settings
from monitor.errors import CapiMonitorError, InputError, StoreError
from monitor.model import Severity
from monitor.parallel import MAX_AUTO_JOBS, default_jobs
from monitor.results import AuditReport
from monitor.sources.logs import InputFile
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

    Without PATH, audits the `logs` of every [[datasets]] entry of --config.
    """
    settings = load_settings(config_path)
    files = input_files(settings, paths)
    if not files:
        _err("nothing to audit: no log files matched the configured datasets' logs")
        return 0
    store = None if no_store else _open_store(db_url or _store_url(settings))
    clock = now if now is not None else time.time()
    with _progress(files) as on_bytes:
        report = run_audit(
            settings, files, now=clock, since=since, until=until, on_bytes=on_bytes,
            stdin=sys.stdin.buffer if any(f.is_stdin for f in files) else None,
            jobs=jobs or default_jobs(),
        )  # fmt: skip
    if store is not None:
        with store:
            store.record_audit(report)
    _write_outputs(report, json_out, html_out, quiet)
    return _exit_code(report, fail_on)


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
    p = Path(path)
    try:
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

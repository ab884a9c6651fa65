"""``capi-monitor audit``: read logs (and Meta's side), run the checks, write the reports."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from monitor.app import open_store, series_loader, store_url
from monitor.cli.params import ISO, err, write_file, write_json
from monitor.config import load_settings
from monitor.engine.audit import input_files, run_audit
from monitor.engine.parallel import MAX_AUTO_JOBS, default_jobs
from monitor.model.findings import Severity
from monitor.model.results import AuditReport
from monitor.sources.logs.formats import AUTO, CHOICES
from monitor.sources.logs.paths import InputFile

PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # below this, reading takes about a second: no bar


@click.command()
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
@click.option(
    "--orders",
    "orders_files",
    metavar="FILE",
    multiple=True,
    help="Reconcile Purchases with this order export (CSV or JSON lines; repeatable); "
    "overrides the configured [[orders]] sources.",
)
@click.option(
    "--format",
    "log_format",
    type=click.Choice(CHOICES),
    default=AUTO,
    show_default=True,
    help="Log format of every input; auto detects each file's from its content "
    "(default: each dataset's logs_format for configured logs).",
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
    orders_files: tuple[str, ...],
    log_format: str,
    db_url: str | None,
    no_store: bool,
    quiet: bool,
    jobs: int,
) -> int:
    """Audit CAPI delivery logs: files, directories (recursive), globs, or - for stdin.

    Without PATH, audits the `logs` of every [[datasets]] entry of --config. With [meta]
    in --config, each dataset that has a token is also read from Meta's Graph API. Datasets
    with `orders = "<name>"` (or every dataset, with --orders) are reconciled with paid orders.
    """
    from monitor.engine import graph_inputs  # deferred: httpx import, --help need not pay
    from monitor.engine.orders_inputs import check_exports, orders_loader

    settings = load_settings(config_path)
    check_exports(orders_files)
    files = input_files(settings, paths, log_format)
    if not files and not graph_inputs.graph_datasets(settings):
        err("nothing to audit: no log files matched the configured datasets' logs")
        return 0
    stores: list[Any] = []  # the store, once opened

    def open_once() -> None:
        if not no_store and not stores:
            stores.append(open_store(db_url or store_url(settings)))

    if graph_inputs.graph_datasets(settings):
        open_once()  # the Graph inputs read their history from it
    clock = now if now is not None else time.time()
    graph = graph_inputs.collect_graph(settings, now=clock, store=stores[0] if stores else None)
    with _progress(files) as on_bytes:
        # Opening the store (SQLAlchemy import, migrations: ~1 s) overlaps a parallel
        # read; otherwise it happens before reading, so a bad --db still fails first.
        report = run_audit(
            settings, files, now=clock, since=since, until=until, on_bytes=on_bytes,
            stdin=sys.stdin.buffer if any(f.is_stdin for f in files) else None,
            jobs=jobs or default_jobs(), graph=graph, meanwhile=open_once,
            series=series_loader(stores, settings, clock),
            orders=orders_loader(settings, now=clock, since=since, export=orders_files),
            rollups=not no_store or bool(graph),  # no store, no Graph: nobody reads them
        )  # fmt: skip
    store = stores[0] if stores else None
    if store is not None:
        with store:
            store.record_audit(report)
            graph_inputs.store_graph(store, graph)
    _write_outputs(report, json_out, html_out, quiet)
    return _exit_code(report, fail_on)


def _write_outputs(
    report: AuditReport, json_out: str | None, html_out: str | None, quiet: bool
) -> None:
    if json_out:
        write_json(json_out, orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    if html_out:
        from monitor.report.html import render_audit_html

        write_file(html_out, render_audit_html(report).encode("utf-8"))
    if not quiet:
        from monitor.report.console import print_summary

        # JSON on stdout must stay parseable: the summary then goes to stderr.
        console = Console(stderr=json_out == "-", highlight=False)
        print_summary(report, console)
        if html_out:
            console.print(f"HTML report: {Path(html_out).resolve()}", markup=False)


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

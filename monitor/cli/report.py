"""``capi-monitor report``: the weekly audit report from the store."""

from __future__ import annotations

import time

import click

from monitor.app import open_store, store_url
from monitor.cli.params import ISO
from monitor.config import load_settings
from monitor.errors import InputError


@click.command("report")
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
    from monitor.report.weekly.load import build_weekly_report
    from monitor.report.weekly.render import render_pages, write_pages
    from monitor.report.window import WindowError, choose_window

    settings = load_settings(config_path)
    clock = now if now is not None else time.time()
    try:
        window = choose_window(settings.schedule.timezone, clock, week, start, end)
    except WindowError as err:
        raise click.UsageError(str(err)) from None
    with open_store(db_url or store_url(settings)) as store:
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
